// #region imports
import { Effect, Either } from "effect"
import { Worker } from "effect-workers"
// #endregion

// #region cron
// Quartz's `CronScheduleBuilder`: 02:00 every day, wall-clock time in Berlin.
export const NightlyReport = Worker.cron("nightly-report", Effect.log("building the report"), {
  cron: "0 2 * * *",
  timeZone: "Europe/Berlin"
})

// Six fields put seconds first: every 15 seconds. A run that takes longer than
// 15 seconds makes the next tick wait for it instead of being skipped.
export const Poller = Worker.cron("poller", Effect.log("polling"), {
  cron: "*/15 * * * * *",
  overlap: "wait"
})

// Weekdays at 08:30 in a fixed UTC offset; ticks earlier than one minute after
// start are not considered.
export const Digest = Worker.cron("digest", Effect.log("sending the digest"), {
  cron: "30 8 * * 1-5",
  timeZone: "+02:00",
  initialDelay: "1 minute"
})
// #endregion

// #region validate
// Check user input before defining a worker with it.
const checked = Worker.validateCron("0 25 * * *", "Europe/Berlin")
if (Either.isLeft(checked)) {
  // Worker "(cron)": invalid hour field in cron expression "0 25 * * *": "25": ...
  console.error(checked.left.message)
}
// #endregion
