/**
 * Values the global setup hands to every test file (read them with `inject`).
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the PostgreSQL server of this test run (the machine's, or the embedded one). */
    readonly databaseUrl: string
    /** Tags this run's schemas and connections, so that concurrent runs on one server never mix. */
    readonly testRunId: string
  }
}

/** Prefix of `application_name` for this run's connections. */
export const applicationNamePrefix = (runId: string): string => `ew-test ${runId}`

/** Prefix of this run's schema names. */
export const schemaPrefix = (runId: string): string => `ew_${runId}_`

/** `url` with session settings in its query, so that every connection made from it (in this process or a child) gets them. */
export const withSession = (
  url: string,
  session: { readonly applicationName: string; readonly searchPath?: string | undefined }
): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("application_name", session.applicationName)
  if (session.searchPath !== undefined) parsed.searchParams.set("options", `-c search_path=${session.searchPath}`)
  return parsed.href
}
