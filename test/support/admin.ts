import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Redacted } from "effect"

/** Runs `f` on a short-lived client of `url`, closed when `f` ends. */
export const withClient = <A, E>(
  url: string,
  f: (sql: PgClient.PgClient) => Effect.Effect<A, E>
): Effect.Effect<A, E | SqlError> =>
  Effect.flatMap(PgClient.PgClient, f).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
  )

export interface SessionRow {
  readonly pid: number
  readonly applicationName: string
  readonly state: string | null
  readonly query: string
}

/**
 * Connections whose `application_name` starts with `prefix`, waiting up to
 * `waitMillis` for closing ones to go: a backend lingers a moment after its
 * client has hung up. Whatever is left is terminated and returned.
 */
export const lingeringSessions = (
  url: string,
  prefix: string,
  waitMillis: number
): Effect.Effect<ReadonlyArray<SessionRow>, SqlError> =>
  withClient(url, (sql) => {
    const find = sql<SessionRow>`
      SELECT pid, application_name AS "applicationName", state, left(query, 200) AS query
      FROM pg_stat_activity
      WHERE starts_with(application_name, ${prefix}) AND pid <> pg_backend_pid()`
    const deadline = Date.now() + waitMillis
    const poll: Effect.Effect<ReadonlyArray<SessionRow>, SqlError> = Effect.flatMap(find, (rows) =>
      rows.length === 0 || Date.now() >= deadline
        ? Effect.succeed(rows)
        : Effect.zipRight(Effect.sleep("50 millis"), poll))
    return Effect.tap(poll, (rows) =>
      Effect.forEach(rows, (row) =>
        sql`SELECT pg_terminate_backend(${row.pid})`, { discard: true }))
  })

export const describeSessions = (rows: ReadonlyArray<SessionRow>): string =>
  rows.map((row) => `  pid ${row.pid} "${row.applicationName}" (${row.state ?? "?"}): ${row.query}`).join("\n")
