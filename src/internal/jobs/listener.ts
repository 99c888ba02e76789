import type { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted } from "effect"
import pg from "pg"

/**
 * Settings for a `pg` connection of our own: every connection setting of the
 * `PgClient`'s configuration, read as `PgClient.make` reads them for its own
 * pool (`path` is not read there either: a unix socket's directory goes in
 * `host`). `types` is left out: the runner reads its claims' rows itself and
 * needs `pg`'s own parsers (a `Date` for a `timestamptz`).
 */
export const clientConfig = (config: PgClient.PgClientConfig): pg.ClientConfig => ({
  connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
  user: config.username,
  host: config.host,
  database: config.database,
  password: config.password === undefined ? undefined : Redacted.value(config.password),
  ssl: config.ssl,
  port: config.port,
  ...(config.stream === undefined ? {} : { stream: config.stream }),
  // Connecting must not hang a shutdown or a reconnection forever.
  connectionTimeoutMillis: config.connectTimeout === undefined ? 10_000 : Duration.toMillis(config.connectTimeout),
  application_name: config.applicationName ?? "@effect/sql-pg"
})

/**
 * Settings for a pool of our own: those of `clientConfig`, and the lifetimes
 * of the `PgClient`'s connections. Its size is the caller's to set.
 */
export const poolConfig = (config: PgClient.PgClientConfig): pg.PoolConfig => ({
  ...clientConfig(config),
  idleTimeoutMillis: config.idleTimeout === undefined ? undefined : Duration.toMillis(config.idleTimeout),
  maxLifetimeSeconds: config.connectionTTL === undefined ? undefined : Duration.toSeconds(config.connectionTTL)
})

/**
 * The wait before connecting again after `failures` (1 or more) attempts in a
 * row that did not get to listen: 100 ms, doubled each time, at most 5 s.
 */
export const reconnectMillis = (failures: number): number => Math.min(5_000, 100 * 2 ** (failures - 1))

/**
 * Listens on `channel` on a connection of its own, calling `onMessage` for
 * each notification and `onConnected` after each (re)connection, so that
 * anything sent while it was away is looked for. A lost connection is logged
 * and made again with backoff, forever: the runner's poll covers the gap.
 * The backoff starts again from its first step once a connection listens.
 */
export const listen = (
  config: PgClient.PgClientConfig,
  channel: string,
  onMessage: (payload: string) => void,
  onConnected: () => void
): Effect.Effect<never> => {
  const connect = Effect.tryPromise({
    try: async () => {
      const client = new pg.Client(clientConfig(config))
      // An error before `connect` settles would otherwise be unhandled.
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
      } catch (error) {
        await client.end().catch(() => {})
        throw error
      }
      return client
    },
    catch: (cause) => new Error(`connecting the job listener failed: ${String(cause)}`)
  })
  // Attempts in a row that did not get to listen. A connection that listens
  // resets it: the server and the settings work, so its loss is a new outage,
  // worth retrying at once, not the next step of one that goes on.
  let failures = 0
  const session = Effect.acquireUseRelease(
    connect,
    (client) =>
      Effect.zipRight(
        Effect.suspend(() => {
          const lost = failures > 0
          failures = 0
          return lost ? Effect.logInfo("Job listener: listening again after a lost connection") : Effect.void
        }),
        Effect.async<never, Error>((resume) => {
          client.on("notification", (message) => {
            if (message.channel === channel && message.payload !== undefined) onMessage(message.payload)
          })
          client.on("error", (error) => resume(Effect.fail(error)))
          client.on("end", () => resume(Effect.fail(new Error("the job listener's connection ended"))))
          onConnected()
        })
      ),
    (client) =>
      Effect.promise(() => client.end().catch(() => {})).pipe(Effect.interruptible, Effect.timeoutOption("1 second"))
  )
  return session.pipe(
    Effect.catchAll((error) =>
      Effect.suspend(() => {
        const millis = reconnectMillis(++failures)
        return Effect.zipRight(
          Effect.logWarning(`Job listener: ${error.message}; connecting again in ${millis} ms`),
          Effect.sleep(Duration.millis(millis))
        )
      })
    ),
    Effect.forever
  )
}
