import { Context } from "effect"

/**
 * When the host's shutdown must be over, for parts that bound their own
 * stopping (the job runner's drain) so that they finish what matters, such
 * as giving unfinished jobs back, before the host gives up on them.
 */
export class ShutdownDeadline extends Context.Tag("effect-workers/internal/ShutdownDeadline")<ShutdownDeadline, {
  /** Epoch milliseconds by which shutdown must be over; `undefined` until it begins. */
  readonly get: () => number | undefined
}>() {}

// `tsx`, `npx` and `npm` relay a Ctrl-C to their child, sometimes twice within ~30 ms: a repeat sooner
// than this after the first signal is the same request, not an impatient user.
const relayedSignalMillis = 1000

/**
 * Watches SIGINT and SIGTERM beside `NodeRuntime.runMain`, which handles the
 * first: a second one at least a second later forces exit with code 130; one
 * sooner is taken as a wrapper's relay of the first, and ignored with a line
 * on stderr. Returns the function that stops watching.
 */
export const forceExitOnSecondSignal = (): () => void => {
  let firstSignalAt: number | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    const now = performance.now()
    if (firstSignalAt === undefined) {
      firstSignalAt = now
      return
    }
    const since = Math.round(now - firstSignalAt)
    if (since < relayedSignalMillis) {
      process.stderr.write(`Received ${signal} again ${since} ms after the first: taken as a relay of the first\n`)
      return
    }
    process.stderr.write(`Received ${signal} again during shutdown: exiting now\n`)
    process.exit(130)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  return () => {
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
  }
}
