// #region imports
import { Data, Effect, Layer, Schedule } from "effect"
import { Worker } from "effect-workers"
// #endregion

class Unrecoverable extends Data.TaggedError("Unrecoverable")<{ readonly reason: string }> {}

const deleteExpiredRows = Effect.log("deleting expired rows")

// #region make
// Like a BackgroundService with a `Task.Delay` loop: every hour (measured from
// the end of the previous run), starting 30 seconds after the host has started.
export const Cleanup = Worker.make("database-cleanup", deleteExpiredRows, {
  schedule: Schedule.spaced("1 hour"),
  initialDelay: "30 seconds",
  // A failed run is retried up to 5 times, 2 s, 4 s, 8 s ... apart, but never
  // when the error says that retrying cannot help.
  retry: Schedule.exponential("2 seconds").pipe(
    Schedule.intersect(Schedule.recurs(5)),
    Schedule.whileInput((error: unknown) => !(error instanceof Unrecoverable))
  ),
  // Once the retries are spent: wait for the next hour.
  onFailure: "continue"
})
// #endregion

// #region once
// No schedule: the task runs once, like `BackgroundService.ExecuteAsync`. Its
// failure (after retries) leaves the worker `failed`, or stops the host here.
export const WarmUp = Worker.make("warm-up-cache", Effect.log("loading the cache"), {
  retry: false,
  onFailure: "stopHost"
})
// #endregion

// #region fixed
// `Schedule.fixed` keeps a fixed rate (a run every 10 seconds, whatever its
// length); `Schedule.spaced` waits a fixed pause after each run.
export const Sampler = Worker.make("sampler", Effect.log("sampling"), {
  schedule: Schedule.fixed("10 seconds"),
  onFailure: "restart"
})
// #endregion

// #region duration
// A duration is the plain `Task.Delay` loop: run again 30 seconds after the
// previous iteration ended, like `Schedule.spaced("30 seconds")`, and cheaper.
export const Poll = Worker.make("poll-inbox", Effect.log("polling the inbox"), {
  schedule: "30 seconds"
})
// #endregion

// #region mergeAll
// One health probe per tenant: many workers, merged into one layer that
// registers them all at once.
const tenants = Array.from({ length: 1000 }, (_, i) => `tenant-${i}`)

export const Probes = Worker.mergeAll(
  tenants.map((tenant) => Worker.make(`probe-${tenant}`, Effect.log(`probing ${tenant}`), { schedule: "1 minute" }))
)

// Worker layers and other layers compose as usual.
export const AllWorkers = Layer.mergeAll(Probes, Cleanup, Sampler)
// #endregion
