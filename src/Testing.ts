/**
 * Helpers for testing your own workers and jobs: run workers under
 * `TestClock`, observe their status, start a host inside a test and stop it,
 * run a job's handler directly, drain a queue, and assert that a job was
 * enqueued, without sleeps.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import type { SqlError } from "@effect/sql/SqlError"
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  ParseResult,
  Schema,
  type Scope,
  TestClock
} from "effect"
import * as Host from "./Host.js"
import * as Store from "./internal/jobs/store.js"
import * as Job from "./Job.js"
import { JobClient } from "./JobClient.js"
import { InvalidJobOptions, InvalidPayload } from "./JobError.js"
import * as JobRunner from "./JobRunner.js"
import * as WorkerRegistryModule from "./WorkerRegistry.js"
import { WorkerRegistry } from "./WorkerRegistry.js"
import type { WorkerStatus } from "./WorkerStatus.js"

/**
 * Builds `workers` with a registry that starts them at once, in the current
 * scope; stopping happens when the scope closes. Use it inside `it.scoped`
 * (with `TestClock`) and read the registry to see what happened.
 *
 * @since 0.1.0
 * @category testing
 */
export const start = <E, R>(
  workers: Layer.Layer<never, E, R>
): Effect.Effect<WorkerRegistry["Type"], E, Scope.Scope | Exclude<R, WorkerRegistry>> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.provideMerge(workers, WorkerRegistryModule.layer))
    return Context.get(context, WorkerRegistry)
  }) as never

/**
 * Waits until the worker's status satisfies `predicate`.
 *
 * @since 0.1.0
 * @category testing
 */
export const awaitStatus = (
  name: string,
  predicate: (status: WorkerStatus) => boolean
): Effect.Effect<WorkerStatus, never, WorkerRegistry> =>
  Effect.flatMap(WorkerRegistry, (registry) => registry.awaitStatus(name, predicate))

/**
 * Waits until the worker has finished at least `n` iterations (or items).
 *
 * @since 0.1.0
 * @category testing
 */
export const awaitIterations = (name: string, n: number): Effect.Effect<WorkerStatus, never, WorkerRegistry> =>
  awaitStatus(name, (status) => status.iterations >= n)

/**
 * Moves the `TestClock` forward by `duration`, then lets the iterations that
 * became due run until none is left runnable.
 *
 * @since 0.1.0
 * @category testing
 */
export const advance = (duration: Duration.DurationInput): Effect.Effect<void> =>
  TestClock.adjust(duration).pipe(Effect.zipRight(settle))

/**
 * Yields until forked iterations have had the chance to run to their next
 * wait (a sleep, a deferred, or the next tick).
 *
 * @since 0.1.0
 * @category testing
 */
export const settle: Effect.Effect<void> = Effect.repeatN(Effect.yieldNow(), 63)

/**
 * A host started inside a test: its registry, a way to stop it, and its exit.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestHost<E> {
  readonly registry: WorkerRegistry["Type"]
  /** Stops the host as a signal would, and returns how it ended. */
  readonly stop: Effect.Effect<Exit.Exit<void, E | Host.HostError>>
  /** Waits for the host to end by itself (`Lifecycle.stop`, a `"stopHost"` failure). */
  readonly await: Effect.Effect<Exit.Exit<void, E | Host.HostError>>
}

/**
 * Starts `layer` with {@link Host.launch} on a fiber of the current scope and
 * returns once its workers have started. The host is stopped when the scope
 * closes, if it is still running.
 *
 * @since 0.1.0
 * @category testing
 */
export const startHost = <E, R>(
  layer: Layer.Layer<never, E, R>,
  options?: Host.HostOptions
): Effect.Effect<TestHost<E>, E | Host.HostError, Scope.Scope | Exclude<R, WorkerRegistry | Host.Lifecycle>> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<WorkerRegistry["Type"]>()
    const probe = Layer.effectDiscard(Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const lifecycle = yield* Host.Lifecycle
      yield* lifecycle.onStarted(Effect.asVoid(Deferred.succeed(ready, registry)))
    }))
    const fiber = yield* Effect.forkScoped(Host.launch(Layer.merge(layer, probe), options))
    const registry = yield* Effect.raceFirst(
      Deferred.await(ready),
      Effect.flatMap(Fiber.join(fiber), () => Effect.never)
    )
    return {
      registry,
      stop: Effect.flatMap(Fiber.interrupt(fiber), (exit) => Effect.succeed(normalize(exit))),
      await: Effect.map(Fiber.await(fiber), normalize)
    }
  }) as never

// Stopping the host by interruption is a clean stop, as a signal is for `Host.run`.
const normalize = <E>(exit: Exit.Exit<void, E>): Exit.Exit<void, E> =>
  Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Exit.void : exit

/**
 * Reads one worker's status.
 *
 * @since 0.1.0
 * @category testing
 */
export const status = (name: string): Effect.Effect<Option.Option<WorkerStatus>, never, WorkerRegistry> =>
  Effect.flatMap(WorkerRegistry, (registry) => registry.get(name))

/**
 * Runs a job's handler directly with `payload`, as a runner would on its
 * first attempt: the payload goes through the job's schema (encoded, then
 * decoded, so a payload that could not be enqueued fails with
 * `InvalidPayload`) and the handler sees a `JobContext` (progress is
 * accepted and dropped). Nothing touches the database.
 *
 * @since 0.1.0
 * @category testing
 */
export const performJob = <P, I, A, E, R>(
  job: Job.Job<P, I, A, E, R>,
  payload: P,
  context: Partial<Omit<Job.Context, "progress">> = {}
): Effect.Effect<A, E | InvalidPayload, Exclude<R, Job.JobContext>> =>
  Effect.gen(function*() {
    const decoded = yield* Schema.encode(job.payload)(payload).pipe(
      Effect.flatMap(Schema.decode(job.payload)),
      Effect.mapError((error) =>
        new InvalidPayload({ job: job.name, issue: ParseResult.TreeFormatter.formatErrorSync(error) })
      )
    )
    const now = new Date()
    const jobContext: Job.Context = {
      id: "0",
      name: job.name,
      queue: job.queue,
      attempt: 1,
      maxAttempts: job.maxAttempts,
      insertedAt: now,
      runAt: now,
      recurring: Option.none(),
      ...context,
      progress: () => Effect.void
    }
    return yield* Effect.provideService(job.handler(decoded), Job.JobContext, jobContext)
  }) as Effect.Effect<A, E | InvalidPayload, Exclude<R, Job.JobContext>>

/**
 * What {@link drainQueue} did: the jobs it found due (and those their
 * handlers enqueued), as they ended, counted by final state.
 *
 * @since 0.1.0
 * @category models
 */
export interface DrainResult {
  readonly completed: number
  readonly discarded: number
  readonly cancelled: number
  /** Jobs still waiting (a retry or snooze later than the drain looked, with `withScheduled: false`). */
  readonly waiting: number
  readonly jobs: ReadonlyArray<Job.JobInfo>
}

/**
 * Jobs were still waiting when {@link drainQueue}'s timeout ended.
 *
 * @since 0.1.0
 * @category errors
 */
export class DrainTimeout extends Schema.TaggedError<DrainTimeout>()("DrainTimeout", {
  waiting: Schema.Number,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `drainQueue: ${this.waiting} job(s) still waiting after the timeout of ${this.timeoutMillis} ms`
  }
}

const drainTimeoutMillis = (timeout: unknown): Effect.Effect<number, InvalidJobOptions> => {
  if (timeout === undefined) return Effect.succeed(30_000)
  // Checked raw: `Duration.decode` reads -1 and NaN as 0.
  const decoded = typeof timeout === "number" && !(timeout > 0) ? Option.none() : Duration.decodeUnknown(timeout)
  return Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.toMillis(decoded.value) > 0
    ? Effect.succeed(Duration.toMillis(decoded.value))
    : Effect.fail(
      new InvalidJobOptions({
        job: "",
        option: "timeout",
        reason: `must be a positive duration (of drainQueue), got ${String(timeout)}`
      })
    )
}

/** The clock of the machine, for work that the database's own time drives. */
const liveClock = Clock.make()

/**
 * Runs every job of `jobs` (of `queue`, if given) in this process until none
 * is left waiting, like Oban's `drain_queue`: with `withScheduled` (the
 * default), scheduled jobs and retries are run at once instead of at their
 * time, so a job that keeps failing runs until its attempts are spent. Fails
 * with `DrainTimeout` if jobs are still waiting after `timeout` (default
 * 30 s); the runner then stops and gives back what it was running.
 *
 * The drain, its runner and the handlers run on the live clock, as the
 * database's time is real: it works the same inside a test under
 * `TestClock`, which it leaves where it is.
 *
 * @since 0.1.0
 * @category testing
 */
export const drainQueue = <Jobs extends Job.Any>(options: {
  readonly jobs: ReadonlyArray<Jobs>
  readonly queue?: string | undefined
  readonly withScheduled?: boolean | undefined
  readonly timeout?: Duration.DurationInput | undefined
}): Effect.Effect<
  DrainResult,
  SqlError | InvalidJobOptions | DrainTimeout,
  JobClient | PgClient.PgClient | Job.Requirements<Jobs>
> =>
  Effect.scoped(Effect.gen(function*() {
    const timeoutMillis = yield* drainTimeoutMillis(options.timeout)
    const client = yield* JobClient
    const jobs = options.jobs.filter((job) => options.queue === undefined || job.queue === options.queue)
    const names = jobs.map((job) => job.name)
    const store = yield* storeOf(client.schema)
    const queueFilter = options.queue === undefined ? store.sql`true` : store.sql`queue = ${options.queue}`
    const [{ start }] = yield* store.sql<{ readonly start: string }>`
      SELECT coalesce(min(id), (SELECT coalesce(max(id), 0) + 1 FROM ${store.jobs}))::text AS start FROM ${store.jobs}
      WHERE name = ANY(${names}::text[]) AND ${queueFilter} AND state IN ${store.sql.literal(Store.liveStatesSql)}`
    yield* Layer.build(
      JobRunner.layer({ jobs, listen: false, pollInterval: "10 millis", prefetch: 0, drainTimeout: "1 second" })
    )
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMillis
    const waitingStates = options.withScheduled === false
      ? store.sql`(state IN ('running', 'available') OR (state IN ('scheduled', 'retryable') AND run_at <= now()))`
      : store.sql`state IN ${store.sql.literal(Store.liveStatesSql)}`
    while (true) {
      if (options.withScheduled !== false) {
        yield* store.sql`UPDATE ${store.jobs} SET run_at = now()
          WHERE name = ANY(${names}::text[]) AND ${queueFilter} AND state IN ('scheduled', 'retryable')`
      }
      const [{ n }] = yield* store.sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${store.jobs}
        WHERE name = ANY(${names}::text[]) AND ${queueFilter} AND id >= ${start}::bigint AND ${waitingStates}`
      if (n === 0) break
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* new DrainTimeout({ waiting: n, timeoutMillis })
      yield* Effect.sleep("10 millis")
    }
    const rows = yield* store.sql<Store.InfoRow>`SELECT ${store.sql.literal(Store.infoColumns)} FROM ${store.jobs}
      WHERE name = ANY(${names}::text[]) AND ${queueFilter} AND id >= ${start}::bigint ORDER BY jobs.id`
    const infos = rows.map(Store.toInfo)
    const count = (state: Job.JobState) => infos.filter((job) => job.state === state).length
    return {
      completed: count("completed"),
      discarded: count("discarded"),
      cancelled: count("cancelled"),
      waiting: infos.filter((job) => Job.liveStates.includes(job.state)).length,
      jobs: infos
    }
  })).pipe(Effect.withClock(liveClock))

/**
 * No waiting job matched what `assertEnqueued` looked for.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotEnqueued extends Schema.TaggedError<NotEnqueued>()("NotEnqueued", {
  expected: Schema.String,
  found: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const found = this.found.length === 0 ? "no waiting jobs of that name" : this.found.join("\n  ")
    return `Expected a waiting job ${this.expected}, found:\n  ${found}`
  }
}

/**
 * Succeeds with the waiting jobs of `job` (in `queue`, whose stored payload
 * contains `payload`, if given), or fails with `NotEnqueued` listing the
 * waiting jobs of that name, like Oban's `assert_enqueued`.
 *
 * @since 0.1.0
 * @category testing
 */
export const assertEnqueued = <P, I>(options: {
  readonly job: Job.Job<P, I, any, any, any>
  /** Part of the payload, in its encoded form: matched with JSON containment (`@>`). */
  readonly payload?: Partial<I> | undefined
  readonly queue?: string | undefined
}): Effect.Effect<ReadonlyArray<Job.JobInfo>, NotEnqueued | SqlError, JobClient | PgClient.PgClient> =>
  Effect.gen(function*() {
    const client = yield* JobClient
    const store = yield* storeOf(client.schema)
    const { sql } = store
    const waiting = yield* sql<Store.InfoRow>`SELECT ${sql.literal(Store.infoColumns)} FROM ${store.jobs}
      WHERE name = ${options.job.name} AND state IN ('scheduled', 'available', 'retryable') ORDER BY jobs.id`
    const all = waiting.map(Store.toInfo)
    const payload = options.payload === undefined ? undefined : JSON.stringify(options.payload)
    const matching = payload === undefined ? all : yield* Effect.map(
      sql<{ readonly id: string }>`SELECT id::text AS id FROM ${store.jobs}
        WHERE name = ${options.job.name} AND state IN ('scheduled', 'available', 'retryable')
          AND payload @> ${payload}::jsonb`,
      (rows) => all.filter((job) => rows.some((row) => row.id === job.id))
    )
    const found = matching.filter((job) => options.queue === undefined || job.queue === options.queue)
    if (found.length > 0) return found
    const expected = [
      `"${options.job.name}"`,
      options.queue === undefined ? "" : `in queue "${options.queue}"`,
      payload === undefined ? "" : `with a payload containing ${payload}`
    ].filter((part) => part !== "").join(" ")
    return yield* new NotEnqueued({
      expected,
      found: all.map((job) => `${job.id} in "${job.queue}" (${job.state}): ${JSON.stringify(job.payload)}`)
    })
  })

const storeOf = (schema: string) => Effect.map(PgClient.PgClient, (sql) => new Store.Store(sql, schema))
