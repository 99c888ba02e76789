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
    yield* child.waitForOutput("runner ready")
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
