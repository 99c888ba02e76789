/**
 * The `effect-workers` command line: its commands, and how a run ends (one
 * line on stderr for a failure, and an exit code that says what kind).
 */
import { Command, ValidationError } from "@effect/cli"
import { Terminal } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import type * as Runtime from "@effect/platform/Runtime"
import { Cause, Effect, Exit, Layer, Logger } from "effect"
import { readFileSync } from "node:fs"
import * as Dashboard from "./dashboard.js"
import { ExitCode, exitCodeOf, messageOf } from "./errors.js"
import { jobs } from "./jobs.js"
import * as Migrate from "./migrate.js"
import { recurringCommand } from "./recurring.js"
import * as Status from "./status.js"

/** The package's version, from its package.json (two levels above this module, in `src/` and in `dist/`). */
const version: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version ?? "unknown"
  } catch {
    return "unknown"
  }
})()

const root = Command.make(
  "effect-workers",
  {},
  (): Effect.Effect<never, ValidationError.ValidationError> =>
    Effect.fail(ValidationError.helpRequested(effectWorkers.descriptor))
)

const effectWorkers = root.pipe(
  Command.withDescription(
    "Operate effect-workers' job tables in PostgreSQL: migrate them, see their status, manage jobs and " +
      "recurring definitions, serve the dashboard. Connects on DATABASE_URL (or --database-url)."
  ),
  Command.withSubcommands([Migrate.command, Status.command, jobs, recurringCommand, Dashboard.command])
)

const cli = Command.run(effectWorkers, { name: "effect-workers", version })

/** Prompts are written to stderr, like errors and logs: stdout holds only results. */
const StderrTerminal = Layer.scoped(
  Terminal.Terminal,
  Effect.map(NodeTerminal.make(), (terminal): Terminal.Terminal => ({
    ...terminal,
    display: (text) => Effect.sync(() => void process.stderr.write(text))
  }))
)

/** Log lines go to stderr, so that `--json` output stays one document. */
const StderrLogger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))

/**
 * Runs the command line `argv` (as `process.argv`: the runtime, the script,
 * then the arguments) and answers the exit code. Failures are reported here,
 * one line each on stderr; usage errors were already reported with help.
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  cli(argv).pipe(
    Effect.as(ExitCode.ok),
    Effect.catchAll((error) =>
      ValidationError.isValidationError(error)
        ? Effect.succeed(ExitCode.usage)
        : Effect.as(
          Effect.sync(() => void process.stderr.write(`Error: ${messageOf(error)}\n`)),
          exitCodeOf(error)
        )
    ),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Effect.sync(() =>
          void process.stderr.write(`Error: effect-workers failed unexpectedly: ${Cause.pretty(Cause.die(defect))}\n`)
        ),
        ExitCode.failure
      )
    ),
    Effect.provide(Layer.mergeAll(NodeContext.layer, StderrTerminal, StderrLogger))
  )

/**
 * The teardown of `NodeRuntime.runMain` for {@link run}: the code it
 * answered, or for a run stopped by a signal, 0 for a command that runs
 * until stopped (the dashboard) and 130 for any other.
 */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  const code = Exit.match(exit, {
    onSuccess: (value) => typeof value === "number" ? value : ExitCode.ok,
    onFailure: (cause) =>
      Cause.isInterruptedOnly(cause)
        ? (Dashboard.stopsBySignal() ? ExitCode.ok : ExitCode.interrupted)
        : ExitCode.failure
  })
  onExit(code)
  process.exit(code)
}
