/**
 * Runs durable jobs: claims them in batches from PostgreSQL, runs their
 * handlers with bounded concurrency per queue, records each outcome, renews
 * leases, rescues jobs of crashed processes, and prunes finished jobs.
 *
 * ```ts
 * const Jobs = JobRunner.layer({ jobs: [SendEmail], queues: { email: 5 } }).pipe(
 *   Layer.provideMerge(JobClient.layer())
 * )
 * ```
 *
 * When the layer is released (the host stops), the runner stops claiming,
 * gives back claimed jobs it has not started, lets running jobs finish for up
 * to `drainTimeout`, then interrupts the rest and gives them back at once
 * without spending an attempt.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Either, Layer, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import pg from "pg"
import * as Limits from "./internal/jobs/limits.js"
import { listen, poolConfig } from "./internal/jobs/listener.js"
import { eventsCapacity as capacity, type JobEvent, Runner } from "./internal/jobs/runner.js"
import { StoreInternal } from "./internal/jobs/store.js"
import * as Values from "./internal/jobs/values.js"
import * as Check from "./internal/options.js"
import type * as Job from "./Job.js"
import { JobClient, type QueueLimits } from "./JobClient.js"
import { InvalidJobOptions } from "./JobError.js"
import { addService } from "./WorkerRegistry.js"

export type {
  /**
   * What happened to a job in this runner: `Started`, `Succeeded`, `Failed`
   * (to be retried at `retryAt`), `Snoozed`, `Discarded`, `Cancelled`, or
   * `Released` (given back unfinished at shutdown).
   *
   * @since 0.1.0
   * @category models
   */
  JobEvent
} from "./internal/jobs/runner.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<Jobs extends Job.Any> {
  /** The jobs this runner runs; it claims only jobs with these names. */
  readonly jobs: ReadonlyArray<Jobs>
  /**
   * Per queue: its concurrency in this runner, or `{ concurrency, ...limits }`
   * with flow-control limits over every runner (stored in the database when
   * the runner starts, unless set with `JobClient.setLimits`). Queues of
   * `jobs` not listed get `concurrency`.
   */
  readonly queues?: Readonly<Record<string, number | QueueOptions>> | undefined
  /** Default concurrency of a queue: 1 to 10,000. Default 10. */
  readonly concurrency?: number | undefined
  /**
   * At most this many jobs claimed ahead of free slots, per queue, so that
   * slots never wait for a round trip. The prefetch adapts below it: it grows
   * while slots run dry before a claim, and shrinks while claimed jobs wait.
   * From 0 to 100,000. Default 500.
   */
  readonly prefetch?: number | undefined
  /** Look for due jobs at least this often, besides notifications: at least 10 ms. Default 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long a claimed job stays this runner's without a heartbeat: renewed
   * every sixth of it; a job whose lease expired is rescued by any runner.
   * At least 1 second. Default 30 seconds.
   */
  readonly lease?: Duration.DurationInput | undefined
  /** Completed, discarded and cancelled jobs are deleted after this long: at least 1 second. Default 1 day. */
  readonly retention?: Duration.DurationInput | undefined
  /** At shutdown, how long running jobs may finish before they are interrupted and given back (0 or more). Default 10 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Listen for notifications (default) or rely on polling alone. */
  readonly listen?: boolean | undefined
  /** Spans per job run; by default on when a tracer other than Effect's built-in one is installed. */
  readonly tracing?: boolean | undefined
}

/**
 * A queue's concurrency in this runner, and its limits over every runner.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueOptions extends QueueLimits {
  /** How many of the queue's jobs this runner runs at once: 1 to 10,000. Default: the runner's `concurrency`. */
  readonly concurrency?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JobRunnerService {
  /** This runner's id, as stored in `locked_by` and the runners table. */
  readonly id: string
  /** How long a claimed job stays this runner's without a heartbeat (which beats every sixth of it). */
  readonly lease: Duration.Duration
  /**
   * Events of the jobs this runner runs, from the moment of subscription. A
   * subscriber more than 4,096 events behind loses the oldest of them; the
   * runner never waits for a subscriber.
   */
  readonly events: Stream.Stream<JobEvent>
}

/**
 * How many events a subscriber to `events` may lag behind before it loses the oldest.
 *
 * @since 0.1.0
 * @category constants
 */
export const eventsCapacity: number = capacity

/**
 * @since 0.1.0
 * @category tags
 */
export class JobRunner extends Context.Tag("effect-workers/JobRunner")<JobRunner, JobRunnerService>() {}

/** Rules of the runner's options, stated in docs/jobs.md. */
const rules = {
  pollInterval: { min: 10 },
  // Heartbeats come every sixth of the lease: below a second, a busy process loses its jobs to rescues.
  lease: { min: 1_000 },
  retention: { min: 1_000 },
  drainTimeout: { min: 0 }
} satisfies Record<string, Check.DurationRule>

/** Slots are long-lived fibers, each holding its jobs: a bound keeps a typo from starting millions. */
const maxConcurrency = 10_000
const maxPrefetch = 100_000

const fail = (option: string, reason: string) => Effect.fail(new InvalidJobOptions({ job: "", option, reason }))

const checked = <A>(option: string, result: Either.Either<A, string>): Effect.Effect<A, InvalidJobOptions> =>
  Either.isRight(result) ? Effect.succeed(result.right) : fail(option, result.left)

const millis = (option: keyof typeof rules, value: unknown, fallback: number) =>
  value === undefined ? Effect.succeed(fallback) : checked(option, Check.durationMillis(value, rules[option]))

const count = (option: string, value: unknown, fallback: number, min: number, max: number) =>
  checked(option, Check.integer(value ?? fallback, min, max))

const flag = (option: string, value: unknown): Effect.Effect<boolean | undefined, InvalidJobOptions> =>
  value === undefined ? Effect.succeed(undefined) : checked(option, Check.boolean(value))

const builtInTracer = Effect.runSync(Effect.tracer)

/**
 * The runner, in the scope of the layer: its fibers stop when the layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Jobs extends Job.Any>(
  options: Options<Jobs>
): Layer.Layer<JobRunner, InvalidJobOptions | SqlError, JobClient | PgClient.PgClient | Job.Requirements<Jobs>> =>
  Layer.scoped(
    JobRunner,
    Effect.gen(function*() {
      if (!Array.isArray(options.jobs as unknown)) {
        return yield* fail("jobs", `must be an array of Job.make definitions, got ${Check.show(options.jobs)}`)
      }
      const jobs = new Map<string, Job.Any>()
      for (const job of options.jobs) {
        if (typeof job !== "object" || job === null || typeof job.name !== "string") {
          return yield* fail("jobs", `must hold only Job.make definitions, got ${Check.show(job)}`)
        }
        if (job.invalid !== undefined) return yield* job.invalid
        if (jobs.has(job.name)) {
          return yield* new InvalidJobOptions({ job: job.name, option: "name", reason: "is used by two definitions" })
        }
        jobs.set(job.name, job)
      }
      const concurrency = yield* count("concurrency", options.concurrency, 10, 1, maxConcurrency)
      const queues = new Map<string, { concurrency: number; limits: Limits.Limits | undefined }>()
      for (const job of jobs.values()) queues.set(job.queue, { concurrency, limits: undefined })
      if (options.queues !== undefined && (typeof options.queues !== "object" || options.queues === null)) {
        return yield* fail(
          "queues",
          `must be an object of queue names and concurrencies, got ${Check.show(options.queues)}`
        )
      }
      for (const [name, given] of Object.entries(options.queues ?? {})) {
        const nameProblem = Values.nameProblem(name)
        if (nameProblem !== undefined) return yield* fail("queues", `has a queue name that ${nameProblem}`)
        if (typeof given === "object" && given !== null) {
          const { concurrency: n, ...limits } = given
          const checked = Limits.check(limits, `queues.${name}.`)
          if (Either.isLeft(checked)) return yield* fail(checked.left.option, checked.left.reason)
          queues.set(name, {
            concurrency: yield* count(`queues.${name}.concurrency`, n, concurrency, 1, maxConcurrency),
            limits: checked.right
          })
        } else {
          queues.set(name, {
            concurrency: yield* count(`queues.${name}`, given, concurrency, 1, maxConcurrency),
            limits: undefined
          })
        }
      }
      const settings = {
        prefetch: yield* count("prefetch", options.prefetch, 500, 0, maxPrefetch),
        pollIntervalMillis: yield* millis("pollInterval", options.pollInterval, 1_000),
        leaseMillis: yield* millis("lease", options.lease, 30_000),
        retentionMillis: yield* millis("retention", options.retention, 86_400_000),
        drainMillis: yield* millis("drainTimeout", options.drainTimeout, 10_000)
      }
      const listening = yield* flag("listen", options.listen)
      const tracing = yield* flag("tracing", options.tracing)
      const client = yield* JobClient
      const sqlPg = yield* PgClient.PgClient
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const pool = new pg.Pool({
            ...poolConfig(sqlPg.config),
            max: Math.max(1, queues.size),
            // A claim stuck on a cut-off connection fails, and is tried again, instead of hanging its queue.
            query_timeout: 60_000
          })
          // A broken idle connection is dropped by the pool; the error is reported by the claim that needs it.
          pool.on("error", () => {})
          // pg-pool takes its own 'error' listener off a client while it is checked out, and a FATAL message
          // (pg_terminate_backend, a server restart) can come in the same read that completes the checkout,
          // before a listener added after `connect` resolves: each client keeps one of ours for its life.
          pool.on("connect", (client) => client.on("error", () => {}))
          return pool
        }),
        (pool) =>
          Effect.promise(() => pool.end().catch(() => {})).pipe(Effect.interruptible, Effect.timeoutOption("2 seconds"))
      )
      const runner = new Runner({
        id: `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`,
        store: client[StoreInternal],
        pool,
        jobs,
        queues: [...queues].map(([name, queue]) => ({ name, ...queue })),
        ...settings,
        tracing: tracing ?? (yield* Effect.tracer) !== builtInTracer
      })
      const listener = listening === false
        ? Effect.never
        : listen(
          sqlPg.config,
          runner.config.store.channel,
          (payload) => runner.onNotification(payload),
          () => runner.wakeAll()
        )
      yield* runner.start(listener)
      yield* addService("job runner")
      return {
        id: runner.config.id,
        lease: Duration.millis(runner.config.leaseMillis),
        events: Stream.fromPubSub(runner.events)
      }
    }).pipe(Effect.annotateLogs("component", "JobRunner"))
  )
