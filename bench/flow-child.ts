/**
 * One configuration of the flow suite, in a process of its own:
 * `node --import tsx bench/flow-child.ts <config> <databaseUrl>`.
 *
 * Enqueues a backlog of no-op jobs (runner stopped), sets the queue's limits,
 * then starts one runner with its defaults and times it until every job is
 * recorded as completed; for the fairness configurations it also times, for
 * each job of the small keys, how long after the first job's start its
 * handler started (the runner's start-up, the same with or without fairness,
 * is left out). Works in a schema of its own, dropped before and after. Prints one
 * JSON line (a {@link FlowResult}).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Redacted, Schema, Scope } from "effect"
import pg from "pg"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import * as JobRunner from "../src/JobRunner.js"
import { type Config, configs, type FlowResult } from "./flow-config.js"

const [configArg, url] = process.argv.slice(2)
const config = configArg as Config
if (!configs.includes(config) || url === undefined) {
  throw new Error(`usage: flow-child.ts <${configs.join("|")}> <databaseUrl>`)
}

const schema = `bench_flow_${config.replaceAll("-", "_")}`
const admin = new pg.Client({ connectionString: url, application_name: "effect-workers-bench" })
await admin.connect()
await admin.query("SET client_min_messages = warning")
const dropSchema = () => admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
await dropSchema()

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let runStarted = 0
/** When the first handler started: waits are counted from then, leaving out the runner's start-up. */
let firstStart: number | undefined
let handled = 0
const smallWaits: Array<number> = []
const payload = Schema.Struct({ n: Schema.Number, key: Schema.String })
const handler = ({ key }: typeof payload.Type) =>
  Effect.sync(() => {
    handled++
    const now = performance.now()
    firstStart ??= now
    if (key !== "big") smallWaits.push(now - firstStart)
  })
/** Keyed by the payload's key. */
const NoOp = Job.make("noop", { payload, partitionKey: ({ key }) => key, handler })
/** Without a key. */
const Plain = Job.make("plain", { payload, handler })

/** The backlog: [key, jobs] in the order enqueued. */
const backlog: ReadonlyArray<readonly [string, number]> = config === "unlimited" || config === "global"
  ? [["", 50_000]]
  : config === "keyed-unlimited" || config === "per-key"
  ? Array.from({ length: 1_000 }, (_, i) => [`k${i}`, 50] as const)
  : [["big", 100_000], ...Array.from({ length: 99 }, (_, i) => [`small${i}`, 100] as const)]

const limits: JobClient.QueueLimits = config === "global"
  ? { globalConcurrency: 100_000 }
  : config === "per-key"
  ? { keyConcurrency: 5 }
  : config === "fair"
  ? { fair: true }
  : {}

const sql = PgClient.layer({ url: Redacted.make(url), applicationName: "effect-workers-bench" })
// Warnings and errors only: the last line of stdout is the result.
const runtime = ManagedRuntime.make(
  Layer.merge(JobClient.layer({ schema }).pipe(Layer.provideMerge(sql)), Logger.minimumLogLevel(LogLevel.Warning))
)
const client = await runtime.runPromise(JobClient.JobClient)
const scope = Effect.runSync(Scope.make())
let result: FlowResult
try {
  // Keys interleaved (1,000 keys of 50: job i of every key, then job i + 1...), as tenants' work arrives;
  // the big key's backlog first, then the small keys', the order that makes first in, first out worst for them.
  const payloads: Array<{ n: number; key: string }> = []
  if (config === "keyed-unlimited" || config === "per-key") {
    for (let i = 0; i < 50; i++) for (const [key] of backlog) payloads.push({ n: payloads.length, key })
  } else {
    for (const [key, count] of backlog) {
      for (let i = 0; i < count; i++) payloads.push({ n: payloads.length, key })
    }
  }
  const job = config === "unlimited" || config === "global" ? Plain : NoOp
  for (let from = 0; from < payloads.length; from += 5_000) {
    await runtime.runPromise(client.enqueueMany(job, payloads.slice(from, from + 5_000)))
  }
  await runtime.runPromise(client.setLimits("default", limits))
  runStarted = performance.now()
  await runtime.runPromise(Layer.buildWithScope(JobRunner.layer({ jobs: [NoOp, Plain] }), scope))
  while (handled < payloads.length) await sleep(5)
  const table = `${pg.escapeIdentifier(schema)}.jobs`
  while (Number((await admin.query(`SELECT count(*) FROM ${table} WHERE state <> 'completed'`)).rows[0].count) > 0) {
    await sleep(2)
  }
  const runMs = performance.now() - runStarted
  const sorted = [...smallWaits].sort((a, b) => a - b)
  const percentile = (p: number) =>
    sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
  const fairness = config === "fifo" || config === "fair"
  result = {
    config,
    jobs: payloads.length,
    runMs,
    smallKeysWaitP50Ms: fairness ? percentile(50) : null,
    smallKeysWaitP99Ms: fairness ? percentile(99) : null,
    firstStartMs: (firstStart ?? runStarted) - runStarted
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await runtime.dispose()
}
await dropSchema()
await admin.end()
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
