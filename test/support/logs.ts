import { Cause, Effect, FiberRef, HashSet, Logger, type Scope } from "effect"

/**
 * Sends the logs of the rest of the scope (including fibers forked from it,
 * such as workers started in it) to a list instead of the console, and
 * returns a way to read that list.
 */
export const captureLogs: Effect.Effect<Effect.Effect<ReadonlyArray<string>>, never, Scope.Scope> = Effect.gen(
  function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    })
    yield* Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(logger))
    return Effect.sync(() => lines.slice())
  }
)

export interface LogEntry {
  readonly level: string
  readonly message: string
  /** The line's cause as the loggers print it (`Cause.pretty`), empty when it has none. */
  readonly cause: string
}

/** {@link captureLogs}, with each line's level and cause. */
export const captureLogEntries: Effect.Effect<Effect.Effect<ReadonlyArray<LogEntry>>, never, Scope.Scope> = Effect
  .gen(function*() {
    const entries: Array<LogEntry> = []
    const logger = Logger.make(({ cause, logLevel, message }) => {
      entries.push({
        level: logLevel.label,
        message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
        cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause)
      })
    })
    yield* Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(logger))
    return Effect.sync(() => entries.slice())
  })
