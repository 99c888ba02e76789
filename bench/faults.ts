/**
 * Faults suite: how durable jobs fare when runner processes die and their
 * connections are cut. Real runner processes (bench/faults-child.ts:
 * `JobRunner.layer` with default settings, lease 30 s, under `Host.run`) on
 * one database: the server at `DATABASE_URL`, or an embedded PostgreSQL
 * started for the run. Each part works in a schema of its own, dropped
 * before and after.
 *
 * - storm: kill -9 of runners one after another beside live runners; how long
 *   after each kill the jobs the killed runner held were claimable again.
 * - crash loop: runners that each live under half a lease, killed one after
 *   another with no long-lived runner beside them; the same figure.
 * - connections: two runners on a stream of short jobs while their claim
 *   connections, then all their connections, are terminated; runner processes
 *   that exited, jobs completed, jobs lost.
 *
 * Prints tables, then one JSON line of every figure. Reports; never asserts.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, Logger, ManagedRuntime, Redacted, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, mkdirSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import pg from "pg"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import { serverUrl } from "./database.js"
import { applicationName, jobName, Payload, readyLine } from "./faults-config.js"
import { formatTable, type Row } from "./table.js"

// ---- settings ---------------------------------------------------------------------------------

const parts = ["storm", "crash-loop", "connections"] as const
type Part = (typeof parts)[number]

const count = (name: string, fallback: number, min = 1): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got ${raw}`)
  return n
}

const selectedParts = (): ReadonlyArray<Part> => {
  const raw = process.env.FAULTS_PARTS
  if (raw === undefined || raw === "") return parts
  const names = raw.split(",").map((name) => name.trim())
  const unknown = names.filter((name) => !(parts as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0) throw new Error(`FAULTS_PARTS: unknown part(s) ${unknown.join(", ")}; use ${parts.join(",")}`)
  return names as ReadonlyArray<Part>
}

const settings = {
  parts: selectedParts(),
  /** Storm: runners that live throughout, doomed runners alive at a time, kills. */
  stormLive: count("FAULTS_STORM_LIVE", 3),
  stormDoomed: count("FAULTS_STORM_DOOMED", 2),
  stormKills: count("FAULTS_STORM_KILLS", 12),
  /** Storm: a doomed runner is killed this long after it is ready; kills are at least this / doomed apart. */
  stormLifeMs: 8_000,
  /** Crash loop: runners started and killed one after another. */
  crashRounds: count("FAULTS_CRASH_ROUNDS", 6),
  /** Connections: length of each phase of connection kills. */
  connectionPhaseMs: count("FAULTS_CONNECTION_SECONDS", 30) * 1_000,
  /** When set, every runner's output is kept in `<dir>/<tag>.log`. */
  logDir: process.env.FAULTS_LOG_DIR === "" ? undefined : process.env.FAULTS_LOG_DIR
}

/** Storm and crash-loop jobs sleep this long (uniform), so that a runner always has some in flight. */
const longJobMs = { min: 2_000, max: 5_000 }
/** Storm and crash loop: jobs are enqueued whenever fewer than this many are available. */
const longBacklog = 150
/** Connections: a job of `shortJobMs` every `streamEveryMs / streamBatch` ms. */
const shortJobMs = 10
const streamEveryMs = 100
const streamBatch = 20
const connectionWarmupMs = 5_000
const claimKillEveryMs = 100
const allKillEveryMs = 2_000
/** How often the jobs of killed runners are looked at. */
const watchEveryMs = 100
/** A kill whose jobs are not all claimable again this long after the last kill: given up, reported. */
const rescueDeadlineMs = 150_000
/** After the connection kills, jobs not finished within this long are reported as lost. */
const finishDeadlineMs = 120_000
/** A runner not ready this long after its start has failed. */
const readyTimeoutMs = 60_000
/** At the end, runners not stopped this long after SIGTERM are killed. */
const stopTimeoutMs = 30_000
/** Claim connections are the sessions whose statement is the claim (or the setting it runs first). */
const claimSession = "(query LIKE '%FOR UPDATE SKIP LOCKED%' OR query LIKE 'SET synchronous_commit%')"

/** Targets: jobs of a crashed runner claimable again within the default lease; no runner exits. */
const targets = { rescueMaxS: 30, runnerExits: 0, jobsLost: 0 }

const childScript = fileURLToPath(new URL("./faults-child.ts", import.meta.url))

// ---- helpers ----------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))
const now = () => performance.now()
const seconds = (ms: number) => (ms / 1000).toFixed(1)
const round = (n: number, digits: number) => Number(n.toFixed(digits))
const verdict = (met: boolean) => (met ? "met" : "MISSED")
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
const randomMillis = () => Math.round(longJobMs.min + Math.random() * (longJobMs.max - longJobMs.min))
const progress = (line: string) => process.stderr.write(`    ${line}\n`)

const SleepJob = Job.make(jobName, { payload: Payload, handler: () => Effect.void })

/** The suite's own connections: never tagged as a runner's, so never terminated. */
const adminName = "effect-workers-bench"

// ---- runner processes -------------------------------------------------------------------------

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A runner process that exited without being killed or stopped by the suite. */
interface Unexpected {
  readonly part: string
  readonly tag: string
  readonly exit: Exited
  /** Its last lines of output. */
  readonly lines: ReadonlyArray<string>
}

const unexpectedExits: Array<Unexpected> = []
/** Where unexpected exits are attributed. */
let currentPart = ""
const everyRunner = new Set<Runner>()

class Runner {
  readonly proc: ChildProcess
  /** Resolves with the runner id once the process runs. */
  readonly ready: Promise<string>
  readonly exited: Promise<Exited>
  readonly spawnedAt = now()
  readyAt: number | undefined
  id: string | undefined
  exit: Exited | undefined
  /** Killed or stopped by the suite: its exit is expected. */
  ended = false
  private readonly lines: Array<string> = []

  constructor(readonly tag: string, server: string, schema: string) {
    const url = new URL(server)
    url.searchParams.set("application_name", applicationName(tag))
    this.proc = spawn(process.execPath, [...process.execArgv, childScript, url.href, schema], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    everyRunner.add(this)
    if (settings.logDir !== undefined) {
      mkdirSync(settings.logDir, { recursive: true })
      const log = createWriteStream(join(settings.logDir, `${tag}.log`))
      this.proc.stdout!.pipe(log, { end: false })
      this.proc.stderr!.pipe(log, { end: false })
      this.proc.on("close", () => log.end())
    }
    let onReady: (id: string) => void = () => {}
    let onFailed: (error: Error) => void = () => {}
    this.ready = new Promise<string>((resolve, reject) => {
      onReady = resolve
      onFailed = reject
    })
    // Awaited by whoever needs it; a start that fails unobserved must not end the suite.
    this.ready.catch(() => {})
    const timeout = setTimeout(() => {
      onFailed(new Error(`runner ${tag} not ready after ${readyTimeoutMs / 1000} s:\n${this.output()}`))
      this.kill()
    }, readyTimeoutMs)
    const onLine = (line: string) => {
      this.lines.push(line)
      if (this.lines.length > 200) this.lines.shift()
      if (this.id === undefined && line.startsWith(readyLine)) {
        this.id = line.slice(readyLine.length).trim()
        this.readyAt = now()
        clearTimeout(timeout)
        onReady(this.id)
      }
    }
    createInterface({ input: this.proc.stdout! }).on("line", onLine)
    createInterface({ input: this.proc.stderr! }).on("line", onLine)
    this.exited = new Promise<Exited>((resolve) => {
      this.proc.on("exit", (code, signal) => {
        clearTimeout(timeout)
        this.exit = { code, signal }
        everyRunner.delete(this)
        onFailed(new Error(`runner ${tag} exited (${describeExit(this.exit)}) before it was ready:\n${this.output()}`))
        if (!this.ended) {
          const lines = [...this.lines]
          unexpectedExits.push({ part: currentPart, tag, exit: this.exit, lines })
          progress(`! runner ${tag} exited on its own (${describeExit(this.exit)}):`)
          for (const line of why(lines)) progress(`    ${line}`)
        }
        resolve(this.exit)
      })
    })
  }

  get alive(): boolean {
    return this.exit === undefined
  }

  output(last = 30): string {
    return this.lines.slice(-last).map((line) => `      ${line}`).join("\n")
  }

  /** kill -9. */
  kill(): void {
    this.ended = true
    if (this.alive) this.proc.kill("SIGKILL")
  }

  /** SIGTERM, then SIGKILL if it has not stopped within {@link stopTimeoutMs}. */
  async stop(): Promise<Exited> {
    if (!this.alive) return this.exit!
    this.ended = true
    this.proc.kill("SIGTERM")
    const timer = setTimeout(() => {
      progress(`! runner ${this.tag} still running ${stopTimeoutMs / 1000} s after SIGTERM: killed`)
      this.proc.kill("SIGKILL")
    }, stopTimeoutMs)
    const exit = await this.exited
    clearTimeout(timer)
    if (exit.code !== 0) progress(`! runner ${this.tag} stopped with ${describeExit(exit)}:\n${this.output(10)}`)
    return exit
  }
}

/**
 * The lines of a runner's last output that say why it ended: those of a
 * crash report after its last log line (Node's report of an uncaught error),
 * else its last error log lines, else its last lines.
 */
const why = (lines: ReadonlyArray<string>): ReadonlyArray<string> => {
  let lastLog = -1
  lines.forEach((line, i) => {
    if (/^(\[\d|timestamp=)/.test(line)) lastLog = i
  })
  const report = lines.slice(lastLog + 1).filter((line) =>
    /Unhandled|^\w*Error\b|^error:|^Emitted|^Uncaught/.test(line)
  )
  if (report.length > 0) return report.slice(0, 3).map((line) => line.trim())
  const errors = lines.filter((line) => /\b(ERROR|FATAL)\b|level=(error|fatal)/i.test(line))
  return (errors.length > 0 ? errors : lines).slice(-3)
}

const describeExit = (exit: Exited) => (exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`)

const killEveryRunner = () => {
  for (const runner of everyRunner) runner.kill()
}
process.on("exit", killEveryRunner)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killEveryRunner()
    process.exit(130)
  })
}

// ---- one part's schema ------------------------------------------------------------------------

interface Context {
  readonly server: string
  readonly schema: string
  /** `<schema>.jobs`, quoted. */
  readonly jobs: string
  readonly admin: pg.Pool
  readonly enqueue: (payloads: ReadonlyArray<Payload>) => Promise<void>
  readonly count: (where: string, values?: ReadonlyArray<unknown>) => Promise<number>
  readonly start: (tag: string) => Runner
  readonly runners: Array<Runner>
}

let nextN = 0

/** Runs `f` in a fresh schema, migrated by a `JobClient`; stops its runners and drops it afterwards. */
const inSchema = async <A>(server: string, schema: string, f: (context: Context) => Promise<A>): Promise<A> => {
  const admin = new pg.Pool({ connectionString: server, application_name: adminName, max: 4 })
  admin.on("error", () => {})
  const drop = async () => {
    const client = await admin.connect()
    try {
      await client.query("SET client_min_messages = warning")
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
    } finally {
      client.release()
    }
  }
  await drop()
  const sql = PgClient.layer({ url: Redacted.make(server), applicationName: adminName })
  // Logs (the migrations') go to stderr with the progress: stdout is the report.
  const logger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))
  const runtime = ManagedRuntime.make(
    JobClient.layer({ schema }).pipe(Layer.provideMerge(sql), Layer.provide(logger))
  )
  const runners: Array<Runner> = []
  try {
    const client = await runtime.runPromise(JobClient.JobClient)
    const jobs = `${pg.escapeIdentifier(schema)}.jobs`
    const context: Context = {
      server,
      schema,
      jobs,
      admin,
      enqueue: (payloads) => runtime.runPromise(client.enqueueMany(SleepJob, payloads)).then(() => {}),
      count: async (where, values = []) => {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${jobs} WHERE ${where}`,
          [...values]
        )
        return rows[0]!.n
      },
      start: (tag) => {
        const runner = new Runner(tag, server, schema)
        runners.push(runner)
        return runner
      },
      runners
    }
    return await f(context)
  } finally {
    await Promise.all(runners.map((runner) => runner.stop()))
    await runtime.dispose()
    await drop()
    await admin.end()
  }
}

/** Keeps at least {@link longBacklog} long jobs available, until stopped. */
const longJobSupply = (context: Context) => {
  let running = true
  const loop = (async () => {
    while (running) {
      try {
        const available = await context.count("state = 'available'")
        if (available < longBacklog) {
          await context.enqueue(
            Array.from({ length: longBacklog - available }, () => ({ n: nextN++, millis: randomMillis() }))
          )
        }
      } catch (error) {
        progress(`! enqueueing failed: ${String(error)}`)
      }
      await sleep(500)
    }
  })()
  return async () => {
    running = false
    await loop
  }
}

// ---- rescue after kill -9 ---------------------------------------------------------------------

interface Kill {
  readonly tag: string
  readonly runnerId: string
  /** From the runner's spawn to its being ready. */
  readonly startMs: number
  /** From the runner being ready to its kill. */
  readonly livedMs: number
  /** `now()` just before the SIGKILL. */
  readonly at: number
  /** The jobs the runner held at its death: job id to ms after the kill it was first seen rescued. */
  readonly held: Map<string, number | undefined>
  /** Jobs it held right before the kill whose outcome it wrote itself (before it died, or as it died). */
  finishedByItself: number
  /** How its jobs were first seen rescued: `claimed` (by another runner) or their state, with counts. */
  readonly seenAs: Map<string, number>
}

interface JobRow {
  readonly id: string
  readonly state: string
  readonly locked_by: string | null
}

/**
 * Looks at the jobs of killed runners every {@link watchEveryMs}. A job is
 * rescued when its `locked_by` is no longer the dead runner's id (another
 * runner claimed it) or its state is no longer `running` (it is claimable
 * again). One the dead runner itself completed (its last write landed as it
 * died: completed, still `locked_by` it) is not counted as held.
 */
class RescueWatch {
  readonly kills: Array<Kill> = []
  private running = true
  private readonly loop: Promise<void>

  constructor(private readonly context: Context) {
    this.loop = (async () => {
      while (this.running) {
        const started = now()
        try {
          await this.look()
        } catch (error) {
          progress(`! looking at the jobs of killed runners failed: ${String(error)}`)
        }
        await sleep(watchEveryMs - (now() - started))
      }
    })()
  }

  private pending(kills: ReadonlyArray<Kill> = this.kills): Array<string> {
    return kills.flatMap((kill) => [...kill.held].filter(([, at]) => at === undefined).map(([id]) => id))
  }

  /** Marks the rescued jobs. */
  judge(kill: Kill, rows: ReadonlyArray<JobRow>, seenAt: number): void {
    const byId = new Map(rows.map((row) => [row.id, row]))
    for (const [id, at] of kill.held) {
      if (at !== undefined) continue
      const row = byId.get(id)
      if (row?.state === "completed" && row.locked_by === kill.runnerId) {
        kill.held.delete(id)
        kill.finishedByItself++
      } else if (row === undefined || row.state !== "running" || row.locked_by !== kill.runnerId) {
        kill.held.set(id, seenAt - kill.at)
        const as = row === undefined ? "deleted" : row.locked_by !== kill.runnerId ? "claimed" : row.state
        kill.seenAs.set(as, (kill.seenAs.get(as) ?? 0) + 1)
      }
    }
  }

  private async look(): Promise<void> {
    // Only the kills known now: one added while the statement runs has jobs it did not ask about.
    const kills = [...this.kills]
    const ids = this.pending(kills)
    if (ids.length === 0) return
    // The statement's snapshot is taken after this: a job seen rescued was rescued by then.
    const seenAt = now()
    const { rows } = await this.context.admin.query<JobRow>(
      `SELECT id::text AS id, state, locked_by FROM ${this.context.jobs} WHERE id = ANY($1::bigint[])`,
      [ids]
    )
    for (const kill of kills) this.judge(kill, rows, seenAt)
  }

  add(kill: Kill): void {
    this.kills.push(kill)
  }

  get allRescued(): boolean {
    return this.pending().length === 0
  }

  /** Waits until every job of every kill is rescued, or until `deadline` (a `now()`). */
  async settled(deadline: number): Promise<void> {
    while (!this.allRescued && now() < deadline) await sleep(watchEveryMs)
  }

  async stop(): Promise<void> {
    this.running = false
    await this.loop
  }
}

const heldBy = async (context: Context, runnerId: string): Promise<Array<string>> => {
  const { rows } = await context.admin.query<{ id: string }>(
    `SELECT id::text AS id FROM ${context.jobs} WHERE state = 'running' AND locked_by = $1`,
    [runnerId]
  )
  return rows.map((row) => row.id)
}

/** Waits until `runner` holds a running job, at most until `deadline`. */
const untilHolding = async (context: Context, runner: Runner, deadline: number): Promise<void> => {
  while (now() < deadline) {
    if ((await heldBy(context, runner.id!)).length > 0) return
    await sleep(100)
  }
}

/**
 * kill -9 of `runner`, and its jobs watched: those it held right before the
 * kill, and those still `running` under its id once it is dead (a claim it
 * sent as it died may commit after the kill). `afterKill` runs right after
 * the SIGKILL.
 */
const killAndWatch = async (
  context: Context,
  watch: RescueWatch,
  runner: Runner,
  afterKill: () => void = () => {}
): Promise<Kill> => {
  const runnerId = runner.id!
  const before = await heldBy(context, runnerId)
  const at = now()
  runner.kill()
  afterKill()
  await runner.exited
  // Statements the runner had sent may still be running in the server for a moment.
  await sleep(200)
  const seenAt = now()
  const { rows } = await context.admin.query<JobRow>(
    `SELECT id::text AS id, state, locked_by FROM ${context.jobs}
     WHERE id = ANY($1::bigint[]) OR (state = 'running' AND locked_by = $2)`,
    [before, runnerId]
  )
  const kill: Kill = {
    tag: runner.tag,
    runnerId,
    startMs: runner.readyAt! - runner.spawnedAt,
    livedMs: at - runner.readyAt!,
    at,
    held: new Map(rows.map((row) => [row.id, undefined])),
    finishedByItself: 0,
    seenAs: new Map()
  }
  watch.judge(kill, rows, seenAt)
  kill.finishedByItself += before.filter((id) => !rows.some((row) => row.id === id)).length
  watch.add(kill)
  return kill
}

/** The rescue time of a kill: until the last of its jobs was seen rescued; `undefined` if one never was. */
const rescueMs = (kill: Kill): number | undefined => {
  let last = 0
  for (const at of kill.held.values()) {
    if (at === undefined) return undefined
    last = Math.max(last, at)
  }
  return last
}

interface RescueResult {
  readonly kills: ReadonlyArray<Kill>
  /** When the watch ended (a `now()`). */
  readonly endedAt: number
}

/** Until the last job of `kill` was seen rescued, or, if one never was, until the watch ended (a lower bound). */
const rescueOrWaitMs = (result: RescueResult, kill: Kill) => rescueMs(kill) ?? result.endedAt - kill.at

const rescueTable = (result: RescueResult): string =>
  formatTable(
    [
      "kill",
      "runner",
      "start-up s",
      "lived s",
      "jobs held",
      "finished by itself",
      "first rescued s",
      "all rescued s",
      "first seen"
    ],
    result.kills.map((kill, i): Row => {
      const times = [...kill.held.values()]
      const seen = times.filter((at): at is number => at !== undefined)
      return [
        String(i + 1),
        kill.tag,
        seconds(kill.startMs),
        seconds(kill.livedMs),
        String(kill.held.size),
        String(kill.finishedByItself),
        seen.length > 0 ? seconds(Math.min(...seen)) : "-",
        kill.held.size === 0
          ? "-"
          : seen.length === times.length
          ? seconds(rescueOrWaitMs(result, kill))
          : `> ${seconds(rescueOrWaitMs(result, kill))} (${times.length - seen.length} never)`,
        [...kill.seenAs].map(([as, n]) => `${n} ${as}`).join(", ")
      ]
    }),
    ["right", "left", "right", "right", "right", "right", "right", "right", "left"]
  )

interface RescueFigures {
  /** Kills whose runner held jobs at its death. */
  readonly measured: number
  readonly jobs: number
  /** Jobs never seen rescued before the watch ended. */
  readonly unrescued: number
  readonly p50Ms: number | undefined
  /** A lower bound when a job was never seen rescued. */
  readonly maxMs: number | undefined
}

const rescueFigures = (result: RescueResult): RescueFigures => {
  const measured = result.kills.filter((kill) => kill.held.size > 0)
  const sorted = measured.map((kill) => rescueOrWaitMs(result, kill)).sort((a, b) => a - b)
  return {
    measured: measured.length,
    jobs: measured.reduce((sum, kill) => sum + kill.held.size, 0),
    unrescued: measured.reduce((sum, kill) => sum + [...kill.held.values()].filter((at) => at === undefined).length, 0),
    p50Ms: sorted.length > 0 ? percentile(sorted, 50) : undefined,
    maxMs: sorted.at(-1)
  }
}

// ---- storm ------------------------------------------------------------------------------------

/**
 * Live runners throughout, and doomed runners beside them, each killed
 * {@link settings.stormLifeMs} after it is ready (kills at least
 * `stormLifeMs / stormDoomed` apart), a new doomed runner started after each
 * kill; long jobs enqueued all along.
 */
const storm = (server: string): Promise<RescueResult> =>
  inSchema(server, "bench_faults_storm", async (context) => {
    const stopSupply = longJobSupply(context)
    const watch = new RescueWatch(context)
    try {
      const live = Array.from({ length: settings.stormLive }, (_, i) => context.start(`storm-live-${i + 1}`))
      let started = 0
      const startDoomed = () => context.start(`storm-doomed-${++started}`)
      const doomed = Array.from({ length: Math.min(settings.stormDoomed, settings.stormKills) }, startDoomed)
      await Promise.all([...live, ...doomed].map((runner) => runner.ready))
      progress(`${live.length} live and ${doomed.length} doomed runners ready`)
      const spacing = settings.stormLifeMs / settings.stormDoomed
      let lastKill = -Infinity
      for (let k = 0; k < settings.stormKills; k++) {
        const victim = doomed.shift()!
        await victim.ready
        await sleep(Math.max(victim.readyAt! + settings.stormLifeMs, lastKill + spacing) - now())
        await untilHolding(context, victim, now() + 10_000)
        if (!victim.alive) {
          progress(`! ${victim.tag} died before its kill: left out`)
          if (started < settings.stormKills) doomed.push(startDoomed())
          continue
        }
        const kill = await killAndWatch(context, watch, victim, () => {
          if (started < settings.stormKills) doomed.push(startDoomed())
        })
        lastKill = kill.at
        progress(
          `kill ${k + 1}/${settings.stormKills}: ${victim.tag} after ${seconds(kill.livedMs)} s, ` +
            `holding ${kill.held.size} job(s)`
        )
      }
      progress("waiting for the jobs of the killed runners to be rescued")
      await watch.settled(lastKill + rescueDeadlineMs)
      return { kills: watch.kills, endedAt: now() }
    } finally {
      await watch.stop()
      await stopSupply()
    }
  })

// ---- crash loop -------------------------------------------------------------------------------

/** How long the runner of round `round` lives: 3 to 10 s, under half the default lease. */
const crashLifeMs = (round: number) => 3_000 + ((round * 7) % 8) * 1_000

/**
 * One runner at a time, each killed {@link crashLifeMs} after it is ready
 * (once it holds jobs), the next started at once; the runner started after
 * the last kill stays, and the suite waits until it (or an earlier one)
 * rescued every job of the killed runners.
 */
const crashLoop = (server: string): Promise<RescueResult> =>
  inSchema(server, "bench_faults_crash_loop", async (context) => {
    const stopSupply = longJobSupply(context)
    const watch = new RescueWatch(context)
    try {
      let current = context.start("crash-1")
      let lastKill = now()
      for (let round = 0; round < settings.crashRounds; round++) {
        await current.ready
        const readyAt = current.readyAt!
        await untilHolding(context, current, readyAt + crashLifeMs(round))
        // Not holding anything yet: wait a little longer, still under half a lease.
        await untilHolding(context, current, readyAt + 14_000)
        await sleep(readyAt + crashLifeMs(round) - now())
        const victim = current
        if (!victim.alive) {
          progress(`! ${victim.tag} died before its kill: left out`)
          current = context.start(`crash-${round + 2}`)
          continue
        }
        const kill = await killAndWatch(context, watch, victim, () => {
          current = context.start(`crash-${round + 2}`)
        })
        lastKill = kill.at
        progress(
          `kill ${round + 1}/${settings.crashRounds}: ${victim.tag} after ${seconds(kill.livedMs)} s, ` +
            `holding ${kill.held.size} job(s)`
        )
      }
      progress(`${current.tag} stays; waiting for the jobs of the killed runners to be rescued`)
      await current.ready
      await watch.settled(lastKill + rescueDeadlineMs)
      return { kills: watch.kills, endedAt: now() }
    } finally {
      await watch.stop()
      await stopSupply()
    }
  })

// ---- connection kills -------------------------------------------------------------------------

interface ConnectionPhase {
  readonly label: string
  readonly ms: number
  /** Sessions of the runners terminated. */
  readonly terminated: number
  /** Jobs that became completed. */
  readonly completed: number
  /** Runner processes that exited on their own. */
  readonly exits: number
}

interface ConnectionsResult {
  readonly phases: ReadonlyArray<ConnectionPhase>
  readonly enqueued: number
  readonly enqueueFailures: number
  readonly completed: number
  /** The jobs not completed at the end, by state. */
  readonly rest: Readonly<Record<string, number>>
  /** Whether every job reached a final state before {@link finishDeadlineMs}. */
  readonly finished: boolean
}

const finalStates = "('completed', 'discarded', 'cancelled')"

/**
 * Two runners on a steady stream of short jobs: a warm-up, then their claim
 * connections terminated every {@link claimKillEveryMs}, then all their
 * connections every {@link allKillEveryMs}; then the stream stops and the
 * jobs are let finish. A runner process that exits is counted and started
 * again, so that the rest of the part still has two runners.
 */
const connections = (server: string): Promise<ConnectionsResult> =>
  inSchema(server, "bench_faults_connections", async (context) => {
    let stopping = false
    const restarts = [0, 0]
    const current: Array<Runner> = []
    const keep = (slot: number): Runner => {
      const tag = restarts[slot] === 0 ? `conn-${slot + 1}` : `conn-${slot + 1}-restart-${restarts[slot]}`
      restarts[slot]!++
      const runner = context.start(tag)
      current[slot] = runner
      void runner.exited.then(() => {
        if (!runner.ended && !stopping) keep(slot)
      })
      return runner
    }
    await Promise.all([keep(0), keep(1)].map((runner) => runner.ready))
    /** Each phase starts with two running runners: one started again after an exit may still be starting. */
    const bothReady = async () => {
      const deadline = now() + readyTimeoutMs
      while (current.some((runner) => runner.readyAt === undefined || !runner.alive) && now() < deadline) {
        await sleep(100)
      }
    }

    let enqueued = 0
    let enqueueFailures = 0
    let streaming = true
    const stream = (async () => {
      while (streaming) {
        const started = now()
        try {
          await context.enqueue(Array.from({ length: streamBatch }, () => ({ n: nextN++, millis: shortJobMs })))
          enqueued += streamBatch
        } catch (error) {
          enqueueFailures++
          progress(`! enqueueing failed: ${String(error)}`)
        }
        await sleep(streamEveryMs - (now() - started))
      }
    })()

    const terminate = async (claimOnly: boolean) => {
      const { rows } = await context.admin.query<{ n: number }>(
        `SELECT (count(*) FILTER (WHERE pg_terminate_backend(pid)))::int AS n FROM pg_stat_activity
         WHERE application_name LIKE $1 AND pid <> pg_backend_pid()${claimOnly ? ` AND ${claimSession}` : ""}`,
        [`${applicationName("conn-")}%`]
      )
      return rows[0]!.n
    }
    const completedNow = () => context.count("state = 'completed'")
    const phases: Array<ConnectionPhase> = []
    const phase = async (
      label: string,
      ms: number,
      kills?: { readonly everyMs: number; readonly claimOnly: boolean }
    ) => {
      await bothReady()
      currentPart = `connections: ${label}`
      const exitsBefore = unexpectedExits.length
      const completedBefore = await completedNow()
      const started = now()
      let terminated = 0
      if (kills === undefined) await sleep(ms)
      else {
        while (now() - started < ms) {
          const round = now()
          terminated += await terminate(kills.claimOnly)
          await sleep(Math.min(kills.everyMs - (now() - round), started + ms - now()))
        }
      }
      const result: ConnectionPhase = {
        label,
        ms: now() - started,
        terminated,
        completed: (await completedNow()) - completedBefore,
        exits: unexpectedExits.length - exitsBefore
      }
      phases.push(result)
      progress(
        `${label}: ${result.terminated} session(s) terminated, ${result.completed} job(s) completed, ` +
          `${result.exits} runner exit(s)`
      )
      return result
    }

    try {
      await phase("no kills (warm-up)", connectionWarmupMs)
      const claimPhase = await phase(
        `claim connections every ${claimKillEveryMs} ms`,
        settings.connectionPhaseMs,
        { everyMs: claimKillEveryMs, claimOnly: true }
      )
      if (claimPhase.terminated === 0) {
        progress("! no claim session was found: the claim statement may no longer match " + claimSession)
      }
      await phase(`all connections every ${allKillEveryMs / 1000} s`, settings.connectionPhaseMs, {
        everyMs: allKillEveryMs,
        claimOnly: false
      })
    } finally {
      streaming = false
      await stream
    }

    // Jobs stranded by a cut connection come back when their lease runs out.
    currentPart = "connections: after the kills"
    const exitsBefore = unexpectedExits.length
    const completedBefore = await completedNow()
    const started = now()
    let unfinished = Infinity
    while (now() - started < finishDeadlineMs) {
      unfinished = await context.count(`state NOT IN ${finalStates}`)
      if (unfinished === 0) break
      await sleep(500)
    }
    phases.push({
      label: "after the kills, until every job is finished",
      ms: now() - started,
      terminated: 0,
      completed: (await completedNow()) - completedBefore,
      exits: unexpectedExits.length - exitsBefore
    })
    stopping = true
    const { rows } = await context.admin.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM ${context.jobs} GROUP BY state`
    )
    const byState = Object.fromEntries(rows.map((row) => [row.state, row.n]))
    const { completed = 0, ...rest } = byState
    return { phases, enqueued, enqueueFailures, completed, rest, finished: unfinished === 0 }
  })

// ---- the run ----------------------------------------------------------------------------------

const scope = Effect.runSync(Scope.make())
const measured: { storm?: RescueResult; crashLoop?: RescueResult; connections?: ConnectionsResult } = {}
const failures: Array<string> = []
const suiteStarted = now()

const attempt = async <A>(what: string, f: () => Promise<A>, onResult: (a: A) => void) => {
  console.error(`  ${what}`)
  currentPart = what
  const started = now()
  try {
    onResult(await f())
    console.error(`    took ${seconds(now() - started)} s`)
  } catch (error) {
    console.error(String(error))
    failures.push(what)
  }
}

try {
  const server = await serverUrl("faults", scope)
  console.error(
    `faults suite: ${settings.parts.join(", ")}; runners with default settings (lease 30 s); ` +
      `storm ${settings.stormKills} kills beside ${settings.stormLive} live runners, crash loop ` +
      `${settings.crashRounds} rounds, connection kills ${settings.connectionPhaseMs / 1000} s per phase`
  )
  if (settings.parts.includes("storm")) {
    await attempt(
      `storm: kill -9 of ${settings.stormKills} runners beside ${settings.stormLive} live runners`,
      () => storm(server),
      (r) => measured.storm = r
    )
  }
  if (settings.parts.includes("crash-loop")) {
    await attempt(
      `crash loop: ${settings.crashRounds} runners, each killed 3-10 s after its start`,
      () => crashLoop(server),
      (r) => measured.crashLoop = r
    )
  }
  if (settings.parts.includes("connections")) {
    await attempt(
      "connections: two runners on a stream of short jobs while their connections are terminated",
      () => connections(server),
      (r) => measured.connections = r
    )
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const figures: Record<string, number> = {}
const exitsIn = (prefix: string) => unexpectedExits.filter((exit) => exit.part.startsWith(prefix)).length

const reportRescue = (key: string, what: string, result: RescueResult) => {
  const f = rescueFigures(result)
  console.log(what)
  console.log(rescueTable(result))
  if (f.maxMs === undefined) {
    console.log("! no killed runner held a job: nothing measured")
    return f
  }
  figures[`${key}_p50_s`] = round(f.p50Ms! / 1000, 2)
  figures[`${key}_max_s`] = round(f.maxMs / 1000, 2)
  figures[`${key}_kills`] = f.measured
  figures[`${key}_jobs`] = f.jobs
  figures[`${key}_unrescued_jobs`] = f.unrescued
  if (f.unrescued > 0) {
    console.log(
      `! ${f.unrescued} job(s) never seen rescued within ${rescueDeadlineMs / 1000} s of the last kill: ` +
        "their kills count as rescued when the wait ended (a lower bound)"
    )
  }
  return f
}

/** Marks a maximum that is only a lower bound. */
const atLeast = (f: RescueFigures) => (f.unrescued > 0 ? "> " : "")

if (measured.storm !== undefined) {
  const f = reportRescue(
    "rescue_after_kill",
    `Storm: ${settings.stormLive} live runners, ${settings.stormDoomed} doomed runners at a time, each killed ` +
      `(kill -9) ${seconds(settings.stormLifeMs)} s after it is ready; jobs sleep ` +
      `${longJobMs.min / 1000}-${longJobMs.max / 1000} s. A job is rescued once its locked_by is another runner's ` +
      "or it is no longer running (looked at every 100 ms); times from the kill",
    measured.storm
  )
  figures.runner_exits_storm = exitsIn("storm")
  if (f.maxMs !== undefined) {
    console.log(
      `rescue after kill -9 beside live runners: p50 ${seconds(f.p50Ms!)} s, max ${atLeast(f)}` +
        `${seconds(f.maxMs)} s over ${f.measured} kills (target max <= ${targets.rescueMaxS} s, ` +
        `${verdict(f.unrescued === 0 && f.maxMs <= targets.rescueMaxS * 1000)})`
    )
  }
  console.log("")
}

if (measured.crashLoop !== undefined) {
  const f = reportRescue(
    "rescue_crash_loop",
    `Crash loop: one runner at a time, each killed (kill -9) 3-10 s after it is ready, the next started at ` +
      "once, no long-lived runner; the runner started after the last kill stays. Times from each kill until " +
      "its runner's jobs were rescued",
    measured.crashLoop
  )
  figures.runner_exits_crash_loop = exitsIn("crash loop")
  if (f.maxMs !== undefined) {
    console.log(
      `rescue in a crash loop: max ${atLeast(f)}${seconds(f.maxMs)} s over ` +
        `${f.measured} kills (target <= ${targets.rescueMaxS} s, ` +
        `${verdict(f.unrescued === 0 && f.maxMs <= targets.rescueMaxS * 1000)})`
    )
  }
  console.log("")
}

if (measured.connections !== undefined) {
  const r = measured.connections
  console.log(
    `Connection kills: two runners, ${(streamBatch * 1000) / streamEveryMs} jobs/s of ${shortJobMs} ms enqueued ` +
      "(from the suite's own connections); pg_terminate_backend on the runners' sessions, found by their " +
      "application_name (claim connections: the sessions whose statement is the claim). A runner that exits is " +
      "started again"
  )
  console.log(
    formatTable(
      ["phase", "s", "sessions terminated", "jobs completed", "jobs/s", "runner exits"],
      r.phases.map((p): Row => [
        p.label,
        seconds(p.ms),
        String(p.terminated),
        String(p.completed),
        Math.round(p.completed / (p.ms / 1000)).toLocaleString("en-US"),
        String(p.exits)
      ]),
      ["left", "right", "right", "right", "right", "right"]
    )
  )
  const [warmup, claim, all] = r.phases
  const exits = exitsIn("connections")
  const lost = r.enqueued - r.completed
  figures.runner_exits_under_connection_kills = exits
  figures.runner_exits_claim_kills = claim?.exits ?? 0
  figures.runner_exits_all_kills = all?.exits ?? 0
  figures.jobs_completed_under_connection_kills = (claim?.completed ?? 0) + (all?.completed ?? 0)
  figures.jobs_completed_claim_kills = claim?.completed ?? 0
  figures.jobs_completed_all_kills = all?.completed ?? 0
  if (warmup !== undefined) figures.jobs_per_s_no_kills = Math.round(warmup.completed / (warmup.ms / 1000))
  figures.jobs_enqueued_under_connection_kills = r.enqueued
  figures.jobs_lost = lost
  figures.sessions_terminated_claim = claim?.terminated ?? 0
  figures.sessions_terminated_all = all?.terminated ?? 0
  const rest = Object.entries(r.rest).map(([state, n]) => `${n} ${state}`).join(", ")
  console.log(
    `${r.enqueued} jobs enqueued, ${r.completed} completed${rest === "" ? "" : `, the rest ${rest}`}` +
      (r.finished ? "" : ` (not all finished ${finishDeadlineMs / 1000} s after the kills)`) +
      (r.enqueueFailures > 0 ? `; ${r.enqueueFailures} enqueue call(s) failed` : "")
  )
  console.log(
    `runner processes that exited under connection kills: ${exits} (target ${targets.runnerExits}, ` +
      `${verdict(exits <= targets.runnerExits)}); jobs lost: ${lost} (target ${targets.jobsLost}, ` +
      `${verdict(lost <= targets.jobsLost)})`
  )
  console.log("")
}

for (const exit of unexpectedExits) {
  console.log(`! runner ${exit.tag} exited on its own (${describeExit(exit.exit)}) during ${exit.part}:`)
  for (const line of why(exit.lines)) console.log(`    ${line.length > 300 ? `${line.slice(0, 300)}...` : line}`)
}
if (failures.length > 0) console.log(`! failed, left out: ${failures.join(", ")}`)
console.error(`faults suite took ${seconds(now() - suiteStarted)} s`)
console.log(JSON.stringify(figures))
process.exitCode = failures.length > 0 ? 1 : 0
