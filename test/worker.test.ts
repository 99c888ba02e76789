import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Effect,
  Either,
  Exit,
  Layer,
  Mailbox,
  Metric,
  Option,
  Queue,
  Ref,
  Schedule,
  Scope,
  Stream,
  TestClock
} from "effect"
import { Testing, Worker, WorkerError, WorkerRegistry } from "../src/index.js"

const at = (iso: string) => Date.parse(iso)

/** Records the test-clock time of every run. */
const recorder = Effect.gen(function*() {
  const runs = yield* Ref.make<Array<number>>([])
  const task = Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(runs, (xs) => [...xs, now]))
  return { runs, task }
})

describe("Worker.make", () => {
  it.scoped("runs once without a schedule, like ExecuteAsync", () =>
    Effect.gen(function*() {
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(Worker.make("once", task))
      const status = yield* registry.awaitStatus("once", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 1)
      assert.deepStrictEqual(yield* Ref.get(runs), [0])
    }))

  it.scoped("repeats on a spaced schedule and exposes the next run", () =>
    Effect.gen(function*() {
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.make("spaced", Effect.zipRight(task, Effect.sleep("200 millis")), {
          schedule: Schedule.spaced("1 second")
        })
      )
      for (let i = 0; i < 23; i++) yield* Testing.advance("100 millis")
      const status = yield* registry.awaitStatus("spaced", (s) => s.iterations === 2 && s.state === "idle")
      // spaced: one second after the previous run ended
      assert.deepStrictEqual(status.nextRunAt, Option.some(new Date(2400)))
      for (let i = 0; i < 2; i++) yield* Testing.advance("100 millis")
      assert.deepStrictEqual(yield* Ref.get(runs), [0, 1200, 2400])
    }))

  it.scoped("keeps a fixed rate when iterations take time", () =>
    Effect.gen(function*() {
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.make("fixed", Effect.zipRight(task, Effect.sleep("300 millis")), {
          schedule: Schedule.fixed("1 second")
        })
      )
      for (let i = 0; i < 36; i++) yield* Testing.advance("100 millis")
      yield* registry.awaitStatus("fixed", (s) => s.iterations >= 3)
      // as with Effect.repeat, the rate is measured from the end of the first run; spaced would give 1300, 2600
      assert.deepStrictEqual((yield* Ref.get(runs)).slice(0, 3), [0, 1300, 2300])
    }))

  it.scoped("waits for the initial delay", () =>
    Effect.gen(function*() {
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.make("delayed", task, { initialDelay: "5 minutes", schedule: Schedule.spaced("1 minute") })
      )
      const before = yield* registry.awaitStatus("delayed", (s) => s.state === "idle")
      assert.deepStrictEqual(before.nextRunAt, Option.some(new Date(5 * 60_000)))
      yield* Testing.advance("4 minutes")
      assert.deepStrictEqual(yield* Ref.get(runs), [])
      yield* Testing.advance("1 minute")
      yield* registry.awaitStatus("delayed", (s) => s.iterations === 1)
      assert.deepStrictEqual(yield* Ref.get(runs), [5 * 60_000])
    }))

  it.scoped("stops when a finite schedule is done", () =>
    Effect.gen(function*() {
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.make("three", task, {
          schedule: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
        })
      )
      for (let i = 0; i < 5; i++) yield* Testing.advance("1 second")
      const status = yield* registry.awaitStatus("three", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 3)
      assert.deepStrictEqual(yield* Ref.get(runs), [0, 1000, 2000])
    }))
})

describe("retries and failure policies", () => {
  const flaky = (failures: number) =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const task = Ref.updateAndGet(attempts, (n) => n + 1).pipe(
        Effect.flatMap((n) => n <= failures ? Effect.fail(new Error(`attempt ${n} failed`)) : Effect.void)
      )
      return { attempts, task }
    })

  it.scoped("retries a failed iteration on the retry schedule, then succeeds", () =>
    Effect.gen(function*() {
      const { attempts, task } = yield* flaky(2)
      const registry = yield* Testing.start(
        Worker.make("flaky", task, { retry: Schedule.spaced("5 seconds").pipe(Schedule.intersect(Schedule.recurs(3))) })
      )
      const backingOff = yield* registry.awaitStatus("flaky", (s) => s.state === "backingOff")
      assert.strictEqual(backingOff.failures, 1)
      assert.deepStrictEqual(backingOff.lastError, Option.some("Error: attempt 1 failed"))
      yield* Testing.advance("5 seconds")
      yield* registry.awaitStatus("flaky", (s) => s.failures === 2 && s.state === "backingOff")
      yield* Testing.advance("5 seconds")
      const done = yield* registry.awaitStatus("flaky", (s) => s.state === "stopped")
      assert.strictEqual(yield* Ref.get(attempts), 3)
      assert.strictEqual(done.iterations, 1)
      assert.strictEqual(done.failures, 2)
    }))

  it.scoped("continue: after retries are spent, runs again at the next scheduled time", () =>
    Effect.gen(function*() {
      const { attempts, task } = yield* flaky(3)
      const registry = yield* Testing.start(
        Worker.make("continue", task, {
          schedule: Schedule.spaced("1 minute"),
          retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1))),
          onFailure: "continue"
        })
      )
      yield* Testing.advance("1 second")
      const failed = yield* registry.awaitStatus("continue", (s) => s.iterations === 1 && s.state === "idle")
      assert.strictEqual(failed.failures, 2)
      assert.deepStrictEqual(failed.nextRunAt, Option.some(new Date(61_000)))
      yield* Testing.advance("1 minute")
      yield* Testing.advance("1 second")
      const ok = yield* registry.awaitStatus("continue", (s) => s.iterations === 2)
      assert.strictEqual(ok.failures, 3)
      assert.strictEqual(yield* Ref.get(attempts), 4)
    }))

  it.scoped("continue: a run-once worker ends failed", () =>
    Effect.gen(function*() {
      const registry = yield* Testing.start(Worker.make("dies", Effect.die("bug"), { retry: false }))
      const status = yield* registry.awaitStatus("dies", (s) => s.state === "failed")
      assert.strictEqual(status.failures, 1)
      assert.deepStrictEqual(status.lastError, Option.some("bug"))
    }))

  it.scoped("restart: starts the worker over after a restart delay", () =>
    Effect.gen(function*() {
      const { attempts, task } = yield* flaky(2)
      const registry = yield* Testing.start(
        Worker.make("restart", task, { retry: false, onFailure: "restart" })
      )
      const first = yield* registry.awaitStatus("restart", (s) => s.failures === 1 && s.state === "backingOff")
      assert.deepStrictEqual(first.nextRunAt, Option.some(new Date(1000)))
      yield* Testing.advance("1 second")
      const second = yield* registry.awaitStatus("restart", (s) => s.failures === 2 && s.state === "backingOff")
      // consecutive restarts back off: 1 s, then 2 s
      assert.deepStrictEqual(second.nextRunAt, Option.some(new Date(3000)))
      yield* Testing.advance("2 seconds")
      yield* registry.awaitStatus("restart", (s) => s.state === "stopped")
      assert.strictEqual(yield* Ref.get(attempts), 3)
    }))

  it.scoped("stopHost: reports the failure to the host", () =>
    Effect.gen(function*() {
      const registry = yield* Testing.start(
        Worker.make("fatal", Effect.fail(new Error("disk full")), { retry: false, onFailure: "stopHost" })
      )
      const failure = yield* registry.failure
      assert.strictEqual(failure.worker, "fatal")
      assert.include(failure.message, "disk full")
      const status = yield* registry.awaitStatus("fatal", (s) => s.state === "failed")
      assert.strictEqual(status.failures, 1)
    }))

  it.scoped("no tight loop: a task that always fails is slowed by the default retry backoff", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const registry = yield* Testing.start(
        Worker.make("hopeless", Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail("nope")), {
          schedule: Schedule.forever
        })
      )
      for (let i = 0; i < 60; i++) yield* Testing.advance("1 second")
      const n = yield* Ref.get(attempts)
      // with 1 s, 2 s, 4 s backoff (jittered) a minute holds at most a few dozen attempts
      assert.isAtLeast(n, 8)
      assert.isAtMost(n, 40)
      const status = Option.getOrThrow(yield* registry.get("hopeless"))
      assert.strictEqual(status.failures, n)
    }))
})

describe("per-iteration scope", () => {
  class Connection extends Effect.Service<Connection>()("test/Connection", {
    scoped: Effect.gen(function*() {
      const log = yield* Log
      yield* Ref.update(log, (xs) => [...xs, "layer acquired"])
      yield* Effect.addFinalizer(() => Ref.update(log, (xs) => [...xs, "layer released"]))
      return {}
    })
  }) {}
  class Log extends Effect.Service<Log>()("test/Log", { effect: Ref.make<Array<string>>([]) }) {}

  const task = (outcome: "succeed" | "fail" | "hang") =>
    Effect.gen(function*() {
      yield* Connection
      const log = yield* Log
      yield* Effect.acquireRelease(
        Ref.update(log, (xs) => [...xs, "task acquired"]),
        (_, exit) =>
          Ref.update(
            log,
            (
              xs
            ) => [
              ...xs,
              `task released (${
                Exit.isSuccess(exit) ? "success" : Exit.isInterrupted(exit) ? "interrupted" : "failure"
              })`
            ]
          )
      )
      if (outcome === "fail") return yield* Effect.fail("boom")
      if (outcome === "hang") return yield* Effect.never
    })

  it.scoped("releases in order after success, failure and interruption", () =>
    Effect.gen(function*() {
      const log = yield* Log
      const run = (name: string, outcome: "succeed" | "fail" | "hang") =>
        Effect.gen(function*() {
          yield* Ref.set(log, [])
          const scope = yield* Scope.make()
          const registry = yield* Testing.start(
            Worker.make(name, task(outcome), { layer: Connection.Default, retry: false })
          ).pipe(Effect.provideService(Log, log), Scope.extend(scope))
          if (outcome === "hang") {
            yield* registry.awaitStatus(name, (s) => s.state === "running")
            yield* Effect.yieldNow()
          } else {
            yield* registry.awaitStatus(name, (s) => s.iterations === 1)
          }
          yield* Scope.close(scope, Exit.void)
          return yield* Ref.get(log)
        })
      assert.deepStrictEqual(yield* run("ok", "succeed"), [
        "layer acquired",
        "task acquired",
        "task released (success)",
        "layer released"
      ])
      assert.deepStrictEqual(yield* run("bad", "fail"), [
        "layer acquired",
        "task acquired",
        "task released (failure)",
        "layer released"
      ])
      assert.deepStrictEqual(yield* run("stuck", "hang"), [
        "layer acquired",
        "task acquired",
        "task released (interrupted)",
        "layer released"
      ])
    }).pipe(Effect.provide(Log.Default)))

  it.scoped("releases what an interrupted iteration acquired, before the worker counts as stopped", () =>
    Effect.gen(function*() {
      const released = yield* Ref.make<Array<string>>([])
      const acquired = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const registry = yield* Testing.start(
        Worker.make(
          "holder",
          Effect.acquireRelease(
            Deferred.succeed(acquired, void 0),
            (_, exit) => Ref.update(released, (xs) => [...xs, Exit.isInterrupted(exit) ? "interrupted" : "other"])
          ).pipe(Effect.zipRight(Effect.never))
        )
      ).pipe(Scope.extend(scope))
      yield* Deferred.await(acquired)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Ref.get(released), ["interrupted"])
      assert.strictEqual(Option.getOrThrow(yield* registry.get("holder")).state, "stopped")
    }))

  it.scoped("a fiber forked by the task shares the iteration's scope", () =>
    Effect.gen(function*() {
      const events = yield* Ref.make<Array<string>>([])
      const record = (event: string) => Ref.update(events, (xs) => [...xs, event])
      const task = Effect.gen(function*() {
        const child = yield* Effect.fork(
          Effect.acquireRelease(record("child acquired"), () => record("child released"))
        )
        yield* child.await
        yield* record("task done")
      })
      const registry = yield* Testing.start(Worker.make("forker", task, { schedule: "1 minute" }))
      yield* registry.awaitStatus("forker", (s) => s.iterations === 1)
      assert.deepStrictEqual(yield* Ref.get(events), ["child acquired", "task done", "child released"])
      assert.isTrue(Option.isNone(Option.getOrThrow(yield* registry.get("forker")).lastError))
    }))

  it.scoped("builds the layer fresh for every iteration", () =>
    Effect.gen(function*() {
      const log = yield* Log
      const registry = yield* Testing.start(
        Worker.make("fresh", Effect.asVoid(Connection), {
          layer: Connection.Default,
          schedule: Schedule.spaced("1 second")
        })
      ).pipe(Effect.provideService(Log, log))
      yield* Testing.advance("1 second")
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("fresh", (s) => s.iterations === 3)
      const entries = yield* Ref.get(log)
      assert.strictEqual(entries.filter((e) => e === "layer acquired").length, 3)
      assert.strictEqual(entries.filter((e) => e === "layer released").length, 3)
    }).pipe(Effect.provide(Log.Default)))
})

describe("Worker.cron", () => {
  it.scoped("fires on wall-clock ticks in its time zone across a spring-forward day (America/New_York)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-03-07T12:00:00Z"))
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Layer.mergeAll(
          Worker.cron("nine", task, { cron: "0 9 * * *", timeZone: "America/New_York" })
        )
      )
      const first = yield* registry.awaitStatus("nine", (s) => s.state === "idle")
      assert.deepStrictEqual(first.nextRunAt, Option.some(new Date("2026-03-07T14:00:00Z")))
      for (let i = 0; i < 3 * 24; i++) yield* Testing.advance("1 hour")
      yield* registry.awaitStatus("nine", (s) => s.iterations === 3)
      // 09:00 EST is 14:00Z; after the change 09:00 EDT is 13:00Z
      assert.deepStrictEqual((yield* Ref.get(runs)).map((t) => new Date(t).toISOString()), [
        "2026-03-07T14:00:00.000Z",
        "2026-03-08T13:00:00.000Z",
        "2026-03-09T13:00:00.000Z"
      ])
    }))

  it.scoped("runs a tick inside the skipped hour once, when the gap ends (Europe/Berlin)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-03-28T12:00:00Z"))
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.cron("gap", task, { cron: "30 2 * * *", timeZone: "Europe/Berlin" })
      )
      for (let i = 0; i < 2 * 24 * 2; i++) yield* Testing.advance("30 minutes")
      yield* registry.awaitStatus("gap", (s) => s.iterations === 2)
      assert.deepStrictEqual((yield* Ref.get(runs)).map((t) => new Date(t).toISOString()), [
        "2026-03-29T01:00:00.000Z", // 02:30 does not exist that night: runs at 03:00 CEST
        "2026-03-30T00:30:00.000Z" // 02:30 CEST
      ])
    }))

  it.scoped("an hourly-or-finer expression runs through both passes of a fall-back hour (America/New_York)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-10-31T12:00:00Z"))
      const { runs, task } = yield* recorder
      const registry = yield* Testing.start(
        Worker.cron("overlap-hour", task, { cron: "*/30 * * * *", timeZone: "America/New_York" })
      )
      for (let i = 0; i < 24 * 4; i++) yield* Testing.advance("15 minutes")
      yield* registry.awaitStatus("overlap-hour", (s) => s.iterations >= 40)
      const ticks = (yield* Ref.get(runs)).map((t) => new Date(t).toISOString())
      assert.strictEqual(new Set(ticks).size, ticks.length)
      const local = ticks
        .filter((t) => t >= "2026-11-01T04:00:00.000Z" && t < "2026-11-01T08:00:00.000Z")
      // 00:00, 00:30, 01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST: every 30 minutes of elapsed time
      assert.deepStrictEqual(local, [
        "2026-11-01T04:00:00.000Z",
        "2026-11-01T04:30:00.000Z",
        "2026-11-01T05:00:00.000Z",
        "2026-11-01T05:30:00.000Z",
        "2026-11-01T06:00:00.000Z",
        "2026-11-01T06:30:00.000Z",
        "2026-11-01T07:00:00.000Z",
        "2026-11-01T07:30:00.000Z"
      ])
    }))

  it.scoped("skips ticks while the previous run is still going", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const registry = yield* Testing.start(
        Worker.cron("slow", Effect.zipRight(Ref.update(started, (n) => n + 1), Deferred.await(release)), {
          cron: "* * * * * *"
        })
      )
      // the clock starts on a tick, so the first run starts at once
      yield* registry.awaitStatus("slow", (s) => s.state === "running")
      for (let i = 0; i < 3; i++) yield* Testing.advance("1 second")
      const status = yield* registry.awaitStatus("slow", (s) => s.skipped === 3)
      assert.strictEqual(status.iterations, 0)
      assert.strictEqual(yield* Ref.get(started), 1)
      yield* Deferred.succeed(release, void 0)
      yield* registry.awaitStatus("slow", (s) => s.iterations === 1 && s.state === "idle")
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("slow", (s) => s.iterations === 2)
      assert.strictEqual(yield* Ref.get(started), 2)
    }))

  it("rejects a bad expression when the worker is defined, naming the field", async () => {
    const bad = Worker.validateCron("0 61 * * *")
    assert.isTrue(Either.isLeft(bad))
    const exit = await Effect.runPromiseExit(
      Effect.scoped(Testing.start(Worker.cron("report", Effect.void, { cron: "*/5 25 * * *" })))
    )
    assert.isTrue(Exit.isFailure(exit))
    const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
    assert.instanceOf(error, WorkerError.InvalidCronExpression)
    const e = error as WorkerError.InvalidCronExpression
    assert.strictEqual(e.field, "hour")
    assert.strictEqual(e.worker, "report")
    assert.include(e.message, `Worker "report": invalid hour field in cron expression "*/5 25 * * *"`)
    assert.include(e.message, "between 0 and 23")
  })

  it("rejects a wrong number of fields and an unknown time zone", () => {
    const fields = Worker.validateCron("* * *")
    assert.isTrue(Either.isLeft(fields) && fields.left.field === "expression")
    assert.include(Either.isLeft(fields) ? fields.left.message : "", "it has 3 fields")
    const zone = Worker.validateCron("0 2 * * *", "Mars/Olympus")
    assert.isTrue(Either.isLeft(zone) && zone.left.field === "timeZone")
    assert.include(Either.isLeft(zone) ? zone.left.message : "", `unknown time zone "Mars/Olympus"`)
    assert.isTrue(Either.isRight(Worker.validateCron("0 30 2 * * 1-5", "Europe/Berlin")))
  })
})

describe("Worker.consumer", () => {
  it.scoped("acks, retries, dead-letters, and never exceeds its concurrency", () =>
    Effect.gen(function*() {
      const queue = yield* Queue.unbounded<number>()
      const inFlight = yield* Ref.make(0)
      const maxInFlight = yield* Ref.make(0)
      const acked = yield* Ref.make<Array<number>>([])
      const dead = yield* Queue.unbounded<[number, string]>()
      const attempts = yield* Ref.make(new Map<number, number>())
      const handler = (n: number) =>
        Effect.gen(function*() {
          const now = yield* Ref.updateAndGet(inFlight, (x) => x + 1)
          yield* Ref.update(maxInFlight, (m) => Math.max(m, now))
          const attempt = yield* Ref.modify(attempts, (m) => {
            const a = (m.get(n) ?? 0) + 1
            return [a, new Map(m).set(n, a)]
          })
          yield* Effect.yieldNow()
          yield* Ref.update(inFlight, (x) => x - 1)
          if (n === 7) return yield* Effect.fail(`item ${n} is poison`)
          if (n === 3 && attempt === 1) return yield* Effect.fail("transient")
          yield* Ref.update(acked, (xs) => [...xs, n])
        })
      const registry = yield* Testing.start(
        Worker.consumer("messages", {
          source: queue,
          handler,
          concurrency: 3,
          retry: Schedule.recurs(2),
          deadLetter: (n, cause) => Queue.offer(dead, [n, String(Cause.squash(cause))])
        })
      )
      yield* Queue.offerAll(queue, Array.from({ length: 20 }, (_, i) => i))
      const status = yield* registry.awaitStatus("messages", (s) => s.iterations === 20)
      assert.deepStrictEqual(
        [...(yield* Ref.get(acked))].sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i).filter((n) => n !== 7)
      )
      assert.deepStrictEqual(yield* Queue.take(dead), [7, "item 7 is poison"])
      assert.strictEqual((yield* Ref.get(attempts)).get(7), 3)
      assert.strictEqual((yield* Ref.get(attempts)).get(3), 2)
      assert.strictEqual(status.failures, 4)
      assert.isAtMost(yield* Ref.get(maxInFlight), 3)
      assert.isAtLeast(yield* Ref.get(maxInFlight), 2)
    }))

  it.scoped("loses nothing at shutdown: untaken items stay, unfinished ones are handed back", () =>
    Effect.gen(function*() {
      const queue = yield* Queue.unbounded<number>()
      yield* Queue.offerAll(queue, [1, 2, 3, 4, 5])
      const started = yield* Ref.make<Array<number>>([])
      const bothStarted = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      yield* Testing.start(
        Worker.consumer("blocked", {
          source: queue,
          handler: (n: number) =>
            Ref.updateAndGet(started, (xs) => [...xs, n]).pipe(
              Effect.tap((xs) => xs.length === 2 ? Deferred.succeed(bothStarted, void 0) : Effect.void),
              Effect.zipRight(Effect.never)
            ),
          concurrency: 2
        })
      ).pipe(Scope.extend(scope))
      yield* Deferred.await(bothStarted)
      assert.deepStrictEqual(yield* Ref.get(started), [1, 2])
      yield* Scope.close(scope, Exit.void)
      const left = yield* Queue.takeAll(queue)
      assert.deepStrictEqual([...left].sort(), [1, 2, 3, 4, 5])
    }))

  it.scoped("consumes a Mailbox until it ends", () =>
    Effect.gen(function*() {
      const mailbox = yield* Mailbox.make<string>()
      const seen = yield* Ref.make<Array<string>>([])
      const registry = yield* Testing.start(
        Worker.consumer("mail", { source: mailbox, handler: (s: string) => Ref.update(seen, (xs) => [...xs, s]) })
      )
      yield* mailbox.offerAll(["a", "b", "c"])
      yield* mailbox.end
      const status = yield* registry.awaitStatus("mail", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 3)
      assert.deepStrictEqual(yield* Ref.get(seen), ["a", "b", "c"])
    }))

  it.scoped("hands unfinished stream items to onUnfinished", () =>
    Effect.gen(function*() {
      const second = yield* Deferred.make<void>()
      const unfinished = yield* Ref.make<Array<number>>([])
      const scope = yield* Scope.make()
      const registry = yield* Testing.start(
        Worker.consumer("stream", {
          source: Stream.make(1, 2, 3, 4),
          handler: (n: number) =>
            n === 1 ? Effect.void : Effect.zipRight(Deferred.succeed(second, void 0), Effect.never),
          onUnfinished: (n) => Ref.update(unfinished, (xs) => [...xs, n])
        })
      ).pipe(Scope.extend(scope))
      yield* Deferred.await(second)
      assert.strictEqual(Option.getOrThrow(yield* registry.get("stream")).iterations, 1)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual([...(yield* Ref.get(unfinished))].sort(), [2, 3, 4])
    }))

  it("rejects a concurrency below 1", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Testing.start(Worker.consumer("zero", { source: Stream.empty, handler: () => Effect.void, concurrency: 0 }))
      )
    )
    assert.isTrue(Exit.isFailure(exit))
    assert.include(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)), "concurrency")
  })
})

describe("the seed's pitfalls", () => {
  it.scoped("a worker never blocks the start of the others", () =>
    Effect.gen(function*() {
      const registry = yield* Testing.start(
        Layer.mergeAll(
          Worker.make("forever", Effect.never),
          Worker.make("ticker", Effect.void, { schedule: Schedule.spaced("1 second") })
        )
      )
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("ticker", (s) => s.iterations === 2)
      assert.strictEqual(Option.getOrThrow(yield* registry.get("forever")).state, "running")
    }))

  it.scoped("cancellation reaches the task on stop", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const registry = yield* Testing.start(
        Worker.make("long", Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, void 0))))
      ).pipe(Scope.extend(scope))
      yield* registry.awaitStatus("long", (s) => s.state === "running")
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* Deferred.isDone(interrupted))
    }))

  it.scoped("a task that interrupts itself is a failed iteration, and the worker goes on", () =>
    Effect.gen(function*() {
      const registry = yield* Testing.start(
        Worker.make("self-interrupting", Effect.interrupt, { schedule: "1 second", retry: false })
      )
      const first = yield* registry.awaitStatus("self-interrupting", (s) => s.iterations === 1 && s.state === "idle")
      assert.strictEqual(first.failures, 1)
      assert.deepStrictEqual(first.lastError, Option.some("the iteration interrupted itself"))
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("self-interrupting", (s) => s.iterations === 2)
    }))

  it.scoped("a consumer whose queue is shut down ends", () =>
    Effect.gen(function*() {
      const queue = yield* Queue.unbounded<number>()
      const registry = yield* Testing.start(Worker.consumer("closing", { source: queue, handler: () => Effect.void }))
      yield* Queue.offer(queue, 1)
      yield* registry.awaitStatus("closing", (s) => s.iterations === 1)
      yield* Queue.shutdown(queue)
      const status = yield* registry.awaitStatus("closing", (s) => s.state === "stopped")
      assert.strictEqual(status.failures, 0)
    }))

  it.scoped("names must be unique", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Testing.start(Layer.mergeAll(Worker.make("dup", Effect.void), Worker.make("dup", Effect.void)))
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(
        String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)),
        `Worker "dup": option "name"`
      )
    }))

  it.scoped("state shared between concurrent iterations stays consistent in a Ref", () =>
    Effect.gen(function*() {
      const total = yield* Ref.make(0)
      const registry = yield* Testing.start(
        Worker.cron(
          "adder",
          Effect.forEach(Array.from({ length: 100 }), () => Ref.update(total, (n) => n + 1), { concurrency: 10 }),
          {
            cron: "* * * * * *",
            overlap: "allow"
          }
        )
      )
      for (let i = 0; i < 5; i++) yield* Testing.advance("1 second")
      const status = yield* registry.awaitStatus("adder", (s) => s.iterations >= 6 && s.state === "idle")
      assert.strictEqual(yield* Ref.get(total), status.iterations * 100)
    }))

  it.scoped("status and metrics exist for every worker", () =>
    Effect.gen(function*() {
      const registry = yield* Testing.start(
        Worker.make("measured", Effect.void, {
          schedule: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
        })
      )
      yield* Testing.advance("1 second")
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("measured", (s) => s.iterations === 3)
      const all = yield* registry.all
      assert.deepStrictEqual(all.map((s) => s.name), ["measured"])
      const { Metrics } = yield* Effect.promise(() => import("../src/index.js"))
      const counter = yield* Metric.value(
        Metrics.workerIterations.pipe(Metric.tagged("worker", "measured"), Metric.tagged("outcome", "success"))
      )
      assert.strictEqual(counter.count, 3)
      const histogram = yield* Metric.value(Metrics.workerDuration)
      assert.isAtLeast(histogram.count, 3)
    }))
})

describe("status transitions", () => {
  it.scoped("starting, idle, running, backingOff, idle, stopped", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const fail = yield* Ref.make(true)
      const task = Effect.gen(function*() {
        yield* Deferred.await(gate)
        if (yield* Ref.getAndSet(fail, false)) return yield* Effect.fail("first attempt fails")
      })
      const seen: Array<string> = []
      const scope = yield* Scope.make()
      const registry = yield* Testing.start(
        Worker.make("states", task, {
          initialDelay: "1 second",
          schedule: Schedule.spaced("1 minute"),
          retry: Schedule.spaced("10 seconds")
        })
      ).pipe(Scope.extend(scope))
      const observe = (state: string) =>
        registry.awaitStatus("states", (s) => s.state === state).pipe(
          Effect.tap((s) => Effect.sync(() => seen.push(s.state)))
        )
      yield* observe("idle")
      yield* Testing.advance("1 second")
      yield* observe("running")
      yield* Deferred.succeed(gate, void 0)
      yield* observe("backingOff")
      yield* Testing.advance("10 seconds")
      const idle = yield* registry.awaitStatus("states", (s) => s.state === "idle" && s.iterations === 1)
      seen.push(idle.state)
      assert.deepStrictEqual(idle.lastStartedAt, Option.some(new Date(1000)))
      assert.deepStrictEqual(idle.lastEndedAt, Option.some(new Date(11_000)))
      assert.deepStrictEqual(idle.nextRunAt, Option.some(new Date(71_000)))
      yield* Scope.close(scope, Exit.void)
      seen.push(Option.getOrThrow(yield* registry.get("states")).state)
      assert.deepStrictEqual(seen, ["idle", "running", "backingOff", "idle", "stopped"])
    }))
})

describe("WorkerRegistry.layer", () => {
  it.scoped("starts workers as soon as they are built", () =>
    Effect.gen(function*() {
      const ran = yield* Deferred.make<void>()
      const context = yield* Layer.build(
        Layer.provideMerge(Worker.make("immediate", Deferred.succeed(ran, void 0)), WorkerRegistry.layer)
      )
      yield* Deferred.await(ran)
      const registry = Context.get(context, WorkerRegistry.WorkerRegistry)
      const status = yield* registry.awaitStatus("immediate", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 1)
    }))
})
