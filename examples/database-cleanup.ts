/**
 * DatabaseCleanupService: after an initial delay, and then every interval,
 * deletes old rows from `logs`, expired rows from `sessions`, and old files
 * from a temporary directory, and logs how many of each it deleted.
 *
 * Its options come from `Config` (environment variables by default), with
 * the seed's defaults:
 *
 * | variable                                     | default        |
 * |----------------------------------------------|----------------|
 * | `DATABASE_CLEANUP_INITIAL_DELAY`             | `5 minutes`    |
 * | `DATABASE_CLEANUP_INTERVAL`                  | `1 hour`       |
 * | `DATABASE_CLEANUP_LOG_RETENTION_DAYS`        | `30`           |
 * | `DATABASE_CLEANUP_TEMP_FILE_RETENTION_HOURS` | `24`           |
 * | `DATABASE_CLEANUP_TEMP_DIR`                  | `.data/temp`   |
 *
 * A value that does not parse makes the layer fail with a `ConfigError`
 * naming it, before any worker starts.
 *
 *   DATABASE_CLEANUP_INITIAL_DELAY="0 seconds" node --import tsx examples/database-cleanup.ts
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
import * as path from "node:path"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

const nonNegative = (config: Config.Config<number>) =>
  Config.validate(config, { message: "must be a whole number of 0 or more", validation: (n) => n >= 0 })

/**
 * The options, read from the `DATABASE_CLEANUP` namespace.
 */
export const DatabaseCleanupOptions = Config.all({
  initialDelay: Config.duration("INITIAL_DELAY").pipe(
    Config.withDefault(Duration.minutes(5)),
    Config.withDescription("Wait before the first cleanup, so that it does not compete with start-up")
  ),
  interval: Config.duration("INTERVAL").pipe(
    Config.withDefault(Duration.hours(1)),
    Config.withDescription("Time between the end of a cleanup and the start of the next")
  ),
  logRetentionDays: nonNegative(Config.integer("LOG_RETENTION_DAYS")).pipe(
    Config.withDefault(30),
    Config.withDescription("Rows of `logs` older than this many days are deleted")
  ),
  tempFileRetentionHours: nonNegative(Config.integer("TEMP_FILE_RETENTION_HOURS")).pipe(
    Config.withDefault(24),
    Config.withDescription("Files in the temporary directory last modified longer ago than this are deleted")
  ),
  tempDir: Config.string("TEMP_DIR").pipe(
    Config.withDefault(path.join(".data", "temp")),
    Config.withDescription("The temporary directory to clean")
  )
}).pipe(Config.nested("DATABASE_CLEANUP"))

export type DatabaseCleanupOptions = Config.Config.Success<typeof DatabaseCleanupOptions>

/** Creates the example's tables (idempotent). */
export const migrate: Effect.Effect<void, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS logs (
      id serial PRIMARY KEY,
      message text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE IF NOT EXISTS sessions (
      id text PRIMARY KEY,
      user_name text NOT NULL,
      expires_at timestamptz NOT NULL
    )`
})

const hours = (n: number) => n * 3_600_000

const deleteOldLogs = (cutoff: Date) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly count: number }>`
      WITH deleted AS (DELETE FROM logs WHERE created_at < ${cutoff} RETURNING 1)
      SELECT count(*)::int AS count FROM deleted`).pipe(Effect.map((rows) => rows[0].count))

const deleteExpiredSessions = (now: Date) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly count: number }>`
      WITH deleted AS (DELETE FROM sessions WHERE expires_at < ${now} RETURNING 1)
      SELECT count(*)::int AS count FROM deleted`).pipe(Effect.map((rows) => rows[0].count))

/** Deletes the files of `dir` modified before `cutoff`; a file that cannot be deleted is logged and skipped. */
const deleteTemporaryFiles = (dir: string, cutoff: Date) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (!(yield* fs.exists(dir))) return 0
    let deleted = 0
    for (const name of yield* fs.readDirectory(dir)) {
      const file = path.join(dir, name)
      yield* fs.stat(file).pipe(
        Effect.flatMap((info) =>
          info.type === "File" && Option.exists(info.mtime, (mtime) => mtime < cutoff)
            ? Effect.zipRight(fs.remove(file), Effect.sync(() => void deleted++))
            : Effect.void
        ),
        Effect.catchAll((error) => Effect.logWarning(`Failed to delete temporary file ${name}: ${error.message}`))
      )
    }
    return deleted
  })

/** One cleanup. */
export const cleanup = (options: DatabaseCleanupOptions) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const [logs, sessions, files] = yield* Effect.all([
      deleteOldLogs(new Date(now - hours(24 * options.logRetentionDays))),
      deleteExpiredSessions(new Date(now)),
      deleteTemporaryFiles(options.tempDir, new Date(now - hours(options.tempFileRetentionHours)))
    ])
    const took = (yield* Clock.currentTimeMillis) - now
    yield* Effect.logInfo(
      `Database cleanup completed in ${took}ms. Deleted: ${logs} logs, ${sessions} sessions, ${files} files`
    )
  })

/**
 * The worker. Needs a `SqlClient` and a `FileSystem`; reads its options,
 * then creates its tables, before it starts.
 */
export const DatabaseCleanupService = Layer.unwrapEffect(
  Effect.map(DatabaseCleanupOptions, (options) =>
    Worker.make("database-cleanup", cleanup(options), {
      initialDelay: options.initialDelay,
      schedule: Schedule.spaced(options.interval),
      // The seed waits 5 minutes after an error before it tries again.
      retry: Schedule.spaced("5 minutes").pipe(Schedule.intersect(Schedule.recurs(3)))
    }).pipe(Layer.provide(Layer.effectDiscard(migrate))))
)

if (isMain(import.meta)) {
  Host.run(DatabaseCleanupService.pipe(Layer.provide(Database.layer), Layer.provide(NodeContext.layer)))
}
