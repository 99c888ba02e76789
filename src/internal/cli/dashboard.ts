/**
 * `effect-workers dashboard`: serves the dashboard (`Dashboard.layer`)
 * against the database until SIGINT or SIGTERM.
 */
import { Command, Options } from "@effect/cli"
import { type Duration, Effect, Layer, Option, Redacted } from "effect"
import * as Dashboard from "../../Dashboard.js"
import * as Recurring from "../../Recurring.js"
import * as Connection from "./connection.js"
import { CommandFailed, UsageError } from "./errors.js"
import * as Cli from "./options.js"

/** The variable the token is read from unless `--token-env` names another. */
export const defaultTokenVariable = "EFFECT_WORKERS_DASHBOARD_TOKEN"

const options = {
  port: Cli.integer("port", 0, 65535, "PORT").pipe(
    Options.withDefault(3000),
    Options.withDescription("Port to listen on, 0 to 65535 (0: any free port, logged when it listens).")
  ),
  host: Options.text("host").pipe(
    Options.withPseudoName("HOST"),
    Options.withDefault("127.0.0.1"),
    Options.withDescription(
      "Address to listen on. Any other than 127.0.0.1, ::1 or localhost needs a token (see --token-env)."
    )
  ),
  basePath: Options.text("base-path").pipe(
    Options.withPseudoName("PATH"),
    Options.withDefault("/"),
    Options.withDescription("Path the dashboard is served under, such as /admin/jobs (behind a proxy).")
  ),
  readOnly: Options.boolean("read-only").pipe(
    Options.withDescription("Refuse every action: the pages and the API only read.")
  ),
  bulkLimit: Cli.integer("bulk-limit", 1, Number.MAX_SAFE_INTEGER).pipe(
    Options.optional,
    Options.withDescription("The most jobs one bulk action may touch; a larger one is refused whole. Default 1000.")
  ),
  statementTimeout: Options.text("statement-timeout").pipe(
    Options.withPseudoName("DURATION"),
    Options.optional,
    Options.withDescription("Longest a dashboard query may run, such as \"5 seconds\" (the default).")
  ),
  connections: Cli.integer("connections", 1, 100).pipe(
    Options.optional,
    Options.withDescription("How many dashboard queries may run at once, 1 to 100. Default 2.")
  ),
  tokenEnv: Options.text("token-env").pipe(
    Options.withPseudoName("VARIABLE"),
    Options.optional,
    Options.withDescription(
      `Name of the environment variable that holds the access token (default ${defaultTokenVariable}; used ` +
        "when set). With a token, every request but /healthz needs it. The token is never taken from the " +
        "command line, where other users of the machine could read it."
    )
  )
}

/**
 * Set once the dashboard command starts. It runs until a signal stops it, so
 * a stop by signal is its clean end (exit 0), where it cuts any other
 * command short (exit 130): read by the CLI's teardown, after the run.
 */
let started = false

/** Whether the dashboard command ran in this process. */
export const stopsBySignal = (): boolean => started

/** The command line's name of each option `Dashboard.layer` may refuse. */
const flags: Record<string, string> = {
  port: "--port",
  host: "--host",
  basePath: "--base-path",
  readOnly: "--read-only",
  bulkLimit: "--bulk-limit",
  statementTimeout: "--statement-timeout",
  connections: "--connections"
}

/** The token from its variable: required when `--token-env` names one, optional from the default. */
const readToken = (tokenEnv: Option.Option<string>) =>
  Effect.gen(function*() {
    const variable = Option.getOrElse(tokenEnv, () => defaultTokenVariable)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
      return yield* new UsageError({
        message: `--token-env ${JSON.stringify(variable)} is not an environment variable name: letters, digits ` +
          "and underscores, not starting with a digit"
      })
    }
    const value = process.env[variable]
    if (value === undefined || value === "") {
      if (Option.isSome(tokenEnv)) {
        return yield* new UsageError({
          message: `--token-env ${variable}: the environment variable ${variable} is not set`
        })
      }
      return { variable, token: Option.none<Redacted.Redacted<string>>() }
    }
    return { variable, token: Option.some(Redacted.make(value)) }
  })

export const command = Command.make(
  "dashboard",
  { ...Cli.connection, ...options },
  (config) =>
    Effect.gen(function*() {
      started = true
      const { token, variable } = yield* readToken(config.tokenEnv)
      const connections = Option.getOrUndefined(config.connections)
      const server = Dashboard.layer({
        port: config.port,
        host: config.host,
        basePath: config.basePath,
        readOnly: config.readOnly,
        bulkLimit: Option.getOrUndefined(config.bulkLimit),
        // Checked by the dashboard, which names the option when it is not a duration.
        statementTimeout: Option.getOrUndefined(config.statementTimeout) as Duration.DurationInput | undefined,
        connections,
        token: Option.getOrUndefined(token)
      })
      const database = Recurring.layer({ fire: false }).pipe(
        // One connection more than the dashboard's own queries: readiness checks and recurring definitions.
        Layer.provideMerge(Connection.client(config, (connections ?? 2) + 1))
      )
      return yield* Layer.launch(Layer.provide(server, database)).pipe(
        Effect.catchTag("ServeError", (error) =>
          Effect.fail(
            new CommandFailed({
              message: `Cannot listen on ${config.host}:${config.port}: ${
                error.cause instanceof Error ? error.cause.message : String(error.cause)
              }`
            })
          )),
        Effect.catchTag("InvalidDashboardOptions", (error) =>
          Effect.fail(
            new UsageError({
              message: error.option === "token"
                ? `The token in ${variable} ${error.reason}`
                : error.option === "host" && error.reason.includes("without a token")
                ? `--host ${JSON.stringify(config.host)} would expose the dashboard beyond this machine ` +
                  `without a token: set ${variable} (or name another variable with --token-env), or use ` +
                  "--host 127.0.0.1"
                : `${flags[error.option] ?? error.option} ${error.reason}`
            })
          ))
      )
    })
).pipe(
  Command.withDescription(
    "Serve the web dashboard and its JSON API against the database until SIGINT or SIGTERM (then exit 0)."
  )
)
