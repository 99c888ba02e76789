/**
 * Vitest global setup: one PostgreSQL server for the whole run, and checks
 * after the run that nothing was left behind on it.
 *
 * The server is the one at `DATABASE_URL` when it is set, otherwise an
 * embedded PostgreSQL started here in a temporary directory on a free port and
 * deleted at the end. Test files get its URL and this run's id with
 * `inject("databaseUrl")` / `inject("testRunId")` (see ./database.ts).
 *
 * It also brings `dist/` up to date first: the CLI's and the package's tests
 * run the built package, as users do.
 */
import { Effect, Exit, Logger, LogLevel, Redacted, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"
import { DevDatabase } from "../../src/dev.js"
import { describeSessions, lingeringSessions, withClient } from "./admin.js"
import { applicationNamePrefix, schemaPrefix, withSession } from "./context.js"

const embedded = Effect.gen(function*() {
  const dataDir = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "effect-workers-test-pg-")))
  // Durability buys nothing for a throw-away test database.
  const server = yield* DevDatabase.start({
    dataDir,
    persistent: false,
    settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" }
  })
  return Redacted.value(server.url)
}).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))

const leftovers = (url: string, runId: string) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const sessions = yield* lingeringSessions(url, applicationNamePrefix(runId), 5_000)
    if (sessions.length > 0) {
      problems.push(
        `Connections still open after every test file ended (now terminated):\n${describeSessions(sessions)}`
      )
    }
    const schemas = yield* withClient(url, (sql) =>
      Effect.gen(function*() {
        const rows = yield* sql<{ readonly name: string }>`
          SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, ${schemaPrefix(runId)})`
        for (const row of rows) yield* sql`DROP SCHEMA ${sql(row.name)} CASCADE`
        return rows.map((row) => row.name)
      }))
    if (schemas.length > 0) {
      problems.push(`Test schemas not dropped by their test files (now dropped): ${schemas.join(", ")}`)
    }
    return problems
  })

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../../scripts/build.mjs", import.meta.url)), "--incremental"],
    {
      stdio: "inherit"
    }
  )
  const runId = randomBytes(4).toString("hex")
  const scope = Effect.runSync(Scope.make())
  // The embedded server's start and stop are not news in a test run.
  const close = () =>
    Effect.runPromise(Scope.close(scope, Exit.void).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
  const fromEnv = process.env.DATABASE_URL
  const url = fromEnv !== undefined && fromEnv !== "" ? fromEnv : await Effect.runPromise(Scope.extend(embedded, scope))
  const checkUrl = withSession(url, { applicationName: "ew-test-harness" })
  try {
    await Effect.runPromise(withClient(checkUrl, (sql) => sql`SELECT 1`))
  } catch (error) {
    await close()
    throw new Error(`The test database at ${new URL(url).host} does not answer: ${String(error)}`)
  }
  project.provide("databaseUrl", url)
  project.provide("testRunId", runId)

  return async () => {
    try {
      const problems = await Effect.runPromise(leftovers(checkUrl, runId))
      if (problems.length > 0) throw new Error(problems.join("\n"))
    } finally {
      await close()
    }
  }
}
