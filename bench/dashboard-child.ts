/**
 * One throughput run of the dashboard suite, in a process of its own:
 * `node --import tsx bench/dashboard-child.ts <databaseUrl> <schema> <jobs>`.
 * Enqueues `jobs` no-op jobs into the schema (already migrated) with the
 * runner stopped, then starts one runner with its defaults and times it until
 * no job of its queue waits or runs. Prints one JSON line (a `RunResult`).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Schema, Scope } from "effect"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import * as JobRunner from "../src/JobRunner.js"
import { benchQueue, type RunResult } from "./dashboard-config.js"

const [url, schema, jobsArg] = process.argv.slice(2)
const jobs = Number(jobsArg)
if (url === undefined || schema === undefined || !(jobs > 0)) {
  throw new Error("usage: dashboard-child.ts <databaseUrl> <schema> <jobs>")
}

let handled = 0
let allHandled: (() => void) | undefined
const NoOp = Job.make("noop", {
  payload: Schema.Struct({ n: Schema.Number }),
  queue: benchQueue,
  handler: () =>
    Effect.sync(() => {
      if (++handled === jobs) allHandled?.()
    })
})

const sql = PgClient.layer({ url: Redacted.make(url), applicationName: "effect-workers-bench" })
const runtime = ManagedRuntime.make(JobClient.layer({ schema, migrate: false }).pipe(Layer.provideMerge(sql)))
const client = await runtime.runPromise(JobClient.JobClient)
for (let from = 0; from < jobs; from += 5_000) {
  const payloads = Array.from({ length: Math.min(5_000, jobs - from) }, (_, i) => ({ n: from + i }))
  await runtime.runPromise(client.enqueueMany(NoOp, payloads))
}
const handledAll = new Promise<void>((resolve) => {
  allHandled = resolve
})
const scope = Effect.runSync(Scope.make())
const started = performance.now()
await runtime.runPromise(Layer.buildWithScope(JobRunner.layer({ jobs: [NoOp] }), scope))
await handledAll
// Handled is not yet recorded: wait until no job of the queue waits or runs, through the partial indexes of
// waiting and running jobs (no scan of the table, and no use of the counts, which a compared schema lacks).
const sqlClient = await runtime.runPromise(SqlClient.SqlClient)
while (true) {
  const [{ left }] = await runtime.runPromise(sqlClient<{ left: boolean }>`
    SELECT EXISTS (
      SELECT 1 FROM ${sqlClient(schema)}.jobs WHERE queue = ${benchQueue}
        AND state IN ('scheduled', 'available', 'retryable', 'running')
    ) AS left`)
  if (!left) break
  await new Promise((resolve) => setTimeout(resolve, 5))
}
const runMs = performance.now() - started
await Effect.runPromise(Scope.close(scope, Exit.void))
await runtime.dispose()
console.log(JSON.stringify({ jobs, runMs } satisfies RunResult))
