/**
 * Recurring jobs: a job definition and payload enqueued on a cron expression
 * in a time zone, or at a fixed interval, exactly once per tick however many
 * processes run, and across restarts.
 *
 * ```ts
 * // Quartz's WithCronSchedule("0 2 * * ?"), Hangfire's AddOrUpdate("daily-report", ..., Cron.Daily(2))
 * const DailyReport = Recurring.make("daily-report", {
 *   job: SendDailyReport,
 *   payload: {},
 *   cron: Recurring.daily(2),
 *   timeZone: "Europe/Berlin"
 * })
 *
 * const Scheduler = Recurring.layer({ definitions: [DailyReport] })
 * ```
 *
 * Definitions live in the `recurring` table. Any process running
 * {@link layer} claims due definitions with `FOR UPDATE SKIP LOCKED`, and in
 * the same transaction inserts each tick's job (unique key
 * `recurring:<id>:<tick>`) and moves the definition to its next tick: no
 * leader, and no tick fired twice or lost when a process dies.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Context, Duration, Effect, Either, Exit, Layer, Option, Queue, Schema } from "effect"
import { defaultTimeZone, parseCron } from "./internal/cron.js"
import * as Statements from "./internal/jobs/statements.js"
import { StoreInternal } from "./internal/jobs/store.js"
import * as Values from "./internal/jobs/values.js"
import * as Check from "./internal/options.js"
import * as Ticks from "./internal/recurring/schedule.js"
import { loggedCause } from "./internal/registry.js"
import type * as Job from "./Job.js"
import { JobState } from "./Job.js"
import { JobClient } from "./JobClient.js"
import type { Enqueued } from "./JobClient.js"
import { type InvalidJobOptions, type InvalidPayload, InvalidRecurring, RecurringNotFound } from "./JobError.js"
import { addService } from "./WorkerRegistry.js"

// ---- definitions ------------------------------------------------------------------------------

/**
 * What a tick that was missed (later than the misfire threshold, because no
 * process ran) does:
 * - `"skip"`: nothing; the definition goes on from its next tick;
 * - `"runOnce"`: one job, for the latest missed tick, stands for them all;
 * - `{ backfill: n }`: one job for each of the last `n` missed ticks, each
 *   told its own tick.
 *
 * @since 0.1.0
 * @category models
 */
export type Misfire = "skip" | "runOnce" | { readonly backfill: number }

/**
 * @since 0.1.0
 * @category models
 */
export type ScheduleOptions =
  | {
    /** A cron expression: 5 fields, or 6 with seconds first. See {@link daily} and the other helpers. */
    readonly cron: string
    /** An IANA time zone (`"Europe/Berlin"`) or an offset (`"+02:00"`). Default `"UTC"`. */
    readonly timeZone?: string | undefined
    readonly every?: undefined
  }
  | {
    /** A fixed interval, 1 second to 365,000 days in whole ms; ticks at `start` and every interval after it. */
    readonly every: Duration.DurationInput
    readonly cron?: undefined
    readonly timeZone?: undefined
  }

/**
 * @since 0.1.0
 * @category models
 */
export type Options<P> = ScheduleOptions & {
  /** The job each tick enqueues. */
  readonly job: Job.Job<P, any, any, any, any>
  /** The payload each tick's job gets, encoded once with the job's schema. */
  readonly payload: P
  /**
   * No tick before this time. For an interval, its first tick; default: when
   * the definition is first stored (it ticks at once, then every interval).
   */
  readonly start?: Date | undefined
  /** No tick after this time. */
  readonly end?: Date | undefined
  /** Overrides the job's queue. */
  readonly queue?: string | undefined
  /** Overrides the job's priority (-2147483648 to 2147483647). */
  readonly priority?: number | undefined
  /** Default `"runOnce"`. */
  readonly misfire?: Misfire | undefined
  /**
   * Stored paused: it fires nothing until resumed. Applied when the definition
   * is first stored and whenever this flag changes; a pause or resume made
   * through the API holds until then.
   */
  readonly paused?: boolean | undefined
}

/**
 * A recurring definition, made by {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Definition {
  readonly id: string
  readonly job: Job.Any
  readonly payload: unknown
  readonly cron: string | undefined
  readonly timeZone: string | undefined
  readonly every: Duration.Duration | undefined
  readonly start: Date | undefined
  readonly end: Date | undefined
  readonly queue: string
  readonly priority: number
  readonly misfire: Misfire
  readonly paused: boolean
  /** Set when an option is wrong: storing the definition fails with it. */
  readonly invalid: InvalidRecurring | InvalidJobOptions | InvalidPayload | undefined
}

/** Rules of the interval, stated in docs/recurring.md. */
const everyRule: Check.DurationRule = { min: 1_000, wholeMillis: true }
/** Rules of the layer's durations. */
const layerDurationRule: Check.DurationRule = { min: 1 }

const checkDefinition = (id: string, options: Options<any>): InvalidRecurring | InvalidJobOptions | undefined => {
  const invalid = (option: string, reason: string) =>
    new InvalidRecurring({ id: typeof id === "string" ? id : Check.show(id), option, reason })
  if (typeof id !== "string" || id.trim().length === 0 || id.length > 200) {
    return invalid("id", `must be a string of 1 to 200 characters, got ${Check.show(id)}`)
  }
  if (typeof options !== "object" || options === null) {
    return invalid("options", `must be an object, got ${Check.show(options)}`)
  }
  if (typeof options.job !== "object" || options.job === null || typeof options.job.name !== "string") {
    return invalid("job", `must be a job made by Job.make, got ${Check.show(options.job)}`)
  }
  if (options.job.invalid !== undefined) return options.job.invalid
  if ((options.cron === undefined) === (options.every === undefined)) {
    return invalid("cron", "or \"every\" must be given, and not both")
  }
  if (options.cron !== undefined) {
    const parsed = parseCron(id, options.cron, options.timeZone)
    if (Either.isLeft(parsed)) {
      const error = parsed.left
      return error.field === "timeZone"
        ? invalid("timeZone", `"${error.expression}" is not a known time zone: ${error.reason}`)
        : invalid(
          "cron",
          `"${error.expression}" is not a valid cron expression` +
            (error.field === "expression" ? "" : ` (its ${error.field} field)`) + `: ${error.reason}`
        )
    }
  } else {
    if (options.timeZone !== undefined) return invalid("timeZone", "applies only with \"cron\", not with \"every\"")
    const every = Check.durationMillis(options.every, everyRule)
    if (Either.isLeft(every)) return invalid("every", every.left)
  }
  for (const name of ["start", "end"] as const) {
    const date = options[name]
    if (date !== undefined && !(date instanceof Date && !Number.isNaN(date.getTime()))) {
      return invalid(name, `must be a valid Date, got ${Check.show(date)}`)
    }
  }
  if (options.start !== undefined && options.end !== undefined && options.end < options.start) {
    return invalid("end", "must not be before start")
  }
  if (options.queue !== undefined && (typeof options.queue !== "string" || options.queue.trim().length === 0)) {
    return invalid("queue", `must be a non-empty string, got ${Check.show(options.queue)}`)
  }
  if (options.priority !== undefined) {
    const priority = Check.integer(options.priority, Check.int32.min, Check.int32.max)
    if (Either.isLeft(priority)) return invalid("priority", priority.left)
  }
  const misfire: unknown = options.misfire
  if (
    misfire !== undefined && misfire !== "skip" && misfire !== "runOnce" &&
    !(typeof misfire === "object" && misfire !== null && Either.isRight(
      Check.integer((misfire as { readonly backfill?: unknown }).backfill, 1, 1_000)
    ))
  ) {
    return invalid(
      "misfire",
      `must be "skip", "runOnce" or { backfill: n } with n from 1 to 1000, got ${Check.show(misfire)}`
    )
  }
  if (options.paused !== undefined) {
    const paused = Check.boolean(options.paused)
    if (Either.isLeft(paused)) return invalid("paused", paused.left)
  }
  return undefined
}

/** Years a tick's time may have: its job's unique key holds the time in ISO form, with a four-digit year. */
const yearRange = { min: 0, max: 9999 }

/** What PostgreSQL would refuse: text with a NUL or a lone surrogate, times outside years 0-9999. */
const checkValues = (id: string, options: Options<any>): InvalidRecurring | undefined => {
  const invalid = (option: string, reason: string) => new InvalidRecurring({ id: String(id), option, reason })
  for (const [option, value] of [["id", id], ["queue", options.queue]] as const) {
    const problem = value === undefined ? undefined : Values.nameProblem(value)
    if (problem !== undefined) return invalid(option, problem)
  }
  for (const option of ["start", "end"] as const) {
    const date: unknown = options[option]
    if (date instanceof Date) {
      const year = date.getUTCFullYear()
      if (year < yearRange.min || year > yearRange.max) {
        return invalid(
          option,
          `must be in the years ${yearRange.min} to ${yearRange.max} (UTC), got ${date.toISOString()}`
        )
      }
    }
  }
  return undefined
}

/**
 * The payload, checked at definition as enqueue checks it. A schema that
 * encodes asynchronously is checked when the definition is stored instead.
 */
const checkPayload = (id: string, options: Options<any>): InvalidPayload | undefined => {
  const exit = Effect.runSyncExit(Values.encodePayloads(options.job, [options.payload], `recurring "${id}": `))
  return Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
}

/**
 * Defines a recurring job. A wrong option does not throw: storing the
 * definition (the layer at start-up, or `addOrUpdate`) fails with
 * `InvalidRecurring`, which names the option and what is wrong with it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <P>(id: string, options: Options<P>): Definition => {
  const invalid = checkValues(id, options) ?? checkDefinition(id, options) ?? checkPayload(id, options)
  return {
    id,
    job: options.job,
    payload: options.payload,
    cron: invalid === undefined ? options.cron?.trim().split(/\s+/).join(" ") : undefined,
    timeZone: options.cron === undefined ? undefined : options.timeZone ?? defaultTimeZone,
    every: invalid === undefined && options.every !== undefined ? Duration.decode(options.every) : undefined,
    start: options.start,
    end: options.end,
    queue: options.queue ?? options.job?.queue,
    priority: options.priority ?? options.job?.priority,
    misfire: options.misfire ?? "runOnce",
    paused: options.paused ?? false,
    invalid
  }
}

// ---- cron helpers -----------------------------------------------------------------------------

/**
 * Every `n` minutes (`*‍/n * * * *`); every minute by default.
 *
 * @since 0.1.0
 * @category cron
 */
export const everyMinutes = (n = 1): string => n === 1 ? "* * * * *" : `*/${n} * * * *`

/**
 * Every hour at `minute` (`m * * * *`).
 *
 * @since 0.1.0
 * @category cron
 */
export const hourly = (minute = 0): string => `${minute} * * * *`

/**
 * Every day at `hour`:`minute` (`m h * * *`), like Hangfire's `Cron.Daily(2)`.
 *
 * @since 0.1.0
 * @category cron
 */
export const daily = (hour = 0, minute = 0): string => `${minute} ${hour} * * *`

const weekdays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const

/**
 * @since 0.1.0
 * @category cron
 */
export type Weekday = typeof weekdays[number]

/**
 * Every week on `day` at `hour`:`minute` (`m h * * d`).
 *
 * @since 0.1.0
 * @category cron
 */
export const weekly = (day: Weekday, hour = 0, minute = 0): string =>
  `${minute} ${hour} * * ${weekdays.indexOf(day) < 0 ? day : weekdays.indexOf(day)}`

/**
 * Every month on `day` (1 to 31; months without it are skipped) at
 * `hour`:`minute` (`m h d * *`).
 *
 * @since 0.1.0
 * @category cron
 */
export const monthly = (day = 1, hour = 0, minute = 0): string => `${minute} ${hour} ${day} * *`

// ---- stored definitions -----------------------------------------------------------------------

/**
 * A recurring definition as stored.
 *
 * @since 0.1.0
 * @category models
 */
export class RecurringInfo extends Schema.Class<RecurringInfo>("RecurringInfo")({
  id: Schema.String,
  jobName: Schema.String,
  queue: Schema.String,
  priority: Schema.Number,
  /** The payload as encoded by the job's schema. */
  payload: Schema.Unknown,
  cron: Schema.OptionFromNullOr(Schema.String),
  timeZone: Schema.OptionFromNullOr(Schema.String),
  everyMillis: Schema.OptionFromNullOr(Schema.Number),
  start: Schema.OptionFromNullOr(Schema.DateFromString),
  end: Schema.OptionFromNullOr(Schema.DateFromString),
  misfire: Schema.Union(Schema.Literal("skip", "runOnce"), Schema.Struct({ backfill: Schema.Number })),
  paused: Schema.Boolean,
  /** Where it was last defined: a layer's `definitions` (`"code"`) or `addOrUpdate` (`"api"`). */
  source: Schema.Literal("code", "api"),
  /** The next tick; none while paused, or once past its end. */
  nextRunAt: Schema.OptionFromNullOr(Schema.DateFromString),
  /** The latest tick (or manual trigger) that enqueued a job. */
  lastRunAt: Schema.OptionFromNullOr(Schema.DateFromString),
  lastJobId: Schema.OptionFromNullOr(Schema.String),
  /** The state of that job, while it is kept. */
  lastJobState: Schema.OptionFromNullOr(JobState),
  /**
   * Why the definition was set aside: its next tick cannot be fired (it is
   * logged once, when that happens). It fires nothing until it is stored
   * again or resumed; the other definitions go on.
   */
  error: Schema.OptionFromNullOr(Schema.String),
  createdAt: Schema.DateFromString,
  updatedAt: Schema.DateFromString
}) {}

/**
 * A job a tick enqueued.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fired {
  readonly id: string
  readonly tick: Date
  readonly jobId: string
}

/**
 * What {@link RecurringService.fireDue} did.
 *
 * @since 0.1.0
 * @category models
 */
export interface FireResult {
  readonly fired: ReadonlyArray<Fired>
  /** The earliest next tick of any definition that is not paused. */
  readonly next: Option.Option<Date>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RecurringService {
  /** Stores a definition (source `"api"`); a changed schedule takes effect from its next tick. */
  readonly addOrUpdate: (
    definition: Definition
  ) => Effect.Effect<RecurringInfo, InvalidRecurring | InvalidJobOptions | InvalidPayload | SqlError>
  /** Deletes a definition: it fires nothing more. Jobs it already enqueued are left alone. */
  readonly remove: (id: string) => Effect.Effect<void, RecurringNotFound | SqlError>
  /** Enqueues the definition's job now, outside its schedule; its next tick is unchanged. */
  readonly trigger: (id: string) => Effect.Effect<Enqueued, RecurringNotFound | SqlError>
  /** Stops it firing, in every process, until resumed. */
  readonly pause: (id: string) => Effect.Effect<RecurringInfo, RecurringNotFound | SqlError>
  /** Fires it again from its next tick after now; the ticks it missed while paused are not fired. */
  readonly resume: (id: string) => Effect.Effect<RecurringInfo, RecurringNotFound | SqlError>
  readonly get: (id: string) => Effect.Effect<Option.Option<RecurringInfo>, SqlError>
  /** Every definition, by id, with its last and next run. */
  readonly list: Effect.Effect<ReadonlyArray<RecurringInfo>, SqlError>
  /**
   * Fires the ticks due at the current time (Effect's `Clock`): what the
   * layer does on its own, exposed for tests and for hosts that fire from
   * their own timer.
   */
  readonly fireDue: Effect.Effect<FireResult, SqlError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Recurring extends Context.Tag("effect-workers/Recurring")<Recurring, RecurringService>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions {
  /**
   * Definitions to add or update at start-up, as source `"code"`. When not
   * given, stored definitions are left as they are.
   */
  readonly definitions?: ReadonlyArray<Definition> | undefined
  /**
   * What happens at start-up to definitions of source `"code"` that are not
   * in `definitions` (when given): `"remove"` (default) deletes them, `"keep"`
   * leaves them. Use `"keep"` when services with different definitions share
   * a schema.
   */
  readonly missing?: "remove" | "keep" | undefined
  /** Fire due ticks in this process (default), or only manage definitions. */
  readonly fire?: boolean | undefined
  /** Look for due ticks at least this often, besides waking for the next known tick. Default 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** A tick later than this is missed, and its definition's misfire policy applies. Default 1 minute. */
  readonly misfireThreshold?: Duration.DurationInput | undefined
}

/** What decides the ticks of a stored definition. */
interface Spec {
  readonly cron: string | null
  readonly timeZone: string | null
  readonly everyMs: string | null
  readonly startsAt: Date | null
  readonly anchorAt: Date | null
  readonly endsAt: Date | null
}

interface Row extends Spec {
  readonly id: string
  readonly jobName: string
  readonly queue: string
  readonly priority: number
  readonly payload: unknown
  readonly misfire: "skip" | "runOnce" | "backfill"
  readonly backfill: number
  readonly paused: boolean
  readonly source: "code" | "api"
  readonly definedPaused: boolean | null
  readonly nextRunAt: Date | null
  readonly lastRunAt: Date | null
  readonly lastJobId: string | null
  readonly lastJobState: JobState | null
  readonly error: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

const columns = `r.id, r.job_name AS "jobName", r.queue, r.priority, r.payload, r.cron, r.time_zone AS "timeZone",
  r.every_ms::text AS "everyMs", r.starts_at AS "startsAt", r.anchor_at AS "anchorAt", r.ends_at AS "endsAt",
  r.misfire, r.backfill, r.paused, r.source, r.defined_paused AS "definedPaused", r.next_run_at AS "nextRunAt",
  r.last_run_at AS "lastRunAt", r.last_job_id::text AS "lastJobId", r.error, r.created_at AS "createdAt",
  r.updated_at AS "updatedAt"`

const toInfo = (row: Row): RecurringInfo =>
  new RecurringInfo({
    id: row.id,
    jobName: row.jobName,
    queue: row.queue,
    priority: row.priority,
    payload: row.payload,
    cron: Option.fromNullable(row.cron),
    timeZone: Option.fromNullable(row.timeZone),
    everyMillis: Option.map(Option.fromNullable(row.everyMs), Number),
    start: Option.fromNullable(row.startsAt),
    end: Option.fromNullable(row.endsAt),
    misfire: row.misfire === "backfill" ? { backfill: row.backfill } : row.misfire,
    paused: row.paused,
    source: row.source,
    nextRunAt: row.paused ? Option.none() : Option.fromNullable(row.nextRunAt),
    lastRunAt: Option.fromNullable(row.lastRunAt),
    lastJobId: Option.fromNullable(row.lastJobId),
    lastJobState: Option.fromNullable(row.lastJobState),
    error: Option.fromNullable(row.error),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt
  })

const time = (date: Date | null) => date === null ? "" : String(date.getTime())

const sameSchedule = (a: Spec, b: Spec) =>
  a.cron === b.cron && a.timeZone === b.timeZone && a.everyMs === b.everyMs && time(a.startsAt) === time(b.startsAt) &&
  time(a.endsAt) === time(b.endsAt)

/** Parsed schedules by spec: thousands of definitions often share a few. */
const parsedTicks = new Map<string, Either.Either<Ticks.Ticks, string>>()

const specKey = (spec: Spec) =>
  `${spec.cron}|${spec.timeZone}|${spec.everyMs}|${time(spec.startsAt)}|${time(spec.anchorAt)}|${time(spec.endsAt)}`

const ticksOf = (spec: Spec): Either.Either<Ticks.Ticks, string> => {
  const key = specKey(spec)
  let ticks = parsedTicks.get(key)
  if (ticks === undefined) {
    if (spec.cron !== null) {
      const cron = parseCron("", spec.cron, spec.timeZone ?? "UTC")
      ticks = Either.isLeft(cron)
        ? Either.left(cron.left.message)
        : Either.right(
          Ticks.cronTicks(cron.right, spec.cron, spec.startsAt ?? undefined, spec.endsAt ?? undefined)
        )
    } else {
      const every = Number(spec.everyMs)
      ticks = spec.anchorAt === null || !(every > 0)
        ? Either.left(`interval ${spec.everyMs} ms from ${spec.anchorAt?.toISOString()} cannot tick`)
        : Either.right({ _tag: "Interval", everyMillis: every, anchor: spec.anchorAt, end: spec.endsAt ?? undefined })
    }
    if (parsedTicks.size > 10_000) parsedTicks.clear()
    parsedTicks.set(key, ticks)
  }
  return ticks
}

/** The instants PostgreSQL and JavaScript both write and read as a timestamp: years 0 to 9999. */
const firstInstant = Date.parse("0000-01-01T00:00:00.000Z")
const lastInstant = Date.parse("9999-12-31T23:59:59.999Z")

const storable = (date: Date | undefined) =>
  date === undefined || (date.getTime() >= firstInstant && date.getTime() <= lastInstant)

/** What a due definition fires, or why it cannot be fired. */
const fireable = (
  due: typeof Ticks.dueTicks,
  ...args: Parameters<typeof Ticks.dueTicks>
): Either.Either<ReturnType<typeof Ticks.dueTicks>, string> => {
  try {
    const result = due(...args)
    const bad = [...result.fire, result.next].find((date) => !storable(date))
    return bad === undefined
      ? Either.right(result)
      : Either.left(
        `its tick ${
          Number.isNaN(bad.getTime()) ? "is not a valid date" : `${bad.toISOString()} is outside the years 0 to 9999`
        }`
      )
  } catch (error) {
    return Either.left(`its next tick cannot be worked out: ${error instanceof Error ? error.message : String(error)}`)
  }
}

const tickKey = (id: string, tick: Date) => `recurring:${id}:${tick.toISOString()}`

/** A batch of due definitions claimed per transaction. */
const batchSize = 500

/** The service on the `JobClient`'s schema, with what the layer needs besides. */
const makeService = (options: { readonly misfireThreshold?: Duration.DurationInput | undefined } = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const client = yield* JobClient
    const store = client[StoreInternal]
    const threshold = yield* layerMillis("misfireThreshold", options.misfireThreshold, 60_000)
    const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))
    /** Wakes this process's scheduler when a change here may make a tick due sooner. */
    const wake = yield* Queue.sliding<void>(1)

    const selectInfo = (id: string) =>
      Effect.map(
        sql<Row>`SELECT ${sql.literal(columns)}, j.state AS "lastJobState"
          FROM ${store.recurring} r LEFT JOIN ${store.jobs} j ON j.id = r.last_job_id
          WHERE r.id = ${id}`,
        (rows) => Option.map(Option.fromNullable(rows[0]), toInfo)
      )
    const found = (id: string) =>
      Effect.flatMap(
        selectInfo(id),
        Option.match({ onNone: () => Effect.fail(new RecurringNotFound({ id })), onSome: Effect.succeed })
      )

    /** Stores definitions in one transaction; with `removeOthers`, deletes code definitions not among them. */
    const upsert = (
      definitions: ReadonlyArray<Definition>,
      source: "code" | "api",
      removeOthers: boolean
    ) =>
      Effect.gen(function*() {
        const encoded: Array<unknown> = []
        for (const definition of definitions) {
          if (definition.invalid !== undefined) return yield* definition.invalid
          const [json] = yield* Values.encodePayloads(
            definition.job,
            [definition.payload],
            `recurring "${definition.id}": `
          )
          encoded.push(JSON.parse(json))
        }
        const ids = definitions.map((definition) => definition.id)
        const write = Effect.gen(function*() {
          // Processes starting together store the same definitions one after the other.
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`effect_workers.recurring:${store.schema}`}))`
          const existing = new Map<string, Row>()
          const rows = ids.length === 0 ? [] : yield* sql<Row>`SELECT ${sql.literal(columns)}
            FROM ${store.recurring} r WHERE r.id = ANY(${ids}::text[]) FOR UPDATE`
          for (const row of rows) existing.set(row.id, row)
          const at = yield* now
          const records = definitions.map((definition, i) => {
            const old = existing.get(definition.id)
            const spec: Spec = {
              cron: definition.cron ?? null,
              timeZone: definition.timeZone ?? null,
              everyMs: definition.every === undefined ? null : String(Duration.toMillis(definition.every)),
              startsAt: definition.start ?? null,
              anchorAt: null,
              endsAt: definition.end ?? null
            }
            const same = old !== undefined && sameSchedule(old, spec)
            // An interval ticks from its start; without one, from when it was first stored, or, when its
            // schedule changes, from its last tick.
            const anchorAt = spec.everyMs === null
              ? null
              : spec.startsAt ??
                (old !== undefined && old.everyMs === spec.everyMs ? old.anchorAt : old?.lastRunAt ?? at)
            const ticks = Either.getOrThrow(ticksOf({ ...spec, anchorAt }))
            const paused = old === undefined || old.definedPaused !== definition.paused
              ? definition.paused
              : old.paused
            const nextRunAt = old === undefined || (old.paused && !paused)
              // New, or resumed by its code: from now on, like `resume`.
              ? Ticks.tickFrom(ticks, at)
              : same || (old.nextRunAt !== null && old.nextRunAt <= at)
              // Unchanged, or a tick already due (missed while no process ran): the misfire policy decides.
              ? old.nextRunAt
              : Ticks.nextTick(ticks, at)
            return {
              id: definition.id,
              job_name: definition.job.name,
              queue: definition.queue,
              priority: definition.priority,
              max_attempts: definition.job.maxAttempts,
              payload: encoded[i] ?? null,
              cron: spec.cron,
              time_zone: spec.timeZone,
              every_ms: spec.everyMs === null ? null : Number(spec.everyMs),
              starts_at: spec.startsAt,
              anchor_at: anchorAt,
              ends_at: spec.endsAt,
              misfire: typeof definition.misfire === "object" ? "backfill" : definition.misfire,
              backfill: typeof definition.misfire === "object" ? definition.misfire.backfill : 0,
              paused,
              source,
              defined_paused: definition.paused,
              next_run_at: nextRunAt ?? null
            }
          })
          if (records.length > 0) {
            yield* sql`
              INSERT INTO ${store.recurring} (id, job_name, queue, priority, max_attempts, payload, cron, time_zone,
                every_ms, starts_at, anchor_at, ends_at, misfire, backfill, paused, source, defined_paused, next_run_at)
              SELECT * FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb) AS x(id text, job_name text,
                queue text, priority integer, max_attempts integer, payload jsonb, cron text, time_zone text,
                every_ms bigint, starts_at timestamptz, anchor_at timestamptz, ends_at timestamptz, misfire text,
                backfill integer, paused boolean, source text, defined_paused boolean, next_run_at timestamptz)
              ON CONFLICT (id) DO UPDATE SET job_name = excluded.job_name, queue = excluded.queue,
                priority = excluded.priority, max_attempts = excluded.max_attempts, payload = excluded.payload,
                cron = excluded.cron, time_zone = excluded.time_zone, every_ms = excluded.every_ms,
                starts_at = excluded.starts_at, anchor_at = excluded.anchor_at, ends_at = excluded.ends_at,
                misfire = excluded.misfire, backfill = excluded.backfill, paused = excluded.paused,
                source = excluded.source, defined_paused = excluded.defined_paused,
                next_run_at = excluded.next_run_at, error = NULL, updated_at = now()`
          }
          if (removeOthers) {
            const removed = yield* sql<{ readonly id: string }>`
              DELETE FROM ${store.recurring} WHERE source = 'code' AND NOT (id = ANY(${ids}::text[])) RETURNING id`
            if (removed.length > 0) {
              yield* Effect.logInfo(
                `Removed recurring definitions no longer defined in code: ${removed.map((r) => r.id).join(", ")}`
              )
            }
          }
        })
        yield* sql.withTransaction(write)
        yield* wake.offer(undefined)
      })

    /** Claims a batch of due definitions and fires their ticks, in one transaction. */
    const fireBatch = (at: Date) =>
      Effect.gen(function*() {
        const due = yield* sql<Row>`SELECT ${sql.literal(columns)} FROM ${store.recurring} r
          WHERE NOT r.paused AND r.next_run_at <= ${at}
          ORDER BY r.next_run_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`
        if (due.length === 0) return { claimed: 0, fired: [] as Array<Fired> }
        const cut = new Date(at.getTime() - threshold)
        const tickIds: Array<string> = []
        const ticks: Array<Date> = []
        const keys: Array<string> = []
        const rowIds: Array<string> = []
        const nexts: Array<Date | null> = []
        const brokenIds: Array<string> = []
        const brokenErrors: Array<string> = []
        // Definitions with one schedule, policy and due time fire the same ticks: worked out once.
        const worked = new Map<string, Either.Either<ReturnType<typeof Ticks.dueTicks>, string>>()
        for (const row of due) {
          const from = row.nextRunAt!
          const key = `${specKey(row)}|${row.misfire}|${row.backfill}|${from.getTime()}`
          let result = worked.get(key)
          if (result === undefined) {
            const keep = row.misfire === "skip" ? 0 : row.misfire === "runOnce" ? 1 : row.backfill
            result = Either.flatMap(ticksOf(row), (ticks) => fireable(Ticks.dueTicks, ticks, from, at, cut, keep))
            worked.set(key, result)
          }
          if (Either.isLeft(result)) {
            // Set aside, so that it never holds up the definitions beside it.
            brokenIds.push(row.id)
            brokenErrors.push(result.left)
            yield* Effect.logError(`Recurring "${row.id}" is set aside and fires nothing more: ${result.left}`)
            continue
          }
          for (const tick of result.right.fire) {
            tickIds.push(row.id)
            ticks.push(tick)
            keys.push(tickKey(row.id, tick))
          }
          rowIds.push(row.id)
          nexts.push(result.right.next ?? null)
        }
        if (brokenIds.length > 0) {
          yield* sql`UPDATE ${store.recurring} r SET next_run_at = NULL, error = b.error, updated_at = now()
            FROM unnest(${brokenIds}::text[], ${brokenErrors}::text[]) AS b(id, error) WHERE r.id = b.id`
        }
        const trace = yield* Statements.currentTrace
        const source = sql`(
          SELECT r.job_name AS name, r.queue, r.payload, r.priority, r.max_attempts, t.tick AS run_at,
            t.key AS unique_key, ''::text AS partition_key, ${trace.traceId}::text AS trace_id, ${trace.spanId}::text AS span_id,
            r.id AS recurring_id, t.tick AS recurring_tick, row_number() OVER (ORDER BY t.tick, t.ord) AS ord
          FROM unnest(${tickIds}::text[], ${ticks}::timestamptz[], ${keys}::text[]) WITH ORDINALITY AS t(rid, tick, key, ord)
          JOIN ${store.recurring} r ON r.id = t.rid
        )`
        const fired = yield* sql<{ readonly jobId: string; readonly id: string; readonly tick: Date }>`
          WITH inserted AS (${Statements.insertJobs(store, source, "recurring")}), ${
          Statements.countInserted(store)
        }, latest AS (
            SELECT DISTINCT ON (recurring_id) recurring_id, recurring_tick, id FROM inserted
            ORDER BY recurring_id, recurring_tick DESC
          ), advanced AS (
            UPDATE ${store.recurring} r SET next_run_at = n.next,
              last_run_at = GREATEST(latest.recurring_tick, r.last_run_at),
              last_job_id = COALESCE(latest.id, r.last_job_id)
            FROM unnest(${rowIds}::text[], ${nexts}::timestamptz[]) AS n(rid, next)
              LEFT JOIN latest ON latest.recurring_id = n.rid
            WHERE r.id = n.rid
            RETURNING r.id
          ), notified AS (${Statements.notifyInserted(store)})
          SELECT i.id::text AS "jobId", i.recurring_id AS id, i.recurring_tick AS tick
          FROM inserted i, (SELECT count(*) FROM advanced) AS a, (SELECT count(*) FROM notified) AS n
          ORDER BY i.recurring_tick, i.recurring_id`
        return { claimed: due.length, fired: fired.map((row) => ({ id: row.id, tick: row.tick, jobId: row.jobId })) }
      })

    const fireDue: Effect.Effect<FireResult, SqlError> = Effect.gen(function*() {
      const fired: Array<Fired> = []
      while (true) {
        const batch = yield* sql.withTransaction(Effect.flatMap(now, fireBatch))
        for (const one of batch.fired) fired.push(one)
        if (batch.claimed < batchSize) break
      }
      const rows = yield* sql<{ readonly next: Date | null }>`
        SELECT min(next_run_at) AS next FROM ${store.recurring} WHERE NOT paused`
      return { fired, next: Option.fromNullable(rows[0]?.next ?? null) }
    })

    const service: RecurringService = {
      addOrUpdate: (definition) =>
        Effect.zipRight(
          upsert([definition], "api", false),
          Effect.catchTag(found(definition.id), "RecurringNotFound", Effect.die)
        ),
      remove: (id) =>
        Effect.flatMap(
          sql`DELETE FROM ${store.recurring} WHERE id = ${id} RETURNING id`,
          (rows) => rows.length === 0 ? Effect.fail(new RecurringNotFound({ id })) : Effect.void
        ),
      trigger: (id) =>
        Effect.gen(function*() {
          const at = yield* now
          const trace = yield* Statements.currentTrace
          const source = sql`(
            SELECT job_name AS name, queue, payload, priority, max_attempts, now() AS run_at, NULL::text AS unique_key, ''::text AS partition_key,
              ${trace.traceId}::text AS trace_id, ${trace.spanId}::text AS span_id, id AS recurring_id,
              ${at}::timestamptz AS recurring_tick, 1 AS ord
            FROM ${store.recurring} WHERE id = ${id}
          )`
          const rows = yield* sql<{ readonly id: string }>`
            WITH inserted AS (${Statements.insertJobs(store, source, "recurring")}), ${
            Statements.countInserted(store)
          }, updated AS (
              UPDATE ${store.recurring} r SET last_run_at = ${at}, last_job_id = inserted.id
              FROM inserted WHERE r.id = ${id}
              RETURNING r.id
            ), notified AS (${Statements.notifyInserted(store)})
            SELECT inserted.id::text AS id FROM inserted, (SELECT count(*) FROM updated) AS u,
              (SELECT count(*) FROM notified) AS n`
          if (rows.length === 0) return yield* new RecurringNotFound({ id })
          return { id: rows[0].id, inserted: true }
        }),
      pause: (id) =>
        Effect.zipRight(
          Effect.flatMap(
            sql`UPDATE ${store.recurring} SET paused = true, updated_at = now() WHERE id = ${id} RETURNING id`,
            (rows) => rows.length === 0 ? Effect.fail(new RecurringNotFound({ id })) : Effect.void
          ),
          found(id)
        ),
      resume: (id) =>
        Effect.gen(function*() {
          yield* sql.withTransaction(Effect.gen(function*() {
            const rows = yield* sql<Row>`SELECT ${sql.literal(columns)} FROM ${store.recurring} r
              WHERE r.id = ${id} FOR UPDATE`
            if (rows.length === 0) return yield* new RecurringNotFound({ id })
            const row = rows[0]
            if (!row.paused && row.error === null) return
            const at = yield* now
            const next = Either.flatMap(ticksOf(row), (ticks) =>
              Either.map(fireable(Ticks.dueTicks, ticks, at, at, at, 0), (due) =>
                due.fire[0] ?? due.next ?? null))
            // A definition set aside is tried again from its next tick, unless that tick still cannot be fired.
            yield* sql`UPDATE ${store.recurring} SET paused = false, next_run_at = ${Either.getOrNull(next)},
              error = ${Either.isLeft(next) ? next.left : null}, updated_at = now() WHERE id = ${id}`
          }))
          yield* wake.offer(undefined)
          return yield* found(id)
        }),
      get: selectInfo,
      list: Effect.map(
        sql<Row>`SELECT ${sql.literal(columns)}, j.state AS "lastJobState"
          FROM ${store.recurring} r LEFT JOIN ${store.jobs} j ON j.id = r.last_job_id ORDER BY r.id`,
        (rows) => rows.map(toInfo)
      ),
      fireDue
    }
    return { service, upsert, wake, now }
  })

const layerMillis = (option: string, value: unknown, fallback: number) => {
  if (value === undefined) return Effect.succeed(fallback)
  const checked = Check.durationMillis(value, layerDurationRule)
  return Either.isRight(checked)
    ? Effect.succeed(checked.right)
    : Effect.fail(new InvalidRecurring({ id: "", option, reason: checked.left }))
}

/** Checks the layer's options that are not durations, as JavaScript callers may pass them. */
const checkLayer = (options: LayerOptions): InvalidRecurring | undefined => {
  const invalid = (option: string, reason: string) => new InvalidRecurring({ id: "", option, reason })
  if (options.definitions !== undefined && !Array.isArray(options.definitions)) {
    return invalid(
      "definitions",
      `must be an array of Recurring.make definitions, got ${Check.show(options.definitions)}`
    )
  }
  for (const definition of options.definitions ?? []) {
    if (typeof definition !== "object" || definition === null || typeof definition.id !== "string") {
      return invalid("definitions", `must hold only Recurring.make definitions, got ${Check.show(definition)}`)
    }
  }
  if (options.missing !== undefined) {
    const missing = Check.oneOf(options.missing, ["remove", "keep"])
    if (Either.isLeft(missing)) return invalid("missing", missing.left)
  }
  if (options.fire !== undefined) {
    const fire = Check.boolean(options.fire)
    if (Either.isLeft(fire)) return invalid("fire", fire.left)
  }
  return undefined
}

/**
 * The `Recurring` service. At start-up it stores `definitions` (and removes
 * code definitions no longer there, unless `missing: "keep"`); then, unless
 * `fire: false`, it fires due ticks until the layer is released. Run it in
 * as many processes as you like; `layer({ fire: false })` only manages
 * definitions.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<
  Recurring,
  InvalidRecurring | InvalidJobOptions | InvalidPayload | SqlError,
  JobClient | SqlClient.SqlClient
> =>
  Layer.scoped(
    Recurring,
    Effect.gen(function*() {
      const invalid = checkLayer(options)
      if (invalid !== undefined) return yield* invalid
      const { now, service, upsert, wake } = yield* makeService(options)
      const poll = yield* layerMillis("pollInterval", options.pollInterval, 1_000)
      const definitions = options.definitions
      const seen = new Set<string>()
      for (const definition of definitions ?? []) {
        if (seen.has(definition.id)) {
          return yield* new InvalidRecurring({ id: definition.id, option: "id", reason: "is used by two definitions" })
        }
        seen.add(definition.id)
      }
      if (definitions !== undefined) {
        yield* upsert([...definitions].sort((a, b) => a.id < b.id ? -1 : 1), "code", options.missing !== "keep")
      }
      if (options.fire === false) return service
      const loop = Effect.gen(function*() {
        let failures = 0
        while (true) {
          const result = yield* Effect.exit(service.fireDue)
          let wait = poll
          if (result._tag === "Failure") {
            failures++
            wait = Math.min(100 * 2 ** failures, 10_000)
            yield* Effect.logWarning("Recurring: firing due ticks failed; trying again", loggedCause(result.cause))
          } else {
            failures = 0
            if (Option.isSome(result.value.next)) {
              // Due rows that another process holds right now stay due: look again shortly, not at once.
              wait = Math.max(25, Math.min(poll, result.value.next.value.getTime() - (yield* now).getTime()))
            }
          }
          yield* Effect.raceFirst(Effect.sleep(wait), wake.take)
        }
      })
      yield* Effect.forkScoped(loop)
      yield* addService("recurring scheduler")
      return service
    }).pipe(Effect.annotateLogs("component", "Recurring"))
  )
