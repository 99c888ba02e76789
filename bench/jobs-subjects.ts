/**
 * The job runners the jobs suite compares, behind one small interface: each
 * runs one no-op job definition in a schema of its own.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Schema, Scope } from "effect"
import pg from "pg"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import * as JobRunner from "../src/JobRunner.js"
import type { Impl, Mode } from "./jobs-config.js"

export interface SubjectOptions {
  readonly url: string
  /** A schema nothing else uses; created by the subject. */
  readonly schema: string
  readonly mode: Mode
  /** Called as each job's handler starts. */
  readonly onStart: () => void
}

export interface Subject {
  /** Enqueues no-op jobs with payloads `{ n }` for `n` in `[from, from + count)`, in one call of the bulk API. */
  readonly enqueueMany: (from: number, count: number) => Promise<void>
  readonly enqueueOne: (n: number) => Promise<void>
  /** Starts the runner; resolves once it runs. */
  readonly start: () => Promise<void>
  /** Jobs not recorded as completed yet. */
  readonly remaining: () => Promise<number>
  /** Stops the runner, if started, and closes every connection. */
  readonly close: () => Promise<void>
}

const jobName = "noop"

const payloads = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ n: from + i }))

/** A connection of the suite's own, for the counts; each runner keeps its own pool. */
const adminClient = async (url: string) => {
  const client = new pg.Client({ connectionString: url, application_name: "effect-workers-bench" })
  await client.connect()
  return client
}

const countOf = async (client: pg.Client, query: string, values: Array<unknown> = []): Promise<number> => {
  const result = await client.query<{ count: string }>(query, values)
  return Number(result.rows[0]!.count)
}

// ---- effect-workers ---------------------------------------------------------------------------

const effectWorkers = async (options: SubjectOptions): Promise<Subject> => {
  const NoOp = Job.make(jobName, {
    payload: Schema.Struct({ n: Schema.Number }),
    handler: () => Effect.sync(options.onStart)
  })
  const sql = PgClient.layer({ url: Redacted.make(options.url), applicationName: "effect-workers-bench" })
  const runtime = ManagedRuntime.make(JobClient.layer({ schema: options.schema }).pipe(Layer.provideMerge(sql)))
  const client = await runtime.runPromise(JobClient.JobClient)
  const admin = await adminClient(options.url)
  const scope = Effect.runSync(Scope.make())
  const table = `${pg.escapeIdentifier(options.schema)}.jobs`
  return {
    enqueueMany: async (from, count) => {
      await runtime.runPromise(client.enqueueMany(NoOp, payloads(from, count)))
    },
    enqueueOne: async (n) => {
      await runtime.runPromise(client.enqueue(NoOp, { n }))
    },
    start: () => runtime.runPromise(Layer.buildWithScope(JobRunner.layer({ jobs: [NoOp] }), scope)).then(() => {}),
    remaining: () => countOf(admin, `SELECT count(*) FROM ${table} WHERE state <> 'completed'`),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
      await admin.end()
    }
  }
}

// ---- graphile-worker --------------------------------------------------------------------------

// The peers live in bench/node_modules, which a fresh clone's typecheck does not
// have: import them through non-literal specifiers, with the slice of their API we use.
export type LogFunction = (level: string, message: string, meta?: unknown) => void
export interface GraphileWorkerUtils {
  readonly migrate: () => Promise<void>
  readonly addJob: (identifier: string, payload: unknown) => Promise<unknown>
  readonly addJobs: (specs: ReadonlyArray<{ identifier: string; payload: unknown }>) => Promise<unknown>
  readonly release: () => Promise<void>
}
export interface GraphileRunner {
  readonly stop: () => Promise<void>
}
export interface GraphileWorker {
  readonly Logger: new(factory: (scope: unknown) => LogFunction) => unknown
  readonly makeWorkerUtils: (options: Record<string, unknown>) => Promise<GraphileWorkerUtils>
  readonly run: (options: Record<string, unknown>) => Promise<GraphileRunner>
}
export const graphileSpecifier: string = "graphile-worker"

/** Warnings and errors to stderr; the rest (a line per job at the info level) dropped. */
export const quietLog: LogFunction = (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`graphile-worker ${level}: ${message}\n`)
}

/**
 * graphile-worker's settings as its performance page gives them for its best
 * figures: 24 concurrent jobs on a pool of 25, a local queue of 500, and
 * completions and failures written in batches.
 */
export const graphileBest = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0
}

const graphile = async (options: SubjectOptions, best: boolean): Promise<Subject> => {
  const { Logger, makeWorkerUtils, run } = (await import(graphileSpecifier)) as GraphileWorker
  const logger = new Logger(() => quietLog)
  const common = { connectionString: options.url, schema: options.schema, logger }
  const utils = await makeWorkerUtils({ preset: { worker: common } })
  await utils.migrate()
  const admin = await adminClient(options.url)
  let runner: GraphileRunner | undefined
  return {
    enqueueMany: async (from, count) => {
      await utils.addJobs(payloads(from, count).map((payload) => ({ identifier: jobName, payload })))
    },
    enqueueOne: async (n) => {
      await utils.addJob(jobName, { n })
    },
    start: async () => {
      runner = await run({
        preset: { worker: { ...common, ...(best ? graphileBest : {}) } },
        taskList: { [jobName]: async () => options.onStart() },
        noHandleSignals: true
      })
    },
    // A completed job is deleted.
    remaining: () => countOf(admin, `SELECT count(*) FROM ${pg.escapeIdentifier(options.schema)}._private_jobs`),
    close: async () => {
      await runner?.stop()
      await utils.release()
      await admin.end()
    }
  }
}

// ---- pg-boss ----------------------------------------------------------------------------------

interface PgBossInstance {
  readonly on: (event: "error" | "warning", listener: (error: unknown) => void) => void
  readonly start: () => Promise<unknown>
  readonly stop: (options: { graceful: boolean; timeout?: number }) => Promise<void>
  readonly createQueue: (name: string, options?: Record<string, unknown>) => Promise<void>
  readonly insert: (name: string, jobs: ReadonlyArray<{ data: object }>) => Promise<unknown>
  readonly send: (name: string, data: object) => Promise<unknown>
  readonly work: (
    name: string,
    options: Record<string, unknown>,
    handler: (jobs: ReadonlyArray<unknown>) => Promise<void>
  ) => Promise<string>
}
interface PgBossModule {
  readonly PgBoss: new(options: Record<string, unknown>) => PgBossInstance
}
const pgBossSpecifier: string = "pg-boss"

/**
 * Throughput: a worker fetching 100 jobs at a time, fetching again at once
 * while fetches come back full (without it, it waits its 2 s polling interval
 * after every batch). Latency: one job at a time, woken by LISTEN/NOTIFY
 * (otherwise it polls every 2 s).
 */
const pgBoss = async (options: SubjectOptions): Promise<Subject> => {
  const { PgBoss } = (await import(pgBossSpecifier)) as PgBossModule
  const latency = options.mode === "latency"
  const boss = new PgBoss({
    connectionString: options.url,
    schema: options.schema,
    application_name: "effect-workers-bench",
    useListenNotify: latency
  })
  boss.on("error", (error) => process.stderr.write(`pg-boss error: ${String(error)}\n`))
  boss.on("warning", (warning) => process.stderr.write(`pg-boss warning: ${JSON.stringify(warning)}\n`))
  await boss.start()
  await boss.createQueue(jobName, { notify: latency })
  const admin = await adminClient(options.url)
  const workOptions = latency ? { batchSize: 1 } : { batchSize: 100, burstWhenBatchFull: true }
  return {
    enqueueMany: async (from, count) => {
      await boss.insert(jobName, payloads(from, count).map((data) => ({ data })))
    },
    enqueueOne: async (n) => {
      await boss.send(jobName, { n })
    },
    start: async () => {
      await boss.work(jobName, workOptions, async (jobs) => {
        for (let i = 0; i < jobs.length; i++) options.onStart()
      })
    },
    remaining: () =>
      countOf(
        admin,
        `SELECT count(*) FROM ${pg.escapeIdentifier(options.schema)}.job WHERE name = $1 AND state <> 'completed'`,
        [jobName]
      ),
    close: async () => {
      await boss.stop({ graceful: true, timeout: 10_000 })
      await admin.end()
    }
  }
}

export const make = (impl: Impl, options: SubjectOptions): Promise<Subject> => {
  switch (impl) {
    case "effect-workers":
      return effectWorkers(options)
    case "graphile-default":
      return graphile(options, false)
    case "graphile-best":
      return graphile(options, true)
    case "pg-boss":
      return pgBoss(options)
  }
}
