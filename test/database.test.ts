/**
 * A wrong database URL: the error a user reads names the reason, the host
 * and the port, never the password. Real wrong URLs against real servers.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Redacted } from "effect"
import { Database } from "effect-workers"
import { randomBytes } from "node:crypto"
import { withSession } from "./support/context.js"
import { applicationName, serverUrl } from "./support/database.js"

const password = `pw-${randomBytes(6).toString("hex")}`

/** The server's URL, changed by `change`. */
const urlWith = (change: (url: URL) => void) => {
  const url = new URL(withSession(serverUrl(), { applicationName: applicationName() }))
  change(url)
  return url.href
}

const failure = (url: string) =>
  Effect.flip(Effect.scoped(Layer.build(Database.layer({ url: Redacted.make(url), connectTimeout: "10 seconds" }))))

describe("database connection errors", () => {
  it.live("refused, unknown host, authentication and a missing database are told apart, with host and port", () =>
    Effect.gen(function*() {
      const server = new URL(serverUrl())
      const cases = [
        {
          url: urlWith((u) => {
            u.hostname = "127.0.0.1"
            u.port = "1"
            u.password = password
          }),
          reason: "refused",
          text: "Cannot connect to PostgreSQL at 127.0.0.1:1",
          why: "the connection was refused"
        },
        {
          url: urlWith((u) => {
            u.hostname = "nonexistent.invalid"
            u.password = password
          }),
          reason: "unknown host",
          text: `PostgreSQL at nonexistent.invalid:${server.port || 5432}`,
          why: `the host name "nonexistent.invalid" could not be resolved`
        },
        {
          url: urlWith((u) => {
            u.username = `nobody_${randomBytes(3).toString("hex")}`
            u.password = password
          }),
          reason: "authentication",
          text: `PostgreSQL at ${server.hostname}:${server.port || 5432}`,
          why: "authentication failed"
        },
        {
          // The server's own credentials, so that the database name is what fails.
          url: urlWith((u) => {
            u.pathname = "/missing_database_x"
          }),
          reason: "database missing",
          text: `(database "missing_database_x"`,
          why: `the database "missing_database_x" does not exist`
        }
      ]
      for (const { reason, text, url, why } of cases) {
        const error = yield* failure(url)
        expect(error._tag, url).toBe("DatabaseUnavailable")
        expect(error.reason, error.message).toBe(reason)
        expect(error.message).toContain(text)
        expect(error.message).toContain(why)
        expect(JSON.stringify(error)).not.toContain(password)
        expect(error.message).not.toContain(password)
      }
    }))

  it.live("from config, a wrong DATABASE_URL fails the same way; a right one connects", () =>
    Effect.gen(function*() {
      const read = (url: string) =>
        Effect.withConfigProvider(
          Effect.scoped(Effect.flatMap(
            Layer.build(Database.layerConfig({ url: Config.redacted("DATABASE_URL") })),
            (context) => Effect.provide(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 AS one`), context)
          )),
          ConfigProvider.fromMap(new Map([["DATABASE_URL", url]]))
        )
      const error = yield* Effect.flip(read(urlWith((u) => {
        u.hostname = "127.0.0.1"
        u.port = "1"
        u.password = password
      })))
      expect(error._tag).toBe("DatabaseUnavailable")
      expect(error.message).toContain("127.0.0.1:1")
      expect(error.message).not.toContain(password)
      expect(yield* read(urlWith(() => {}))).toEqual([{ one: 1 }])
    }))
})
