import type { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted, Schedule } from "effect"
import pg from "pg"

/** Settings for a `pg` connection of our own, from the `PgClient`'s configuration. */
export const clientConfig = (config: PgClient.PgClientConfig): pg.ClientConfig => ({
  connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
  host: config.host,
  port: config.port,
  database: config.database,
  user: config.username,
  password: config.password === undefined ? undefined : Redacted.value(config.password),
  ssl: config.ssl,
  application_name: config.applicationName,
  // Connecting must not hang a shutdown or a reconnection forever.
  connectionTimeoutMillis: config.connectTimeout === undefined ? 10_000 : Duration.toMillis(config.connectTimeout)
})

/**
 * Listens on `channel` on a connection of its own, calling `onMessage` for
 * each notification and `onConnected` after each (re)connection, so that
 * anything sent while it was away is looked for. A lost connection is logged
 * and made again with backoff, forever: the runner's poll covers the gap.
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
  let lost = false
  const session = Effect.acquireUseRelease(
    connect,
    (client) =>
      Effect.zipRight(
        Effect.suspend(() => {
          if (!lost) return Effect.void
          lost = false
          return Effect.logInfo("Job runner: listening again after a lost connection")
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
    Effect.tapError((error) =>
      Effect.zipRight(
        Effect.sync(() => {
          lost = true
        }),
        Effect.logWarning(`Job runner: ${error.message}; connecting again`)
      )
    ),
    // The schedule never ends, so the failure channel is never reached.
    Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))),
    Effect.orDie
  )
}
