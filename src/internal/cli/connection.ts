/**
 * The commands' connection: `Database.layer` on the URL given, with a small
 * pool, and the job client on the schema given, which never migrates (only
 * `migrate` does).
 */
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { Layer, type Redacted } from "effect"
import * as Database from "../../Database.js"
import * as JobClient from "../../JobClient.js"
import type { DatabaseUnavailable, MigrationError } from "../../JobError.js"

export interface Connection {
  readonly databaseUrl: Redacted.Redacted
  readonly schema: string
}

/** `PgClient` and `SqlClient` on the URL, with at most `connections` connections. */
export const database = (
  connection: Connection,
  connections = 2
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseUnavailable> =>
  Database.layer({
    url: connection.databaseUrl,
    maxConnections: connections,
    connectTimeout: "10 seconds",
    applicationName: "effect-workers cli"
  })

/** The job client on the schema, and the database under it; fails when the schema is not at this version. */
export const client = (
  connection: Connection,
  connections = 2
): Layer.Layer<
  JobClient.JobClient | PgClient.PgClient | SqlClient.SqlClient,
  DatabaseUnavailable | MigrationError
> =>
  JobClient.layer({ schema: connection.schema, migrate: false }).pipe(
    Layer.provideMerge(database(connection, connections))
  )
