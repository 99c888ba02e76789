/**
 * What the framework's log lines say: an expected (typed) failure is one
 * line, its tag and message, with no stack frames; a defect keeps its whole
 * cause; the host's start line counts what runs.
 */
import { expect, layer } from "@effect/vitest"
import { Data, Deferred, Effect, Exit, Layer, Queue, Schedule, Schema } from "effect"
import { Job, JobClient, JobRunner, Recurring, Testing, Worker } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogEntries, type LogEntry } from "./support/logs.js"

class Deliberate extends Data.TaggedError("Deliberate")<{ readonly message: string }> {}

/** A stack frame, as `Cause.pretty` prints them. */
const frame = /^\s+at /m

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const entry = (entries: ReadonlyArray<LogEntry>, message: string) => {
  const found = entries.find((e) => e.message === message)
  if (found === undefined) {
    throw new Error(`no log line "${message}" among:\n${entries.map((e) => e.message).join("\n")}`)
  }
  return found
}

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("log lines", (it) => {
  it.scoped("a worker's typed failure is logged as its tag and message; a defect with its stack trace", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogEntries
      const items = yield* Queue.unbounded<number>()
      yield* Queue.offer(items, 1)
      const registry = yield* Testing.start(Layer.mergeAll(
        Worker.make("typed", new Deliberate({ message: "fails on purpose" }), { retry: false }),
        Worker.make("retried", new Deliberate({ message: "fails on purpose" }), { retry: Schedule.recurs(1) }),
        Worker.make("defect", Effect.die(new Error("a bug")), { retry: false }),
        Worker.consumer("consumer", {
          source: items,
          handler: () => new Deliberate({ message: "dead on purpose" }),
          retry: false
        })
      ))
      for (const name of ["typed", "retried", "defect", "consumer"]) {
        yield* registry.awaitStatus(name, (s) => s.iterations === 1)
      }
      const entries = yield* logs
      expect(entry(entries, `Worker "typed" iteration failed`)).toEqual({
        level: "ERROR",
        message: `Worker "typed" iteration failed`,
        cause: "Deliberate: fails on purpose"
      })
      expect(entry(entries, `Worker "retried" iteration failed (attempt 1); retrying on its retry schedule`)).toEqual({
        level: "WARN",
        message: `Worker "retried" iteration failed (attempt 1); retrying on its retry schedule`,
        cause: "Deliberate: fails on purpose"
      })
      expect(entry(entries, `Worker "retried" iteration failed, retries spent`).cause).toBe(
        "Deliberate: fails on purpose"
      )
      expect(entry(entries, `Worker "consumer": dead letter`).cause).toBe("Deliberate: dead on purpose")
      const defect = entry(entries, `Worker "defect" iteration failed`)
      expect(defect.cause).toContain("Error: a bug")
      expect(defect.cause).toMatch(frame)
    }))

  it.scoped("a job's typed failure is logged as its tag and message; a defect with its stack trace", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogEntries
      const queue = "logged"
      const Flaky = Job.make("flaky-log", {
        payload: Schema.Struct({}),
        queue,
        maxAttempts: 2,
        backoff: Schedule.spaced("10 millis"),
        handler: () => new Deliberate({ message: "fails on purpose" })
      })
      const Buggy = Job.make("buggy-log", {
        payload: Schema.Struct({}),
        queue,
        maxAttempts: 1,
        handler: () => Effect.die(new Error("a bug"))
      })
      const flaky = (yield* JobClient.enqueue(Flaky, {})).id
      const buggy = (yield* JobClient.enqueue(Buggy, {})).id
      // Retries run at once.
      yield* Testing.drainQueue({ jobs: [Flaky, Buggy], queue })
      const entries = yield* logs
      const retried = entry(entries, `Job "flaky-log" ${flaky} failed (attempt 1 of 2); retrying after its backoff`)
      expect([retried.level, retried.cause]).toEqual(["WARN", "Deliberate: fails on purpose"])
      const discarded = entry(
        entries,
        `Job "flaky-log" ${flaky} discarded after attempt 2 of 2: its attempts are spent ` +
          `(Deliberate: fails on purpose)`
      )
      expect([discarded.level, discarded.cause]).toEqual(["ERROR", ""])
      const defect = entries.find((e) => e.message.startsWith(`Job "buggy-log" ${buggy} discarded`))!
      expect(defect.level).toBe("ERROR")
      expect(defect.cause).toContain("Error: a bug")
      expect(defect.cause).toMatch(frame)
    }))

  it.scoped("the host's start line counts its workers, job runners and recurring schedulers", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogEntries
      const Noop = Job.make("noop-log", { payload: Schema.Struct({}), queue: "host-log", handler: () => Effect.void })
      const running = yield* Deferred.make<void>()
      const app = Layer.mergeAll(
        Worker.make("waiting", Effect.zipRight(Deferred.succeed(running, undefined), Effect.never)),
        JobRunner.layer({ jobs: [Noop] }),
        Recurring.layer(),
        // Not firing: not a scheduler.
        Recurring.layer({ fire: false })
      )
      const host = yield* Testing.startHost(app, { gracePeriod: "30 seconds" })
      yield* Deferred.await(running)
      expect(Exit.isSuccess(yield* host.stop)).toBe(true)
      const started = (yield* logs).filter((e) => e.message.startsWith("Host started"))
      expect(started.map((e) => e.message)).toEqual([
        "Host started with 1 worker, 1 job runner and 1 recurring scheduler"
      ])

      const onlyJobs = yield* Testing.startHost(JobRunner.layer({ jobs: [Noop] }), { gracePeriod: "30 seconds" })
      const lines = yield* eventually(
        Effect.map(
          logs,
          (entries) => entries.filter((e) => e.message.startsWith("Host started")).map((e) => e.message)
        ),
        (lines) => lines.length === 2,
        "the second host's start line"
      )
      expect(Exit.isSuccess(yield* onlyJobs.stop)).toBe(true)
      expect(lines[1]).toBe("Host started with 1 job runner")
    }))
})
