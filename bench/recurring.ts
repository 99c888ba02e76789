/**
 * Recurring suite: how late recurring jobs start when many are due in the
 * same second, and how much database time a scheduler with many definitions
 * firing every minute costs, for effect-workers' `Recurring` against
 * graphile-worker's crontab. Each configuration runs in fresh child
 * processes, in a schema of its own, in a database created for the run on
 * the server at `DATABASE_URL` (or an embedded PostgreSQL), so that
 * `pg_stat_database` counts the benchmark alone. Prints tables, then one JSON
 * line of every figure.
 */
import { Effect, Exit, Scope } from "effect"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { runJsonChild } from "./child.js"
import { serverUrl } from "./database.js"
import {
  type DbTimeResult,
  dueCount,
  type LatenessResult,
  maxFiringMs,
  meetingTable,
  minutelyCount,
  readyMarginMs,
  type Role,
  windowMs
} from "./recurring-config.js"
import { formatTable } from "./table.js"

/** Target for effect-workers: every job started within this long of its tick. */
const targetLatenessMs = 1_000
/** Schedulers for the multi-process lateness run. */
const replicas = 3

const child = fileURLToPath(new URL("./recurring-child.ts", import.meta.url))
const benchDatabase = "effect_workers_bench_recurring"

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url, application_name: "effect-workers-bench" })
  await client.connect()
  return client
}

const withClient = async <A>(url: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = await connect(url)
  try {
    await client.query("SET client_min_messages = warning")
    return await f(client)
  } finally {
    await client.end()
  }
}

interface Setup {
  /** The benchmark's database. */
  readonly url: string
  readonly database: string
  /** Where `pg_stat_database` is read: another database when the benchmark has its own. */
  readonly statsUrl: string
  /** Why the database time runs are left out, if they are. */
  readonly noDbTime: string | undefined
  readonly created: boolean
}

/** Creates a database of the suite's own on the server, or falls back to the server's database. */
const setUp = (server: string): Promise<Setup> =>
  withClient(server, async (client) => {
    const { rows } = await client.query<{ version: number; track: string; database: string }>(
      `SELECT current_setting('server_version_num')::int AS version, current_setting('track_activities') AS track,
         current_database() AS database`
    )
    const { version, track, database } = rows[0]!
    const noDbTime = version < 140_000
      ? `pg_stat_database.active_time needs PostgreSQL 14 or later (server ${version})`
      : track !== "on"
      ? "pg_stat_database.active_time needs track_activities = on"
      : undefined
    try {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(benchDatabase)} WITH (FORCE)`)
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(benchDatabase)}`)
      const url = new URL(server)
      url.pathname = `/${benchDatabase}`
      return { url: url.href, database: benchDatabase, statsUrl: server, noDbTime, created: true }
    } catch (error) {
      console.error(
        `recurring suite: cannot create a database (${String(error)}); using ${database}, ` +
          "whose other sessions count in the database time"
      )
      return { url: server, database, statsUrl: server, noDbTime, created: false }
    }
  })

const tearDown = (server: string, setup: Setup) =>
  setup.created
    ? withClient(server, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(benchDatabase)} WITH (FORCE)`)).then(() => {})
    : Promise.resolve()

const dropSchema = (url: string, schema: string) =>
  withClient(url, (client) => client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`))

/** Runs `f` on a schema dropped before and after. */
const inSchema = async <A>(url: string, schema: string, f: () => Promise<A>): Promise<A> => {
  await dropSchema(url, schema)
  try {
    return await f()
  } finally {
    await dropSchema(url, schema)
  }
}

const runChild = <A>(role: Role, setup: Setup, schema: string, args: ReadonlyArray<string>, what: string) =>
  runJsonChild<A>(child, [role, setup.url, schema, ...args], what)

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

interface Lateness {
  readonly label: string
  readonly jobs: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly late: number
  /** From the tick until its last job was enqueued. */
  readonly enqueuedMs: number | undefined
  readonly problems: ReadonlyArray<string>
}

/** Jobs enqueued for a tick and how many definitions they stand for, counted where jobs are kept once run. */
interface Enqueued {
  readonly jobs: number
  readonly definitions: number
}

const summarise = (
  label: string,
  results: ReadonlyArray<LatenessResult>,
  enqueued: Enqueued | undefined
): Lateness => {
  const sorted = results.flatMap((r) => r.samples).sort((a, b) => a - b)
  const problems: Array<string> = []
  const slow = results.filter((r) => r.readyAt > r.tick - readyMarginMs)
  if (slow.length > 0) problems.push(`${slow.length} process(es) not ready ${readyMarginMs} ms before the tick`)
  if (new Set(results.map((r) => r.tick)).size > 1) problems.push("the processes did not agree on the tick")
  if (sorted.length !== dueCount) problems.push(`${sorted.length} of ${dueCount} jobs ran`)
  if (enqueued !== undefined && (enqueued.jobs !== dueCount || enqueued.definitions !== dueCount)) {
    problems.push(`${enqueued.jobs} jobs enqueued for ${enqueued.definitions} definitions`)
  }
  const enqueuedMs = results.map((r) => r.enqueuedMs).filter((ms) => ms !== undefined)
  return {
    label,
    jobs: sorted.length,
    p50: sorted.length > 0 ? percentile(sorted, 50) : NaN,
    p99: sorted.length > 0 ? percentile(sorted, 99) : NaN,
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    late: sorted.filter((ms) => ms > targetLatenessMs).length,
    // Each process sees the last commit once its event loop is free: the earliest is the closest.
    enqueuedMs: enqueuedMs.length > 0 ? Math.min(...enqueuedMs) : undefined,
    problems
  }
}

/** effect-workers: `processes` processes, each a scheduler and a runner, on one schema, all due at one tick. */
const effectLateness = (setup: Setup, processes: number): Promise<Lateness> => {
  const schema = `bench_recurring_lateness_${processes}`
  return inSchema(setup.url, schema, async () => {
    await withClient(setup.url, async (client) => {
      await client.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`)
      await client.query(
        `CREATE TABLE ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(meetingTable)}
           (pid integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`
      )
    })
    const results = await Promise.all(
      Array.from(
        { length: processes },
        (_, i) =>
          runChild<LatenessResult>(
            "lateness",
            setup,
            schema,
            [String(processes)],
            `lateness, process ${i + 1}/${processes}`
          )
      )
    )
    const enqueued = await withClient(setup.url, async (client) => {
      const { rows } = await client.query<Enqueued>(
        `SELECT count(*)::int AS jobs, count(DISTINCT recurring_id)::int AS definitions
         FROM ${pg.escapeIdentifier(schema)}.jobs WHERE recurring_tick = $1::timestamptz`,
        [new Date(results[0]!.tick).toISOString()]
      )
      return rows[0]!
    })
    const label = processes === 1
      ? "effect-workers, 1 process (scheduler + runner)"
      : `effect-workers, ${processes} processes (scheduler + runner each)`
    return summarise(label, results, enqueued)
  })
}

const graphileLateness = (setup: Setup): Promise<Lateness> => {
  const schema = "bench_recurring_graphile_lateness"
  return inSchema(setup.url, schema, async () => {
    const result = await runChild<LatenessResult>("graphile-lateness", setup, schema, [], "graphile lateness")
    // A completed job is deleted: the count of handler runs stands for the count of jobs.
    return summarise("graphile-worker, 1 process (crontab, documented best)", [result], undefined)
  })
}

const dbTime = (setup: Setup, role: "db-time" | "graphile-db-time"): Promise<DbTimeResult> => {
  const schema = `bench_recurring_${role.replaceAll("-", "_")}`
  return inSchema(
    setup.url,
    schema,
    () => runChild<DbTimeResult>(role, setup, schema, [setup.statsUrl, setup.database], role)
  )
}

const scope = Effect.runSync(Scope.make())
const measured: {
  ours?: Lateness
  oursReplicas?: Lateness
  theirs?: Lateness
  oursDb?: DbTimeResult
  theirsDb?: DbTimeResult
} = {}
const failures: Array<string> = []
let skippedDbTime: string | undefined

const attempt = async <A>(what: string, f: () => Promise<A>, onResult: (a: A) => void) => {
  console.error(`  ${what}`)
  const started = performance.now()
  try {
    onResult(await f())
    console.error(`    took ${((performance.now() - started) / 1000).toFixed(0)} s`)
  } catch (error) {
    console.error(String(error))
    failures.push(what)
  }
}

try {
  const server = await serverUrl("recurring", scope)
  const setup = await setUp(server)
  skippedDbTime = setup.noDbTime
  try {
    console.error(
      `recurring suite: lateness of ${dueCount.toLocaleString("en-US")} jobs due at once (1 and ${replicas} ` +
        `processes, and graphile-worker), and database time over ${windowMs / 1000} s with ` +
        `${minutelyCount.toLocaleString("en-US")} definitions every minute (effect-workers and graphile-worker)`
    )
    // Ordered so that the runs aligned on whole minutes wait the least.
    await attempt("graphile-worker, lateness", () => graphileLateness(setup), (r) => measured.theirs = r)
    if (skippedDbTime === undefined) {
      await attempt("effect-workers, database time", () => dbTime(setup, "db-time"), (r) => measured.oursDb = r)
    }
    await attempt("effect-workers, lateness, 1 process", () => effectLateness(setup, 1), (r) => measured.ours = r)
    await attempt(
      `effect-workers, lateness, ${replicas} processes`,
      () => effectLateness(setup, replicas),
      (r) => measured.oursReplicas = r
    )
    if (skippedDbTime === undefined) {
      await attempt("graphile-worker, database time", () => dbTime(setup, "graphile-db-time"), (r) => {
        measured.theirsDb = r
      })
    }
  } finally {
    await tearDown(server, setup)
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const round = (n: number, digits: number) => Number(n.toFixed(digits))
const whole = (n: number) => Math.round(n).toLocaleString("en-US")
const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "-" : whole(n))
const verdict = (met: boolean) => (met ? "met" : "MISSED")

const { ours, oursDb, oursReplicas, theirs, theirsDb } = measured
const latenesses = [ours, oursReplicas, theirs].filter((r) => r !== undefined)
const dbTimes = [oursDb, theirsDb].filter((r) => r !== undefined)

console.log(
  `Tick lateness: ${dueCount.toLocaleString("en-US")} definitions due at the same tick (effect-workers: ` +
    `every "1 hour" from one start; graphile-worker: a crontab item each for one minute), from the tick to each ` +
    "job's handler start; enqueued: from the tick until its last job was committed"
)
console.log(
  formatTable(
    ["configuration", "jobs", "p50 ms", "p99 ms", "max ms", `> ${targetLatenessMs / 1000} s`, "enqueued ms"],
    latenesses.map((r) => [
      r.label,
      r.jobs.toLocaleString("en-US"),
      ms(r.p50),
      ms(r.p99),
      ms(r.max),
      r.late.toLocaleString("en-US"),
      ms(r.enqueuedMs)
    ]),
    ["left", "right", "right", "right", "right", "right", "right"]
  )
)
console.log("")

const dbLabels: Record<DbTimeResult["role"], string> = {
  "db-time": "effect-workers (Recurring.layer, no runner)",
  "graphile-db-time": "graphile-worker (crontab, no task for it)"
}
if (skippedDbTime !== undefined) {
  console.log(`Database time: left out: ${skippedDbTime}`)
} else {
  console.log(
    `Database time: ${minutelyCount.toLocaleString("en-US")} definitions firing every minute, one scheduler ` +
      `process; growth of pg_stat_database.active_time over ${windowMs / 1000} s holding one firing and the ` +
      "idle polling around it"
  )
  console.log(
    formatTable(
      ["implementation", "db ms/min", "jobs for the tick", "definitions", "enqueued ms"],
      dbTimes.map((r) => [
        dbLabels[r.role],
        r.activeMs.toFixed(1),
        r.jobs.toLocaleString("en-US"),
        r.definitions.toLocaleString("en-US"),
        ms(r.enqueuedMs)
      ]),
      ["left", "right", "right", "right", "right"]
    )
  )
}
console.log("")

const figures: Record<string, number> = {}
const problems: Array<string> = []
for (const r of latenesses) for (const problem of r.problems) problems.push(`${r.label}: ${problem}`)
const latenessFigures = (prefix: string, suffix: string, r: Lateness) => {
  figures[`${prefix}tick_lateness${suffix}_p50_ms`] = round(r.p50, 1)
  figures[`${prefix}tick_lateness${suffix}_p99_ms`] = round(r.p99, 1)
  figures[`${prefix}tick_lateness${suffix}_max_ms`] = round(r.max, 1)
  figures[`${prefix}jobs_late_over_1s${suffix}`] = r.late
  if (r.enqueuedMs !== undefined) figures[`${prefix}tick_enqueued${suffix}_ms`] = round(r.enqueuedMs, 1)
}
if (ours !== undefined) {
  figures.definitions_due = dueCount
  latenessFigures("", "", ours)
  console.log(
    `effect-workers lateness: p99 ${ms(ours.p99)} ms, max ${ms(ours.max)} ms; ${ours.late} of ${ours.jobs} jobs ` +
      `started more than ${targetLatenessMs / 1000} s after their tick (target: none, ` +
      `${verdict(ours.late === 0 && ours.jobs === dueCount)})`
  )
}
if (oursReplicas !== undefined) {
  latenessFigures("", `_${replicas}_processes`, oursReplicas)
  console.log(
    `effect-workers lateness with ${replicas} processes: p99 ${ms(oursReplicas.p99)} ms, max ` +
      `${ms(oursReplicas.max)} ms; ${oursReplicas.late} of ${oursReplicas.jobs} jobs over ` +
      `${targetLatenessMs / 1000} s`
  )
}
if (theirs !== undefined) latenessFigures("graphile_", "", theirs)
if (ours !== undefined && theirs !== undefined && theirs.p99 > 0) {
  figures.tick_lateness_p99_ratio_vs_graphile = round(ours.p99 / theirs.p99, 3)
}
const dbFigures = (prefix: string, what: string, r: DbTimeResult) => {
  figures[`${prefix}db_ms_per_minute_10k_${what}`] = round(r.activeMs, 1)
  figures[`${prefix}jobs_enqueued_10k_tick`] = r.jobs
  if (r.enqueuedMs !== undefined) figures[`${prefix}fire_10k_enqueued_ms`] = round(r.enqueuedMs, 1)
  if (r.jobs !== minutelyCount || r.definitions !== minutelyCount) {
    problems.push(`${dbLabels[r.role]}: ${r.jobs} jobs enqueued for ${r.definitions} definitions at the tick`)
  }
  if (r.enqueuedMs === undefined || r.enqueuedMs > maxFiringMs) {
    problems.push(
      `${dbLabels[r.role]}: the firing did not end within ${maxFiringMs / 1000} s; the window misses some of it`
    )
  }
}
if (oursDb !== undefined) {
  dbFigures("", "definitions", oursDb)
  console.log(
    `effect-workers database time: ${oursDb.activeMs.toFixed(1)} ms in ${windowMs / 1000} s with ` +
      `${minutelyCount.toLocaleString("en-US")} definitions; ${oursDb.jobs.toLocaleString("en-US")} jobs enqueued ` +
      `for ${oursDb.definitions.toLocaleString("en-US")} definitions at the tick ` +
      `${new Date(oursDb.tick).toISOString()} (expected ${minutelyCount.toLocaleString("en-US")} each, ` +
      `${oursDb.jobs === minutelyCount && oursDb.definitions === minutelyCount ? "ok" : "MISMATCH"})`
  )
}
if (theirsDb !== undefined) dbFigures("graphile_", "crontab", theirsDb)
if (oursDb !== undefined && theirsDb !== undefined && theirsDb.activeMs > 0) {
  figures.db_ms_ratio_vs_graphile = round(oursDb.activeMs / theirsDb.activeMs, 3)
}
if (ours !== undefined && theirs !== undefined) {
  console.log(
    `effect-workers / graphile-worker: lateness p99 ${(ours.p99 / theirs.p99).toFixed(2)}x` +
      (oursDb !== undefined && theirsDb !== undefined
        ? `, database time ${(oursDb.activeMs / theirsDb.activeMs).toFixed(2)}x`
        : "")
  )
}
for (const problem of problems) console.log(`! ${problem}`)
if (failures.length > 0) console.log(`! failed, left out: ${failures.join(", ")}`)
console.log(JSON.stringify(figures))
process.exitCode = failures.length > 0 || problems.length > 0 ? 1 : 0
