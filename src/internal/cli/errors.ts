/**
 * How the commands fail, and the exit code of each failure.
 */
import { Data } from "effect"

/**
 * The exit codes, documented in docs/cli.md.
 */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** The command ran and failed: see the message (or the schema is behind, for `migrate --check`). */
  failure: 1,
  /** The command line is wrong: an unknown command or option, a bad value, a missing confirmation. */
  usage: 2,
  /** The database could not be reached. */
  unavailable: 3,
  /** Stopped by SIGINT or SIGTERM before it finished (the dashboard exits 0 when it stops cleanly). */
  interrupted: 130
} as const

/** A command line that cannot be run as given; found after parsing (options that contradict each other). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** A failure already put in words for the operator. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}

/** The operator answered no to the confirmation prompt. */
export class Declined extends Data.TaggedError("Declined")<{ readonly action: string }> {
  override get message(): string {
    return `Nothing done: ${this.action} was not confirmed`
  }
}

/** `migrate --check` found the schema not at this version's. */
export class SchemaNotCurrent extends Data.TaggedError("SchemaNotCurrent")<{
  readonly schema: string
  readonly version: number
  readonly latestVersion: number
}> {
  override get message(): string {
    return this.version < this.latestVersion
      ? `Schema "${this.schema}" is behind: at version ${this.version}, this version of effect-workers needs ` +
        `${this.latestVersion}; run \`effect-workers migrate\``
      : `Schema "${this.schema}" is at version ${this.version}, newer than this version of effect-workers ` +
        `knows (${this.latestVersion}): upgrade effect-workers`
  }
}

/** Some of the jobs named could not be acted on; each is reported on its own line. */
export class PartlyDone extends Data.TaggedError("PartlyDone")<{
  readonly action: string
  readonly failed: number
  readonly total: number
}> {
  override get message(): string {
    return `${this.failed} of ${this.total} job(s) could not be ${this.action}`
  }
}

/** The failures whose exit code is not 1, by tag. */
const codes: Record<string, number> = {
  UsageError: ExitCode.usage,
  InvalidDashboardOptions: ExitCode.usage,
  DatabaseUnavailable: ExitCode.unavailable
}

/** The exit code of a failure, by its tag. */
export const exitCodeOf = (error: unknown): number => {
  const tag = typeof error === "object" && error !== null ? (error as { readonly _tag?: unknown })._tag : undefined
  return typeof tag === "string" ? codes[tag] ?? ExitCode.failure : ExitCode.failure
}

/** One line for a failure: its message, with a database error's own words. */
export const messageOf = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  const tagged = error as { readonly _tag?: unknown; readonly message?: unknown; readonly cause?: unknown }
  const message = typeof tagged.message === "string" && tagged.message !== "" ? tagged.message : String(error)
  const full = tagged._tag === "SqlError" && tagged.cause instanceof Error
    ? `${message}: ${tagged.cause.message}`
    : message
  return full.replace(/\s*\n\s*/g, " ")
}
