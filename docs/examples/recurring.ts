// #region imports
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { Host, Job, JobClient, JobRunner, Recurring, Testing } from "effect-workers"
// #endregion

// #region define
const SendDailyReport = Job.make("send-daily-report", {
  payload: Schema.Struct({ to: Schema.String }),
  handler: ({ to }) =>
    Effect.gen(function*() {
      // Which tick this job stands for: the report is about the day before it, however late it runs.
      const { recurring } = yield* Job.JobContext
      const tick = Option.getOrThrow(recurring).at
      yield* Effect.log(`sending the report of the day before ${tick.toISOString()} to ${to}`)
    })
})

const ProcessOrders = Job.make("process-orders", {
  payload: Schema.Struct({}),
  handler: () => Effect.log("processing orders")
})

// Every day at 02:00 in Berlin (Quartz's WithCronSchedule, Hangfire's Cron.Daily(2)).
export const DailyReport = Recurring.make("daily-report", {
  job: SendDailyReport,
  payload: { to: "ops@example.com" },
  cron: Recurring.daily(2),
  timeZone: "Europe/Berlin",
  // If every process was down at 02:00, send one report when one comes back.
  misfire: "runOnce"
})

// Every 5 minutes from when it is first stored, forever (Quartz's WithIntervalInMinutes(5).RepeatForever()).
export const OrdersEveryFiveMinutes = Recurring.make("process-orders", {
  job: ProcessOrders,
  payload: {},
  every: "5 minutes",
  // A tick missed while all processes were down is not made up for.
  misfire: "skip"
})
// #endregion

// #region layer
// Stores the definitions at start-up and fires their ticks; run it in as many processes as you like.
const Scheduler = Recurring.layer({ definitions: [DailyReport, OrdersEveryFiveMinutes] })

const Runner = JobRunner.layer({ jobs: [SendDailyReport, ProcessOrders] })

Host.run(
  Layer.merge(Scheduler, Runner).pipe(
    Layer.provideMerge(JobClient.layer()),
    Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
  )
)
// #endregion

// #region manage
export const operate = Effect.gen(function*() {
  const recurring = yield* Recurring.Recurring
  // Hangfire's AddOrUpdate: stored, or updated in place; a changed schedule applies from its next tick.
  yield* recurring.addOrUpdate(
    Recurring.make("weekly-digest", { job: SendDailyReport, payload: { to: "all@example.com" }, cron: "0 9 * * 1" })
  )
  for (const info of yield* recurring.list) {
    yield* Effect.log(
      `${info.id}: last ran ${Option.getOrNull(info.lastRunAt)}, next ${Option.getOrNull(info.nextRunAt)}`
    )
  }
  yield* recurring.trigger("daily-report") // a job now, outside the schedule
  yield* recurring.pause("process-orders") // in every process, until resumed
  yield* recurring.resume("process-orders") // from its next tick; the ticks missed while paused are not fired
  yield* recurring.remove("weekly-digest") // fires nothing more
})
// #endregion

// #region perform
export const reportOfTheSecond = Testing.performJob(SendDailyReport, { to: "ops@example.com" }, {
  recurring: Option.some({ id: "daily-report", at: new Date("2026-03-08T01:00:00Z") })
})
// #endregion
