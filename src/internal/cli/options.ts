/**
 * The options and arguments the commands share, each checked as it is
 * parsed: a bad value is a usage error that names the option, the value and
 * what is allowed.
 */
import { Args, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Option, Redacted } from "effect"
import { type JobState, JobState as JobStates } from "../../Job.js"
import * as Migrations from "../../Migrations.js"
import { isJobId } from "../jobs/store.js"
import { isSchemaName, nameProblem, schemaRule } from "../jobs/values.js"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))
/** Arguments report their problems as help text. */
const invalidArgument = (message: string) => Effect.fail(HelpDoc.p(message))

/**
 * `url` with its password (in the user info or a `password` parameter)
 * replaced by `***`: what may be printed of a connection URL.
 */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    for (const key of [...parsed.searchParams.keys()]) {
      if (key.toLowerCase().includes("password")) parsed.searchParams.set(key, "***")
    }
    return parsed.href
  } catch {
    // Not a URL: hide what could be a password all the same.
    return url
      .replace(/\/\/([^/@:]*):[^@/]*@/g, (_, user: string) => `//${user}:***@`)
      .replace(/(password=)[^&\s]*/gi, (_, key: string) => `${key}***`)
  }
}

const urlSource = "--database-url (or DATABASE_URL)"

/** The URL, checked: a `postgres://` or `postgresql://` URL with a host. */
const checkUrl = (value: Option.Option<Redacted.Redacted>) => {
  const text = Option.match(value, { onNone: () => "", onSome: Redacted.value }).trim()
  if (text === "") {
    return invalid(
      "No database given: set DATABASE_URL or pass --database-url, a URL such as postgres://user@host:5432/database"
    )
  }
  let parsed: URL | undefined
  try {
    parsed = new URL(text)
  } catch {
    parsed = undefined
  }
  if (parsed === undefined || (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:")) {
    return invalid(
      `${urlSource} ${JSON.stringify(redactUrl(text))} is not a PostgreSQL URL: expected ` +
        "postgres://user:password@host:port/database (or postgresql://...)"
    )
  }
  if (parsed.hostname === "" && !parsed.searchParams.has("host")) {
    return invalid(
      `${urlSource} ${
        JSON.stringify(redactUrl(text))
      } names no host: expected postgres://user:password@host:port/database`
    )
  }
  return Effect.succeed(Redacted.make(text))
}

/** The connection URL: `--database-url`, else `DATABASE_URL`. Redacted from here on. */
export const databaseUrl: Options.Options<Redacted.Redacted> = Options.redacted("database-url").pipe(
  Options.withPseudoName("URL"),
  Options.withFallbackConfig(Config.redacted("DATABASE_URL")),
  Options.optional,
  Options.mapEffect(checkUrl),
  Options.withDescription(
    "PostgreSQL connection URL, postgres://user:password@host:port/database. Default: the DATABASE_URL " +
      "environment variable, which is the better place for a password (a command line is visible to other " +
      "users of the machine). The password is never printed."
  )
)

/** The schema of the job tables. */
export const schema: Options.Options<string> = Options.text("schema").pipe(
  Options.withPseudoName("NAME"),
  Options.withDefault(Migrations.defaultSchema),
  Options.mapEffect((value) =>
    isSchemaName(value)
      ? Effect.succeed(value)
      : invalid(`--schema ${JSON.stringify(value)} is not a schema name: it must be ${schemaRule}`)
  ),
  Options.withDescription(`Schema of the job tables: ${schemaRule}.`)
)

/** Where the job tables are. */
export const connection = { databaseUrl, schema }

/** `--json`: a JSON document on stdout instead of text. */
export const json: Options.Options<boolean> = Options.boolean("json").pipe(
  Options.withDescription("Print one JSON document on stdout instead of text, for scripts.")
)

/** `--yes`: no confirmation prompt. */
export const yes: Options.Options<boolean> = Options.boolean("yes").pipe(
  Options.withAlias("y"),
  Options.withDescription(
    "Do not ask for confirmation. Needed when stdin is not a terminal (scripts, pipelines)."
  )
)

/** A whole number option from `min` to `max`, checked as text so that the message can name it. */
export const integer = (name: string, min: number, max: number, pseudoName = "N"): Options.Options<number> =>
  Options.text(name).pipe(
    Options.withPseudoName(pseudoName),
    Options.mapEffect((value) => {
      const n = /^-?[0-9]+$/.test(value.trim()) ? Number(value) : Number.NaN
      return Number.isSafeInteger(n) && n >= min && n <= max
        ? Effect.succeed(n)
        : invalid(`--${name} ${JSON.stringify(value)} is not allowed: expected a whole number from ${min} to ${max}`)
    })
  )

/** A queue, job or definition name: text PostgreSQL can store, not blank. */
const nameOption = (name: string, description: string): Options.Options<Option.Option<string>> =>
  Options.text(name).pipe(
    Options.withPseudoName(name.toUpperCase()),
    Options.mapEffect((value) => {
      const problem = nameProblem(value)
      return problem === undefined ? Effect.succeed(value) : invalid(`--${name} ${problem}`)
    }),
    Options.optional,
    Options.withDescription(description)
  )

const states: ReadonlyArray<JobState> = JobStates.literals

/** `--state`, one of the job states. */
const state: Options.Options<Option.Option<JobState>> = Options.text("state").pipe(
  Options.withPseudoName("STATE"),
  Options.mapEffect((value) =>
    states.includes(value as JobState)
      ? Effect.succeed(value as JobState)
      : invalid(`--state ${JSON.stringify(value)} is not a job state: expected one of ${states.join(", ")}`)
  ),
  Options.optional,
  Options.withDescription(`Only jobs in this state: ${states.join(", ")}.`)
)

/** The filter of `jobs list` and of the actions on many jobs. */
export const filter = {
  queue: nameOption("queue", "Only jobs of this queue."),
  state,
  name: nameOption("name", "Only jobs of this job definition (its name)."),
  search: Options.text("search").pipe(
    Options.withPseudoName("TEXT"),
    // A blank search matches every job: refused, so that an action by filter never covers all by accident.
    Options.mapEffect((value) =>
      value.trim() === ""
        ? invalid(`--search ${JSON.stringify(value)} is blank: give an id or text to look for in the payloads`)
        : Effect.succeed(value)
    ),
    Options.optional,
    Options.withDescription("Only jobs with this id, or with this text in their payload (as stored, JSON).")
  )
}

/** A filter as parsed, with only the fields given. */
export interface Filter {
  readonly queue?: string | undefined
  readonly state?: JobState | undefined
  readonly name?: string | undefined
  readonly search?: string | undefined
}

export const toFilter = (parsed: {
  readonly queue: Option.Option<string>
  readonly state: Option.Option<JobState>
  readonly name: Option.Option<string>
  readonly search: Option.Option<string>
}): Filter => {
  const filter: Record<string, string> = {}
  for (const key of ["queue", "state", "name", "search"] as const) {
    const value = parsed[key]
    if (Option.isSome(value)) filter[key] = value.value
  }
  return filter as Filter
}

const jobIdRule = "a job id is digits, from 1 to 9223372036854775807"

const checkId = (value: string) =>
  isJobId(value) && value !== "0" ? Effect.succeed(value) : invalidArgument(
    `ID ${JSON.stringify(value)} is not a job id: ${jobIdRule}`
  )

/** `--before ID`: a page of jobs older than this one. */
export const before: Options.Options<Option.Option<string>> = Options.text("before").pipe(
  Options.withPseudoName("ID"),
  Options.mapEffect((value) =>
    isJobId(value) ? Effect.succeed(value) : invalid(`--before ${JSON.stringify(value)} is not a job id: ${jobIdRule}`)
  ),
  Options.optional,
  Options.withDescription("Only jobs older than this id: the last id of a page gives the next page.")
)

/** One job id. */
export const jobId: Args.Args<string> = Args.text({ name: "id" }).pipe(
  Args.mapEffect(checkId),
  Args.withDescription("The job's id.")
)

/** Job ids, none or more. */
export const jobIds: Args.Args<Array<string>> = Args.text({ name: "id" }).pipe(
  Args.mapEffect(checkId),
  Args.repeated,
  Args.withDescription("Ids of the jobs. Without any, the jobs the filter options cover.")
)

/** A recurring definition's id. */
export const recurringId: Args.Args<string> = Args.text({ name: "name" }).pipe(
  Args.mapEffect((value) =>
    value.trim().length === 0 || value.length > 200
      ? invalidArgument(`NAME ${JSON.stringify(value)} is not a recurring definition's id: 1 to 200 characters`)
      : Effect.succeed(value)
  ),
  Args.withDescription("The recurring definition's id (its name).")
)
