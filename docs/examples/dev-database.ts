// The development database in an app and in a test run's global setup.
// #region imports
import { Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import { Host, Job, JobClient, JobRunner } from "effect-workers"
import { DevDatabase } from "effect-workers/dev"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
// #endregion

const Welcome = Job.make("welcome", {
  payload: Schema.Struct({ to: Schema.String }),
  handler: ({ to }) => Effect.log(`welcome, ${to}`)
})

// #region app
// DATABASE_URL when it is set; otherwise an embedded PostgreSQL whose data stays in
// .effect-workers/postgres under the working directory, stopped when the host stops.
const Database = DevDatabase.layer()

const App = JobRunner.layer({ jobs: [Welcome] }).pipe(
  Layer.provide(JobClient.layer()),
  Layer.provide(Database)
)

export const main = () => Host.run(App)
// #endregion

// #region global-setup
// vitest.config.ts: `test: { globalSetup: ["test/globalSetup.ts"] }`. One server for the whole run,
// in a folder deleted at the end; test files read its URL with `inject("databaseUrl")`.
declare module "vitest" {
  export interface ProvidedContext {
    readonly databaseUrl: string
  }
}

export default async function setup(project: TestProject) {
  const scope = Effect.runSync(Scope.make())
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "my-app-test-pg-"))
  const server = await Effect.runPromise(
    Scope.extend(DevDatabase.start({ dataDir, persistent: false, settings: { fsync: "off" } }), scope)
  )
  project.provide("databaseUrl", Redacted.value(server.url))
  return () => Effect.runPromise(Scope.close(scope, Exit.void))
}
// #endregion
