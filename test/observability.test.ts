import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, Layer, Metric, Ref, Schedule } from "effect"
import { Host, Metrics, Testing, Worker } from "../src/index.js"
import { recordingTracer } from "./support/tracer.js"

describe("spans", () => {
  it.scoped("records a span per iteration when a tracer is installed", () =>
    Effect.gen(function*() {
      const { ended, tracer } = recordingTracer()
      const registry = yield* Testing.start(
        Worker.make("traced", Effect.void, { schedule: Schedule.spaced("1 second") })
      ).pipe(Effect.withTracer(tracer))
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("traced", (s) => s.iterations >= 2)
      const spans = ended.filter((s) => s.name === "effect_workers.worker.iteration")
      assert.isAtLeast(spans.length, 2)
      assert.strictEqual(spans[0].attributes.get("effect_workers.worker"), "traced")
      assert.strictEqual(spans[0].exit, "Success")
    }))

  it.scoped("records no span when tracing is off", () =>
    Effect.gen(function*() {
      const { ended, tracer } = recordingTracer()
      const registry = yield* Testing.start(Worker.make("quiet", Effect.void, { tracing: false })).pipe(
        Effect.withTracer(tracer)
      )
      yield* registry.awaitStatus("quiet", (s) => s.state === "stopped")
      assert.deepStrictEqual(ended, [])
    }))
})

describe("schedules given as durations", () => {
  it.scoped("a duration runs again that long after the previous run ended", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make<Array<number>>([])
      const task = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* Ref.update(runs, (xs) => [...xs, now])
        yield* Effect.sleep("500 millis")
      })
      const registry = yield* Testing.start(Worker.make("every", task, { schedule: "2 seconds" }))
      for (let i = 0; i < 49; i++) yield* Testing.advance("100 millis")
      yield* registry.awaitStatus("every", (s) => s.iterations >= 2)
      assert.deepStrictEqual(yield* Ref.get(runs), [0, 2500])
    }))

  it("rejects a duration that is not one", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.scoped(Testing.start(Worker.make("bad", Effect.void, { schedule: "soon" as "1 second" })))
    )
    assert.isTrue(Exit.isFailure(exit))
    assert.include(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)), `option "schedule"`)
  })
})

describe("Worker.mergeAll", () => {
  it.scoped("registers many workers as one layer, alongside other layers", () =>
    Effect.gen(function*() {
      const count = yield* Ref.make(0)
      const workers = Array.from({ length: 100 }, (_, i) =>
        Worker.make(`w${i}`, Ref.update(count, (n) => n + 1), { schedule: "1 second" }))
      const other = Layer.effectDiscard(Effect.void)
      const registry = yield* Testing.start(Layer.merge(Worker.mergeAll(workers), other))
      yield* Testing.advance("1 second")
      for (let i = 0; i < 100; i++) {
        yield* registry.awaitStatus(`w${i}`, (s) =>
          s.iterations >= 2)
      }
      assert.strictEqual((yield* registry.all).length, 100)
      assert.isAtLeast(yield* Ref.get(count), 200)
    }))
})

describe("Worker.mergeAll with a shared metrics label", () => {
  it.scoped("counts the merged workers under one label, and each in the status registry", () =>
    Effect.gen(function*() {
      const workers = Array.from({ length: 20 }, (_, i) =>
        Worker.make(`probe-${i}`, Effect.void, { schedule: "1 second" }))
      const registry = yield* Testing.start(Worker.mergeAll(workers, { metricsLabel: "probes" }))
      for (let i = 0; i < 20; i++) {
        yield* registry.awaitStatus(`probe-${i}`, (s) =>
          s.iterations >= 1)
      }
      const shared = yield* Metric.value(
        Metrics.workerIterations.pipe(Metric.tagged("worker", "probes"), Metric.tagged("outcome", "success"))
      )
      const own = yield* Metric.value(
        Metrics.workerIterations.pipe(Metric.tagged("worker", "probe-0"), Metric.tagged("outcome", "success"))
      )
      assert.strictEqual(shared.count, 20)
      assert.strictEqual(own.count, 0)
      assert.strictEqual((yield* registry.all).length, 20)
    }))
})

describe("host configuration", () => {
  it.live("reads the grace period from SHUTDOWN_GRACE_PERIOD, and rejects a bad one clearly", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.exit(
        Host.launch(Worker.make("idle", Effect.void)).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SHUTDOWN_GRACE_PERIOD", "a while"]])))
        )
      )
      assert.isTrue(Exit.isFailure(bad))
      const message = String(Cause.squash((bad as Exit.Failure<void, unknown>).cause))
      assert.include(message, "SHUTDOWN_GRACE_PERIOD")
      const grace = yield* Host.gracePeriodConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SHUTDOWN_GRACE_PERIOD", "5 seconds"]])))
      )
      assert.strictEqual(Duration.toMillis(grace), 5000)
    }))
})
