/**
 * Durable job definitions: a name, a payload `Schema` and a handler, with the
 * queue, priority, attempts, backoff, timeout and uniqueness of its jobs.
 *
 * ```ts
 * const SendEmail = Job.make("send-email", {
 *   payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
 *   handler: ({ to, subject }) => Effect.log(`sending "${subject}" to ${to}`),
 *   queue: "email",
 *   maxAttempts: 5
 * })
 * ```
 *
 * Enqueue with `JobClient`, run with `JobRunner`.
 *
 * @since 0.1.0
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Either, type Option, Schedule, Schema } from "effect"
import * as Values from "./internal/jobs/values.js"
import * as Check from "./internal/options.js"
import { InvalidJobOptions, Snooze, Unrecoverable } from "./JobError.js"

/**
 * @since 0.1.0
 * @category models
 */
export const JobState = Schema.Literal(
  "scheduled",
  "available",
  "running",
  "retryable",
  "completed",
  "discarded",
  "cancelled"
)

/**
 * - `scheduled`: waiting for its `runAt` (enqueued with a delay, or snoozed)
 * - `available`: due, waiting for a runner
 * - `running`: claimed by a runner
 * - `retryable`: failed, waiting for its backoff before the next attempt
 * - `completed`, `discarded` (attempts spent, unrecoverable, or a payload that
 *   no longer decodes), `cancelled`: final
 *
 * @since 0.1.0
 * @category models
 */
export type JobState = typeof JobState.Type

/**
 * States a job can still leave; a unique key is held by jobs in these.
 *
 * @since 0.1.0
 */
export const liveStates: ReadonlyArray<JobState> = ["scheduled", "available", "running", "retryable"]

/**
 * One failed attempt, as kept on the job.
 *
 * @since 0.1.0
 * @category models
 */
export class AttemptError extends Schema.Class<AttemptError>("AttemptError")({
  attempt: Schema.Number,
  at: Schema.DateFromString,
  message: Schema.String,
  /** The full cause, pretty-printed, stack traces included. */
  cause: Schema.String
}) {}

/**
 * A job as stored.
 *
 * @since 0.1.0
 * @category models
 */
export class JobInfo extends Schema.Class<JobInfo>("JobInfo")({
  id: Schema.String,
  name: Schema.String,
  queue: Schema.String,
  state: JobState,
  /** The payload as encoded by the job's schema. */
  payload: Schema.Unknown,
  priority: Schema.Number,
  attempt: Schema.Number,
  maxAttempts: Schema.Number,
  runAt: Schema.DateFromString,
  insertedAt: Schema.DateFromString,
  attemptedAt: Schema.OptionFromNullOr(Schema.DateFromString),
  finalizedAt: Schema.OptionFromNullOr(Schema.DateFromString),
  /** Id of the runner that holds (or last held) the job. */
  lockedBy: Schema.OptionFromNullOr(Schema.String),
  uniqueKey: Schema.OptionFromNullOr(Schema.String),
  /** The partition key that per-key limits and fair claiming group it by. */
  partitionKey: Schema.OptionFromNullOr(Schema.String),
  errors: Schema.Array(AttemptError),
  progress: Schema.Unknown,
  result: Schema.Unknown,
  traceId: Schema.OptionFromNullOr(Schema.String),
  /** The recurring definition that enqueued the job. */
  recurringId: Schema.OptionFromNullOr(Schema.String),
  /** The tick it stands for (the time of the trigger, for a manual one). */
  recurringTick: Schema.OptionFromNullOr(Schema.DateFromString)
}) {}

/**
 * The tick of a recurring definition that a job stands for.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tick {
  /** The recurring definition's id. */
  readonly id: string
  /** The scheduled time of the tick; for a manual trigger, the time of the trigger. */
  readonly at: Date
}

/**
 * What a handler can read about the job it runs, and record on it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Context {
  readonly id: string
  readonly name: string
  readonly queue: string
  /** 1 on the first attempt. */
  readonly attempt: number
  readonly maxAttempts: number
  readonly insertedAt: Date
  /** When the job was due for this attempt. */
  readonly runAt: Date
  /** Set when a recurring definition enqueued the job: which tick it stands for. */
  readonly recurring: Option.Option<Tick>
  /** Stores `progress` (any JSON value) on the job at once. */
  readonly progress: (progress: unknown) => Effect.Effect<void, SqlError>
}

/**
 * The running job, for its handler.
 *
 * @since 0.1.0
 * @category tags
 */
export class JobContext extends Context.Tag("effect-workers/JobContext")<JobContext, Context>() {}

/**
 * Records progress (any JSON value, for example a percentage) on the running job.
 *
 * @since 0.1.0
 */
export const progress = (value: unknown): Effect.Effect<void, SqlError, JobContext> =>
  Effect.flatMap(JobContext, (context) => context.progress(value))

/**
 * Discards the job at once, whatever attempts remain, keeping `error`.
 *
 * @since 0.1.0
 */
export const unrecoverable = (error: unknown): Effect.Effect<never, Unrecoverable> =>
  Effect.fail(new Unrecoverable({ error }))

/**
 * Runs the job again after `delay` without spending an attempt (it waits as
 * `scheduled`).
 *
 * @since 0.1.0
 */
export const snooze = (delay: Duration.DurationInput): Effect.Effect<never, Snooze> =>
  Effect.fail(new Snooze({ delay: Duration.decode(delay) }))

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<P, I, A, E, R> {
  /** Schema of the payload; its encoded form is stored as JSON. */
  readonly payload: Schema.Schema<P, I>
  readonly handler: (payload: P) => Effect.Effect<A, E, R>
  /** When given, the handler's result is encoded with it and stored on the job. */
  readonly result?: Schema.Schema<A, any> | undefined
  /** Default `"default"`. */
  readonly queue?: string | undefined
  /** Lower runs first: a whole number from -2147483648 to 2147483647. Default 0. */
  readonly priority?: number | undefined
  /** Attempts before the job is discarded: 1 to 2147483647. Default 20. */
  readonly maxAttempts?: number | undefined
  /**
   * Delay before each retry: stepped once per failed attempt so far, its
   * delay is the wait; when it ends the job is discarded. Default: exponential
   * from 1 s, doubling, jittered, at most 1 hour.
   */
  readonly backoff?: Schedule.Schedule<unknown, unknown> | undefined
  /** An attempt running longer fails with `JobTimeout`: at least 1 ms. Default: none. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The unique key of a job, from its payload. While a job with the key is
   * waiting or running, enqueueing another returns that job instead.
   */
  readonly uniqueKey?: ((payload: P) => string) | undefined
  /**
   * The partition key of a job, from its payload (a tenant's id, say): a
   * queue's per-key limits and fair claiming group jobs by it. A non-empty
   * string of at most 1,000 bytes. Default: none.
   */
  readonly partitionKey?: ((payload: P) => string) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Job<P, I, A = unknown, E = unknown, R = never> {
  readonly name: string
  readonly payload: Schema.Schema<P, I>
  readonly handler: (payload: P) => Effect.Effect<A, E, R>

  readonly result: Schema.Schema<any, any> | undefined
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  readonly backoff: Schedule.Schedule<unknown, unknown>
  readonly timeout: Duration.Duration | undefined
  readonly uniqueKey: ((payload: P) => string) | undefined
  readonly partitionKey: ((payload: P) => string) | undefined
  /** Set when an option is wrong: enqueueing and running fail with it. */
  readonly invalid: InvalidJobOptions | undefined
}

/**
 * Any job definition.
 *
 * @since 0.1.0
 * @category models
 */

export type Any = Job<any, any, any, any, any>

/**
 * The handler requirements of some job definitions, minus `JobContext`.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements<Jobs extends Any> = Exclude<
  Jobs extends Job<infer _P, infer _I, infer _A, infer _E, infer R> ? R : never,
  JobContext
>

/**
 * The default backoff: exponential from 1 s, doubling, jittered, at most 1 hour.
 *
 * @since 0.1.0
 */
export const defaultBackoff: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second").pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.hours(1)))
)

/** A run shorter than a millisecond cannot be timed. */
const timeoutRule: Check.DurationRule = { min: 1 }

const checkOptions = (name: string, options: Options<any, any, any, any, any>): InvalidJobOptions | undefined => {
  const invalid = (option: string, reason: string) => new InvalidJobOptions({ job: name, option, reason })
  if (typeof name !== "string" || name.trim().length === 0) return invalid("name", "must not be empty")
  if (options.queue !== undefined && options.queue.trim().length === 0) return invalid("queue", "must not be empty")
  // Ranges of the columns they are stored in, so that a wrong value never gets as far as the database.
  const checks = [
    ["priority", options.priority, (value: unknown) => Check.integer(value, Check.int32.min, Check.int32.max)],
    ["maxAttempts", options.maxAttempts, (value: unknown) => Check.integer(value, 1, Check.int32.max)],
    ["timeout", options.timeout, (value: unknown) => Check.durationMillis(value, timeoutRule)],
    ["handler", options.handler, Check.isFunction],
    ["uniqueKey", options.uniqueKey, Check.isFunction],
    ["partitionKey", options.partitionKey, Check.isFunction]
  ] as const
  for (const [option, value, check] of checks) {
    if (value === undefined && option !== "handler") continue
    const result: Either.Either<unknown, string> = check(value)
    if (Either.isLeft(result)) return invalid(option, result.left)
  }
  for (const option of ["payload", "result"] as const) {
    const schema: unknown = options[option]
    if ((option === "payload" || schema !== undefined) && !Schema.isSchema(schema)) {
      return invalid(option, `must be a Schema, got ${Check.show(schema)}`)
    }
  }
  if (options.backoff !== undefined && !Schedule.isSchedule(options.backoff)) {
    return invalid("backoff", `must be a Schedule, got ${Check.show(options.backoff)}`)
  }
  return undefined
}

/** A name or queue PostgreSQL would refuse (a NUL, a lone surrogate), or that no runner could claim (empty). */
const checkText = (name: string, options: Options<any, any, any, any, any>): InvalidJobOptions | undefined => {
  for (const [option, value] of [["name", name], ["queue", options.queue ?? "default"]] as const) {
    const problem = Values.nameProblem(value)
    if (problem !== undefined) return new InvalidJobOptions({ job: String(name), option, reason: problem })
  }
  return undefined
}

/**
 * Defines a job. A wrong option does not throw: enqueueing the job, and
 * building a runner that runs it, fail with `InvalidJobOptions`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <P, I, A, E, R>(name: string, given: Options<P, I, A, E, R>): Job<P, I, A, E, R> => {
  // Options that are not an object (from JavaScript) are refused like any wrong option, not thrown over.
  const isObject = typeof given === "object" && given !== null
  const options = isObject ? given : {} as Options<P, I, A, E, R>
  const invalid = isObject
    ? checkText(name, options) ?? checkOptions(name, options)
    : new InvalidJobOptions({
      job: String(name),
      option: "options",
      reason: `must be an object with a payload schema and a handler, got ${Check.show(given)}`
    })
  return {
    name,
    payload: options.payload,
    handler: options.handler,
    result: options.result,
    queue: options.queue ?? "default",
    priority: options.priority ?? 0,
    maxAttempts: options.maxAttempts ?? 20,
    backoff: options.backoff ?? defaultBackoff,
    timeout: invalid === undefined && options.timeout !== undefined ? Duration.decode(options.timeout) : undefined,
    uniqueKey: options.uniqueKey,
    partitionKey: options.partitionKey,
    invalid
  }
}
