/**
 * Errors of durable jobs: definitions, enqueueing, migrations and runs.
 *
 * @since 0.1.0
 */
import { Data, type Duration, Schema } from "effect"

/**
 * A job definition, enqueue or runner option that cannot work (a
 * `maxAttempts` of 0, an empty queue name, two definitions with one name).
 * `job` is empty for an option of the runner itself.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidJobOptions extends Schema.TaggedError<InvalidJobOptions>()("InvalidJobOptions", {
  job: Schema.String,
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    const subject = this.job === "" ? "JobRunner" : `Job "${this.job}"`
    return `${subject}: option "${this.option}" ${this.reason}`
  }
}

/**
 * A queue setting that cannot work: a limit of 0, -1, 1.5 or `"5"`, a rate
 * period of `"soon"`, an unknown limit, an empty queue name (see
 * `JobClient.setLimits`). `option` names it (`rateLimit.period`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidQueueOptions extends Schema.TaggedError<InvalidQueueOptions>()("InvalidQueueOptions", {
  queue: Schema.String,
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Queue ${JSON.stringify(this.queue)}: option "${this.option}" ${this.reason}`
  }
}

/**
 * A payload that cannot be stored, at enqueue or at a recurring definition:
 * the job's schema rejects it, or its encoded form would not read back from
 * JSON as it is (`undefined`, a function, `NaN`, a `Date` object, a bigint, a
 * cycle, nesting deeper than 1,000 levels, text with a NUL or a lone UTF-16
 * surrogate). `issue` says where and why. Nothing was inserted.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  job: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Job "${this.job}": the payload cannot be stored, nothing was enqueued: ${this.issue}`
  }
}

/**
 * No job has this id (it was never there, or it was deleted or pruned).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `No job with id ${this.id}`
  }
}

/**
 * The job is in a state the action does not apply to (retrying a completed
 * job, cancelling a discarded one).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidJobState extends Schema.TaggedError<InvalidJobState>()("InvalidJobState", {
  id: Schema.String,
  action: Schema.String,
  state: Schema.String,
  /** What else stands in the way, when the state alone does not. */
  reason: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Cannot ${this.action} job ${this.id}: it is ${this.state}${
      this.reason === undefined ? "" : `, and ${this.reason}`
    }`
  }
}

/**
 * The database schema of the jobs cannot be used: a migration failed, or the
 * database was migrated by a newer version of effect-workers.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationError extends Schema.TaggedError<MigrationError>()("MigrationError", {
  schema: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Job tables in schema "${this.schema}": ${this.reason}`
  }
}

/**
 * A run that took longer than its job's `timeout`: a failed attempt.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobTimeout extends Schema.TaggedError<JobTimeout>()("JobTimeout", {
  job: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `Job "${this.job}" did not finish within its timeout of ${this.timeoutMillis} ms`
  }
}

/**
 * Fail a handler with this (see `Job.unrecoverable`) to discard the job at
 * once, whatever attempts remain.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unrecoverable extends Data.TaggedError("Unrecoverable")<{ readonly error: unknown }> {
  override get message(): string {
    const error = this.error
    return error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)
  }
}

/**
 * Fail a handler with this (see `Job.snooze`) to run the job again after
 * `delay`, without spending an attempt.
 *
 * @since 0.1.0
 * @category errors
 */
export class Snooze extends Data.TaggedError("Snooze")<{ readonly delay: Duration.Duration }> {}

/**
 * A recurring definition that cannot work: a bad cron expression or time
 * zone, an interval under a second, an end before its start, a backfill out
 * of range. `option` names what is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRecurring extends Schema.TaggedError<InvalidRecurring>()("InvalidRecurring", {
  id: Schema.String,
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Recurring "${this.id}": option "${this.option}" ${this.reason}`
  }
}

/**
 * No recurring definition has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class RecurringNotFound extends Schema.TaggedError<RecurringNotFound>()("RecurringNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `No recurring definition with id "${this.id}"`
  }
}

/**
 * The database could not be reached when the connection was first made
 * (see `Database.layer`). `reason` is what went wrong: `refused` (nothing
 * listens at host:port), `unknown host`, `authentication` (a wrong user or
 * password), `database missing`, `timeout`, or `other`; `detail` is the
 * server's or the system's own words. The password is never part of it.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  host: Schema.String,
  port: Schema.Number,
  database: Schema.String,
  user: Schema.String,
  reason: Schema.Literal("refused", "unknown host", "authentication", "database missing", "timeout", "other"),
  detail: Schema.String
}) {
  override get message(): string {
    const where = `PostgreSQL at ${this.host}:${this.port} (database "${this.database}", user "${this.user}")`
    const why = {
      "refused": "the connection was refused: is the server running, and listening on this host and port?",
      "unknown host": `the host name "${this.host}" could not be resolved`,
      "authentication": "authentication failed: check the user and the password",
      "database missing": `the database "${this.database}" does not exist`,
      "timeout": "no answer in time: check the host, the port and firewalls",
      "other": "connecting failed"
    }[this.reason]
    return `Cannot connect to ${where}: ${why} (${this.detail})`
  }
}
