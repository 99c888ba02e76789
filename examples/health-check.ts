/**
 * HealthCheckService: checks the process's health at start and then every
 * minute, and records each check (time, heap used, CPU usage, status) as a
 * row of the `health_checks` table. The latest check is also a readiness
 * check for the dashboard's `/readyz` ({@link readiness}).
 *
 *   node --import tsx examples/health-check.ts
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Layer, Ref, Schedule } from "effect"
import { type Dashboard, Host, Worker } from "effect-workers"
import { getHeapStatistics } from "node:v8"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

export interface HealthSnapshot {
  readonly checkedAt: Date
  readonly heapUsedBytes: number
  /** Share of one core used since the previous check, in percent. */
  readonly cpuPercent: number
  readonly status: "Healthy" | "Degraded"
}

/** Creates the example's table (idempotent). */
export const migrate: Effect.Effect<void, SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`
      CREATE TABLE IF NOT EXISTS health_checks (
        id serial PRIMARY KEY,
        checked_at timestamptz NOT NULL,
        heap_used_bytes bigint NOT NULL,
        cpu_percent double precision NOT NULL,
        status text NOT NULL
      )`
)

interface CpuSample {
  readonly usage: NodeJS.CpuUsage
  readonly atNanos: bigint
}

const sampleCpu = (): CpuSample => ({ usage: process.cpuUsage(), atNanos: process.hrtime.bigint() })

/** A sample as of the process's start, so that the first check reports the average since then. */
const processStart = (): CpuSample => ({
  usage: { user: 0, system: 0 },
  atNanos: process.hrtime.bigint() - BigInt(Math.round(process.uptime() * 1e9))
})

/**
 * CPU used between two samples, as a share of one core. Measured on the
 * monotonic clock rather than `Clock`: it is about real CPU time, whatever
 * clock drives the schedule.
 */
const cpuPercent = (from: CpuSample, to: CpuSample): number => {
  const elapsedMicros = Number(to.atNanos - from.atNanos) / 1000
  const usedMicros = (to.usage.user - from.usage.user) + (to.usage.system - from.usage.system)
  return elapsedMicros > 0 ? (100 * usedMicros) / elapsedMicros : 0
}

/** The process is degraded when its heap is over 90% of V8's limit. */
const degradedHeapShare = 0.9

/**
 * The worker. The previous CPU sample lives in a `Ref` shared by the
 * iterations, so each check reports the CPU used since the one before.
 */
export const HealthCheckService = Layer.unwrapEffect(
  Effect.map(Effect.suspend(() => Ref.make(processStart())), (previous) =>
    Worker.make(
      "health-check",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = sampleCpu()
        const since = yield* Ref.getAndSet(previous, now)
        const heap = process.memoryUsage().heapUsed
        const snapshot: HealthSnapshot = {
          checkedAt: new Date(yield* Clock.currentTimeMillis),
          heapUsedBytes: heap,
          cpuPercent: cpuPercent(since, now),
          status: heap > degradedHeapShare * getHeapStatistics().heap_size_limit ? "Degraded" : "Healthy"
        }
        yield* sql`INSERT INTO health_checks ${
          sql.insert({
            checked_at: snapshot.checkedAt,
            heap_used_bytes: snapshot.heapUsedBytes,
            cpu_percent: snapshot.cpuPercent,
            status: snapshot.status
          })
        }`
        yield* Effect.logInfo(
          `Health: ${snapshot.status}, heap ${(snapshot.heapUsedBytes / 2 ** 20).toFixed(1)} MiB, CPU ${
            snapshot.cpuPercent.toFixed(1)
          }%`
        )
      }),
      {
        // Fixed rate, like the seed's Timer: first check at once, then on every minute since start.
        schedule: Schedule.fixed("1 minute"),
        // A failed check is logged; the next one comes a minute later anyway.
        retry: false
      }
    ))
).pipe(Layer.provide(Layer.effectDiscard(migrate)))

/**
 * The latest check as a readiness check for the dashboard's `/readyz`
 * (`Dashboard.layer({ checks: [HealthCheck.readiness] })`): ready when the
 * latest check, at most two minutes old, found the process healthy.
 */
export const readiness: Dashboard.ReadinessCheck<SqlClient.SqlClient> = {
  name: "health-check",
  check: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ status: string; age: number }>`
      SELECT status, extract(epoch FROM now() - checked_at)::float8 AS age
      FROM health_checks ORDER BY id DESC LIMIT 1`
    const latest = rows[0]
    if (latest === undefined) return yield* Effect.fail(new Error("no health check has run yet"))
    if (latest.age > 120) return yield* Effect.fail(new Error(`the latest check is ${Math.round(latest.age)} s old`))
    if (latest.status !== "Healthy") return yield* Effect.fail(new Error(`the latest check found ${latest.status}`))
    return `${latest.status}, ${Math.round(latest.age)} s ago`
  })
}

if (isMain(import.meta)) Host.run(HealthCheckService.pipe(Layer.provide(Database.layer)))
