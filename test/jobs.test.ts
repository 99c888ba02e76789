import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import {
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberRef,
  HashMap,
  HashSet,
  Layer,
  Logger,
  Metric,
  Option,
  Ref,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { Job, JobClient, JobRunner, Metrics, Migrations, Testing } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"
import { recordingTracer } from "./support/tracer.js"

/** The client on the test file's schema. */
const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const jobState = (id: string) =>
  Effect.flatMap(
    JobClient.JobClient,
    (client) => Effect.map(client.get(id), Option.getOrThrowWith(() => new Error(`job ${id} is gone`)))
  )

const awaitState = (id: string, ...states: ReadonlyArray<Job.JobState>) =>
  eventually(jobState(id), (info) => states.includes(info.state), `job ${id} to be ${states.join(" or ")}`)

/** Starts a runner for `jobs` in a scope of its own; closing the scope stops it. */
const startRunner = <Jobs extends Job.Any>(options: JobRunner.Options<Jobs>) =>
  Effect.gen(function*() {
    // A child of the test's scope: closed by the test, or at the latest when the test ends.
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const context = yield* Layer.buildWithScope(JobRunner.layer({ pollInterval: "200 millis", ...options }), scope)
    return {
      scope,
      runner: context.pipe((c) => c.unsafeMap.get(JobRunner.JobRunner.key) as JobRunner.JobRunnerService)
    }
  })

const Greeting = Schema.Struct({ name: Schema.String })

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("durable jobs", (it) => {
  it.scoped("an enqueued job runs once and is completed, with its result stored", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const Greet = Job.make("greet", {
        payload: Greeting,
        result: Schema.String,
        handler: ({ name }) =>
          Effect.gen(function*() {
            const context = yield* Job.JobContext
            yield* Ref.update(seen, (names) => [...names, `${name}@${context.attempt}`])
            yield* Job.progress({ percent: 100 })
            return `hello ${name}`
          })
      })
      const client = yield* JobClient.JobClient
      const { id, inserted } = yield* client.enqueue(Greet, { name: "ada" })
      expect(inserted).toBe(true)
      const { scope } = yield* startRunner({ jobs: [Greet] })
      const done = yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(yield* Ref.get(seen)).toEqual(["ada@1"])
      expect(done.attempt).toBe(1)
      expect(done.result).toBe("hello ada")
      expect(done.progress).toEqual({ percent: 100 })
      expect(Option.isSome(done.finalizedAt)).toBe(true)
    }))

  it.scoped("a payload the schema rejects is a typed error and inserts nothing", () =>
    Effect.gen(function*() {
      const Strict = Job.make("strict", {
        payload: Schema.Struct({ count: Schema.Number.pipe(Schema.int(), Schema.positive()) }),
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const error = yield* Effect.flip(client.enqueue(Strict, { count: -1 }))
      expect(error._tag).toBe("InvalidPayload")
      expect(error.message).toContain("strict")
      expect(error.message).toContain("Expected a positive number")
      expect(yield* client.list({ name: "strict" })).toEqual([])
    }))

  it.scoped("a failing job is retried on its backoff; every attempt's error is kept; then discarded", () =>
    Effect.gen(function*() {
      const Flaky = Job.make("always-fails", {
        payload: Schema.Struct({}),
        maxAttempts: 3,
        backoff: Schedule.spaced("50 millis"),
        handler: () => Effect.flatMap(Job.JobContext, (context) => Effect.fail(new Error(`boom ${context.attempt}`)))
      })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Flaky, {})
      const { scope } = yield* startRunner({ jobs: [Flaky] })
      const failed = yield* awaitState(id, "retryable")
      expect(failed.attempt).toBe(1)
      expect(failed.runAt.getTime()).toBeGreaterThan(failed.attemptedAt.pipe(Option.getOrThrow).getTime())
      const discarded = yield* awaitState(id, "discarded")
      yield* Scope.close(scope, Exit.void)
      expect(discarded.attempt).toBe(3)
      expect(discarded.errors.map((e) => [e.attempt, e.message])).toEqual([
        [1, "Error: boom 1"],
        [2, "Error: boom 2"],
        [3, "Error: boom 3"]
      ])
      expect(discarded.errors[0].cause).toContain("boom 1")
    }))

  it.scoped("a job that fails then succeeds is completed on a later attempt", () =>
    Effect.gen(function*() {
      const Second = Job.make("succeeds-second", {
        payload: Schema.Struct({}),
        backoff: Schedule.spaced("10 millis"),
        handler: () =>
          Effect.flatMap(Job.JobContext, (context) => context.attempt < 2 ? Effect.fail("not yet") : Effect.void)
      })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Second, {})
      const { scope } = yield* startRunner({ jobs: [Second] })
      const done = yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(done.attempt).toBe(2)
      expect(done.errors.map((e) => e.message)).toEqual(["not yet"])
    }))

  it.scoped("unrecoverable discards at once; a timeout is a failed attempt; snooze does not spend an attempt", () =>
    Effect.gen(function*() {
      const snoozed = yield* Ref.make(0)
      const Fatal = Job.make("fatal", {
        payload: Schema.Struct({}),
        handler: () => Job.unrecoverable("the account is closed")
      })
      const Slow = Job.make("slow", {
        payload: Schema.Struct({}),
        timeout: "50 millis",
        maxAttempts: 1,
        handler: () => Effect.never
      })
      const Sleepy = Job.make("sleepy", {
        payload: Schema.Struct({}),
        handler: () =>
          Effect.flatMap(
            Ref.getAndUpdate(snoozed, (n) => n + 1),
            (n) => n === 0 ? Job.snooze("100 millis") : Effect.void
          )
      })
      const client = yield* JobClient.JobClient
      const fatal = yield* client.enqueue(Fatal, {})
      const slow = yield* client.enqueue(Slow, {})
      const sleepy = yield* client.enqueue(Sleepy, {})
      const { scope } = yield* startRunner({ jobs: [Fatal, Slow, Sleepy] })
      const fatalDone = yield* awaitState(fatal.id, "discarded")
      expect(fatalDone.attempt).toBe(1)
      expect(fatalDone.maxAttempts).toBe(20)
      expect(fatalDone.errors[0].message).toContain("the account is closed")
      const slowDone = yield* awaitState(slow.id, "discarded")
      expect(slowDone.errors[0].message).toContain("did not finish within its timeout of 50 ms")
      const sleepyDone = yield* awaitState(sleepy.id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(yield* Ref.get(snoozed)).toBe(2)
      expect(sleepyDone.attempt).toBe(1)
      expect(sleepyDone.errors).toEqual([])
    }))

  it.scoped("a stored payload that no longer decodes is discarded with the decode error", () =>
    Effect.gen(function*() {
      const Typed = Job.make("typed", { payload: Greeting, handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ id: string }>`
        INSERT INTO ${sql(client.schema)}.jobs (name, queue, payload, state, max_attempts)
        VALUES ('typed', 'default', '{"name": 42}', 'available', 5) RETURNING id::text AS id`
      const { scope } = yield* startRunner({ jobs: [Typed] })
      const done = yield* awaitState(row.id, "discarded")
      yield* Scope.close(scope, Exit.void)
      expect(done.attempt).toBe(1)
      expect(done.errors[0].message).toContain("the stored payload does not decode")
      expect(done.errors[0].message).toContain("Expected string, actual 42")
    }))

  it.scoped("enqueue in the caller's transaction: rollback leaves no job, commit runs it", () =>
    Effect.gen(function*() {
      const ran = yield* Deferred.make<string>()
      const Tx = Job.make("in-transaction", {
        payload: Schema.Struct({ order: Schema.String }),
        handler: ({ order }) => Deferred.succeed(ran, order)
      })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { scope } = yield* startRunner({ jobs: [Tx] })
      const rolledBack = yield* sql.withTransaction(
        Effect.zipRight(client.enqueue(Tx, { order: "rolled-back" }), Effect.fail("abort" as const))
      ).pipe(Effect.flip)
      expect(rolledBack).toBe("abort")
      expect(yield* client.list({ name: "in-transaction" })).toEqual([])
      const committed = yield* sql.withTransaction(client.enqueue(Tx, { order: "committed" }))
      expect(yield* Deferred.await(ran)).toBe("committed")
      yield* awaitState(committed.id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect((yield* client.list({ name: "in-transaction" })).length).toBe(1)
    }))

  it.scoped("a unique key returns the live job instead of a duplicate, and is free again once it ended", () =>
    Effect.gen(function*() {
      const Report = Job.make("report", {
        payload: Schema.Struct({ day: Schema.String }),
        uniqueKey: ({ day }) => `report:${day}`,
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const first = yield* client.enqueue(Report, { day: "2026-11-25" }, { delay: "1 hour" })
      const second = yield* client.enqueue(Report, { day: "2026-11-25" })
      const other = yield* client.enqueue(Report, { day: "2026-11-26" }, { delay: "1 hour" })
      expect(second).toEqual({ id: first.id, inserted: false })
      expect(other.inserted).toBe(true)
      const many = yield* client.enqueueMany(Report, [{ day: "2026-11-25" }, { day: "2026-11-27" }], {
        delay: "1 hour"
      })
      expect(many[0]).toEqual({ id: first.id, inserted: false })
      expect(many[1].inserted).toBe(true)
      yield* client.cancel(first.id)
      const again = yield* client.enqueue(Report, { day: "2026-11-25" }, { delay: "1 hour" })
      expect(again.inserted).toBe(true)
      expect(again.id).not.toBe(first.id)
      // Its key is held again: retrying the cancelled one would make a duplicate.
      const refused = yield* Effect.flip(client.retry(first.id))
      expect(refused._tag).toBe("InvalidJobState")
      expect(refused.message).toBe(
        `Cannot retry job ${first.id}: it is cancelled, and job ${again.id} holds its unique key "report:2026-11-25"`
      )
      expect((yield* client.get(first.id)).pipe(Option.map((job) => job.state))).toEqual(Option.some("cancelled"))
    }))

  it.scoped("100 concurrent enqueues with one unique key make one job", () =>
    Effect.gen(function*() {
      const Once = Job.make("once-only", {
        payload: Schema.Struct({ n: Schema.Number }),
        uniqueKey: () => "the-one",
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, n) => client.enqueue(Once, { n }, { delay: "1 hour" })),
        { concurrency: 100 }
      )
      expect(new Set(results.map((r) => r.id)).size).toBe(1)
      expect(results.filter((r) => r.inserted).length).toBe(1)
      expect((yield* client.list({ name: "once-only" })).length).toBe(1)
    }))

  it.scoped("a failed attempt's next run is its backoff schedule's delay after the failure", () =>
    Effect.gen(function*() {
      const Later = Job.make("retried-later", {
        payload: Schema.Struct({}),
        backoff: Schedule.exponential("1 hour"),
        handler: () => Effect.fail("not now")
      })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Later, {})
      const { scope } = yield* startRunner({ jobs: [Later] })
      const failed = yield* awaitState(id, "retryable")
      yield* Scope.close(scope, Exit.void)
      const delay = failed.runAt.getTime() - failed.errors[0].at.getTime()
      expect(delay).toBeGreaterThan(3_600_000 - 5_000)
      expect(delay).toBeLessThan(3_600_000 + 5_000)
    }))

  it.scoped("a job enqueued into another queue runs there; odd outcomes are stored, not stuck", () =>
    Effect.gen(function*() {
      const Moved = Job.make("moved", { payload: Schema.Struct({}), handler: () => Effect.void })
      const Odd = Job.make("odd", {
        payload: Schema.Struct({ kind: Schema.String }),
        maxAttempts: 1,
        handler: ({ kind }) =>
          kind === "nul" ? Effect.fail(new Error("a \u0000 in the message")) : Job.snooze(Duration.infinity)
      })
      const client = yield* JobClient.JobClient
      const moved = yield* client.enqueue(Moved, {}, { queue: "elsewhere" })
      const nul = yield* client.enqueue(Odd, { kind: "nul" })
      const forever = yield* client.enqueue(Odd, { kind: "forever" })
      const { scope } = yield* startRunner({ jobs: [Moved, Odd], queues: { elsewhere: 1 } })
      expect((yield* awaitState(moved.id, "completed")).queue).toBe("elsewhere")
      const discarded = yield* awaitState(nul.id, "discarded")
      expect(discarded.errors[0].message).toBe("Error: a \ufffd in the message")
      const snoozed = yield* awaitState(forever.id, "scheduled")
      yield* Scope.close(scope, Exit.void)
      expect(snoozed.attempt).toBe(0)
      expect(snoozed.runAt.getTime()).toBeGreaterThan(Date.now() + 9 * 365 * 86_400_000)
    }))

  it.scoped("a delayed job waits as scheduled, then runs", () =>
    Effect.gen(function*() {
      const Later = Job.make("later", { payload: Schema.Struct({}), handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const { scope } = yield* startRunner({ jobs: [Later] })
      const { id } = yield* client.enqueue(Later, {}, { delay: "300 millis" })
      const waiting = yield* jobState(id)
      expect(waiting.state).toBe("scheduled")
      const done = yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(Option.getOrThrow(done.attemptedAt).getTime()).toBeGreaterThanOrEqual(done.runAt.getTime())
    }))

  it.scoped("cancel: a waiting job never runs; a running one is interrupted, its finalizers run", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const finalized = yield* Deferred.make<void>()
      const Long = Job.make("long", {
        payload: Schema.Struct({}),
        handler: () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.ensuring(Deferred.succeed(finalized, undefined))
          )
      })
      const client = yield* JobClient.JobClient
      const waiting = yield* client.enqueue(Long, {}, { delay: "1 hour" })
      expect((yield* client.cancel(waiting.id)).state).toBe("cancelled")
      const running = yield* client.enqueue(Long, {})
      const { scope } = yield* startRunner({ jobs: [Long] })
      yield* Deferred.await(started)
      expect((yield* jobState(running.id)).state).toBe("running")
      yield* client.cancel(running.id)
      yield* Deferred.await(finalized)
      const after = yield* jobState(running.id)
      expect(after.state).toBe("cancelled")
      yield* Scope.close(scope, Exit.void)
      expect((yield* jobState(running.id)).state).toBe("cancelled")
      expect((yield* Effect.flip(client.cancel("999999999")))._tag).toBe("JobNotFound")
    }))

  it.scoped("retry brings a discarded job back; delete removes a job; list pages; counts per queue and state", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const Once = Job.make("fails-once", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "paging",
        maxAttempts: 1,
        handler: () =>
          Effect.flatMap(Ref.getAndUpdate(attempts, (n) => n + 1), (n) => n === 0 ? Effect.fail("first") : Effect.void)
      })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Once, { n: 0 })
      const { scope } = yield* startRunner({ jobs: [Once] })
      yield* awaitState(id, "discarded")
      const retried = yield* client.retry(id)
      expect(retried.state).toBe("available")
      const done = yield* awaitState(id, "completed")
      expect(done.attempt).toBe(2)
      expect(done.maxAttempts).toBe(2)
      expect((yield* Effect.flip(client.retry(id)))._tag).toBe("InvalidJobState")
      yield* Scope.close(scope, Exit.void)

      const ids = yield* client.enqueueMany(Once, Array.from({ length: 7 }, (_, n) => ({ n: n + 1 })), {
        delay: "1 hour"
      })
      const firstPage = yield* client.list({ queue: "paging", state: "scheduled", limit: 5 })
      const secondPage = yield* client.list({ queue: "paging", state: "scheduled", limit: 5, before: firstPage[4].id })
      expect([...firstPage, ...secondPage].map((job) => job.id)).toEqual(ids.map((e) => e.id).reverse())
      expect(firstPage[0].payload).toEqual({ n: 7 })
      const counts = (yield* client.counts).filter((c) => c.queue === "paging")
      expect(counts).toEqual([{ queue: "paging", state: "completed", count: 1 }, {
        queue: "paging",
        state: "scheduled",
        count: 7
      }])
      yield* client.delete(ids[0].id)
      expect(yield* client.get(ids[0].id)).toEqual(Option.none())
      expect((yield* Effect.flip(client.delete(ids[0].id)))._tag).toBe("JobNotFound")
    }))

  it.scoped("actions by filter count first, then touch only the jobs they apply to, and say how many", () =>
    Effect.gen(function*() {
      const Bulk = Job.make("bulk-job", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "bulk",
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const waiting = yield* client.enqueueMany(Bulk, [{ n: 1 }, { n: 2 }, { n: 3 }], { delay: "1 hour" })
      const elsewhere = yield* client.enqueue(Bulk, { n: 4 }, { queue: "bulk-other", delay: "1 hour" })
      const inBulk = { queue: "bulk" }
      expect(yield* client.countMatching(inBulk)).toBe(3)
      expect(yield* client.countMatching(inBulk, "cancel")).toBe(3)
      expect(yield* client.countMatching({ queue: "bulk", state: "cancelled" })).toBe(0)
      expect(yield* client.cancelAll({ ...inBulk, search: "2" })).toBe(1)
      expect((yield* jobState(waiting[1].id)).state).toBe("cancelled")
      // Retry applies to cancelled and scheduled jobs; the other queue is left alone.
      expect(yield* client.countMatching(inBulk, "retry")).toBe(3)
      expect(yield* client.retryAll({ ...inBulk, state: "cancelled" })).toBe(1)
      expect((yield* jobState(waiting[1].id)).state).toBe("available")
      expect(yield* client.deleteAll(inBulk)).toBe(3)
      expect(yield* client.countMatching(inBulk)).toBe(0)
      expect((yield* jobState(elsewhere.id)).state).toBe("scheduled")
      expect(yield* client.deleteAll({ queue: "bulk-other" })).toBe(1)
    }))

  it.scoped("oldestWaiting names each queue's longest-waiting due job; runners lists the registered processes", () =>
    Effect.gen(function*() {
      const Wait = Job.make("waits", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "waiting",
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const [first, second] = yield* client.enqueueMany(Wait, [{ n: 1 }, { n: 2 }])
      yield* client.enqueue(Wait, { n: 3 }, { delay: "1 hour" })
      // Due a minute ago: it has waited longest, though enqueued after the other.
      yield* sql`UPDATE ${
        sql(client.schema)
      }.jobs SET run_at = now() - interval '1 minute' WHERE id = ${second.id}::bigint`
      const oldest = (yield* client.oldestWaiting).filter((w) => w.queue === "waiting")
      expect(oldest.map((w) => [w.id, w.name])).toEqual([[second.id, "waits"]])
      expect(oldest[0].waitMillis).toBeGreaterThanOrEqual(60_000)
      // Whatever its priority: a job of another priority due earlier has waited longer.
      const low = yield* client.enqueue(Wait, { n: 4 }, { priority: 5 })
      yield* sql`UPDATE ${
        sql(client.schema)
      }.jobs SET run_at = now() - interval '2 minutes' WHERE id = ${low.id}::bigint`
      expect((yield* client.oldestWaiting).filter((w) => w.queue === "waiting").map((w) => w.id)).toEqual([low.id])
      const { runner, scope } = yield* startRunner({ jobs: [Wait] })
      yield* awaitState(first.id, "completed")
      yield* awaitState(second.id, "completed")
      yield* awaitState(low.id, "completed")
      const registered = (yield* client.runners).find((r) => r.id === runner.id)
      expect(registered).toMatchObject({
        pid: process.pid,
        queues: ["waiting"],
        concurrency: { waiting: 10 },
        alive: true
      })
      yield* Scope.close(scope, Exit.void)
      expect((yield* client.runners).some((r) => r.id === runner.id)).toBe(false)
      expect((yield* client.oldestWaiting).some((w) => w.queue === "waiting")).toBe(false)
    }))

  it.scoped("a paused queue is not claimed by any runner until resumed", () =>
    Effect.gen(function*() {
      const Paused = Job.make("paused-job", {
        payload: Schema.Struct({}),
        queue: "pausable",
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      yield* client.pause("pausable")
      const { id } = yield* client.enqueue(Paused, {})
      const { scope } = yield* startRunner({ jobs: [Paused] })
      // Two claims by the runner's poll happen within 400 ms; the job must still be waiting.
      yield* eventually(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(client.schema)}.runners`
        ),
        (rows) => rows[0].n > 0,
        "the runner to register"
      )
      expect((yield* client.queues).find((q) => q.name === "pausable")?.paused).toBe(true)
      expect((yield* jobState(id)).state).toBe("available")
      yield* client.resume("pausable")
      yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("at shutdown a running job past the drain time is interrupted and given back without spending an attempt", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const Stuck = Job.make("stuck", {
        payload: Schema.Struct({}),
        handler: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
      })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Stuck, {})
      const { scope } = yield* startRunner({ jobs: [Stuck], drainTimeout: "100 millis" })
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      const released = yield* jobState(id)
      expect(released.state).toBe("available")
      expect(released.attempt).toBe(0)
    }))

  it.scoped("a job whose runner stopped renewing its lease is rescued and run by another", () =>
    Effect.gen(function*() {
      const Rescued = Job.make("rescued", { payload: Schema.Struct({}), handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ id: string }>`
        INSERT INTO ${
        sql(client.schema)
      }.jobs (name, queue, payload, state, attempt, max_attempts, locked_by, lease_expires_at)
        VALUES ('rescued', 'default', '{}', 'running', 1, 5, 'crashed-runner', now() - interval '1 second')
        RETURNING id::text AS id`
      const { scope } = yield* startRunner({ jobs: [Rescued], lease: "1 second" })
      const done = yield* awaitState(row.id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(done.attempt).toBe(2)
      expect(done.errors[0].message).toContain("its runner crashed-runner stopped")
    }))

  /** Inserts a job as a runner `runner` left it: running at `attempt`, its lease good for an hour. */
  const strand = (name: string, options: {
    readonly runner: string
    readonly attempt: number
    readonly maxAttempts: number
    readonly claimedAhead?: boolean
  }) =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ id: string }>`
        INSERT INTO ${sql(client.schema)}.jobs (name, queue, payload, state, attempt, max_attempts, locked_by,
          lease_expires_at, claimed_ahead)
        VALUES (${name}, 'default', '{}', 'running', ${options.attempt}, ${options.maxAttempts}, ${options.runner},
          now() + interval '1 hour', ${options.claimedAhead ?? false})
        RETURNING id::text AS id`
      return row.id
    })

  const rescues = (id: string) =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ rescues: number }>`SELECT rescues FROM ${sql(client.schema)}.jobs WHERE id = ${id}`
      return row.rescues
    })

  it.scoped("a runner whose heartbeat expired has its jobs rescued at once by a starting runner, before their leases end", () =>
    Effect.gen(function*() {
      const Orphan = Job.make("orphan", { payload: Schema.Struct({}), handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO ${sql(client.schema)}.runners (id, host, pid, queues, expires_at)
        VALUES ('silent-runner', 'elsewhere', 1, '{default}', now() - interval '1 second')`
      const id = yield* strand("orphan", { runner: "silent-runner", attempt: 1, maxAttempts: 5 })
      // The default lease (30 s): only the runner's expired heartbeat can free the job within the test.
      const { scope } = yield* startRunner({ jobs: [Orphan] })
      const done = yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(done.attempt).toBe(2)
      expect(done.errors[0].message).toContain("its runner silent-runner stopped")
      expect(yield* rescues(id)).toBe(1)
    }))

  it.scoped("a job claimed ahead by a runner that died gets its attempt back: with one attempt it still runs", () =>
    Effect.gen(function*() {
      const ran = yield* Ref.make(0)
      const Once = Job.make("once", {
        payload: Schema.Struct({}),
        maxAttempts: 1,
        handler: () => Ref.update(ran, (n) => n + 1)
      })
      const id = yield* strand("once", { runner: "vanished-runner", attempt: 1, maxAttempts: 1, claimedAhead: true })
      const { scope } = yield* startRunner({ jobs: [Once] })
      const done = yield* awaitState(id, "completed", "discarded")
      yield* Scope.close(scope, Exit.void)
      expect(done.state).toBe("completed")
      expect(done.attempt).toBe(1)
      expect(done.errors).toEqual([])
      expect(yield* Ref.get(ran)).toBe(1)
    }))

  it.scoped("a job rescued again and again follows its backoff, then is discarded when its attempts are spent", () =>
    Effect.gen(function*() {
      const Poison = Job.make("poison", {
        payload: Schema.Struct({}),
        maxAttempts: 2,
        backoff: Schedule.spaced("1 hour"),
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const id = yield* strand("poison", { runner: "crashing-runner", attempt: 1, maxAttempts: 2 })
      const { scope } = yield* startRunner({ jobs: [Poison] })
      const retried = yield* awaitState(id, "retryable")
      const [{ now }] = yield* sql<{ now: Date }>`SELECT now() AS now`
      expect(retried.runAt.getTime()).toBeGreaterThan(now.getTime() + 50 * 60_000)
      // It ran again and killed that runner too.
      yield* sql`UPDATE ${sql(client.schema)}.jobs SET state = 'running', attempt = 2, locked_by = 'crashing-runner',
        lease_expires_at = now() + interval '1 hour' WHERE id = ${id}`
      const discarded = yield* awaitState(id, "discarded")
      yield* Scope.close(scope, Exit.void)
      expect(discarded.errors.map((error) => error.attempt)).toEqual([1, 2])
      expect(yield* rescues(id)).toBe(2)
    }))

  it.scoped("every discarded job logs one line with its name, id, attempts and why", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      const Fatal = Job.make("fatal-logged", {
        payload: Schema.Struct({}),
        handler: () => Job.unrecoverable("the account is closed")
      })
      const Flaky = Job.make("spent-logged", {
        payload: Schema.Struct({}),
        maxAttempts: 1,
        handler: () => Effect.fail("the partner answered 503")
      })
      const Typed = Job.make("typed-logged", { payload: Greeting, handler: () => Effect.void })
      const Crashing = Job.make("rescued-logged", { payload: Schema.Struct({}), handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const fatal = yield* client.enqueue(Fatal, {})
      const flaky = yield* client.enqueue(Flaky, {})
      const [typed] = yield* sql<{ id: string }>`
        INSERT INTO ${sql(client.schema)}.jobs (name, queue, payload, state, max_attempts)
        VALUES ('typed-logged', 'default', '{"name": 42}', 'available', 5) RETURNING id::text AS id`
      yield* sql`INSERT INTO ${sql(client.schema)}.runners (id, host, pid, queues, expires_at)
        VALUES ('fallen-runner', 'elsewhere', 1, '{default}', now() - interval '1 second')`
      const crashed = yield* strand("rescued-logged", { runner: "fallen-runner", attempt: 3, maxAttempts: 3 })
      const { scope } = yield* startRunner({ jobs: [Fatal, Flaky, Typed, Crashing] })
      for (const id of [fatal.id, flaky.id, typed.id, crashed]) yield* awaitState(id, "discarded")
      yield* Scope.close(scope, Exit.void)
      const discards = (yield* logs).filter((line) => line.includes("discarded after"))
      expect(discards).toHaveLength(4)
      const lineOf = (name: string, id: string) => {
        const found = discards.filter((line) => line.startsWith(`Job "${name}" ${id} discarded after attempt `))
        expect(found).toHaveLength(1)
        return found[0]
      }
      expect(lineOf("fatal-logged", fatal.id)).toMatch(/attempt 1 of 20: it failed as unrecoverable \(.*closed/)
      expect(lineOf("spent-logged", flaky.id)).toMatch(/attempt 1 of 1: its attempts are spent \(.*503/)
      expect(lineOf("typed-logged", typed.id)).toMatch(/attempt 1 of 5: its stored payload does not decode/)
      expect(lineOf("rescued-logged", crashed)).toMatch(
        /attempt 3 of 3: its attempts are spent \(its runner fallen-runner/
      )
    }))

  it.scoped("fibers a handler forks end with its run; a daemon fiber keeps its own job's context", () =>
    Effect.gen(function*() {
      const forkEnded = yield* Deferred.make<void>()
      const secondStarted = yield* Deferred.make<void>()
      const seenByDaemon = yield* Deferred.make<string>()
      const Forking = Job.make("forking", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "forking",
        handler: ({ n }) =>
          n === 1
            ? Effect.gen(function*() {
              const forkStarted = yield* Deferred.make<void>()
              yield* Effect.fork(
                Effect.zipRight(Deferred.succeed(forkStarted, undefined), Effect.never).pipe(
                  Effect.onInterrupt(() => Deferred.succeed(forkEnded, undefined))
                )
              )
              yield* Deferred.await(forkStarted)
              yield* Effect.forkDaemon(Effect.gen(function*() {
                yield* Deferred.await(secondStarted)
                const context = yield* Job.JobContext
                // A fiber it forks in turn, once the next job runs, still has this job's context.
                const child = yield* Effect.fork(Effect.map(Job.JobContext, (inner) => inner.id))
                yield* Job.progress({ from: "daemon" })
                yield* Deferred.succeed(seenByDaemon, `${context.id} ${yield* Fiber.join(child)}`)
              }))
            })
            : Deferred.succeed(secondStarted, undefined)
      })
      const client = yield* JobClient.JobClient
      const first = yield* client.enqueue(Forking, { n: 1 })
      const second = yield* client.enqueue(Forking, { n: 2 }, { runAt: new Date(Date.now() + 300) })
      const { scope } = yield* startRunner({ jobs: [Forking], queues: { forking: 1 } })
      yield* Deferred.await(forkEnded)
      expect(yield* Deferred.await(seenByDaemon)).toBe(`${first.id} ${first.id}`)
      // Its progress is its own job's (written only while that job is held), never the one running meanwhile.
      const progress = yield* Effect.map(client.get(second.id), (job) => Option.getOrThrow(job).progress)
      expect(progress).toBeUndefined()
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("a row lock held on one running job for two leases holds up neither the other jobs' leases nor outcomes", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const starts = new Map<number, number>()
      const Held = Job.make("held-lease", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "held-lease",
        handler: ({ n }) =>
          Effect.zipRight(
            Effect.sync(() => starts.set(n, (starts.get(n) ?? 0) + 1)),
            n === 2 ? Effect.void : Deferred.await(release)
          )
      })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = client
      const [one, , three] = yield* client.enqueueMany(Held, [{ n: 1 }, { n: 2 }, { n: 3 }])
      const leaseMillis = 1_000
      const { runner, scope } = yield* startRunner({
        jobs: [Held],
        queues: { "held-lease": 2 },
        lease: Duration.millis(leaseMillis)
      })
      yield* eventually(Effect.sync(() => starts.get(1) ?? 0), (n) => n === 1, "job 1 to start")
      const locker = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT id FROM ${sql(schema)}.jobs WHERE id = ${one.id} FOR UPDATE`
        const [{ now }] = yield* sql<{ now: Date }>`SELECT now() AS now`
        // Job 1 finishes while its row is locked: its outcome waits, and must not hold up the rest.
        yield* Deferred.succeed(release, undefined)
        // Held for two leases of the runner, as its own heartbeats show.
        yield* eventually(
          sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.runners
            WHERE id = ${runner.id} AND heartbeat_at > ${new Date(now.getTime() + 2 * leaseMillis)}`,
          (rows) => rows[0].n === 1,
          "two leases of heartbeats"
        )
        const [held] = yield* sql<{ state: string; locked_by: string }>`
          SELECT state, locked_by FROM ${sql(schema)}.jobs WHERE id = ${three.id}`
        return held
      })))
      const threeWhileLocked = yield* Fiber.join(locker)
      // Job 3 started once job 2 was done; it ran (or runs) on the same runner, never rescued.
      expect(threeWhileLocked.locked_by).toBe(runner.id)
      yield* awaitState(one.id, "completed", "retryable", "available")
      yield* awaitState(three.id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect(starts.get(2)).toBe(1)
      expect(starts.get(3)).toBe(1)
      expect((yield* jobState(three.id)).attempt).toBe(1)
    }))

  it.scoped("a runner never rescues a job it holds itself, even once the job's lease ran out", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const Mine = Job.make("mine", {
        payload: Schema.Struct({}),
        queue: "mine",
        handler: () => Effect.zipRight(Ref.update(started, (n) => n + 1), Deferred.await(release))
      })
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const jobs = sql`${sql(client.schema)}.jobs`
      const { id } = yield* client.enqueue(Mine, {})
      const { runner, scope } = yield* startRunner({ jobs: [Mine], queues: { mine: 1 } })
      yield* eventually(Ref.get(started), (n) => n === 1, "the job to start")
      const unlock = yield* Deferred.make<void>()
      const locked = yield* Deferred.make<void>()
      // The runner's heartbeat waits on its own row, so it renews no lease meanwhile (as on a starved process).
      const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT id FROM ${sql(client.schema)}.runners WHERE id = ${runner.id} FOR UPDATE`
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(unlock)
      })))
      yield* Deferred.await(locked)
      yield* eventually(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE ${"%runners%"}`,
        (rows) => rows[0].n > 0,
        "the heartbeat to wait on the runner's row"
      )
      yield* sql`UPDATE ${jobs} SET lease_expires_at = now() - interval '1 hour' WHERE id = ${id}`
      // A finished job past its retention: its deletion shows that a maintenance pass ran since.
      const [{ id: old }] = yield* sql<{ id: string }>`
        INSERT INTO ${jobs} (name, queue, payload, state, max_attempts, finalized_at)
        VALUES ('old', 'mine', '{}', 'completed', 1, now() - interval '2 days') RETURNING id::text AS id`
      yield* eventually(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM ${jobs} WHERE id = ${old}`,
        (rows) => rows[0].n === 0,
        "a maintenance pass"
      )
      const during = yield* jobState(id)
      yield* Deferred.succeed(unlock, undefined)
      yield* Fiber.join(holder)
      yield* Deferred.succeed(release, undefined)
      const done = yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      expect([during.state, during.attempt]).toEqual(["running", 1])
      expect([done.attempt, done.errors]).toEqual([1, []])
      expect(yield* Ref.get(started)).toBe(1)
    }))

  it.scoped("while outcomes cannot be written, the runner stops claiming once four times as many as it can hold wait", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = client
      const unlock = yield* Deferred.make<void>()
      const lockedRows = yield* Ref.make(0)
      const Locking = Job.make("locking", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "locking",
        handler: ({ n }) =>
          n > 4 ? Effect.void : Effect.gen(function*() {
            const { id } = yield* Job.JobContext
            const locked = yield* Deferred.make<void>()
            // Another transaction takes the job's own row and keeps it: the job's outcome cannot be written.
            yield* Effect.forkDaemon(sql.withTransaction(Effect.gen(function*() {
              yield* sql`SELECT id FROM ${sql(schema)}.jobs WHERE id = ${id} FOR UPDATE`
              yield* Ref.update(lockedRows, (k) => k + 1)
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(unlock)
            })))
            yield* Deferred.await(locked)
          })
      })
      const stuck = yield* client.enqueueMany(Locking, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
      // One slot and no prefetch: it holds one job, so four unwritten outcomes are its limit.
      const { runner, scope } = yield* startRunner({ jobs: [Locking], queues: { locking: 1 }, prefetch: 0 })
      yield* eventually(Ref.get(lockedRows), (k) => k === 4, "four jobs whose rows are held")
      const others = yield* client.enqueueMany(Locking, [{ n: 5 }, { n: 6 }, { n: 7 }])
      const [{ now }] = yield* sql<{ now: Date }>`SELECT now() AS now`
      // Polls every 200 ms: a few heartbeats of the runner later, it would have claimed them long ago.
      yield* eventually(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.runners
          WHERE id = ${runner.id} AND heartbeat_at > ${new Date(now.getTime() + 1_500)}`,
        (rows) => rows[0].n === 1,
        "heartbeats of the runner"
      )
      for (const job of others) expect((yield* jobState(job.id)).state).toBe("available")
      yield* Deferred.succeed(unlock, undefined)
      for (const job of [...stuck, ...others]) yield* awaitState(job.id, "completed")
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("many jobs enqueued in one statement all complete exactly once within the concurrency limit", () =>
    Effect.gen(function*() {
      const runs = new Map<number, number>()
      let active = 0
      let peak = 0
      const Counted = Job.make("counted", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "bulk",
        handler: ({ n }) =>
          Effect.gen(function*() {
            active++
            peak = Math.max(peak, active)
            runs.set(n, (runs.get(n) ?? 0) + 1)
            yield* Effect.yieldNow()
            active--
          })
      })
      const client = yield* JobClient.JobClient
      const enqueued = yield* client.enqueueMany(Counted, Array.from({ length: 2000 }, (_, n) => ({ n })))
      // Ids come back in the payloads' order, and lists page by id as a number, not as text.
      const ids = enqueued.map((job) => BigInt(job.id))
      expect(ids.every((id, i) => i === 0 || id === ids[i - 1] + 1n)).toBe(true)
      for (const i of [0, 1, 999, 1999]) {
        expect(Option.getOrThrow(yield* client.get(enqueued[i].id)).payload).toEqual({ n: i })
      }
      const newest = yield* client.list({ queue: "bulk", limit: 1000 })
      expect(newest.map((job) => job.id)).toEqual(enqueued.slice(1000).reverse().map((job) => job.id))
      const { scope } = yield* startRunner({ jobs: [Counted], queues: { bulk: 4 } })
      yield* eventually(
        client.counts,
        (counts) => counts.some((c) => c.queue === "bulk" && c.state === "completed" && c.count === 2000),
        "2,000 completions"
      )
      yield* Scope.close(scope, Exit.void)
      expect(runs.size).toBe(2000)
      expect([...runs.values()].every((n) => n === 1)).toBe(true)
      expect(peak).toBeLessThanOrEqual(4)
    }))

  it.scoped("a run is a span linked to the span that enqueued it, and is counted in the job metrics", () =>
    Effect.gen(function*() {
      const { ended, tracer } = recordingTracer()
      const Traced = Job.make("traced-job", { payload: Schema.Struct({}), queue: "traced", handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const { scope } = yield* startRunner({ jobs: [Traced] }).pipe(Effect.withTracer(tracer))
      const { id } = yield* client.enqueue(Traced, {}).pipe(
        Effect.withSpan("handle-request"),
        Effect.withTracer(tracer)
      )
      yield* awaitState(id, "completed")
      yield* Scope.close(scope, Exit.void)
      const request = ended.find((span) => span.name === "handle-request")!
      const run = ended.find((span) => span.name === "effect_workers.job.run")!
      expect(run.attributes.get("effect_workers.job.name")).toBe("traced-job")
      expect(run.links).toEqual([request.spanId])
      const completed = yield* Metric.value(
        Metrics.jobRuns.pipe(
          Metric.tagged("queue", "traced"),
          Metric.tagged("job", "traced-job"),
          Metric.tagged("outcome", "completed")
        )
      )
      expect(completed.count).toBe(1)
    }))

  it.scoped("a handler's log lines carry its job, job id, attempt and queue", () =>
    Effect.gen(function*() {
      const lines: Array<{ message: string; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, message }) => {
        lines.push({
          message: Array.isArray(message) ? message.join(" ") : String(message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      yield* Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(logger))
      const Chatty = Job.make("chatty", {
        payload: Schema.Struct({}),
        queue: "chat",
        handler: () => Effect.log("working on it")
      })
      const { id } = yield* (yield* JobClient.JobClient).enqueue(Chatty, {})
      yield* startRunner({ jobs: [Chatty] })
      yield* awaitState(id, "completed")
      expect(lines.find((line) => line.message === "working on it")?.annotations).toMatchObject({
        job: "chatty",
        job_id: id,
        attempt: 1,
        queue: "chat"
      })
    }))

  it.scoped("runner events report what happened", () =>
    Effect.gen(function*() {
      const Evented = Job.make("evented", { payload: Schema.Struct({}), handler: () => Effect.void })
      const client = yield* JobClient.JobClient
      const { runner, scope } = yield* startRunner({ jobs: [Evented] })
      const events = yield* Deferred.make<ReadonlyArray<string>>()
      yield* runner.events.pipe(
        Stream.take(2),
        Stream.runCollect,
        Effect.flatMap((chunk) => Deferred.succeed(events, [...chunk].map((e) => e._tag))),
        Effect.fork
      )
      yield* Effect.yieldNow()
      yield* client.enqueue(Evented, {})
      expect(yield* Deferred.await(events)).toEqual(["Started", "Succeeded"])
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("a subscriber that lags behind loses the oldest events, not the newest, and never holds up the runner", () =>
    Effect.gen(function*() {
      const Many = Job.make("many-events", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "many-events",
        handler: () => Effect.void
      })
      const client = yield* JobClient.JobClient
      const { runner, scope } = yield* startRunner({ jobs: [Many], queues: { "many-events": 10 } })
      const gate = yield* Deferred.make<void>()
      const seen: Array<JobRunner.JobEvent> = []
      let firstChunk = 0
      const isMarker = (event: JobRunner.JobEvent) =>
        event._tag === "Succeeded" && (event.job.payload as { n: number }).n === -1
      // Reads one chunk, then nothing until the gate opens.
      const reader = yield* runner.events.pipe(
        Stream.chunks,
        Stream.tap((chunk) =>
          Effect.suspend(() => {
            seen.push(...chunk)
            if (firstChunk > 0) return Effect.void
            firstChunk = chunk.length
            return Deferred.await(gate)
          })
        ),
        Stream.takeUntil((chunk) => [...chunk].some(isMarker)),
        Stream.runDrain,
        Effect.fork
      )
      yield* Effect.yieldNow()
      // 2,500 jobs make 5,000 events while the subscriber reads none.
      yield* client.enqueueMany(Many, Array.from({ length: 2_500 }, (_, n) => ({ n })))
      yield* eventually(
        Effect.map(
          client.counts,
          (counts) => counts.find((c) => c.queue === "many-events" && c.state === "completed")?.count ?? 0
        ),
        (completed) => completed === 2_500,
        "2,500 jobs to complete"
      )
      const marker = yield* client.enqueue(Many, { n: -1 })
      yield* awaitState(marker.id, "completed")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(reader)
      yield* Scope.close(scope, Exit.void)
      const started = seen.filter((event) => event._tag === "Started").length
      expect(seen.length).toBeLessThanOrEqual(firstChunk + JobRunner.eventsCapacity)
      expect(started).toBeLessThan(2_500)
      expect(seen[seen.length - 1]).toMatchObject({ _tag: "Succeeded", job: { id: marker.id } })
    }))
})

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("testing helpers", (it) => {
  const Welcome = Job.make("welcome", {
    payload: Schema.Struct({ user: Schema.String, at: Schema.DateFromString }),
    queue: "mail",
    handler: ({ user }) => Effect.map(Job.JobContext, (context) => `welcomed ${user} on attempt ${context.attempt}`)
  })

  it.effect("performJob runs a handler directly, through the payload schema", () =>
    Effect.gen(function*() {
      const at = new Date("2026-11-25T12:00:00Z")
      expect(yield* Testing.performJob(Welcome, { user: "ada", at })).toBe("welcomed ada on attempt 1")
      expect(yield* Testing.performJob(Welcome, { user: "ada", at }, { attempt: 3 })).toBe("welcomed ada on attempt 3")
      const invalid = yield* Effect.flip(Testing.performJob(Welcome, { user: 42 as unknown as string, at }))
      expect(invalid._tag).toBe("InvalidPayload")
      expect(invalid.message).toContain("Expected string, actual 42")
    }))

  it.scoped("drainQueue runs what is waiting, retries included, and what the handlers enqueue", () =>
    Effect.gen(function*() {
      const FollowUp = Job.make("follow-up", { payload: Schema.Struct({}), queue: "drain", handler: () => Effect.void })
      const Starter = Job.make("starter", {
        payload: Schema.Struct({}),
        queue: "drain",
        handler: () => JobClient.enqueue(FollowUp, {})
      })
      const Failing = Job.make("failing", {
        payload: Schema.Struct({}),
        queue: "drain",
        maxAttempts: 3,
        handler: () => Effect.fail("no luck")
      })
      const client = yield* JobClient.JobClient
      yield* client.enqueue(Starter, {})
      yield* client.enqueue(Failing, {})
      yield* client.enqueue(FollowUp, {}, { delay: "1 hour" })
      const result = yield* Testing.drainQueue({ jobs: [Starter, Failing, FollowUp], queue: "drain" })
      expect({ ...result, jobs: result.jobs.map((job) => [job.name, job.state, job.attempt]) }).toEqual({
        completed: 3,
        discarded: 1,
        cancelled: 0,
        waiting: 0,
        jobs: [
          ["starter", "completed", 1],
          ["failing", "discarded", 3],
          ["follow-up", "completed", 1],
          ["follow-up", "completed", 1]
        ]
      })
    }))

  it.effect("assertEnqueued finds waiting jobs by name, queue and part of the payload, or says what it found", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      yield* client.enqueue(Welcome, { user: "grace", at: new Date("2026-11-25T12:00:00Z") }, { delay: "1 hour" })
      const found = yield* Testing.assertEnqueued({ job: Welcome, payload: { user: "grace" }, queue: "mail" })
      expect(found.map((job) => job.payload)).toEqual([{ user: "grace", at: "2026-11-25T12:00:00.000Z" }])
      const missing = yield* Effect.flip(Testing.assertEnqueued({ job: Welcome, payload: { user: "linus" } }))
      expect(missing._tag).toBe("NotEnqueued")
      expect(missing.message).toContain(`Expected a waiting job "welcome" with a payload containing {"user":"linus"}`)
      expect(missing.message).toContain(`in "mail" (scheduled): {"at":"2026-11-25T12:00:00.000Z","user":"grace"}`)
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("migrations", (it) => {
  it.effect("run twice at once applies each migration once; a newer database is refused", () =>
    Effect.gen(function*() {
      const db = yield* TestDatabase.TestDatabase
      const schema = `${db.schema}_m`
      const before = yield* Migrations.status({ schema })
      expect([before.version, before.latestVersion, before.pending]).toEqual([
        0,
        Migrations.latestVersion,
        Migrations.migrations
      ])
      const runs = yield* Effect.all([Migrations.run({ schema }), Migrations.run({ schema })], { concurrency: 2 })
      // One run applied them all; the other, waiting on the lock, found nothing left.
      expect(runs.map((applied) => applied.length).sort()).toEqual([0, Migrations.migrations.length])
      expect(yield* Migrations.run({ schema })).toEqual([])
      yield* Migrations.check({ schema })
      const after = yield* Migrations.status({ schema })
      expect([after.version, after.pending]).toEqual([Migrations.latestVersion, []])
      const sql = yield* SqlClient.SqlClient
      const applied = yield* sql<{ version: number }>`SELECT version FROM ${sql(schema)}.migrations ORDER BY version`
      expect(applied.map((row) => row.version)).toEqual(Migrations.migrations.map((migration) => migration.version))
      yield* sql`INSERT INTO ${sql(schema)}.migrations (version, name) VALUES (${
        Migrations.latestVersion + 1
      }, 'future')`
      const error = yield* Effect.flip(Migrations.run({ schema }))
      expect(error.message).toContain(`newer than this version of effect-workers knows (${Migrations.latestVersion})`)
      const checked = yield* Effect.either(Migrations.check({ schema }))
      expect(Either.isLeft(checked)).toBe(true)
      yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    }))
})

describe("job definitions", () => {
  it.effect("a bad option is kept as a typed error with a clear message", () =>
    Effect.gen(function*() {
      const Bad = Job.make("bad", { payload: Schema.Struct({}), maxAttempts: 0, handler: () => Effect.void })
      expect(Bad.invalid?.message).toBe(
        `Job "bad": option "maxAttempts" must be a whole number from 1 to 2147483647, got 0`
      )
      expect(Duration.toMillis(
        Job.make("t", {
          payload: Schema.Struct({}),
          timeout: "2 seconds",
          handler: () => Effect.void
        }).timeout!
      )).toBe(2000)
    }))
})
