/**
 * The seed's Quartz.NET scheduling on durable recurring jobs: the daily report
 * at 02:00 (`WithCronSchedule`, in a time zone of your choice) and
 * `ProcessOrders` every 5 minutes, starting now and repeating forever
 * (`WithIntervalInMinutes(5).RepeatForever().StartNow()`).
 *
 * Each tick enqueues one job, once, however many processes run this; a runner
 * in any of them runs it, with retries. Quartz's `WaitForJobsToComplete` is
 * the runner's drain at shutdown (`drainTimeout`, 10 seconds by default).
 *
 *   node --import tsx examples/quartz-scheduling.ts
 */
import { Config, Context, Effect, Layer, Schema } from "effect"
import { Host, Job, JobRunner, Recurring } from "effect-workers"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

/** The seed's IReportService. */
export class ReportService extends Context.Tag("examples/ReportService")<ReportService, {
  readonly generateDailyReport: (day: Date) => Effect.Effect<string>
  readonly sendReport: (report: string) => Effect.Effect<void>
}>() {
  static readonly Default = Layer.succeed(ReportService, {
    generateDailyReport: (day) => Effect.succeed(`report for ${day.toISOString().slice(0, 10)}`),
    sendReport: (report) => Effect.logInfo(`Sent ${report}`)
  })
}

/** `SendDailyReportJob`: reports on the day before its tick, whenever it runs. */
export const SendDailyReport = Job.make("send-daily-report", {
  payload: Schema.Struct({}),
  maxAttempts: 5,
  handler: () =>
    Effect.gen(function*() {
      const { recurring, runAt } = yield* Job.JobContext
      const tick = recurring._tag === "Some" ? recurring.value.at : runAt
      yield* Effect.logInfo("Starting daily report generation")
      const reports = yield* ReportService
      const report = yield* reports.generateDailyReport(new Date(tick.getTime() - 86_400_000))
      yield* reports.sendReport(report)
      yield* Effect.logInfo("Daily report sent successfully")
    }).pipe(Effect.tapErrorCause((cause) => Effect.logError("Failed to generate or send daily report", cause)))
})

/** `ProcessOrdersJob`. */
export const ProcessOrders = Job.make("process-orders", {
  payload: Schema.Struct({}),
  handler: () => Effect.logInfo("Processing pending orders")
})

/** The daily report's trigger: 02:00 every day in `REPORT_TIME_ZONE` (default UTC). */
export const DailyReportTrigger = (timeZone: string) =>
  Recurring.make("send-daily-report", {
    job: SendDailyReport,
    payload: {},
    cron: Recurring.daily(2),
    timeZone
  })

/** Every 5 minutes from when it is first stored, forever. */
export const ProcessOrdersTrigger = Recurring.make("process-orders", {
  job: ProcessOrders,
  payload: {},
  every: "5 minutes"
})

/** The scheduler and a runner for both jobs; needs the `JobClient` and the database. */
export const QuartzScheduler = Layer.unwrapEffect(
  Effect.map(
    Config.string("REPORT_TIME_ZONE").pipe(Config.withDefault("UTC")),
    (timeZone) =>
      Layer.merge(
        Recurring.layer({
          definitions: [DailyReportTrigger(timeZone), ProcessOrdersTrigger],
          // The demo shares its schema with other examples' definitions: leave those alone.
          missing: "keep"
        }),
        JobRunner.layer({ jobs: [SendDailyReport, ProcessOrders] }).pipe(
          Layer.provide(ReportService.Default)
        )
      )
  )
)

if (isMain(import.meta)) {
  Host.run(QuartzScheduler.pipe(Layer.provideMerge(Database.jobClient), Layer.provide(Database.layer)))
}
