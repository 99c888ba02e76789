import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One PostgreSQL server per run; each test file gets its own schema on it (test/support/database.ts).
    globalSetup: ["test/support/globalSetup.ts"],
    setupFiles: ["test/support/setup.ts"],
    pool: "forks",
    // Tests log on purpose (failed iterations, discarded jobs): their output is shown only when they fail.
    silent: "passed-only",
    // Tests use a real database and real processes; a loaded machine takes many times longer to start them.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000
  }
})
