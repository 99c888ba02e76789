// #region imports
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Ref, Schedule, Schema, TestClock } from "effect"
import { Host, Job, Testing, Worker, WorkerError, WorkerRegistry } from "effect-workers"
// #endregion

// #region worker
// The worker under test: adds one to a counter once a minute.
const makeCounter = (count: Ref.Ref<number>) =>
  Worker.make("counter", Ref.update(count, (n) => n + 1), { schedule: Schedule.spaced("1 minute") })
// #endregion

describe("workers under TestClock", () => {
  // #region start
  it.scoped("runs at start, then once a minute", () =>
    Effect.gen(function*() {
      const count = yield* Ref.make(0)
      // The worker starts at once; it stops when the test's scope closes.
      const registry = yield* Testing.start(makeCounter(count))
      yield* registry.awaitStatus("counter", (s) => s.iterations === 1)
      // Two minutes pass, without waiting two minutes.
      yield* Testing.advance("1 minute")
      yield* Testing.advance("1 minute")
      const status = yield* registry.awaitStatus("counter", (s) => s.iterations === 3)
      assert.strictEqual(yield* Ref.get(count), 3)
      assert.deepStrictEqual(status.nextRunAt, Option.some(new Date(3 * 60_000)))
    }))
  // #endregion

  // #region provide
  it.scoped("the registry helpers read the registry from the context", () =>
    Effect.gen(function*() {
      const count = yield* Ref.make(0)
      const registry = yield* Testing.start(makeCounter(count))
      yield* Effect.gen(function*() {
        yield* Testing.awaitIterations("counter", 1)
        const status = yield* Testing.status("counter")
        assert.isTrue(Option.isSome(status))
        yield* Testing.awaitStatus("counter", (s) => s.state === "idle")
      }).pipe(Effect.provideService(WorkerRegistry.WorkerRegistry, registry))
    }))
  // #endregion

  // #region retry
  it.scoped("retries a failed iteration on its retry schedule", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(attempts, (n) => n + 1),
        (n) => n < 3 ? Effect.fail(`attempt ${n} failed`) : Effect.void
      )
      const registry = yield* Testing.start(
        Worker.make("flaky", flaky, { retry: Schedule.spaced("10 seconds") })
      )
      yield* registry.awaitStatus("flaky", (s) => s.state === "backingOff")
      yield* Testing.advance("10 seconds")
      yield* Testing.advance("10 seconds")
      const status = yield* registry.awaitStatus("flaky", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 1)
      assert.strictEqual(status.failures, 2)
      assert.deepStrictEqual(status.lastError, Option.some("attempt 2 failed"))
    }))
  // #endregion

  // #region cron
  it.scoped("cron: set the TestClock to a real date first", () =>
    Effect.gen(function*() {
      // TestClock starts at 1970-01-01T00:00:00Z.
      yield* TestClock.setTime(Date.parse("2026-03-02T07:00:00Z"))
      const registry = yield* Testing.start(
        Worker.cron("morning", Effect.void, { cron: "0 9 * * *", timeZone: "Europe/Berlin" })
      )
      const idle = yield* registry.awaitStatus("morning", (s) => s.state === "idle")
      assert.deepStrictEqual(idle.nextRunAt, Option.some(new Date("2026-03-02T08:00:00Z")))
      yield* Testing.advance("1 hour")
      yield* registry.awaitStatus("morning", (s) => s.iterations === 1)
    }))
  // #endregion
})

describe("a host inside a test", () => {
  // #region host
  it.scoped("stops the host when a stopHost worker fails", () =>
    Effect.gen(function*() {
      const host = yield* Testing.startHost(
        Worker.make("importer", Effect.fail("no input file"), { retry: false, onFailure: "stopHost" })
      )
      const exit = yield* host.await
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = Option.getOrThrow(Cause.failureOption(exit.cause))
        assert.instanceOf(error, WorkerError.WorkerFailed)
      }
    }))

  it.scoped("runs the lifecycle hooks and stops as a signal would", () =>
    Effect.gen(function*() {
      const events = yield* Ref.make<ReadonlyArray<string>>([])
      const record = (event: string) => Ref.update(events, (all) => [...all, event])
      const Hooks = Layer.effectDiscard(Effect.gen(function*() {
        const lifecycle = yield* Host.Lifecycle
        yield* lifecycle.onStarted(record("started"))
        yield* lifecycle.onStopping(record("stopping"))
        yield* lifecycle.onStopped(record("stopped"))
      }))
      const Idle = Worker.make("idle", Effect.never.pipe(Effect.onInterrupt(() => record("worker interrupted"))))
      const host = yield* Testing.startHost(Layer.merge(Idle, Hooks))
      yield* host.registry.awaitStatus("idle", (s) => s.state === "running")
      const exit = yield* host.stop
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(yield* Ref.get(events), ["started", "stopping", "worker interrupted", "stopped"])
    }))
  // #endregion
})

const Welcome = Job.make("welcome", {
  payload: Schema.Struct({ to: Schema.String }),
  handler: ({ to }) => Effect.succeed(`welcome mail for ${to}`)
})

describe("jobs", () => {
  // #region jobs
  it.effect("performJob runs the handler with a payload, through its schema", () =>
    Effect.gen(function*() {
      const sent = yield* Testing.performJob(Welcome, { to: "ada@example.com" })
      assert.strictEqual(sent, "welcome mail for ada@example.com")
    }))
  // #endregion
})

// #region drain
// With a database (JobClient and PgClient provided): run what is waiting, retries included,
// then look at what happened; or check that code under test enqueued a job.
export const drainAndAssert = Effect.gen(function*() {
  const result = yield* Testing.drainQueue({ jobs: [Welcome] })
  const waiting = yield* Testing.assertEnqueued({ job: Welcome, payload: { to: "ada@example.com" } })
  return { completed: result.completed, discarded: result.discarded, waiting }
})
// #endregion
