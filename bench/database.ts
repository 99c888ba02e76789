/** The PostgreSQL server the database suites run on. */
import { Effect, Scope } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Postgres from "../src/internal/dev/embedded.js"

const embedded = Effect.gen(function*() {
  const dataDir = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "effect-workers-bench-pg-")))
  const port = yield* Postgres.freePort
  return yield* Postgres.start({ dataDir, port, persistent: false })
})

/**
 * The server at `DATABASE_URL`, or else an embedded PostgreSQL started for
 * the run and stopped when `scope` closes.
 */
export const serverUrl = async (suite: string, scope: Scope.Scope): Promise<string> => {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  console.error(`${suite} suite: starting an embedded PostgreSQL (set DATABASE_URL to use another server)`)
  return Effect.runPromise(Scope.extend(embedded, scope))
}
