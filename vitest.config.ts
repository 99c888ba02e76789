import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const source = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  // Tests import the package by its name, from its sources (as tsconfig.json's `paths` does for tsc and tsx).
  resolve: {
    alias: [
      { find: /^effect-workers$/, replacement: `${source}index.ts` },
      { find: /^effect-workers\/(.+)$/, replacement: `${source}$1.ts` }
    ]
  },
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
