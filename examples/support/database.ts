/**
 * The database the examples run on: the server at `DATABASE_URL` when it is
 * set, otherwise an embedded PostgreSQL (`DevDatabase.layer`) whose data is
 * kept under `<EXAMPLES_DATA_DIR>/postgres` (default `.data/postgres`) between
 * runs. The embedded server is stopped when the layer is released, after
 * everything built on it.
 */
import { Config, Effect, Layer } from "effect"
import { JobClient } from "effect-workers"
import { DevDatabase } from "effect-workers/dev"
import * as path from "node:path"
import { dataDir, jobsSchema } from "./main.js"

const config = Config.all({
  dataDir,
  port: Config.port("EMBEDDED_POSTGRES_PORT").pipe(
    Config.withDefault(54329),
    Config.withDescription("Port of the embedded server, used when DATABASE_URL is not set")
  )
})

/**
 * `PgClient` and `SqlClient` for the examples.
 */
export const layer = Layer.unwrapEffect(
  Effect.map(config, ({ dataDir, port }) =>
    DevDatabase.layer({
      dataDir: path.join(dataDir, "postgres"),
      port,
      client: { applicationName: "effect-workers-examples" }
    }))
)

/** The job client on the examples' database, in the schema `JOBS_SCHEMA` names. */
export const jobClient = Layer.unwrapEffect(Effect.map(jobsSchema, (schema) => JobClient.layer({ schema })))
