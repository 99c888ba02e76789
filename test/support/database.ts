/**
 * A fresh PostgreSQL schema for a test file.
 *
 * ```ts
 * import { layer } from "@effect/vitest"
 * import * as TestDatabase from "./support/database.js"
 *
 * layer(TestDatabase.layer, { excludeTestServices: true })("orders", (it) => {
 *   it.effect("...", () => Effect.gen(function*() {
 *     const sql = yield* SqlClient.SqlClient // connected with search_path = the fresh schema
 *   }))
 * })
 * ```
 *
 * The schema is created when the layer is built and dropped when it is
 * released. Connections are tagged with this run's and this file's
 * `application_name`; one still open when the file ends fails the file.
 */
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import { withClient } from "./admin.js"
import { applicationNamePrefix, schemaPrefix, withSession } from "./context.js"

/** Tags this file's schemas and connections (the module is loaded once per test file). */
const fileId = randomBytes(3).toString("hex")
let schemas = 0
let used = false

/** URL of the run's PostgreSQL server, without a schema of its own. */
export const serverUrl = (): string => inject("databaseUrl")

/** `application_name` of this test file's connections. */
export const applicationName = (): string => `${applicationNamePrefix(inject("testRunId"))} ${fileId}`

/** Whether this file built a test database (the end-of-file leak check only runs then). */
export const wasUsed = (): boolean => used

/**
 * @category models
 */
export interface TestDatabaseService {
  /** Name of the fresh schema. */
  readonly schema: string
  /**
   * Connection URL whose sessions use the schema as `search_path` and carry
   * this file's `application_name`: pass it to child processes as `DATABASE_URL`.
   */
  readonly url: string
}

/**
 * @category tags
 */
export class TestDatabase extends Context.Tag("test/support/TestDatabase")<TestDatabase, TestDatabaseService>() {}

/**
 * A fresh schema, and a `PgClient` / `SqlClient` whose connections use it.
 *
 * @category layers
 */
export const layer: Layer.Layer<TestDatabase | PgClient.PgClient | SqlClient.SqlClient, SqlError> = Layer.unwrapScoped(
  Effect.gen(function*() {
    used = true
    const schema = `${schemaPrefix(inject("testRunId"))}${fileId}_${++schemas}`
    const adminUrl = withSession(serverUrl(), { applicationName: applicationName() })
    yield* Effect.acquireRelease(
      withClient(adminUrl, (sql) => sql`CREATE SCHEMA ${sql(schema)}`),
      () => Effect.orDie(withClient(adminUrl, (sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`))
    )
    const url = withSession(serverUrl(), { applicationName: applicationName(), searchPath: schema })
    return Layer.merge(
      Layer.succeed(TestDatabase, { schema, url }),
      PgClient.layer({ url: Redacted.make(url) })
    )
  })
)
