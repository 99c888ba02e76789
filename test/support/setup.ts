/**
 * Runs in every test file: after the file's own hooks, fails the file if it
 * left a child process running or a database connection open.
 */
import { Effect } from "effect"
import { afterAll } from "vitest"
import { describeSessions, lingeringSessions } from "./admin.js"
import { collectLeaks } from "./children.js"
import { withSession } from "./context.js"
import * as TestDatabase from "./database.js"

afterAll(async () => {
  const problems = [...await collectLeaks()]
  if (TestDatabase.wasUsed()) {
    const url = withSession(TestDatabase.serverUrl(), { applicationName: "ew-test-harness" })
    const sessions = await Effect.runPromise(lingeringSessions(url, TestDatabase.applicationName(), 3_000))
    if (sessions.length > 0) {
      problems.push(
        `Database connections still open when the test file ended (now terminated):\n${describeSessions(sessions)}`
      )
    }
  }
  if (problems.length > 0) throw new Error(problems.join("\n"))
})
