import { Config } from "effect"
import { realpathSync } from "node:fs"
import { pathToFileURL } from "node:url"

/**
 * Whether the module is the program node was started with, so that an
 * example runs its host when executed and only exports its layers when a test
 * imports it.
 */
export const isMain = (meta: ImportMeta): boolean => {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return pathToFileURL(realpathSync(entry)).href === meta.url
  } catch {
    return false
  }
}

/** Where the examples keep their files (git-ignored). */
export const dataDir: Config.Config<string> = Config.string("EXAMPLES_DATA_DIR").pipe(
  Config.withDefault(".data"),
  Config.withDescription("Directory for the examples' files and their embedded database")
)

/** Schema of the job tables (`JOBS_SCHEMA`, default `effect_workers`). */
export const jobsSchema: Config.Config<string> = Config.string("JOBS_SCHEMA").pipe(
  Config.withDefault("effect_workers"),
  Config.withDescription("PostgreSQL schema of the durable job tables")
)
