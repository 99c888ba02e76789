/**
 * One configuration of the recurring suite, in a process of its own:
 * `node --import tsx bench/recurring-child.ts <role> <databaseUrl> <schema> [args...]`.
 *
 * - `lateness <processes>`: a scheduler (`Recurring.layer`) and a
 *   `JobRunner`, with {@link dueCount} interval definitions whose first tick
 *   is the same second; records, for each job it runs, the time from its tick
 *   to its handler's start, until every job of the tick is completed.
 *   `processes` of these run on one schema, and agree on the tick once all
 *   are up, in the table {@link meetingTable} the parent created.
 * - `db-time <statsUrl> <database>`: a scheduler alone, with
 *   {@link minutelyCount} definitions firing every minute; measures the
 *   database's active time over a window of {@link windowMs} around one
 *   minute, reading `pg_stat_database` through `statsUrl`.
 * - `graphile-lateness` and `graphile-db-time <statsUrl> <database>`: the same
 *   with graphile-worker's crontab, whose ticks are whole minutes.
 *
 * The parent creates and drops the schema. Prints one JSON line (a {@link ChildResult}).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { EventEmitter } from "node:events"
import pg from "pg"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import * as JobRunner from "../src/JobRunner.js"
import * as Recurring from "../src/Recurring.js"
import { graphileBest, graphileSpecifier, type GraphileWorker, quietLog } from "./jobs-subjects.js"
import {
  type ChildResult,
  type DbTimeResult,
  dueCount,
  type LatenessResult,
  meetingTable,
  minutelyCount,
  type Role,
  roles,
  windowMs
} from "./recurring-config.js"

const [roleArg, url, schema, ...rest] = process.argv.slice(2)
const role = roleArg as Role
if (!roles.includes(role) || url === undefined || schema === undefined) {
  throw new Error(`usage: recurring-child.ts <${roles.join("|")}> <databaseUrl> <schema> [args...]`)
}

/** Every job of a lateness run not completed this long after its tick: give up and report what ran. */
const latenessDeadlineMs = 60_000
/** The tick of a lateness run comes at least this long after its processes are up: time to store the definitions. */
const tickLeadMs = 3_000
/**
 * A session's time counts in `pg_stat_database.active_time` when a statement
 * ends, and reaches it when the session goes idle, at most once a second and
 * at the latest 10 s later. So the window starts this long after start-up,
 * and this long before its whole minute: the firing before it has then ended
 * and been counted, and the one in it, if it takes up to 45 s, is counted
 * before it ends.
 */
const settleMs = 12_000
const firingOffsetMs = 5_000

const sleepUntil = (at: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))

const connect = async (databaseUrl: string) => {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "effect-workers-bench" })
  await client.connect()
  return client
}

// ---- database time ----------------------------------------------------------------------------

interface Window {
  readonly start: number
  readonly end: number
  /** The one whole minute in the window. */
  readonly minute: number
}

const windowAfter = (readyAt: number): Window => {
  const minute = Math.ceil((readyAt + settleMs + firingOffsetMs) / 60_000) * 60_000
  return { start: minute - firingOffsetMs, end: minute - firingOffsetMs + windowMs, minute }
}

/**
 * Waits for the window after `readyAt` and returns how much
 * `pg_stat_database.active_time` of `database` grew over it, read at its
 * start and end through `statsUrl` (another database when there is one, so
 * the readings do not count themselves).
 */
const measureWindow = async (statsUrl: string, database: string, readyAt: number) => {
  const window = windowAfter(readyAt)
  const client = await connect(statsUrl)
  try {
    const activeTime = async () => {
      const { rows } = await client.query<{ active: number }>(
        "SELECT active_time AS active FROM pg_stat_database WHERE datname = $1",
        [database]
      )
      return rows[0]!.active
    }
    await sleepUntil(window.start)
    const before = await activeTime()
    await sleepUntil(window.end)
    return { window, activeMs: (await activeTime()) - before }
  } finally {
    await client.end()
  }
}

/** The last of `times` in `[from, to]`, in ms after `from`. */
const lastIn = (times: ReadonlyArray<number>, from: number, to: number) => {
  const last = times.filter((at) => at >= from && at <= to).at(-1)
  return last === undefined ? undefined : last - from
}

// ---- effect-workers ---------------------------------------------------------------------------

const samples: Array<number> = []

const Noop = Job.make("noop", {
  payload: Schema.Struct({}),
  handler: () =>
    Effect.flatMap(Job.JobContext, (context) =>
      Effect.sync(() => {
        const started = Date.now()
        if (Option.isSome(context.recurring)) samples.push(started - context.recurring.value.at.getTime())
      }))
})

const Database = JobClient.layer({ schema }).pipe(
  Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), applicationName: "effect-workers-bench" }))
)

/**
 * When jobs are enqueued: each firing transaction notifies the runners on
 * the schema's channel (`effect_workers:<schema>`, payload `j:<queue>`) as it
 * commits, and nothing else enqueues here.
 */
const enqueueTimes = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = await connect(url)
    const times: Array<number> = []
    client.on("notification", (notification) => {
      if (notification.payload?.startsWith("j:") === true) times.push(Date.now())
    })
    await client.query(`LISTEN ${pg.escapeIdentifier(`effect_workers:${schema}`)}`)
    return { client, times }
  }),
  ({ client }) => Effect.promise(() => client.end())
)

/** Says this process is up, waits for the others, and returns the tick they all derive from the same rows. */
const meet = (processes: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = sql`${sql(schema)}.${sql(meetingTable)}`
    yield* sql`INSERT INTO ${table} (pid) VALUES (${process.pid})`
    while (true) {
      const [{ last, ready }] = yield* sql<{ readonly ready: number; readonly last: number }>`
        SELECT count(*)::int AS ready, (extract(epoch FROM max(at)) * 1000)::float8 AS last FROM ${table}`
      if (ready >= processes) return new Date(Math.ceil((last + tickLeadMs) / 1_000) * 1_000)
      yield* Effect.sleep("100 millis")
    }
  })

const lateness = (processes: number) =>
  Effect.gen(function*() {
    yield* Layer.build(JobRunner.layer({ jobs: [Noop] }))
    const { times } = yield* enqueueTimes
    const tick = yield* meet(processes)
    const definitions = Array.from(
      { length: dueCount },
      (_, i) => Recurring.make(`due-${i}`, { job: Noop, payload: {}, every: "1 hour", start: tick })
    )
    yield* Layer.build(Recurring.layer({ definitions }))
    const readyAt = Date.now()
    const sql = yield* SqlClient.SqlClient
    // Other processes may run some of the jobs: ask the database when they are all done.
    yield* Effect.promise(() => sleepUntil(tick.getTime() + 200))
    while (Date.now() < tick.getTime() + latenessDeadlineMs) {
      const [{ completed }] = yield* sql<{ readonly completed: number }>`
        SELECT count(*)::int AS completed FROM ${sql(schema)}.jobs
        WHERE recurring_tick = ${tick} AND state = 'completed'`
      if (completed >= dueCount) break
      yield* Effect.sleep("250 millis")
    }
    const result: LatenessResult = {
      role: "lateness",
      readyAt,
      tick: tick.getTime(),
      samples,
      enqueuedMs: lastIn(times, tick.getTime(), Date.now())
    }
    return result
  }).pipe(Effect.scoped, Effect.provide(Database))

const dbTime = (statsUrl: string, database: string) =>
  Effect.gen(function*() {
    const definitions = Array.from(
      { length: minutelyCount },
      (_, i) => Recurring.make(`minutely-${i}`, { job: Noop, payload: {}, cron: "* * * * *" })
    )
    const { times } = yield* enqueueTimes
    yield* Layer.build(Recurring.layer({ definitions }))
    const readyAt = Date.now()
    const { activeMs, window } = yield* Effect.promise(() => measureWindow(statsUrl, database, readyAt))
    const sql = yield* SqlClient.SqlClient
    const [counts] = yield* sql<{ readonly jobs: number; readonly definitions: number }>`
      SELECT count(*)::int AS jobs, count(DISTINCT recurring_id)::int AS definitions
      FROM ${sql(schema)}.jobs WHERE recurring_tick = ${new Date(window.minute)}`
    const result: DbTimeResult = {
      role: "db-time",
      readyAt,
      windowStart: window.start,
      windowEnd: window.end,
      tick: window.minute,
      activeMs,
      ...counts,
      enqueuedMs: lastIn(times, window.minute, window.end)
    }
    return result
  }).pipe(Effect.scoped, Effect.provide(Database))

// ---- graphile-worker --------------------------------------------------------------------------

interface GraphileCronItem {
  readonly task: string
  readonly match: string
  readonly identifier: string
  readonly payload?: Record<string, unknown>
}
interface GraphileCron extends GraphileWorker {
  readonly parseCronItems: (items: Array<GraphileCronItem>) => Array<unknown>
}

/** graphile-worker, and when each minute's crontab jobs were enqueued (`cron:scheduled`), by minute. */
const graphile = async () => {
  const module = (await import(graphileSpecifier)) as GraphileCron
  const logger = new module.Logger(() => quietLog)
  const events = new EventEmitter()
  const scheduled = new Map<number, number>()
  events.on("cron:scheduled", ({ timestamp }: { readonly timestamp: number }) => scheduled.set(timestamp, Date.now()))
  const enqueuedMs = (minute: number) => {
    const at = scheduled.get(minute)
    return at === undefined ? undefined : at - minute
  }
  return { module, worker: { connectionString: url, schema, logger, events }, enqueuedMs }
}

/** graphile-worker's crontab is in UTC at minute granularity: an expression for that one minute. */
const cronAt = (tick: Date) =>
  `${tick.getUTCMinutes()} ${tick.getUTCHours()} ${tick.getUTCDate()} ${tick.getUTCMonth() + 1} *`

const graphileLateness = async (): Promise<LatenessResult> => {
  const { enqueuedMs, module, worker } = await graphile()
  const tick = new Date(Math.ceil((Date.now() + tickLeadMs + 2_000) / 60_000) * 60_000)
  const match = cronAt(tick)
  const parsedCronItems = module.parseCronItems(
    Array.from({ length: dueCount }, (_, i) => ({ task: "noop", match, identifier: `due-${i}` }))
  )
  const runner = await module.run({
    preset: { worker: { ...worker, ...graphileBest } },
    parsedCronItems,
    taskList: {
      noop: async (payload: { readonly _cron?: { readonly ts: string } }) => {
        const started = Date.now()
        if (payload._cron !== undefined) samples.push(started - Date.parse(payload._cron.ts))
      }
    },
    noHandleSignals: true
  })
  const readyAt = Date.now()
  // Only this process runs them: its own count says when they are all done.
  while (samples.length < dueCount && Date.now() < tick.getTime() + latenessDeadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await runner.stop()
  return {
    role: "graphile-lateness",
    readyAt,
    tick: tick.getTime(),
    samples,
    enqueuedMs: enqueuedMs(tick.getTime())
  }
}

const graphileDbTime = async (statsUrl: string, database: string): Promise<DbTimeResult> => {
  const { enqueuedMs, module, worker } = await graphile()
  const parsedCronItems = module.parseCronItems(
    Array.from({ length: minutelyCount }, (_, i) => ({
      task: "noop",
      match: "* * * * *",
      identifier: `minutely-${i}`,
      // Which item a job stands for, to count them.
      payload: { n: i }
    }))
  )
  // graphile-worker fires its crontab from its job runner; with no task named `noop` it runs none of the jobs.
  const runner = await module.run({
    preset: { worker },
    parsedCronItems,
    taskList: { other: async () => {} },
    noHandleSignals: true
  })
  const readyAt = Date.now()
  try {
    const { activeMs, window } = await measureWindow(statsUrl, database, readyAt)
    const client = await connect(url)
    try {
      const { rows } = await client.query<{ jobs: number; definitions: number }>(
        `SELECT count(*)::int AS jobs, count(DISTINCT payload::jsonb ->> 'n')::int AS definitions
         FROM ${pg.escapeIdentifier(schema)}._private_jobs
         WHERE (payload::jsonb -> '_cron' ->> 'ts')::timestamptz = $1::timestamptz`,
        [new Date(window.minute).toISOString()]
      )
      return {
        role: "graphile-db-time",
        readyAt,
        windowStart: window.start,
        windowEnd: window.end,
        tick: window.minute,
        activeMs,
        ...rows[0]!,
        enqueuedMs: enqueuedMs(window.minute)
      }
    } finally {
      await client.end()
    }
  } finally {
    await runner.stop()
  }
}

// ---- main -------------------------------------------------------------------------------------

const run = (): Promise<ChildResult> => {
  switch (role) {
    case "lateness":
      return Effect.runPromise(lateness(Number(rest[0])))
    case "db-time":
      return Effect.runPromise(dbTime(rest[0]!, rest[1]!))
    case "graphile-lateness":
      return graphileLateness()
    case "graphile-db-time":
      return graphileDbTime(rest[0]!, rest[1]!)
  }
}

const result = await run()
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
