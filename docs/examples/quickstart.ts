// A complete program: two workers run by a host until SIGINT or SIGTERM.
// Run it with `npx tsx docs/examples/quickstart.ts`.
// #region imports
import { Effect, Layer, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
// #endregion

// #region quickstart
// Every 5 seconds, 5 seconds after the previous run ended.
const Heartbeat = Worker.make("heartbeat", Effect.log("still alive"), {
  schedule: Schedule.spaced("5 seconds")
})

// At 02:00 every night, Berlin time.
const NightlyReport = Worker.cron("nightly-report", Effect.log("building the report"), {
  cron: "0 2 * * *",
  timeZone: "Europe/Berlin"
})

// Runs until Ctrl-C (or SIGTERM), then stops both workers within 10 seconds.
Host.run(Layer.mergeAll(Heartbeat, NightlyReport), { gracePeriod: "10 seconds" })
// #endregion
