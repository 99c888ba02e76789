/**
 * The database the examples run on: the server at `DATABASE_URL` when it is
 * set, otherwise an embedded PostgreSQL whose data is kept under
 * `<EXAMPLES_DATA_DIR>/postgres` (default `.data/postgres`) between runs. The
 * embedded server is stopped when the layer is released, after everything
 * built on it.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { JobClient } from "effect-workers"
import * as path from "node:path"
import { dataDir, jobsSchema } from "./main.js"
import * as Postgres from "./postgres.js"

const config = Config.all({
  url: Config.option(Config.redacted("DATABASE_URL")),
  dataDir,
  port: Config.port("EMBEDDED_POSTGRES_PORT").pipe(
    Config.withDefault(54329),
    Config.withDescription("Port of the embedded server, used when DATABASE_URL is not set")
  )
})

/**
 * `PgClient` and `SqlClient` for the examples.
 */
export const layer = Layer.unwrapScoped(
  Effect.gen(function*() {
    const { url, port, ...options } = yield* config
    if (Option.isSome(url)) return PgClient.layer({ url: url.value, applicationName: "effect-workers-examples" })
    const dataDir = path.join(options.dataDir, "postgres")
    yield* Effect.logInfo(`Starting embedded PostgreSQL on port ${port} (data in ${dataDir})`)
    yield* Effect.addFinalizer(() => Effect.logInfo("Embedded PostgreSQL stopped"))
    const embedded = yield* Postgres.start({ dataDir, port, persistent: true })
    return PgClient.layer({ url: Redacted.make(embedded), applicationName: "effect-workers-examples" })
  })
)

/** The job client on the examples' database, in the schema `JOBS_SCHEMA` names. */
export const jobClient = Layer.unwrapEffect(Effect.map(jobsSchema, (schema) => JobClient.layer({ schema })))
