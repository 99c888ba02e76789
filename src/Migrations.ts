/**
 * The job tables' migrations: numbered SQL files shipped in `src/migrations/`,
 * applied into a schema of your choice (default `effect_workers`).
 *
 * `JobClient.layer` applies them at start-up; call {@link run} from your own
 * migration step instead, and pass `migrate: false` to the client, if you
 * prefer. Several processes may start at once: one applies the migrations, the
 * others wait for it and find nothing left to do.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { validSchema } from "./internal/jobs/values.js"
import { MigrationError } from "./JobError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

/**
 * The default schema of the job tables.
 *
 * @since 0.1.0
 */
export const defaultSchema = "effect_workers"

const files = [
  "0001_jobs.sql",
  "0002_recurring.sql",
  "0003_runner_concurrency.sql",
  "0004_runner_liveness.sql",
  "0005_recurring_error.sql",
  "0006_flow_control.sql",
  "0007_job_counts.sql",
  "0008_counted_changes.sql"
]

/**
 * Every migration this version ships, oldest first.
 *
 * @since 0.1.0
 */
export const migrations: ReadonlyArray<Migration> = files.map((file) => ({
  version: Number(file.slice(0, 4)),
  name: file.slice(5, -4),
  sql: readFileSync(new URL(`./migrations/${file}`, import.meta.url), "utf8")
}))

/**
 * The newest schema version this version of effect-workers knows.
 *
 * @since 0.1.0
 */
export const latestVersion: number = migrations[migrations.length - 1].version

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Schema of the job tables; created if missing. Default `effect_workers`.
   * 1 to 48 lowercase ASCII letters, digits and underscores, not starting
   * with a digit or `pg_`: a name that means the same quoted or not.
   */
  readonly schema?: string | undefined
}

/** `name`, a checked schema name, as a quoted SQL identifier. */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll("\"", () => "\"\"")}"`

const appliedVersion = (sql: SqlClient.SqlClient, schema: string) =>
  Effect.map(
    sql<{ readonly version: number | null }>`SELECT max(version) AS version FROM ${sql(schema)}.migrations`,
    (rows) => rows[0]?.version ?? 0
  )

const tooNew = (schema: string, version: number) =>
  new MigrationError({
    schema,
    reason: `the database is at schema version ${version}, newer than this version of effect-workers knows ` +
      `(${latestVersion}); upgrade effect-workers in this process, or point it at another schema`
  })

/**
 * Applies the migrations not yet applied, in one transaction, under an
 * advisory lock so that concurrent starts apply each migration once, and
 * returns those this call applied (none when the schema was up to date, or
 * another process applied them first). Fails with `MigrationError` when the
 * database is newer than this version.
 *
 * @since 0.1.0
 */
export const run = (
  options: Options = {}
): Effect.Effect<ReadonlyArray<Migration>, MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* validSchema(options.schema ?? defaultSchema)
    const sql = yield* SqlClient.SqlClient
    const migrate = Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`effect_workers.migrations:${schema}`}))`
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(schema)}.migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`
      const current = yield* appliedVersion(sql, schema)
      if (current > latestVersion) return yield* tooNew(schema, current)
      const applied: Array<Migration> = []
      for (const migration of migrations) {
        if (migration.version <= current) continue
        // A function replacement: a string one would read `$$`, `$&` and the like in the name.
        yield* sql.unsafe(migration.sql.replaceAll("{{schema}}", () => quoteIdentifier(schema)))
        yield* sql`INSERT INTO ${
          sql(schema)
        }.migrations (version, name) VALUES (${migration.version}, ${migration.name})`
        yield* Effect.logInfo(`Applied job tables migration ${migration.version} (${migration.name}) to "${schema}"`)
        applied.push(migration)
      }
      return applied
    })
    return yield* sql.withTransaction(migrate).pipe(
      Effect.catchTag(
        "SqlError",
        (error) =>
          Effect.fail(
            new MigrationError({ schema, reason: `migrating failed: ${error.message}: ${String(error.cause)}` })
          )
      )
    )
  })

/**
 * Where a schema stands: the version applied to it (0 when nothing was, or
 * the schema does not exist), the newest version this version of
 * effect-workers knows, and the migrations not yet applied.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly schema: string
  readonly version: number
  readonly latestVersion: number
  /** Empty when the schema is up to date, or newer than this version knows. */
  readonly pending: ReadonlyArray<Migration>
}

/**
 * Reads where the schema stands, without changing anything (a deploy step
 * can check that the database is migrated before it starts new processes).
 *
 * @since 0.1.0
 */
export const status = (options: Options = {}): Effect.Effect<Status, MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* validSchema(options.schema ?? defaultSchema)
    const sql = yield* SqlClient.SqlClient
    // A missing schema or table means nothing was applied; any other failure is reported as it is.
    const version = yield* appliedVersion(sql, schema).pipe(
      Effect.catchTag("SqlError", (error) => {
        const code = (error.cause as { readonly code?: unknown } | undefined)?.code
        return code === "42P01" || code === "3F000"
          ? Effect.succeed(0)
          : Effect.fail(
            new MigrationError({ schema, reason: `reading the schema version failed: ${String(error.cause)}` })
          )
      })
    )
    return { schema, version, latestVersion, pending: migrations.filter((migration) => migration.version > version) }
  })

/**
 * Checks that the schema is migrated to exactly this version, without
 * changing anything: for processes that must not migrate (`migrate: false`).
 *
 * @since 0.1.0
 */
export const check = (options: Options = {}): Effect.Effect<void, MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { schema, version } = yield* status(options)
    if (version > latestVersion) return yield* tooNew(schema, version)
    if (version < latestVersion) {
      return yield* new MigrationError({
        schema,
        reason: `the job tables are at version ${version}, this version of effect-workers needs ${latestVersion}; ` +
          "run Migrations.run (or let JobClient.layer migrate, or run `effect-workers migrate`)"
      })
    }
  })

/**
 * A layer that applies the migrations when it is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, MigrationError, SqlClient.SqlClient> =>
  Layer.effectDiscard(run(options))
