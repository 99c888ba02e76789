/**
 * The seed's Hangfire jobs on durable PostgreSQL jobs: a fire-and-forget
 * notification email retried up to 3 times (`[AutomaticRetry(Attempts = 3)]`),
 * an order processed after a delay (`BackgroundJob.Schedule`), the daily
 * report as a recurring job (`RecurringJob.AddOrUpdate("daily-report", ...,
 * Cron.Daily(2))`), and the JobsController: `POST /api/jobs/send-email`
 * enqueues the email and answers with the job's id.
 *
 *   node --import tsx examples/hangfire-jobs.ts
 *   curl -X POST http://127.0.0.1:3001/api/jobs/send-email
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Data, Duration, Effect, Layer, Option, Ref, Schema } from "effect"
import { Host, Job, JobClient, JobRunner, Recurring } from "effect-workers"
import { createServer } from "node:http"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

export class MailServerBusy extends Data.TaggedError("MailServerBusy")<{ readonly attempt: number }> {
  override get message() {
    return "the mail server is busy (deliberately, on each email's first attempt, to show a retry)"
  }
}

/** Sends mail; this one is busy on a message's first attempt, to show the retries. */
export class Mailer extends Context.Tag("examples/Mailer")<Mailer, {
  readonly send: (to: string, attempt: number) => Effect.Effect<void, MailServerBusy>
  readonly sent: Effect.Effect<ReadonlyArray<string>>
}>() {
  static readonly Flaky = Layer.effect(
    Mailer,
    Effect.gen(function*() {
      const sent = yield* Ref.make<ReadonlyArray<string>>([])
      return {
        send: (to, attempt) =>
          attempt === 1
            ? Effect.fail(new MailServerBusy({ attempt }))
            : Effect.zipRight(
              Ref.update(sent, (all) => [...all, to]),
              Effect.logInfo(`Notification email sent to ${to}`)
            ),
        sent: Ref.get(sent)
      }
    })
  )
}

/** `SendNotificationEmail` with `[AutomaticRetry(Attempts = 3)]`: the first attempt and 3 retries. */
export const SendNotificationEmail = Job.make("send-notification-email", {
  payload: Schema.Struct({ to: Schema.String }),
  maxAttempts: 4,
  handler: ({ to }) =>
    Effect.gen(function*() {
      const { attempt } = yield* Job.JobContext
      const mailer = yield* Mailer
      yield* mailer.send(to, attempt)
    })
})

/** `ProcessOrderAsync(orderId)`. */
export const ProcessOrder = Job.make("process-order", {
  payload: Schema.Struct({ orderId: Schema.Number }),
  handler: ({ orderId }) => Effect.logInfo(`Order ${orderId} processed`)
})

/** `GenerateDailyReportAsync()`. */
export const GenerateDailyReport = Job.make("generate-daily-report", {
  payload: Schema.Struct({}),
  handler: () => Effect.logInfo("Daily report generated")
})

/** The seed's HangfireJobService. */
export const enqueueBackgroundJob = Effect.map(
  JobClient.enqueue(SendNotificationEmail, { to: "customer@example.com" }),
  (job) => job.id
)

export const scheduleDelayedJob = (delay: Duration.DurationInput) =>
  Effect.map(JobClient.enqueue(ProcessOrder, { orderId: 123 }, { delay }), (job) => job.id)

/** `AddOrUpdate("daily-report", () => GenerateDailyReportAsync(), Cron.Daily(2))`: stored, or updated in place. */
export const scheduleRecurringJob = Effect.flatMap(
  Recurring.Recurring,
  (recurring) =>
    recurring.addOrUpdate(
      Recurring.make("daily-report", { job: GenerateDailyReport, payload: {}, cron: Recurring.daily(2) })
    )
)

/** The JobsController, as a typed HTTP API. */
export class JobsApi extends HttpApi.make("jobs").add(
  HttpApiGroup.make("jobs").add(
    HttpApiEndpoint.post("sendEmail", "/api/jobs/send-email")
      .addSuccess(Schema.Struct({ jobId: Schema.String }))
      .addError(HttpApiError.ServiceUnavailable)
  )
) {}

const JobsHandlers = HttpApiBuilder.group(
  JobsApi,
  "jobs",
  (handlers) =>
    handlers.handle("sendEmail", () =>
      enqueueBackgroundJob.pipe(
        Effect.map((jobId) => ({ jobId })),
        // The database could not take the job: say so, and let the client try again.
        Effect.tapError((error) => Effect.logError("Enqueueing the notification email failed", error)),
        Effect.mapError(() => new HttpApiError.ServiceUnavailable())
      ))
)

/** The API's routes, on whatever HTTP server is provided; needs `JobClient`. */
export const JobsRoutes = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(JobsApi).pipe(Layer.provide(JobsHandlers)))
)

/** The routes on a server at 127.0.0.1 (`JOBS_API_PORT`, default 3001). */
export const JobsController = Layer.unwrapEffect(
  Effect.map(Config.port("JOBS_API_PORT").pipe(Config.withDefault(3001)), (port) =>
    JobsRoutes.pipe(
      HttpServer.withLogAddress,
      Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
    ))
)

/** The runner for these jobs, with the mailer they need, and the scheduler of recurring jobs. */
export const HangfireServer = Layer.merge(
  JobRunner.layer({ jobs: [SendNotificationEmail, ProcessOrder, GenerateDailyReport] }).pipe(
    Layer.provide(Mailer.Flaky)
  ),
  Recurring.layer()
)

/** At start, what the seed's service does: one email now, an order in 5 seconds, and the daily report. */
export const EnqueueAtStart = Layer.effectDiscard(Effect.gen(function*() {
  const email = yield* enqueueBackgroundJob
  const order = yield* scheduleDelayedJob("5 seconds")
  yield* Effect.logInfo(`Enqueued job ${email} (notification email) and job ${order} (order 123, in 5 seconds)`)
  const report = yield* scheduleRecurringJob
  yield* Effect.logInfo(
    `Recurring job "daily-report" next runs at ${report.nextRunAt.pipe(Option.getOrThrow).toISOString()}`
  )
}))

if (isMain(import.meta)) {
  Host.run(
    Layer.merge(EnqueueAtStart.pipe(Layer.provideMerge(HangfireServer)), JobsController).pipe(
      Layer.provideMerge(Database.jobClient),
      Layer.provide(Database.layer)
    )
  )
}
