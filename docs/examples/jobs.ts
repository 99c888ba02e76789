// #region imports
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { Database, Host, Job, JobClient, JobRunner } from "effect-workers"
// #endregion

class Mailer extends Context.Tag("Mailer")<Mailer, {
  readonly send: (to: string, subject: string) => Effect.Effect<void, Error>
}>() {}

// #region define
// A payload schema, a handler, and how the job's attempts go.
export const SendEmail = Job.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  handler: ({ subject, to }) => Effect.flatMap(Mailer, (mailer) => mailer.send(to, subject)),
  queue: "email",
  maxAttempts: 5,
  backoff: Schedule.exponential("10 seconds"),
  timeout: "1 minute"
})

// One live job per day: enqueueing the same day again returns the waiting job.
export const DailyReport = Job.make("daily-report", {
  payload: Schema.Struct({ day: Schema.String }),
  uniqueKey: ({ day }) => `daily-report:${day}`,
  result: Schema.Struct({ rows: Schema.Number }),
  handler: ({ day }) =>
    Effect.gen(function*() {
      const job = yield* Job.JobContext
      yield* Effect.log(`building the report of ${day}, attempt ${job.attempt} of ${job.maxAttempts}`)
      yield* Job.progress({ percent: 50 })
      return { rows: 1200 }
    })
})
// #endregion

// #region errors
export const ChargeCard = Job.make("charge-card", {
  payload: Schema.Struct({ orderId: Schema.Number }),
  handler: ({ orderId }) =>
    Effect.gen(function*() {
      // Retrying cannot help: discard the job now, keeping the reason.
      if (orderId < 0) return yield* Job.unrecoverable(`order ${orderId} does not exist`)
      // Not now, and it is not a failure: run again in a minute, attempts untouched.
      if (orderId === 0) return yield* Job.snooze("1 minute")
      yield* Effect.log(`charging for order ${orderId}`)
    })
})
// #endregion

// #region enqueue
export const signUp = (email: string) =>
  Effect.gen(function*() {
    const client = yield* JobClient.JobClient
    const sql = yield* SqlClient.SqlClient
    // In the caller's transaction: the user and the job are committed together, or neither is.
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO users (email) VALUES (${email})`
      yield* client.enqueue(SendEmail, { to: email, subject: "Welcome!" })
    }))
    // Later, at a time, with a priority (lower runs first), or many at once.
    yield* client.enqueue(SendEmail, { to: email, subject: "How is it going?" }, { delay: "3 days" })
    yield* client.enqueue(DailyReport, { day: "2026-11-25" }, { runAt: new Date("2026-11-26T02:00:00Z") })
    yield* client.enqueueMany(SendEmail, [{ to: "a@example.com", subject: "News" }, {
      to: "b@example.com",
      subject: "News"
    }], { priority: 10 })
  })
// #endregion

// #region manage
export const manage = (id: string) =>
  Effect.gen(function*() {
    const client = yield* JobClient.JobClient
    const job = yield* client.get(id) // Option<JobInfo>: state, attempts, every error, progress, result
    yield* client.cancel(id) // a running job is interrupted wherever it runs
    yield* client.retry(id) // a discarded or cancelled job runs again
    const failed = yield* client.list({ queue: "email", state: "discarded", limit: 20 })
    const counts = yield* client.counts // [{ queue, state, count }]
    yield* client.pause("email") // no runner claims from "email" until resumed
    yield* client.resume("email")
    return { job, failed, counts }
  })
// #endregion

const MailerLive = Layer.succeed(Mailer, { send: (to, subject) => Effect.log(`mail to ${to}: ${subject}`) })

// #region runner
// The runner claims the jobs it knows, 5 at a time in "email", 10 in other queues.
const Jobs = JobRunner.layer({ jobs: [SendEmail, DailyReport, ChargeCard], queues: { email: 5 } }).pipe(
  Layer.provide(MailerLive),
  // The client migrates the job tables (schema "effect_workers") when it is built.
  Layer.provideMerge(JobClient.layer()),
  // PgClient.layer whose failure to connect says why: refused, unknown host, authentication, no database.
  Layer.provide(Database.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/app") }))
)

// On SIGTERM: stop claiming, let running jobs finish (10 s by default), give back the rest.
export const main = () => Host.run(Jobs)
// #endregion

// #region flow
// A tenant's exports run one at a time; at most 20 run at once and 100 start a minute, over every runner.
export const ExportReport = Job.make("export-report", {
  payload: Schema.Struct({ tenantId: Schema.String, month: Schema.String }),
  queue: "exports",
  partitionKey: ({ tenantId }) => tenantId,
  handler: ({ month, tenantId }) => Effect.log(`exporting ${month} for ${tenantId}`)
})

export const ExportRunner = JobRunner.layer({
  jobs: [ExportReport],
  queues: {
    exports: {
      concurrency: 10,
      globalConcurrency: 20,
      keyConcurrency: 1,
      rateLimit: { limit: 100, period: "1 minute" }
    }
  }
})

export const tuneExports = Effect.gen(function*() {
  const client = yield* JobClient.JobClient
  // At run time, for every runner from its next claim: replaces the limits, until reset.
  yield* client.setLimits("exports", { globalConcurrency: 50, keyConcurrency: 2, fair: true })
  const flow = yield* client.flow("exports") // limits, running, waiting, what each limit holds back, busiest keys
  yield* client.resetLimits("exports") // back to the limits in the runners' options
  return flow
})
// #endregion
