/**
 * Enqueues durable jobs and manages them: cancel, retry, delete, get, list,
 * counts, and pausing of queues.
 *
 * Statements run on the `SqlClient` of the layer, and join the caller's
 * transaction: inside `sql.withTransaction`, a rollback leaves no job, and a
 * commit makes it visible and wakes the runners.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Duration, Effect, Either, Layer, Option } from "effect"
import * as Hosts from "./internal/jobs/hosts.js"
import * as Limits from "./internal/jobs/limits.js"
import * as Statements from "./internal/jobs/statements.js"
import * as Store from "./internal/jobs/store.js"
import * as Values from "./internal/jobs/values.js"
import * as Check from "./internal/options.js"
import type * as Job from "./Job.js"
import type { JobInfo, JobState } from "./Job.js"
import {
  InvalidJobOptions,
  InvalidJobState,
  type InvalidPayload,
  InvalidQueueOptions,
  JobNotFound,
  type MigrationError
} from "./JobError.js"
import * as Migrations from "./Migrations.js"
import { RegistryInternal, WorkerRegistry } from "./WorkerRegistry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface EnqueueOptions {
  /** Run at this time (or later). */
  readonly runAt?: Date | undefined
  /** Run after this delay (0 or more). Ignored when `runAt` is given. */
  readonly delay?: Duration.DurationInput | undefined
  /** Overrides the definition's priority: lower runs first, from -2147483648 to 2147483647. */
  readonly priority?: number | undefined
  /** Overrides the definition's queue. */
  readonly queue?: string | undefined
  /** Overrides the definition's unique key. */
  readonly uniqueKey?: string | undefined
  /** Overrides the definition's partition key (for per-key limits and fair claiming). */
  readonly partitionKey?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Enqueued {
  readonly id: string
  /** `false` when a live job with the same unique key was returned instead. */
  readonly inserted: boolean
}

/**
 * Which jobs a list or an action on many jobs covers: those that match every
 * field given. An empty filter covers every job.
 *
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  readonly queue?: string | undefined
  readonly state?: JobState | undefined
  readonly name?: string | undefined
  /** A job id, or text found in the payload as stored (JSON). */
  readonly search?: string | undefined
}

/**
 * An action on many jobs: each applies to the jobs in some states only
 * (`retry`: discarded, cancelled, retryable, scheduled; `cancel`: scheduled,
 * available, running, retryable; `delete`: all but running).
 *
 * @since 0.1.0
 * @category models
 */
export type Action = "retry" | "cancel" | "delete"

/**
 * @since 0.1.0
 * @category models
 */
export interface ListOptions extends Filter {
  /** At most this many jobs, newest first. Default 50, at most 1,000. */
  readonly limit?: number | undefined
  /** Jobs older than this id: pass the last id of a page to get the next one. */
  readonly before?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueCount {
  readonly queue: string
  readonly state: JobState
  readonly count: number
}

/**
 * At most `limit` starts in any window of `period`, over every runner.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimit {
  /** A whole number from 1 to 1,000,000. */
  readonly limit: number
  /** 10 milliseconds to 1 week, in whole milliseconds. */
  readonly period: Duration.DurationInput
}

/**
 * The flow-control limits of a queue, over every runner. A missing or
 * `null` limit is none; `fair` defaults to `false`.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueLimits {
  /** At most this many jobs of the queue run at once: 1 to 2147483647. */
  readonly globalConcurrency?: number | null | undefined
  /** At most this many jobs with one partition key run at once: 1 to 2147483647. */
  readonly keyConcurrency?: number | null | undefined
  /** At most this many jobs of the queue start per period. */
  readonly rateLimit?: RateLimit | null | undefined
  /** At most this many jobs with one partition key start per period. */
  readonly keyRateLimit?: RateLimit | null | undefined
  /** Partition keys take turns, so that a key with a large backlog does not hold up the others. */
  readonly fair?: boolean | undefined
}

/**
 * The limits of a queue as stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueLimitsInfo {
  readonly globalConcurrency: number | null
  readonly keyConcurrency: number | null
  readonly rateLimit: { readonly limit: number; readonly periodMillis: number } | null
  readonly keyRateLimit: { readonly limit: number; readonly periodMillis: number } | null
  readonly fair: boolean
  /** Who set them: `"code"` (a runner's options), `"api"` ({@link JobClientService.setLimits}), or `null` (none). */
  readonly source: "code" | "api" | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueInfo {
  readonly name: string
  readonly paused: boolean
  readonly limits: QueueLimitsInfo
}

/**
 * One partition key of a queue, in {@link QueueFlow}.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyFlow {
  /** `""` for the jobs without a key. */
  readonly key: string
  readonly running: number
  /** Due jobs of the key, not running. */
  readonly waiting: number
  /** Starts in the key's current rate window (0 without a per-key rate limit). */
  readonly started: number
  /** Whether a per-key limit holds its due jobs back now. */
  readonly held: boolean
}

/**
 * What flows through a queue now: its limits, what runs, and what waits
 * because of a limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueFlow {
  readonly queue: string
  readonly paused: boolean
  readonly limits: QueueLimitsInfo
  /** Jobs running (claimed) over every runner. */
  readonly running: number
  /** Due jobs, not running. */
  readonly waiting: number
  /** Starts in the current window of the queue's rate limit (0 without one). */
  readonly started: number
  /** Due jobs the global concurrency holds back now (all of them while it is reached). */
  readonly heldByGlobalConcurrency: number
  /** Due jobs the rate limit holds back now (all of them while the window is spent). */
  readonly heldByRateLimit: number
  /** Due jobs of keys that their per-key limits hold back now. */
  readonly heldByKeyLimits: number
  /** The busiest keys: most running first, then most waiting. */
  readonly keys: ReadonlyArray<KeyFlow>
}

/**
 * The due job of a queue that has waited longest for a runner.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitingJob {
  readonly queue: string
  readonly id: string
  readonly name: string
  /** When it became due: its `runAt`. */
  readonly dueAt: Date
  /** How long it has waited, by the database's clock. */
  readonly waitMillis: number
}

/**
 * A job runner process, as it registered itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunnerInfo {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly queues: ReadonlyArray<string>
  /** Concurrency per queue. */
  readonly concurrency: Readonly<Record<string, number>>
  readonly startedAt: Date
  readonly heartbeatAt: Date
  /** Its heartbeat is current: its jobs are not rescued. */
  readonly alive: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JobClientService {
  /** Schema of the job tables. */
  readonly schema: string
  /** @internal */
  readonly [Store.StoreInternal]: Store.Store
  readonly enqueue: <P, I>(
    job: Job.Job<P, I, any, any, any>,
    payload: P,
    options?: EnqueueOptions
  ) => Effect.Effect<Enqueued, InvalidPayload | InvalidJobOptions | SqlError>
  /** Enqueues many jobs of one definition in one statement; ids in the order of `payloads`. */
  readonly enqueueMany: <P, I>(
    job: Job.Job<P, I, any, any, any>,
    payloads: Iterable<P>,
    options?: Omit<EnqueueOptions, "uniqueKey">
  ) => Effect.Effect<ReadonlyArray<Enqueued>, InvalidPayload | InvalidJobOptions | SqlError>
  /**
   * Cancels a waiting or running job. A running one is interrupted by the
   * process that runs it. Cancelling a cancelled job does nothing.
   */
  readonly cancel: (id: string) => Effect.Effect<JobInfo, JobNotFound | InvalidJobState | SqlError>
  /**
   * Makes a discarded, cancelled, retryable or scheduled job available now,
   * with one more attempt if its attempts were spent.
   */
  readonly retry: (id: string) => Effect.Effect<JobInfo, JobNotFound | InvalidJobState | SqlError>
  /** Deletes a job that is not running (cancel a running job first). */
  readonly delete: (id: string) => Effect.Effect<void, JobNotFound | InvalidJobState | SqlError>
  readonly get: (id: string) => Effect.Effect<Option.Option<JobInfo>, SqlError>
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<JobInfo>, SqlError>
  /** Number of jobs per queue and state (pairs with none are left out). */
  readonly counts: Effect.Effect<ReadonlyArray<QueueCount>, SqlError>
  /** Stops every runner from claiming jobs of `queue` until resumed; running jobs go on. */
  readonly pause: (queue: string) => Effect.Effect<void, InvalidQueueOptions | SqlError>
  readonly resume: (queue: string) => Effect.Effect<void, InvalidQueueOptions | SqlError>
  /** Queues that have jobs or settings, whether they are paused, and their limits. */
  readonly queues: Effect.Effect<ReadonlyArray<QueueInfo>, SqlError>
  /** Per queue with due jobs, the one that has waited longest for a runner. */
  readonly oldestWaiting: Effect.Effect<ReadonlyArray<WaitingJob>, SqlError>
  /** The runner processes registered, alive or not yet forgotten, oldest first. */
  readonly runners: Effect.Effect<ReadonlyArray<RunnerInfo>, SqlError>
  /**
   * How many jobs `filter` covers; with `action`, only those it applies to:
   * what {@link retryAll}, {@link cancelAll} or {@link deleteAll} would touch now.
   */
  readonly countMatching: (filter: Filter, action?: Action) => Effect.Effect<number, SqlError>
  /** {@link retry} on every job `filter` covers that can be retried, in one statement; returns how many. */
  readonly retryAll: (filter: Filter) => Effect.Effect<number, SqlError>
  /** {@link cancel} on every live job `filter` covers, in one statement; returns how many. */
  readonly cancelAll: (filter: Filter) => Effect.Effect<number, SqlError>
  /** {@link delete} on every job `filter` covers that is not running, in one statement; returns how many. */
  readonly deleteAll: (filter: Filter) => Effect.Effect<number, SqlError>
  /**
   * Sets the limits of `queue` over every runner, replacing the ones it had
   * (a limit not given is none): runners apply them from their next claim,
   * woken at once. They are kept until set again or {@link resetLimits}, and
   * win over limits in runners' options.
   */
  readonly setLimits: (
    queue: string,
    limits: QueueLimits
  ) => Effect.Effect<void, InvalidQueueOptions | SqlError>
  /** Drops the limits set with {@link setLimits}: the runners' options give them again (none if they give none). */
  readonly resetLimits: (queue: string) => Effect.Effect<void, InvalidQueueOptions | SqlError>
  /** The limits of `queue`, what runs and what waits because of a limit, and the `keys` (default 10) busiest keys. */
  readonly flow: (
    queue: string,
    options?: { readonly keys?: number | undefined }
  ) => Effect.Effect<QueueFlow, InvalidQueueOptions | SqlError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class JobClient extends Context.Tag("effect-workers/JobClient")<JobClient, JobClientService>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Migrations.Options {
  /** Apply the migrations when the layer is built (default), or only check the tables' version. */
  readonly migrate?: boolean | undefined
}

const validId = Store.isJobId

/** Checks a raw enqueue option with the rule shared by every entry point. */
const checked = <A>(job: Job.Any, option: string, result: Either.Either<A, string>) =>
  Either.isRight(result)
    ? Effect.succeed(result.right)
    : Effect.fail(new InvalidJobOptions({ job: job.name, option, reason: result.left }))

const delayMillis = (job: Job.Any, delay: Duration.DurationInput | undefined) =>
  delay === undefined ? Effect.succeed(0) : checked(job, "delay", Check.durationMillis(delay, { min: 0 }))

/** Checks the options given at enqueue that PostgreSQL would refuse, before any statement. */
const checkEnqueue = (job: Job.Any, options: EnqueueOptions) => {
  const invalid = (option: string, reason: string) =>
    Effect.fail(new InvalidJobOptions({ job: job.name, option, reason }))
  if (options.queue !== undefined) {
    const problem = Values.nameProblem(options.queue)
    if (problem !== undefined) return invalid("queue", problem)
  }
  const runAt: unknown = options.runAt
  if (runAt !== undefined) {
    if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
      return invalid("runAt", `must be a valid Date, got ${String(runAt)}`)
    }
    if (runAt.getTime() < Values.minTimestampMillis) {
      return invalid(
        "runAt",
        `must not be before 4714-11-24 BC (PostgreSQL's earliest time), got ${runAt.toISOString()}`
      )
    }
  }
  return Effect.void
}

/** The unique keys of `payloads`, checked: a key PostgreSQL would refuse fails before anything is inserted. */
const uniqueKeys = <P>(job: Job.Any, payloads: ReadonlyArray<P>, key: (payload: P) => unknown) =>
  Effect.forEach(payloads, (payload, i) => {
    let k: unknown
    try {
      k = key(payload)
    } catch (error) {
      return Effect.fail(
        new InvalidJobOptions({
          job: job.name,
          option: "uniqueKey",
          reason: `threw: ${error instanceof Error ? error.message : Check.show(error)}`
        })
      )
    }
    if (k === null) return Effect.succeed(null)
    const problem = Values.uniqueKeyProblem(k)
    return problem === undefined
      ? Effect.succeed(k as string)
      : Effect.fail(
        new InvalidJobOptions({
          job: job.name,
          option: "uniqueKey",
          reason: payloads.length === 1 ? problem : `of payloads[${i}] ${problem}`
        })
      )
  })

/**
 * The partition keys of `payloads` ('' for none), checked like unique keys; `key` is undefined when
 * neither the definition nor the options give one. A plain loop: this runs for every enqueued job.
 */
const partitionKeys = <P>(
  job: Job.Any,
  payloads: ReadonlyArray<P>,
  key: ((payload: P) => unknown) | undefined
): Effect.Effect<ReadonlyArray<string>, InvalidJobOptions> => {
  const keys = new Array<string>(payloads.length).fill("")
  if (key === undefined) return Effect.succeed(keys)
  const invalid = (reason: string) =>
    Effect.fail(new InvalidJobOptions({ job: job.name, option: "partitionKey", reason }))
  for (let i = 0; i < payloads.length; i++) {
    let k: unknown
    try {
      k = key(payloads[i])
    } catch (error) {
      return invalid(`threw: ${error instanceof Error ? error.message : Check.show(error)}`)
    }
    if (k === null || k === undefined) continue
    const problem = Limits.partitionKeyProblem(k)
    if (problem !== undefined) return invalid(payloads.length === 1 ? problem : `of payloads[${i}] ${problem}`)
    keys[i] = k as string
  }
  return Effect.succeed(keys)
}

/** The limits as the client shows them. */
const limitsInfo = (row: Limits.LimitsRow & { readonly source: "code" | "api" | null }): QueueLimitsInfo => ({
  ...Limits.fromRow(row),
  source: row.source
})

const queueProblem = (queue: unknown) => {
  const problem = Values.nameProblem(queue)
  return problem === undefined
    ? Effect.void
    : Effect.fail(new InvalidQueueOptions({ queue: String(queue), option: "queue", reason: problem }))
}

/**
 * Builds the client on `SqlClient`, applying the migrations first unless
 * `migrate: false`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<JobClientService, MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* Values.validSchema(options.schema ?? Migrations.defaultSchema)
    yield* options.migrate === false ? Migrations.check({ schema }) : Migrations.run({ schema })
    const sql = yield* SqlClient.SqlClient
    const store = new Store.Store(sql, schema)

    const insert = <P, I>(
      job: Job.Job<P, I, any, any, any>,
      payloads: ReadonlyArray<P>,
      options: EnqueueOptions,
      key: (payload: P) => unknown
    ) =>
      // The definition's partition key, unless the options give one.
      insertKeyed(
        job,
        payloads,
        options,
        key,
        options.partitionKey !== undefined ? () => options.partitionKey : job.partitionKey
      )

    const insertKeyed = <P, I>(
      job: Job.Job<P, I, any, any, any>,
      payloads: ReadonlyArray<P>,
      options: EnqueueOptions,
      key: (payload: P) => unknown,
      partitionKey: ((payload: P) => unknown) | undefined
    ) =>
      Effect.gen(function*() {
        if (job.invalid !== undefined) return yield* job.invalid
        const encoded = yield* Values.encodePayloads(job, payloads)
        const delay = yield* delayMillis(job, options.delay)
        yield* checkEnqueue(job, options)
        if (options.priority !== undefined) {
          yield* checked(job, "priority", Check.integer(options.priority, Check.int32.min, Check.int32.max))
        }
        const keys = yield* uniqueKeys(job, payloads, key)
        const partitions = yield* partitionKeys(job, payloads, partitionKey)
        const newJob: Statements.NewJob = {
          name: job.name,
          queue: options.queue ?? job.queue,
          priority: options.priority ?? job.priority,
          maxAttempts: job.maxAttempts,
          runAt: options.runAt,
          delayMillis: delay,
          ...yield* Statements.currentTrace
        }
        const inserted = yield* Statements.insert(store, newJob, encoded, keys, partitions)
        const byKey = new Map<string, Enqueued>()
        const unkeyed: Array<Enqueued> = []
        for (const row of inserted) {
          if (row.uniqueKey === null) unkeyed.push({ id: row.id, inserted: true })
          else byKey.set(row.uniqueKey, { id: row.id, inserted: true })
        }
        // Keys held by live jobs: look those up. One whose holder ended meanwhile is inserted again.
        for (let round = 0; round < 5; round++) {
          const missing = [...new Set(keys.filter((k): k is string => k !== null && !byKey.has(k)))]
          if (missing.length === 0) break
          for (const row of yield* Statements.liveByKeys(store, missing)) {
            byKey.set(row.uniqueKey, { id: row.id, inserted: false })
          }
          const still = missing.filter((k) => !byKey.has(k))
          if (still.length === 0) break
          const retried = yield* Statements.insert(
            store,
            newJob,
            still.map((k) => encoded[keys.indexOf(k)]),
            still,
            still.map((k) => partitions[keys.indexOf(k)])
          )
          for (const row of retried) byKey.set(row.uniqueKey!, { id: row.id, inserted: true })
        }
        let next = 0
        const seen = new Set<string>()
        return keys.map((k) => {
          if (k === null) return unkeyed[next++]
          const enqueued = byKey.get(k)
          // Only a key whose holder kept ending between rounds is left; that needs five losing races in a row.
          if (enqueued === undefined) throw new Error(`enqueue: no live job holds the unique key "${k}" after 5 rounds`)
          // A key given twice in one call makes one job: the later payloads get it, not inserted.
          const first = !seen.has(k)
          seen.add(k)
          return first ? enqueued : { id: enqueued.id, inserted: false }
        })
      })

    const found = (id: string): Effect.Effect<JobInfo, JobNotFound | SqlError> =>
      Effect.flatMap(
        Store.get(store, id),
        Option.match({ onNone: () => Effect.fail(new JobNotFound({ id })), onSome: Effect.succeed })
      )

    /** Explains why an action changed nothing: no such job, or a state it does not apply to. */
    const notChanged = (
      id: string,
      action: string,
      allowed: ReadonlyArray<JobState>
    ): Effect.Effect<void, JobNotFound | InvalidJobState | SqlError> =>
      Effect.flatMap(found(id), (info) =>
        allowed.includes(info.state)
          ? Effect.void
          : Effect.fail(new InvalidJobState({ id, action, state: info.state })))

    // No condition at all is `1=1`: every job.
    const matching = (filter: Filter) => sql.and(Store.filterConditions(store, filter))

    const client: JobClientService = {
      schema,
      [Store.StoreInternal]: store,
      enqueue: (job, payload, options = {}) =>
        Effect.map(
          insert(job, [payload], options, (p) => options.uniqueKey ?? job.uniqueKey?.(p) ?? null),
          (rows) => rows[0]
        ),
      enqueueMany: (job, payloads, options = {}) =>
        insert(job, Array.from(payloads), options, (p) => job.uniqueKey?.(p) ?? null),
      cancel: (id) =>
        Effect.gen(function*() {
          if (!validId(id)) return yield* new JobNotFound({ id })
          const rows = yield* Statements.cancelJobs(store, sql`id = ${id}::bigint`, "info")
          if (rows.length > 0) return Store.toInfo(rows[0])
          yield* notChanged(id, "cancel", ["cancelled"])
          return yield* found(id)
        }),
      retry: (id) =>
        Effect.gen(function*() {
          if (!validId(id)) return yield* new JobNotFound({ id })
          const rows = yield* Statements.retryJobs(store, sql`id = ${id}::bigint`, "info")
          if (rows.length > 0) return Store.toInfo(rows[0])
          const info = yield* found(id)
          if (Option.isSome(info.uniqueKey) && (info.state === "discarded" || info.state === "cancelled")) {
            const holder = yield* Statements.uniqueKeyHolder(store, id, info.uniqueKey.value)
            if (Option.isSome(holder)) {
              return yield* new InvalidJobState({
                id,
                action: "retry",
                state: info.state,
                reason: `job ${holder.value} holds its unique key ${JSON.stringify(info.uniqueKey.value)}`
              })
            }
          }
          yield* notChanged(id, "retry", ["available"])
          return yield* found(id)
        }),
      delete: (id) =>
        Effect.gen(function*() {
          if (!validId(id)) return yield* new JobNotFound({ id })
          const rows = yield* Statements.deleteJobs(store, sql`id = ${id}::bigint`, "count")
          if (rows === 0) yield* notChanged(id, "delete (cancel it first)", [])
        }),
      get: (id) => validId(id) ? Store.get(store, id) : Effect.succeed(Option.none()),
      list: (options = {}) => {
        // A limit that is not a number (NaN, from JavaScript) takes the default instead of failing the statement.
        const given = Number(options.limit ?? 50)
        const limit = Number.isFinite(given) ? Math.max(1, Math.min(1000, Math.floor(given))) : 50
        const conditions = [
          ...Store.filterConditions(store, options),
          options.before === undefined || !validId(options.before) ? undefined : sql`id < ${options.before}::bigint`
        ].filter((c) => c !== undefined)
        return Effect.map(
          sql<Store.InfoRow>`SELECT ${sql.literal(Store.infoColumns)} FROM ${store.jobs}
            ${conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`}
            ORDER BY jobs.id DESC LIMIT ${limit}`,
          (rows) => rows.map(Store.toInfo)
        )
      },
      counts: Statements.counts(store),
      oldestWaiting: Statements.oldestWaiting(store),
      runners: Statements.runners(store),
      countMatching: (filter, action) => Statements.countJobs(store, matching(filter), action),
      retryAll: (filter) => Statements.retryJobs(store, matching(filter), "count"),
      cancelAll: (filter) => Statements.cancelJobs(store, matching(filter), "count"),
      deleteAll: (filter) => Statements.deleteJobs(store, matching(filter), "count"),
      pause: (queue) => Effect.zipRight(queueProblem(queue), setPaused(store, queue, true)),
      resume: (queue) => Effect.zipRight(queueProblem(queue), setPaused(store, queue, false)),
      queues: Effect.map(
        sql<Limits.LimitsRow & { name: string; paused: boolean; source: "code" | "api" | null }>`
          SELECT n.name, coalesce(q.paused, false) AS paused, ${sql.literal(Limits.limitsColumns)},
            q.limits_source AS source
          FROM (
            SELECT name FROM ${store.queues}
            UNION
            SELECT queue FROM (
              SELECT queue, count AS n FROM ${sql(store.schema)}.job_counts
              UNION ALL SELECT queue, delta FROM ${sql(store.schema)}.job_count_deltas
            ) AS counted GROUP BY queue HAVING sum(n) <> 0
          ) AS n
          LEFT JOIN ${store.queues} AS q ON q.name = n.name
          ORDER BY n.name`,
        (rows) => rows.map((row) => ({ name: row.name, paused: row.paused, limits: limitsInfo(row) }))
      ),
      setLimits: (queue, limits) =>
        Effect.gen(function*() {
          yield* queueProblem(queue)
          const checked = Limits.check(limits)
          if (Either.isLeft(checked)) {
            return yield* new InvalidQueueOptions({ queue, option: checked.left.option, reason: checked.left.reason })
          }
          yield* Statements.setLimits(store, queue, checked.right)
        }),
      resetLimits: (queue) => Effect.zipRight(queueProblem(queue), Statements.resetLimits(store, queue)),
      flow: (queue, options = {}) =>
        Effect.gen(function*() {
          yield* queueProblem(queue)
          const top = options.keys ?? 10
          if (Either.isLeft(Check.integer(top, 0, 1000))) {
            return yield* new InvalidQueueOptions({
              queue,
              option: "keys",
              reason: `must be a whole number from 0 to 1000, got ${Check.show(top)}`
            })
          }
          return yield* Statements.flow(store, queue, top)
        })
    }
    return client
  })

const setPaused = (store: Store.Store, queue: string, paused: boolean) => {
  const { sql } = store
  return Effect.asVoid(sql`
    WITH changed AS (
      INSERT INTO ${store.queues} (name, paused, updated_at) VALUES (${queue}, ${paused}, now())
      ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = now()
      RETURNING name
    )
    SELECT pg_notify(${store.channel}, ${`j:${queue}`}) FROM changed`)
}

/**
 * The client, on the `SqlClient` it is given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<JobClient, MigrationError, SqlClient.SqlClient> =>
  Layer.scoped(
    JobClient,
    Effect.tap(make(options), (client) =>
      // Built inside a host (or beside WorkerRegistry.layer): report its workers, for every replica's dashboard.
      Effect.flatMap(Effect.serviceOption(WorkerRegistry), (registry) =>
        Option.isNone(registry)
          ? Effect.void
          : Hosts.report(client[Store.StoreInternal], registry.value[RegistryInternal])))
  )

/**
 * Enqueues a job with the `JobClient` in context.
 *
 * @since 0.1.0
 */
export const enqueue = <P, I>(
  job: Job.Job<P, I, any, any, any>,
  payload: P,
  options?: EnqueueOptions
): Effect.Effect<Enqueued, InvalidPayload | InvalidJobOptions | SqlError, JobClient> =>
  Effect.flatMap(JobClient, (client) => client.enqueue(job, payload, options))
