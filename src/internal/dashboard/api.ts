import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiError,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema
} from "@effect/platform"
import { Schema } from "effect"
import { JobInfo, JobState } from "../../Job.js"
import { InvalidJobState, JobNotFound, RecurringNotFound } from "../../JobError.js"
import { RecurringInfo } from "../../Recurring.js"
import { WorkerStatus } from "../../WorkerStatus.js"

/** The request lacks the dashboard's token. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** The request may not do this: read-only mode, or a cross-site request. */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** The database could not answer. */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()(
  "DatabaseUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** A bulk action without any filter: it would apply to every job. */
export class InvalidFilter extends Schema.TaggedError<InvalidFilter>()(
  "InvalidFilter",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** Checks the token, read-only mode and cross-site requests of every API call. */
export class Guard extends HttpApiMiddleware.Tag<Guard>()("effect-workers/Dashboard/Guard", {
  failure: Schema.Union(Unauthorized, Forbidden)
}) {}

export const QueueCount = Schema.Struct({ queue: Schema.String, state: JobState, count: Schema.Number })

export const Minute = Schema.Struct({
  at: Schema.DateFromString,
  completed: Schema.Number,
  failed: Schema.Number
})

export const Overview = Schema.Struct({
  counts: Schema.Array(QueueCount),
  /** Per minute over the last hour, oldest first: jobs completed, and attempts that failed. */
  throughput: Schema.Array(Minute)
})

export const QueueSummary = Schema.Struct({
  name: Schema.String,
  paused: Schema.Boolean,
  counts: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** How long the oldest due job has waited, in milliseconds. */
  oldestWaitMillis: Schema.NullOr(Schema.Number),
  /** Slots of this queue in the runners alive now. */
  concurrency: Schema.Number
})

export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobInfo),
  /** Pass as `before` for the next page; null on the last page. */
  next: Schema.NullOr(Schema.String)
})

export const JobFilter = Schema.Struct({
  queue: Schema.optional(Schema.String),
  state: Schema.optional(JobState),
  name: Schema.optional(Schema.String),
  /** A job id, or text found in the payload. */
  search: Schema.optional(Schema.String)
})

export const Bulk = Schema.Struct({
  action: Schema.Literal("retry", "cancel", "delete"),
  filter: JobFilter
})

export const Runner = Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  pid: Schema.Number,
  queues: Schema.Array(Schema.String),
  startedAt: Schema.DateFromString,
  heartbeatAt: Schema.DateFromString,
  /** Whether its heartbeat is recent. */
  alive: Schema.Boolean
})

export const Session = Schema.Struct({
  readOnly: Schema.Boolean,
  /** Whether the dashboard has a token. */
  protected: Schema.Boolean
})

const id = HttpApiSchema.param("id", Schema.String)
const name = HttpApiSchema.param("name", Schema.String)

const jobs = HttpApiGroup.make("jobs")
  .add(HttpApiEndpoint.get("overview", "/api/overview").addSuccess(Overview))
  .add(HttpApiEndpoint.get("queues", "/api/queues").addSuccess(Schema.Array(QueueSummary)))
  .add(HttpApiEndpoint.post("pauseQueue")`/api/queues/${name}/pause`.addSuccess(Schema.Void))
  .add(HttpApiEndpoint.post("resumeQueue")`/api/queues/${name}/resume`.addSuccess(Schema.Void))
  .add(
    HttpApiEndpoint.get("jobs", "/api/jobs")
      .setUrlParams(Schema.Struct({
        ...JobFilter.fields,
        before: Schema.optional(Schema.String),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
      }))
      .addSuccess(JobPage)
  )
  .add(HttpApiEndpoint.get("job")`/api/jobs/${id}`.addSuccess(JobInfo).addError(JobNotFound, { status: 404 }))
  .add(
    HttpApiEndpoint.post("retry")`/api/jobs/${id}/retry`.addSuccess(JobInfo)
      .addError(JobNotFound, { status: 404 }).addError(InvalidJobState, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("cancel")`/api/jobs/${id}/cancel`.addSuccess(JobInfo)
      .addError(JobNotFound, { status: 404 }).addError(InvalidJobState, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("delete")`/api/jobs/${id}/delete`.addSuccess(Schema.Void)
      .addError(JobNotFound, { status: 404 }).addError(InvalidJobState, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("runNow")`/api/jobs/${id}/run-now`.addSuccess(JobInfo)
      .addError(JobNotFound, { status: 404 }).addError(InvalidJobState, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("bulk", "/api/jobs/bulk").setPayload(Bulk).addSuccess(Schema.Struct({ count: Schema.Number }))
      .addError(InvalidFilter)
  )

const recurring = HttpApiGroup.make("recurring")
  .add(HttpApiEndpoint.get("list", "/api/recurring").addSuccess(Schema.Array(RecurringInfo)))
  .add(
    HttpApiEndpoint.post("trigger")`/api/recurring/${id}/trigger`.addSuccess(Schema.Struct({ jobId: Schema.String }))
      .addError(RecurringNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.post("pause")`/api/recurring/${id}/pause`.addSuccess(RecurringInfo)
      .addError(RecurringNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.post("resume")`/api/recurring/${id}/resume`.addSuccess(RecurringInfo)
      .addError(RecurringNotFound, { status: 404 })
  )

const processes = HttpApiGroup.make("processes")
  .add(HttpApiEndpoint.get("workers", "/api/workers").addSuccess(Schema.Array(WorkerStatus)))
  .add(HttpApiEndpoint.get("runners", "/api/runners").addSuccess(Schema.Array(Runner)))
  .add(HttpApiEndpoint.get("session", "/api/session").addSuccess(Session))

/** The dashboard's JSON API. */
export class DashboardApi extends HttpApi.make("effect-workers")
  .add(jobs)
  .add(recurring)
  .add(processes)
  .addError(DatabaseUnavailable)
  .addError(HttpApiError.BadRequest)
  .middleware(Guard)
{}
