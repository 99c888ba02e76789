import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, ExecutionStrategy, Fiber, Layer, Schedule, Schema, Scope } from "effect"
import { Job, JobClient, JobRunner, Migrations } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { setByHand } from "./support/states.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const startRunner = <Jobs extends Job.Any>(options: JobRunner.Options<Jobs>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    yield* Layer.buildWithScope(JobRunner.layer({ pollInterval: "100 millis", ...options }), scope)
    return scope
  })

type Row = { readonly queue: string; readonly state: string; readonly count: number }
const key = (rows: ReadonlyArray<Row>) => rows.map((r) => `${r.queue}/${r.state}=${r.count}`).sort()

/**
 * `JobClient.counts` and a `GROUP BY` over the jobs table, in one repeatable-read snapshot: they must agree at
 * any moment, whatever runs meanwhile.
 */
const compare = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const client = yield* JobClient.JobClient
  const { schema } = yield* TestDatabase.TestDatabase
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
    const counted = yield* client.counts
    const scanned = yield* sql<{ queue: string; state: string; count: string }>`
      SELECT queue, state, count(*) AS count FROM ${sql(schema)}.jobs GROUP BY queue, state`
    return {
      counted: key(counted),
      scanned: key(scanned.map((r) => ({ queue: r.queue, state: r.state, count: Number(r.count) })))
    }
  }))
})

const Payload = Schema.Struct({ n: Schema.Number, kind: Schema.Literal("ok", "flaky", "bad", "slow") })
const failedOnce = new Set<number>()
const Mixed = Job.make("mixed", {
  payload: Payload,
  queue: "mixed",
  maxAttempts: 2,
  backoff: Schedule.spaced("10 millis"),
  handler: ({ kind, n }) =>
    kind === "ok"
      ? Effect.void
      : kind === "flaky"
      ? failedOnce.has(n) ? Effect.void : Effect.zipRight(Effect.sync(() => failedOnce.add(n)), Effect.fail("once"))
      : kind === "bad"
      ? Effect.fail("always")
      : Effect.never
})
const Other = Job.make("other", {
  payload: Schema.Struct({ n: Schema.Number }),
  queue: "other",
  handler: () => Effect.void
})

// Queues with limits are claimed by other statements: one with per-key and global limits, one only fair.
const Keyed = Job.make("keyed", {
  payload: Schema.Struct({ n: Schema.Number }),
  queue: "keyed",
  partitionKey: ({ n }) => `k${n % 7}`,
  maxAttempts: 2,
  backoff: Schedule.spaced("10 millis"),
  handler: ({ n }) => n % 5 === 0 ? Effect.fail("fifth") : Effect.void
})
const Fair = Job.make("fair", {
  payload: Schema.Struct({ n: Schema.Number }),
  queue: "fair",
  partitionKey: ({ n }) => `k${n % 3}`,
  handler: () => Effect.void
})

const kinds = ["ok", "ok", "ok", "flaky", "bad", "slow"] as const

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("job counts", (it) => {
  it.scoped(
    "counts equal a GROUP BY over the jobs at every moment of a mixed workload: several runners, bulk actions, pruning, rescues",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* TestDatabase.TestDatabase
        for (let i = 0; i < 3; i++) {
          yield* startRunner({
            jobs: [Mixed, Other, Keyed, Fair],
            queues: {
              mixed: 5,
              other: 3,
              keyed: { concurrency: 4, keyConcurrency: 1, globalConcurrency: 6 },
              fair: { concurrency: 2, fair: true }
            },
            lease: "3 seconds",
            retention: "1 second"
          })
        }
        const mismatches: Array<unknown> = []
        let checks = 0
        const check = Effect.flatMap(compare, (result) =>
          Effect.sync(() => {
            checks++
            if (result.counted.join() !== result.scanned.join()) mismatches.push(result)
          }))
        const checker = yield* Effect.fork(Effect.forever(Effect.zipRight(check, Effect.sleep("15 millis"))))
        let n = 0
        for (let round = 0; round < 8; round++) {
          yield* client.enqueueMany(
            Mixed,
            Array.from({ length: 120 }, () => ({ n: n++, kind: kinds[n % kinds.length] }))
          )
          yield* client.enqueueMany(Other, Array.from({ length: 60 }, () => ({ n: n++ })), {
            delay: round % 2 === 0 ? "200 millis" : undefined
          })
          yield* client.enqueueMany(Keyed, Array.from({ length: 40 }, () => ({ n: n++ })))
          yield* client.enqueueMany(Fair, Array.from({ length: 30 }, () => ({ n: n++ })))
          // A runner that crashed while holding a job: maintenance rescues it. Its claim counted itself, as
          // every claim does.
          const stuck = yield* client.enqueue(Other, { n: -1 }, { delay: "1 hour" })
          yield* setByHand(
            stuck.id,
            sql`state = 'running', attempt = 1, locked_by = 'gone', lease_expires_at = now() - interval '1 second',
              attempted_at = now()`
          )
          yield* Effect.all([
            client.cancelAll({ name: "mixed", state: "running" }),
            client.cancelAll({ queue: "mixed", state: "available" }).pipe(Effect.when(() => round === 3)),
            client.retryAll({ state: "discarded" }),
            client.deleteAll({ state: "cancelled", queue: "mixed" })
          ], { concurrency: "unbounded" })
          yield* Effect.sleep("100 millis")
        }
        yield* client.retryAll({ state: "discarded" })
        // Slow jobs run until cancelled: cancel those that started since, until none is left.
        yield* eventually(
          Effect.zipRight(client.cancelAll({ state: "running", name: "mixed" }), client.counts),
          (counts) =>
            counts.every((c) => c.count === 0 || !["available", "running", "retryable", "scheduled"].includes(c.state)),
          "every job to finish"
        )
        yield* Fiber.interrupt(checker)
        yield* check
        expect(mismatches).toEqual([])
        expect(checks).toBeGreaterThan(20)
        const last = yield* compare
        expect(last.counted).toEqual(last.scanned)
        // Retention of a second: pruning deletes every completed job.
        yield* eventually(
          client.counts,
          (counts) => counts.every((c) => c.state !== "completed"),
          "the completed jobs to be pruned"
        )
        const pruned = yield* compare
        expect(pruned.counted).toEqual(pruned.scanned)
        // Maintenance folds the deltas into the counts: once nothing changes, none are left.
        const pending = yield* eventually(
          sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.job_count_deltas`,
          (rows) => rows[0].n === 0,
          "the deltas to be rolled up"
        )
        expect(pending[0].n).toBe(0)
        const rolled = yield* compare
        expect(rolled.counted).toEqual(rolled.scanned)
      }),
    60_000
  )

  it.scoped("completions and failed attempts are counted per minute, and TRUNCATE empties the counts", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      yield* sql`TRUNCATE ${sql(schema)}.jobs`
      expect(yield* client.counts).toEqual([])
      const minutes = sql<{ completed: number; failed: number }>`
        SELECT coalesce(sum(completed), 0)::int AS completed, coalesce(sum(failed), 0)::int AS failed FROM (
          SELECT completed, failed FROM ${sql(schema)}.job_minutes
          UNION ALL SELECT completed, failed FROM ${sql(schema)}.job_minute_deltas) AS t`
      const [before] = yield* minutes
      const Flaky = Job.make("flaky-minutes", {
        payload: Schema.Struct({ n: Schema.Number }),
        queue: "minutes",
        backoff: Schedule.spaced("10 millis"),
        handler: ({ n }) =>
          n % 4 !== 0 || failedOnce.has(1_000_000 + n)
            ? Effect.void
            : Effect.zipRight(Effect.sync(() => failedOnce.add(1_000_000 + n)), Effect.fail("first attempt"))
      })
      yield* client.enqueueMany(Flaky, Array.from({ length: 20 }, (_, n) => ({ n })))
      yield* startRunner({ jobs: [Flaky], queues: { minutes: 4 } })
      yield* eventually(
        client.counts,
        (counts) => counts.some((c) => c.queue === "minutes" && c.state === "completed" && c.count === 20),
        "20 completions"
      )
      const [after] = yield* minutes
      expect([after.completed - before.completed, after.failed - before.failed]).toEqual([20, 5])
    }))

  it.scoped("changes of state made outside effect-workers are set right by the recount of a starting runner", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      yield* client.enqueueMany(Other, Array.from({ length: 5 }, (_, n) => ({ n })), { delay: "1 hour" })
      yield* sql`UPDATE ${sql(schema)}.jobs SET state = 'discarded', finalized_at = now()
        WHERE queue = 'other' AND state = 'scheduled'`
      // No statement of effect-workers made that change, so nothing counted it.
      const before = yield* compare
      expect(before.counted).not.toEqual(before.scanned)
      yield* startRunner({ jobs: [Other], queues: { other: 1 } })
      yield* eventually(compare, (result) => result.counted.join() === result.scanned.join(), "the recount")
      expect((yield* client.counts).filter((c) => c.queue === "other")).toContainEqual({
        queue: "other",
        state: "discarded",
        count: 5
      })
    }))

  it.scoped("the migration that adds the counts starts them from the jobs already there", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* TestDatabase.TestDatabase
      const schema = `${db.schema}_c`
      const quoted = `"${schema}"`
      yield* Effect.acquireRelease(sql`CREATE SCHEMA ${sql(schema)}`, () =>
        Effect.orDie(sql`DROP SCHEMA ${sql(schema)} CASCADE`))
      yield* sql`CREATE TABLE ${sql(schema)}.migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
      for (
        const migration of Migrations.migrations.filter((m) =>
          m.version < 7
        )
      ) {
        yield* sql.unsafe(migration.sql.replaceAll("{{schema}}", () => quoted))
        yield* sql`INSERT INTO ${
          sql(schema)
        }.migrations (version, name) VALUES (${migration.version}, ${migration.name})`
      }
      yield* sql`INSERT INTO ${
        sql(schema)
      }.jobs (name, queue, payload, state, max_attempts, finalized_at, attempted_at, errors)
        SELECT 'old', 'q' || (i % 3), '{}', (ARRAY['available', 'completed', 'discarded'])[1 + i % 3], 1,
          CASE WHEN i % 3 = 0 THEN NULL ELSE now() END, CASE WHEN i % 3 = 0 THEN NULL ELSE now() END,
          CASE WHEN i % 3 = 2 THEN jsonb_build_array(jsonb_build_object('at', now(), 'message', 'x')) ELSE '[]' END
        FROM generate_series(1, 30) AS i`
      yield* Migrations.run({ schema })
      const client = yield* JobClient.make({ schema })
      expect(yield* client.counts).toEqual([
        { queue: "q0", state: "available", count: 10 },
        { queue: "q1", state: "completed", count: 10 },
        { queue: "q2", state: "discarded", count: 10 }
      ])
      const [minute] = yield* sql<{ completed: number; failed: number }>`
        SELECT sum(completed)::int AS completed, sum(failed)::int AS failed FROM ${sql(schema)}.job_minutes`
      expect(minute).toEqual({ completed: 10, failed: 10 })
    }))
})
