/**
 * The PostgreSQL connection of the job tables: `PgClient.layer` with errors
 * a user can act on. When the first connection fails, the layer fails with
 * `DatabaseUnavailable`, which names the host and port, the database, the
 * user and the reason (refused, unknown host, authentication, database
 * missing, timeout), never the password.
 *
 * ```ts
 * const Sql = Database.layerConfig({ url: Config.redacted("DATABASE_URL") })
 * ```
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, type ConfigError, Effect, Layer, Redacted } from "effect"
import { DatabaseUnavailable } from "./JobError.js"

interface Target {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
}

/** Where `config` connects, read as `pg` reads it: the URL first, then the fields, the environment, the defaults. */
const targetOf = (config: PgClient.PgClientConfig): Target => {
  let url: URL | undefined
  try {
    url = config.url === undefined ? undefined : new URL(Redacted.value(config.url))
  } catch {
    url = undefined
  }
  const fromUrl = (value: string | undefined) =>
    value === undefined || value === "" ? undefined : decodeURIComponent(value)
  const host = fromUrl(url?.hostname.replace(/^\[(.*)\]$/, "$1")) ?? url?.searchParams.get("host") ?? config.host ??
    process.env.PGHOST ?? "localhost"
  const user = fromUrl(url?.username) ?? config.username ?? process.env.PGUSER ?? process.env.USER ?? ""
  return {
    host,
    port: Number(fromUrl(url?.port) ?? config.port ?? process.env.PGPORT ?? 5432),
    database: fromUrl(url?.pathname.slice(1)) ?? config.database ?? process.env.PGDATABASE ?? user,
    user
  }
}

const codeOf = (cause: unknown): unknown => {
  if (typeof cause !== "object" || cause === null) return undefined
  // Node tries each address of a name in turn (`localhost`: ::1, then 127.0.0.1) and reports them together.
  const errors = (cause as { readonly errors?: unknown }).errors
  if (Array.isArray(errors) && errors.length > 0) return codeOf(errors[0])
  return (cause as { readonly code?: unknown }).code
}

/** Why connecting failed, from the driver's error: a system error code or a PostgreSQL SQLSTATE. */
const reasonOf = (error: SqlError): DatabaseUnavailable["reason"] => {
  const code = codeOf(error.cause)
  if (code === "ECONNREFUSED") return "refused"
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") return "unknown host"
  if (code === "28P01" || code === "28000") return "authentication"
  if (code === "3D000") return "database missing"
  if (code === "ETIMEDOUT" || error.message.includes("timed out")) return "timeout"
  return "other"
}

const detailOf = (error: SqlError): string => {
  const cause = error.cause
  const errors = (cause as { readonly errors?: unknown } | undefined)?.errors
  const messages = Array.isArray(errors) && errors.length > 0 ? errors : [cause]
  return messages.map((e) => e instanceof Error ? e.message : String(e)).join("; ")
}

/**
 * The error a user reads when the first connection of `config` fails.
 *
 * @since 0.1.0
 * @category errors
 */
export const unavailable = (config: PgClient.PgClientConfig, error: SqlError): DatabaseUnavailable => {
  const target = targetOf(config)
  const password = config.password === undefined ? undefined : Redacted.value(config.password)
  let detail = detailOf(error)
  if (password !== undefined && password !== "") detail = detail.replaceAll(password, () => "<redacted>")
  return new DatabaseUnavailable({ ...target, reason: reasonOf(error), detail })
}

/**
 * `PgClient` and `SqlClient` on `config`, as `PgClient.layer` makes them,
 * failing with `DatabaseUnavailable` when the first connection fails.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: PgClient.PgClientConfig
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseUnavailable> =>
  PgClient.layer(config).pipe(Layer.mapError((error) => unavailable(config, error)))

/**
 * {@link layer} with its configuration read from `Config`, for example
 * `{ url: Config.redacted("DATABASE_URL") }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PgClient.PgClientConfig>
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
