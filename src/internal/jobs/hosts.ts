/**
 * Hosted workers in the job tables: each process with a `WorkerRegistry` and
 * a `JobClient` writes its workers' statuses to `worker_hosts` on an
 * interval, so that a dashboard on any replica shows every replica's workers.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Schema, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { WorkerStatus } from "../../WorkerStatus.js"
import type { Registry } from "../registry.js"
import type { Store } from "./store.js"

/** How often a process reports its workers. */
export const reportMillis = 5_000
/** How long a report counts: three missed reports and the process is taken for stopped. */
export const expiryMillis = 3 * reportMillis
/** Rows of processes that stopped without removing them are deleted this long after they expired. */
const forgetMillis = 60_000

const encodeStatus = Schema.encodeSync(WorkerStatus)
const decodeStatus = Schema.decodeUnknownEither(WorkerStatus)

/** One process's hosted workers, as read back. */
export interface HostWorkers {
  readonly process: string
  readonly host: string
  readonly pid: number
  readonly reportedAt: Date
  readonly workers: ReadonlyArray<WorkerStatus>
}

/** A name for this process's row: host, pid and a random part, as a runner's id. */
export const processId = (): string => `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`

/** Writes the workers' statuses as they are when it runs. */
const write = (store: Store, id: string, registry: Registry) =>
  Effect.suspend(() => {
    const { sql } = store
    const table = sql`${sql(store.schema)}.worker_hosts`
    const workers = JSON.stringify(registry.snapshot().map((status) => encodeStatus(status)))
    return Effect.zipRight(
      sql`
      INSERT INTO ${table} (id, host, pid, workers, expires_at)
      VALUES (${id}, ${hostname()}, ${process.pid}, ${workers}::jsonb, now() + ${expiryMillis} * interval '1 millisecond')
      ON CONFLICT (id) DO UPDATE SET workers = EXCLUDED.workers, reported_at = now(), expires_at = EXCLUDED.expires_at`,
      sql`DELETE FROM ${table} WHERE expires_at < now() - ${forgetMillis} * interval '1 millisecond'`
    )
  })

/**
 * Reports `registry`'s workers every {@link reportMillis} for as long as the
 * scope is open, and removes the row when it closes. A report that fails is
 * logged and the next one tried: the dashboard then shows the last report
 * until it expires.
 */
export const report = (store: Store, registry: Registry): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const id = processId()
    const once = write(store, id, registry).pipe(
      Effect.catchAll((error) => Effect.logWarning(`Hosted workers: could not report them: ${error.message}`)),
      // A status that cannot be encoded must not end the reports either.
      Effect.catchAllDefect((defect) => Effect.logWarning("Hosted workers: could not report them", defect))
    )
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        registry.reportedAs = id
      }),
      () =>
        Effect.sync(() => {
          if (registry.reportedAs === id) registry.reportedAs = undefined
        }).pipe(
          Effect.zipRight(store.sql`DELETE FROM ${store.sql(store.schema)}.worker_hosts WHERE id = ${id}`),
          Effect.timeout("2 seconds"),
          Effect.ignore
        )
    )
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(once, Effect.sleep(reportMillis))).pipe(Effect.interruptible)
    )
  })

/** The processes whose last report has not expired, oldest first; workers that do not decode are left out. */
export const read = (store: Store): Effect.Effect<ReadonlyArray<HostWorkers>, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<{ id: string; host: string; pid: number; reportedAt: Date; workers: ReadonlyArray<unknown> }>`
      SELECT id, host, pid, reported_at AS "reportedAt", workers FROM ${sql(store.schema)}.worker_hosts
      WHERE expires_at > now() ORDER BY started_at, id`,
    (rows) =>
      rows.map((row) => ({
        process: row.id,
        host: row.host,
        pid: row.pid,
        reportedAt: row.reportedAt,
        workers: (Array.isArray(row.workers) ? row.workers : []).flatMap((w) => {
          const status = decodeStatus(w)
          return Either.isRight(status) ? [status.right] : []
        })
      }))
  )
}
