import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { createRequire } from "node:module"
import { JobInfo, JobState } from "../../Job.js"
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

/** A queue name that no queue can have (empty, or text PostgreSQL refuses). */
export class InvalidQueue extends Schema.TaggedError<InvalidQueue>()(
  "InvalidQueue",
  { queue: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** No job has this id. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()(
  "JobNotFound",
  { id: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The job is in a state the action does not apply to. */
export class InvalidJobState extends Schema.TaggedError<InvalidJobState>()(
  "InvalidJobState",
  { id: Schema.String, action: Schema.String, state: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** No recurring definition has this id. */
export class RecurringNotFound extends Schema.TaggedError<RecurringNotFound>()(
  "RecurringNotFound",
  { id: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The action conflicts with another job (a live job holds the unique key). */
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** A bulk action that would touch more jobs than the dashboard's `bulkLimit`. Nothing was changed. */
export class BulkLimitExceeded extends Schema.TaggedError<BulkLimitExceeded>()(
  "BulkLimitExceeded",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** Longest filter value: a payload search is a scan, and a longer text finds nothing a shorter one misses. */
export const maxFilterLength = 200

/** A filter value: PostgreSQL text cannot hold a NUL byte, so it is refused here as bad input. */
const FilterText = Schema.String.pipe(
  Schema.maxLength(maxFilterLength, { message: () => `at most ${maxFilterLength} characters` }),
  Schema.filter((text) => !text.includes("\u0000") || "must not contain a NUL byte")
)

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

const Rate = Schema.Struct({ limit: Schema.Number, periodMillis: Schema.Number })

/** A queue's flow-control limits as stored (`JobClient.QueueLimitsInfo`). */
export const QueueLimits = Schema.Struct({
  globalConcurrency: Schema.NullOr(Schema.Number),
  keyConcurrency: Schema.NullOr(Schema.Number),
  rateLimit: Schema.NullOr(Rate),
  keyRateLimit: Schema.NullOr(Rate),
  fair: Schema.Boolean,
  source: Schema.NullOr(Schema.Literal("code", "api"))
})

/** What a queue with limits runs and holds back now (`JobClient.flow`). */
export const QueueFlow = Schema.Struct({
  queue: Schema.String,
  paused: Schema.Boolean,
  limits: QueueLimits,
  running: Schema.Number,
  /** Due jobs, not running. */
  waiting: Schema.Number,
  /** Starts in the current window of the queue's rate limit. */
  started: Schema.Number,
  heldByGlobalConcurrency: Schema.Number,
  heldByRateLimit: Schema.Number,
  heldByKeyLimits: Schema.Number,
  /** The busiest partition keys, most running first. */
  keys: Schema.Array(Schema.Struct({
    key: Schema.String,
    running: Schema.Number,
    waiting: Schema.Number,
    started: Schema.Number,
    held: Schema.Boolean
  }))
})

/** Busiest keys shown per queue. */
export const flowKeys = 5

export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobInfo),
  /** Pass as `before` for the next page; null on the last page. */
  next: Schema.NullOr(Schema.String),
  /** Ids of rows on this page that cannot be shown (logged as warnings). */
  malformed: Schema.Array(Schema.String)
})

export const JobFilter = Schema.Struct({
  queue: Schema.optional(FilterText),
  state: Schema.optional(JobState),
  name: Schema.optional(FilterText),
  /** A job id, or text found in the payload. */
  search: Schema.optional(FilterText)
})

export const Bulk = Schema.Struct({
  action: Schema.Literal("retry", "cancel", "delete"),
  filter: JobFilter,
  /** Only count the jobs the action would touch (up to `bulkLimit + 1`), change nothing. */
  dryRun: Schema.optional(Schema.Boolean)
})

export const BulkResult = Schema.Struct({
  /** Jobs touched; for a dry run, jobs that would be, at most `limit + 1`. */
  count: Schema.Number,
  /** The dashboard's `bulkLimit`. */
  limit: Schema.Number
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
  /** Whether the dashboard has a token or an authorize hook. */
  protected: Schema.Boolean,
  /** Who the dashboard takes the viewer to be (as in its audit log). */
  user: Schema.String,
  /** The most jobs one bulk action may touch. */
  bulkLimit: Schema.Number
})

const id = HttpApiSchema.param("id", Schema.String)
const name = HttpApiSchema.param("name", Schema.String)

const jobs = HttpApiGroup.make("jobs")
  .add(HttpApiEndpoint.get("overview", "/api/overview").addSuccess(Overview))
  .add(HttpApiEndpoint.get("queues", "/api/queues").addSuccess(Schema.Array(QueueSummary)))
  .add(HttpApiEndpoint.post("pauseQueue")`/api/queues/${name}/pause`.addSuccess(Schema.Void).addError(InvalidQueue))
  .add(HttpApiEndpoint.post("resumeQueue")`/api/queues/${name}/resume`.addSuccess(Schema.Void).addError(InvalidQueue))
  .add(
    HttpApiEndpoint.get("jobs", "/api/jobs")
      .setUrlParams(Schema.Struct({
        ...JobFilter.fields,
        before: Schema.optional(Schema.String),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
      }))
      .addSuccess(JobPage)
  )
  .add(HttpApiEndpoint.get("job")`/api/jobs/${id}`.addSuccess(JobInfo).addError(JobNotFound))
  .add(
    HttpApiEndpoint.post("retry")`/api/jobs/${id}/retry`.addSuccess(JobInfo)
      .addError(JobNotFound).addError(InvalidJobState).addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("cancel")`/api/jobs/${id}/cancel`.addSuccess(JobInfo)
      .addError(JobNotFound).addError(InvalidJobState).addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("delete")`/api/jobs/${id}/delete`.addSuccess(Schema.Void)
      .addError(JobNotFound).addError(InvalidJobState).addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("runNow")`/api/jobs/${id}/run-now`.addSuccess(JobInfo)
      .addError(JobNotFound).addError(InvalidJobState).addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("bulk", "/api/jobs/bulk").setPayload(Bulk).addSuccess(BulkResult)
      .addError(InvalidFilter).addError(BulkLimitExceeded)
  )

const recurring = HttpApiGroup.make("recurring")
  .add(HttpApiEndpoint.get("list", "/api/recurring").addSuccess(Schema.Array(RecurringInfo)))
  .add(
    HttpApiEndpoint.post("trigger")`/api/recurring/${id}/trigger`.addSuccess(Schema.Struct({ jobId: Schema.String }))
      .addError(RecurringNotFound)
  )
  .add(
    HttpApiEndpoint.post("pause")`/api/recurring/${id}/pause`.addSuccess(RecurringInfo)
      .addError(RecurringNotFound)
  )
  .add(
    HttpApiEndpoint.post("resume")`/api/recurring/${id}/resume`.addSuccess(RecurringInfo)
      .addError(RecurringNotFound)
  )

/**
 * A hosted worker's status and the process that hosts it: this one (`local`), or another that reported its
 * workers to the job tables.
 */
export const HostedWorker = Schema.Struct({
  ...WorkerStatus.fields,
  process: Schema.String,
  host: Schema.String,
  pid: Schema.Number,
  local: Schema.Boolean
})

const processes = HttpApiGroup.make("processes")
  .add(HttpApiEndpoint.get("workers", "/api/workers").addSuccess(Schema.Array(HostedWorker)))
  .add(HttpApiEndpoint.get("runners", "/api/runners").addSuccess(Schema.Array(Runner)))
  .add(HttpApiEndpoint.get("session", "/api/session").addSuccess(Session))

const flow = HttpApiGroup.make("flow")
  .add(HttpApiEndpoint.get("flow", "/api/flow").addSuccess(Schema.Array(QueueFlow)))

const version = (createRequire(import.meta.url)("../../../package.json") as { version: string }).version

/**
 * The dashboard's JSON API. Every request also passes the dashboard's access
 * checks first (a 401, 403 or 429 comes from them).
 */
export class DashboardApi extends HttpApi.make("effect-workers")
  .add(jobs)
  .add(recurring)
  .add(processes)
  .add(flow)
  .addError(DatabaseUnavailable)
  .addError(HttpApiError.BadRequest)
  .addError(Unauthorized)
  .addError(Forbidden)
  .annotate(OpenApi.Title, "effect-workers dashboard")
  .annotate(OpenApi.Version, version)
  .annotate(OpenApi.Description, "Jobs, queues, recurring definitions and processes of effect-workers.")
{}
