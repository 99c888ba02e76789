/**
 * Runner processes for the multi-process job tests: the fixture
 * (test/fixtures/job-runner-child.ts), its jobs as enqueued from the test
 * process, and helpers to start and stop runners and read what they did.
 */
import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Job, JobClient } from "effect-workers"
import { fileURLToPath } from "node:url"
import * as Children from "./children.js"
import * as TestDatabase from "./database.js"

const fixture = fileURLToPath(new URL("../fixtures/job-runner-child.ts", import.meta.url))

/** The fixture's jobs, as enqueued from the test (handlers never run in the test's process). */
export const Work = Job.make("work", {
  payload: Schema.Struct({ n: Schema.Number, millis: Schema.optional(Schema.Number) }),
  queue: "work",
  handler: () => Effect.void
})
export const Long = Job.make("long", {
  payload: Schema.Struct({ n: Schema.Number }),
  queue: "long",
  handler: () => Effect.void
})

export const Flow = Job.make("flow", {
  payload: Schema.Struct({ n: Schema.Number, key: Schema.String, millis: Schema.optional(Schema.Number) }),
  queue: "flow",
  partitionKey: ({ key }) => key,
  handler: () => Effect.void
})

/** The client on the test file's schema. */
export const Setup = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

/** A fresh `runs` table, where the fixture records its handlers' starts, and no jobs or queue settings. */
export const createRuns = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(schema)}.runs (
    job_id bigint NOT NULL, n integer NOT NULL, pid integer NOT NULL, event text NOT NULL, active integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp())`
  yield* sql`TRUNCATE ${sql(schema)}.runs`
  yield* sql`TRUNCATE ${sql(schema)}.jobs`
  yield* sql`DELETE FROM ${sql(schema)}.queues`
})

/** A fresh `flow_runs` table, where the fixture records the starts and ends of "flow" runs, and no jobs or queue settings. */
export const createFlowRuns = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(schema)}.flow_runs (
    seq bigserial PRIMARY KEY, job_id bigint NOT NULL, key text NOT NULL, event text NOT NULL, pid integer NOT NULL,
    claimed_at timestamptz NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`
  yield* sql`TRUNCATE ${sql(schema)}.flow_runs`
  yield* sql`TRUNCATE ${sql(schema)}.jobs`
  yield* sql`DELETE FROM ${sql(schema)}.queues`
})

export interface FlowRun {
  readonly seq: number
  readonly jobId: string
  readonly key: string
  readonly event: "start" | "end"
  /** Microseconds since the epoch: the database's own resolution. */
  readonly claimedMicros: number
}

/** The records of "flow" runs, in the order they were made. */
export const flowRuns = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  return yield* sql<FlowRun>`
    SELECT seq::int AS seq, job_id::text AS "jobId", key, event,
      (extract(epoch FROM claimed_at) * 1000000)::bigint::float8 AS "claimedMicros"
    FROM ${sql(schema)}.flow_runs ORDER BY seq`
})

/** The most runs going on at once, over all and per key, from their start and end records (runs never ended count as going on). */
export const peakConcurrency = (runs: ReadonlyArray<FlowRun>) => {
  let running = 0
  let peak = 0
  const perKey = new Map<string, number>()
  let peakPerKey = 0
  for (const run of runs) {
    const delta = run.event === "start" ? 1 : -1
    running += delta
    peak = Math.max(peak, running)
    const n = (perKey.get(run.key) ?? 0) + delta
    perKey.set(run.key, n)
    peakPerKey = Math.max(peakPerKey, n)
  }
  return { peak, peakPerKey }
}

/** The most starts (claims, as the database timed them) in any window of `periodMillis`, by key when `byKey`. */
export const peakStartsPerWindow = (runs: ReadonlyArray<FlowRun>, periodMillis: number, byKey = false) => {
  const groups = new Map<string, Array<number>>()
  for (const run of runs) {
    if (run.event !== "start") continue
    const group = byKey ? run.key : ""
    const times = groups.get(group) ?? []
    times.push(run.claimedMicros)
    groups.set(group, times)
  }
  let peak = 0
  for (const times of groups.values()) {
    times.sort((a, b) => a - b)
    // Windows (t - period, t] ending at each start.
    let first = 0
    for (let i = 0; i < times.length; i++) {
      while (times[first] <= times[i] - periodMillis * 1000) first++
      let last = i
      while (last + 1 < times.length && times[last + 1] === times[i]) last++
      peak = Math.max(peak, last - first + 1)
    }
  }
  return peak
}

/** The end of a child's output: a runner under faults logs a warning per failed statement. */
export const tail = (child: Children.Child) => Effect.map(child.output, (output) => output.slice(-6000))

/** Starts a runner process; resolves once it has started. Its connections carry `tag` in their application name. */
export const startRunner = (tag: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const db = yield* TestDatabase.TestDatabase
    const url = new URL(db.url)
    url.searchParams.set("application_name", `${url.searchParams.get("application_name")} ${tag}`)
    const child = yield* Children.spawn(process.execPath, ["--import", "tsx", fixture], {
      env: { ...process.env, DATABASE_URL: url.href, JOBS_SCHEMA: db.schema, ...env }
    })
    // Generous: three runners starting at once on a loaded machine can take long.
    yield* child.waitForOutput("runner ready", { timeout: "90 seconds" })
    return child
  })

/** Stops a runner with SIGTERM and expects a clean exit. */
export const stop = (child: Children.Child) =>
  Effect.gen(function*() {
    yield* child.kill("SIGTERM")
    const exit = yield* child.exit
    expect(exit, yield* tail(child)).toEqual({ code: 0, signal: null })
  })

/** How many jobs are in each state. */
export const countByState = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  const rows = yield* sql<{ state: string; n: number }>`
    SELECT state, count(*)::int AS n FROM ${sql(schema)}.jobs GROUP BY state`
  return Object.fromEntries(rows.map((row) => [row.state, row.n])) as Record<string, number>
})
