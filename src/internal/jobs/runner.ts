import { SqlError } from "@effect/sql/SqlError"
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  FiberRef,
  FiberRefs,
  HashMap,
  HashSet,
  Logger,
  Metric,
  type MetricHook,
  MetricKey,
  type MetricKeyType,
  MetricLabel,
  Option,
  PubSub,
  Runtime,
  RuntimeFlags,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Schema,
  type Scope,
  Tracer
} from "effect"
import * as DefaultServices from "effect/DefaultServices"
import { hostname } from "node:os"
import type pg from "pg"
import type * as Job from "../../Job.js"
import { JobContext } from "../../Job.js"
import { JobTimeout, Snooze, Unrecoverable } from "../../JobError.js"
import * as Metrics from "../../Metrics.js"
import { causeText } from "../registry.js"
import type { Store } from "./store.js"

/** A claimed job, as the claim returns it. */
export interface Claimed {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly payload: unknown
  readonly attempt: number
  readonly maxAttempts: number
  readonly runAt: Date
  readonly insertedAt: Date
  readonly traceId: string | null
  readonly spanId: string | null
  readonly recurringId: string | null
  readonly recurringTick: Date | null
}

/** What a runner publishes as jobs run. */
export type JobEvent =
  | { readonly _tag: "Started"; readonly job: Claimed }
  | { readonly _tag: "Succeeded"; readonly job: Claimed; readonly durationMillis: number }
  | { readonly _tag: "Failed"; readonly job: Claimed; readonly error: string; readonly retryAt: Date }
  | { readonly _tag: "Snoozed"; readonly job: Claimed; readonly until: Date }
  | { readonly _tag: "Discarded"; readonly job: Claimed; readonly error: string }
  | { readonly _tag: "Cancelled"; readonly job: Claimed }
  | { readonly _tag: "Released"; readonly job: Claimed }

/** How a run ended, to be written. */
interface Outcome {
  readonly job: Claimed
  readonly state: "completed" | "retryable" | "discarded" | "scheduled" | "available"
  /** Wait before the next attempt, from now; `null` keeps `run_at`. */
  readonly delayMillis: number | null
  /** 1 when the attempt is given back (snooze, release). */
  readonly refund: number
  readonly error: string | null
  readonly result: string | null
}

export interface QueueConfig {
  readonly name: string
  readonly concurrency: number
}

export interface RunnerConfig {
  readonly id: string
  readonly store: Store
  readonly jobs: ReadonlyMap<string, Job.Any>
  readonly queues: ReadonlyArray<QueueConfig>
  /** Jobs claimed ahead of free slots, per queue. */
  readonly prefetch: number
  readonly pollIntervalMillis: number
  readonly leaseMillis: number
  readonly retentionMillis: number
  readonly drainMillis: number
  readonly tracing: boolean | undefined
  /** The runner's own connections, for claims. */
  readonly pool: pg.Pool
}

const builtInTracer = Effect.runSync(Effect.tracer)

type Hook = MetricHook.MetricHook<number, unknown>

const hookOf = (
  key: MetricKey.MetricKey<MetricKeyType.MetricKeyType<number, unknown>>,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): Hook => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, labels)) as Hook

/** State of one queue in this runner. */
class QueueRunner {
  readonly pending: Array<Claimed> = []
  busy = 0
  readonly slots = new Set<Slot>()
  private wakeSignal = Deferred.unsafeMake<void>(FiberId.none)
  private waiters: Array<Deferred.Deferred<Claimed | undefined>> = []
  readonly names: ReadonlyArray<string>
  /** Metric hooks of the queue, looked up once: a lookup hashes the key and its labels. */
  readonly running: Hook
  readonly duration: Hook
  readonly wait: Hook

  /**
   * Jobs claimed ahead of free slots, adapted between 0 and `maxPrefetch`:
   * doubled when slots ran dry before a claim, halved when claimed jobs
   * still wait, so quick jobs come in large batches and slow ones are not hoarded.
   */
  prefetch: number

  constructor(readonly config: QueueConfig, readonly maxPrefetch: number, jobs: ReadonlyMap<string, Job.Any>) {
    this.prefetch = Math.min(maxPrefetch, config.concurrency)
    // Every job this runner knows, in every queue it serves: enqueueing can put a job in another queue.
    this.names = [...jobs.keys()]
    const labels = [MetricLabel.make("queue", config.name)]
    this.running = hookOf(Metrics.keys.jobsRunning, labels)
    this.duration = hookOf(Metrics.keys.jobDuration, labels)
    this.wait = hookOf(Metrics.keys.jobWait, labels)
  }

  wake(): void {
    Deferred.unsafeDone(this.wakeSignal, Exit.void)
  }

  /** Waits for a wake-up, at most `millis`. */
  sleep(millis: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const signal = this.wakeSignal
      return Effect.asVoid(Effect.timeoutOption(Deferred.await(signal), millis)).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (this.wakeSignal === signal) this.wakeSignal = Deferred.unsafeMake(FiberId.none)
        }))
      )
    })
  }

  push(jobs: ReadonlyArray<Claimed>): void {
    for (const job of jobs) {
      const waiter = this.waiters.shift()
      if (waiter !== undefined) Deferred.unsafeDone(waiter, Exit.succeed(job))
      else this.pending.push(job)
    }
  }

  /** The next claimed job, or `undefined` when the runner stops. */
  take(): Effect.Effect<Claimed | undefined> {
    return Effect.suspend(() => {
      const next = this.pending.shift()
      if (next !== undefined) return Effect.succeed(next)
      const waiter = Deferred.unsafeMake<Claimed | undefined>(FiberId.none)
      this.waiters.push(waiter)
      return Effect.onInterrupt(Deferred.await(waiter), () =>
        Effect.flatMap(Deferred.poll(waiter), (handed) => {
          const index = this.waiters.indexOf(waiter)
          if (index >= 0) this.waiters.splice(index, 1)
          // Handed a job just as it was interrupted: the job goes back, first in line.
          return Option.isNone(handed) ? Effect.void : Effect.map(handed.value, (job) => {
            if (job !== undefined) this.pending.unshift(job)
          })
        }))
    })
  }

  get capacity(): number {
    return this.config.concurrency + this.prefetch
  }

  /** Free room for claims: slots and prefetch not taken. */
  room(): number {
    return this.capacity - this.pending.length - this.busy
  }

  /** Whether enough room is free to claim: half of it, or any when slots are idle. */
  wantsClaim(): boolean {
    const room = this.room()
    return room >= Math.max(1, Math.floor(this.capacity / 2)) || (room > 0 && this.pending.length === 0)
  }

  /** Whether the last claim found fewer jobs than it asked for: only a notification or the poll wakes it then. */
  drained = false

  /** Adapts the prefetch before a claim. */
  adapt(): void {
    if (!this.drained && this.pending.length === 0 && this.busy < this.config.concurrency) {
      this.prefetch = Math.min(this.maxPrefetch, Math.max(this.config.concurrency, this.prefetch * 2))
    } else if (this.pending.length > this.prefetch / 2) {
      this.prefetch = Math.floor(this.prefetch / 2)
    }
  }
}

/** Connections of a runner's pool that no longer wait for the disk at commit. */
const tuned = new WeakSet<pg.PoolClient>()

/**
 * Runs a claim on a connection of the runner's pool. A claim does not wait
 * for its commit to reach the disk: if the server crashes right after, the
 * claim is lost and its job runs again, which at-least-once delivery allows.
 * It saves a flush per claim. Set on each connection before its first claim.
 */
const claimOn = async (pool: pg.Pool, query: pg.QueryConfig) => {
  const client = await pool.connect()
  try {
    if (!tuned.has(client)) {
      await client.query("SET synchronous_commit = off")
      tuned.add(client)
    }
    const result = await client.query<Claimed>(query)
    client.release()
    return result
  } catch (error) {
    // A connection that failed is dropped rather than reused.
    client.release(error as Error)
    throw error
  }
}

/** A long-lived fiber running one job at a time from its queue. */
/**
 * The `JobContext` a slot's handlers see, set to each job as the slot starts
 * it: provided once per slot rather than once per job.
 */
class SlotContext implements Job.Context {
  id = ""
  name = ""
  queue = ""
  attempt = 0
  maxAttempts = 0
  insertedAt = new Date(0)
  runAt = new Date(0)
  recurring: Option.Option<Job.Tick> = Option.none()

  constructor(
    private readonly store: (id: string, attempt: number, value: unknown) => Effect.Effect<void, SqlError>
  ) {}

  start(job: Claimed): void {
    this.id = job.id
    this.name = job.name
    this.queue = job.queue
    this.attempt = job.attempt
    this.maxAttempts = job.maxAttempts
    this.insertedAt = job.insertedAt
    this.runAt = job.runAt
    this.recurring = job.recurringId === null
      ? Option.none()
      : Option.some({ id: job.recurringId, at: job.recurringTick ?? job.runAt })
  }

  readonly progress = (value: unknown): Effect.Effect<void, SqlError> => this.store(this.id, this.attempt, value)
}

/** `logger`, adding the annotations of the job `slot` runs to each line. */
const withJob = <Message, Output>(logger: Logger.Logger<Message, Output>, slot: Slot): Logger.Logger<Message, Output> =>
  Logger.make((options) => {
    const job = slot.current
    return logger.log(
      job === undefined ? options : {
        ...options,
        annotations: HashMap.set(
          HashMap.set(
            HashMap.set(HashMap.set(options.annotations, "queue", job.queue), "job", job.name),
            "job_id",
            job.id
          ),
          "attempt",
          job.attempt
        )
      }
    )
  })

interface Slot {
  readonly context: SlotContext
  current: Claimed | undefined
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Why its run was interrupted, when it was not for shutdown. */
  abandoned: "cancelled" | "lost" | undefined
}

const backoffDelay = (
  schedule: Schedule.Schedule<unknown, unknown>,
  attempt: number,
  error: unknown
): Effect.Effect<Option.Option<number>> =>
  Effect.gen(function*() {
    const now = Date.now()
    let state = schedule.initial
    let delay = 0
    for (let i = 0; i < attempt; i++) {
      const [next, , decision] = yield* schedule.step(now, error, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
    }
    return Option.some(delay)
  })

/** A failure caused by the values sent (SQLSTATE class 22), not by the connection or the server. */
const isDataError = (error: SqlError): boolean => {
  const code = (error.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" && code.startsWith("22")
}

/** A database failure in one line: the driver's message is not among its enumerable fields. */
const sqlText = (error: SqlError): string => {
  const cause = error.cause
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message
}

/** JSON text PostgreSQL's `jsonb` accepts: it refuses the escaped NUL character. */
const jsonText = (value: unknown): string => JSON.stringify(value).replaceAll("\\u0000", "\\ufffd")

const errorJson = (attempt: number, cause: Cause.Cause<unknown>, why?: string) =>
  jsonText({
    attempt,
    at: new Date().toISOString(),
    message: why === undefined ? causeText(cause) : `${why}: ${causeText(cause)}`,
    cause: Cause.pretty(cause)
  })

/** Delays are kept below 10 years, which PostgreSQL's intervals and timestamps hold. */
const maxDelayMillis = 10 * 365 * 86_400_000
const clampDelay = (millis: number) =>
  Number.isFinite(millis) ? Math.min(Math.max(0, millis), maxDelayMillis) : maxDelayMillis

/** The job runner of one process: claims, runs, records, renews leases, rescues. */
export class Runner {
  readonly events = Effect.runSync(PubSub.unbounded<JobEvent>())
  private readonly queues = new Map<string, QueueRunner>()
  /** Jobs claimed and not yet written, by id: the claim's attempt, and the slot running it once started. */
  private readonly held = new Map<string, { readonly attempt: number; slot: Slot | undefined }>()
  /** Runs that are no longer this runner's (rescued, claimed again, cancelled): their slot writes nothing. */
  private readonly writing = Effect.unsafeMakeSemaphore(1)
  private readonly running = new Map<string, Slot>()
  private outcomes: Array<Outcome> = []
  private flushSignal = Deferred.unsafeMake<void>(FiberId.none)
  private stopping = false
  private readonly runtime: Runtime.Runtime<never>
  private readonly tracing: boolean

  constructor(readonly config: RunnerConfig, runtime: Runtime.Runtime<never>) {
    for (const queue of config.queues) {
      this.queues.set(queue.name, new QueueRunner(queue, config.prefetch, config.jobs))
    }
    this.runtime = Runtime.make({
      context: runtime.context,
      runtimeFlags: RuntimeFlags.enable(runtime.runtimeFlags, RuntimeFlags.Interruption),
      fiberRefs: runtime.fiberRefs
    })
    this.tracing = config.tracing ?? Context.get(
          FiberRefs.getOrDefault(runtime.fiberRefs, DefaultServices.currentServices),
          Tracer.Tracer
        ) !== builtInTracer
  }

  get sql() {
    return this.config.store.sql
  }

  // ---- claiming -------------------------------------------------------------------------------

  /**
   * Claims up to `limit` due jobs of `queue` and hands them to its slots, at
   * once: claimed jobs are never dropped by an interruption in between. Runs
   * as a named prepared statement on the runner's own connections, so that it
   * is planned once per connection rather than on every claim.
   */
  private claim(queue: QueueRunner, limit: number): Effect.Effect<number, SqlError> {
    const store = this.config.store
    const text = `
      UPDATE ${store.quoted}.jobs AS j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),
        locked_by = $1, lease_expires_at = now() + $2 * interval '1 millisecond'
      FROM (
        SELECT id FROM ${store.quoted}.jobs
        WHERE queue = $3 AND state IN ('scheduled', 'available', 'retryable') AND run_at <= now()
          AND name = ANY($4::text[])
          AND NOT EXISTS (SELECT 1 FROM ${store.quoted}.queues WHERE name = $3 AND paused)
        ORDER BY priority, run_at, id
        LIMIT $5
        FOR UPDATE SKIP LOCKED
      ) AS c
      WHERE j.id = c.id
      RETURNING j.id::text AS id, j.name, j.queue, j.payload, j.attempt, j.max_attempts AS "maxAttempts",
        j.run_at AS "runAt", j.inserted_at AS "insertedAt", j.trace_id AS "traceId", j.span_id AS "spanId",
        j.recurring_id AS "recurringId", j.recurring_tick AS "recurringTick"`
    const values = [this.config.id, this.config.leaseMillis, queue.config.name, queue.names, limit]
    const pool = this.config.pool
    return Effect.uninterruptible(
      Effect.tryPromise({
        try: () => claimOn(pool, { name: `effect-workers-claim:${store.schema}`, text, values }),
        catch: (cause) => new SqlError({ cause, message: "Failed to claim jobs" })
      }).pipe(Effect.map((result) => {
        for (const job of result.rows) {
          // Claimed again after a rescue while an old run of it still goes on here: that run is stale.
          const old = this.held.get(job.id)
          if (old?.slot !== undefined) this.abandon(old.slot, job.id, "lost")
          this.held.set(job.id, { attempt: job.attempt, slot: undefined })
        }
        queue.push(result.rows)
        return result.rows.length
      }))
    )
  }

  private fetcher(queue: QueueRunner): Effect.Effect<never> {
    const self = this
    return Effect.gen(function*() {
      let failures = 0
      while (true) {
        if (!queue.wantsClaim()) {
          yield* queue.sleep(self.config.pollIntervalMillis)
          continue
        }
        queue.adapt()
        const room = queue.room()
        const claimed = yield* Effect.either(self.claim(queue, room))
        if (claimed._tag === "Left") {
          failures++
          yield* Effect.logWarning(
            `Job runner: claiming from queue "${queue.config.name}" failed (${sqlText(claimed.left)}); trying again`
          )
          // Backs off, but a notification (a reconnected listener) wakes it early.
          yield* queue.sleep(Math.min(100 * 2 ** failures, self.config.pollIntervalMillis, 10_000))
          continue
        }
        failures = 0
        queue.drained = claimed.right < room
        if (queue.drained) yield* queue.sleep(self.config.pollIntervalMillis)
      }
    }).pipe(Effect.annotateLogs("queue", queue.config.name))
  }

  // ---- running --------------------------------------------------------------------------------

  /** Runs a slot fiber for `queue`; a slot interrupted (a cancelled job) is replaced. */
  private startSlot(queue: QueueRunner): void {
    const context = new SlotContext((id, attempt, value) =>
      Effect.asVoid(
        this.sql`UPDATE ${this.config.store.jobs} SET progress = ${JSON.stringify(value ?? null)}::jsonb
          WHERE id = ${id}::bigint AND attempt = ${attempt} AND locked_by = ${this.config.id}`
      )
    )
    const slot: Slot = { context, current: undefined, fiber: undefined, abandoned: undefined }
    // Log lines written while the slot runs a job carry the job's queue, name, id and attempt. The slot's
    // loggers add them as they log: annotating each run instead cost a fifth of the throughput.
    const loggers = HashSet.map(
      FiberRefs.getOrDefault(this.runtime.fiberRefs, FiberRef.currentLoggers),
      (logger) => withJob(logger, slot)
    )
    const runtime = Runtime.make({
      ...this.runtime,
      context: Context.add(this.runtime.context, JobContext, context),
      fiberRefs: FiberRefs.updateAs(this.runtime.fiberRefs, {
        fiberId: FiberId.none,
        fiberRef: FiberRef.currentLoggers,
        value: loggers
      })
    })
    const fiber = Runtime.runFork(runtime)(this.slotLoop(queue, slot))
    slot.fiber = fiber
    queue.slots.add(slot)
    fiber.addObserver(() => {
      queue.slots.delete(slot)
      const job = slot.current
      if (job !== undefined) {
        slot.current = undefined
        queue.busy--
        if (this.running.get(job.id) === slot) this.running.delete(job.id)
        queue.running.update(-1)
        const reason = slot.abandoned
        if (reason !== undefined) {
          if (this.held.get(job.id)?.slot === slot) this.held.delete(job.id)
          if (reason === "cancelled") {
            this.record(job, "cancelled")
            this.publish({ _tag: "Cancelled", job })
          }
        } else {
          this.finish({ job, state: "available", delayMillis: null, refund: 1, error: null, result: null })
          this.publish({ _tag: "Released", job })
        }
      }
      if (!this.stopping) this.startSlot(queue)
    })
  }

  private slotLoop(queue: QueueRunner, slot: Slot): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      while (true) {
        // An interruption on its way (its run was abandoned) must not land on the next job.
        if (slot.abandoned !== undefined) return
        const job = yield* queue.take()
        if (job === undefined) return
        const held = self.held.get(job.id)
        if (held === undefined || held.attempt !== job.attempt) continue // cancelled or lost meanwhile
        slot.current = job
        slot.context.start(job)
        queue.busy++
        self.running.set(job.id, slot)
        held.slot = slot
        queue.running.update(1)
        // A defect after the handler (a result that cannot be stored, a backoff that throws) is a failed attempt.
        const outcome = yield* self.run(job, queue).pipe(
          Effect.catchAllCause((cause) => Effect.succeed(self.broken(job, cause)))
        )
        queue.running.update(-1)
        if (self.running.get(job.id) === slot) self.running.delete(job.id)
        queue.busy--
        slot.current = undefined
        self.finish(outcome)
        if (!queue.drained && queue.wantsClaim()) queue.wake()
      }
    })
  }

  private run(job: Claimed, queue: QueueRunner): Effect.Effect<Outcome> {
    const definition = this.config.jobs.get(job.name)!
    const started = Date.now()
    queue.wait.update(Math.max(0, started - job.runAt.getTime()) / 1000)
    this.publish({ _tag: "Started", job })
    const decoded = Schema.decodeUnknownEither(definition.payload)(job.payload)
    if (decoded._tag === "Left") {
      const cause = Cause.fail(decoded.left)
      return Effect.succeed(this.discard(job, cause, `the stored payload does not decode`))
    }
    let handler: Effect.Effect<unknown, unknown> = definition.handler(decoded.right) as Effect.Effect<unknown, unknown>
    if (definition.timeout !== undefined) {
      const timeoutMillis = Duration.toMillis(definition.timeout)
      handler = Effect.timeoutFail(handler, {
        duration: definition.timeout,
        onTimeout: () => new JobTimeout({ job: job.name, timeoutMillis })
      })
    }
    if (this.tracing) {
      handler = Effect.withSpan(handler, "effect_workers.job.run", {
        root: true,
        attributes: {
          "effect_workers.job.id": job.id,
          "effect_workers.job.name": job.name,
          "effect_workers.job.queue": job.queue,
          "effect_workers.job.attempt": job.attempt
        },
        links: job.traceId !== null && job.spanId !== null
          ? [{
            _tag: "SpanLink",
            span: Tracer.externalSpan({ traceId: job.traceId, spanId: job.spanId }),
            attributes: {}
          }]
          : [],
        captureStackTrace: false
      })
    }
    return Effect.flatMap(Effect.exit(handler), (exit) => {
      const ended = Date.now()
      queue.duration.update((ended - started) / 1000)
      if (Exit.isSuccess(exit)) {
        this.record(job, "completed")
        this.publish({ _tag: "Succeeded", job, durationMillis: ended - started })
        return this.completed(job, definition, exit.value)
      }
      return this.failed(job, definition, exit.cause)
    })
  }

  private completed(job: Claimed, definition: Job.Any, value: unknown): Effect.Effect<Outcome> {
    let result: string | null = null
    let problem: string | undefined
    if (definition.result !== undefined) {
      const encoded = Schema.encodeEither(definition.result)(value)
      if (encoded._tag === "Right") {
        try {
          result = jsonText(encoded.right)
        } catch (error) {
          problem = String(error)
        }
      } else {
        problem = encoded.left.message
      }
    }
    const outcome: Outcome = { job, state: "completed", delayMillis: null, refund: 0, error: null, result }
    return problem === undefined
      ? Effect.succeed(outcome)
      : Effect.as(
        Effect.logWarning(`Job "${job.name}" ${job.id} completed; its result cannot be stored: ${problem}`),
        outcome
      )
  }

  /** A failure outside the handler (in recording its outcome): a failed attempt, retried in a minute. */
  private broken(job: Claimed, cause: Cause.Cause<unknown>): Outcome {
    if (job.attempt >= job.maxAttempts) return this.discard(job, cause)
    this.record(job, "failed")
    return {
      job,
      state: "retryable",
      delayMillis: 60_000,
      refund: 0,
      error: errorJson(job.attempt, cause),
      result: null
    }
  }

  private discard(job: Claimed, cause: Cause.Cause<unknown>, why?: string): Outcome {
    const error = errorJson(job.attempt, cause, why)
    this.record(job, "discarded")
    this.publish({ _tag: "Discarded", job, error: causeText(cause) })
    return { job, state: "discarded", delayMillis: null, refund: 0, error, result: null }
  }

  private failed(job: Claimed, definition: Job.Any, cause: Cause.Cause<unknown>): Effect.Effect<Outcome> {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && failure.value instanceof Snooze) {
      const delayMillis = clampDelay(Duration.toMillis(failure.value.delay))
      this.record(job, "snoozed")
      this.publish({ _tag: "Snoozed", job, until: new Date(Date.now() + delayMillis) })
      return Effect.succeed({ job, state: "scheduled", delayMillis, refund: 1, error: null, result: null })
    }
    if (Option.isSome(failure) && failure.value instanceof Unrecoverable) {
      return Effect.succeed(this.discard(job, cause))
    }
    if (job.attempt >= job.maxAttempts) return Effect.succeed(this.discard(job, cause))
    const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
    return Effect.map(backoffDelay(definition.backoff, job.attempt, error), (delay): Outcome => {
      if (Option.isNone(delay)) return this.discard(job, cause)
      this.record(job, "failed")
      this.publish({
        _tag: "Failed",
        job,
        error: causeText(cause),
        retryAt: new Date(Date.now() + clampDelay(delay.value))
      })
      return {
        job,
        state: "retryable",
        delayMillis: clampDelay(delay.value),
        refund: 0,
        error: errorJson(job.attempt, cause),
        result: null
      }
    }).pipe(
      Effect.tap(() =>
        Effect.logWarning(`Job "${job.name}" ${job.id} failed (attempt ${job.attempt} of ${job.maxAttempts})`, cause)
      )
    )
  }

  private readonly runHooks = new Map<string, Hook>()

  private record(job: Claimed, outcome: string): void {
    const key = `${job.queue}\u0000${job.name}\u0000${outcome}`
    let hook = this.runHooks.get(key)
    if (hook === undefined) {
      hook = hookOf(Metrics.keys.jobRuns, [
        MetricLabel.make("queue", job.queue),
        MetricLabel.make("job", job.name),
        MetricLabel.make("outcome", outcome)
      ])
      this.runHooks.set(key, hook)
    }
    hook.update(1)
  }

  private publish(event: JobEvent): void {
    this.events.unsafeOffer(event)
  }

  // ---- writing outcomes -----------------------------------------------------------------------

  private finish(outcome: Outcome): void {
    this.outcomes.push(outcome)
    Deferred.unsafeDone(this.flushSignal, Exit.void)
  }

  /** Writes outcomes: plain completions in one simple statement, the rest in another. */
  private write(batch: ReadonlyArray<Outcome>): Effect.Effect<void, SqlError> {
    const plain: Array<Outcome> = []
    const other: Array<Outcome> = []
    for (const outcome of batch) {
      if (outcome.state === "completed" && outcome.result === null) plain.push(outcome)
      else other.push(outcome)
    }
    const { sql } = this
    const store = this.config.store
    // Each outcome belongs to one claim (its attempt): a job claimed again since is not touched.
    const completed: Effect.Effect<unknown, SqlError> = plain.length === 0 ? Effect.void : sql`
      UPDATE ${store.jobs} AS j SET state = 'completed', finalized_at = now(), lease_expires_at = NULL
      FROM unnest(${plain.map((o) => o.job.id)}::bigint[], ${plain.map((o) => o.job.attempt)}::int[]) AS c(id, attempt)
      WHERE j.id = c.id AND j.attempt = c.attempt AND j.state = 'running' AND j.locked_by = ${this.config.id}`
    const rest: Effect.Effect<unknown, SqlError> = other.length === 0 ? Effect.void : sql`
      WITH written AS (
        UPDATE ${store.jobs} AS j SET
          state = o.state,
          run_at = CASE WHEN o.delay_ms IS NULL THEN j.run_at ELSE now() + o.delay_ms * interval '1 millisecond' END,
          finalized_at = CASE WHEN o.state IN ('completed', 'discarded') THEN now() ELSE NULL END,
          attempt = j.attempt - o.refund,
          lease_expires_at = NULL,
          errors = CASE WHEN o.error IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(o.error) END,
          result = COALESCE(o.result, j.result)
        FROM unnest(
          ${other.map((o) => o.job.id)}::bigint[], ${other.map((o) => o.job.attempt)}::int[],
          ${other.map((o) => o.state)}::text[], ${other.map((o) => o.delayMillis)}::float8[],
          ${other.map((o) => o.refund)}::int[], ${other.map((o) => o.error)}::jsonb[],
          ${other.map((o) => o.result)}::jsonb[]
        ) AS o(id, attempt, state, delay_ms, refund, error, result)
        WHERE j.id = o.id AND j.attempt = o.attempt AND j.state = 'running' AND j.locked_by = ${this.config.id}
        RETURNING j.queue, j.state
      )
      SELECT pg_notify(${store.channel}, 'j:' || queue)
      FROM (SELECT DISTINCT queue FROM written WHERE state = 'available') AS released`
    return Effect.asVoid(Effect.zipRight(completed, rest))
  }

  /** The outcomes are written: their jobs are no longer this runner's. */
  private written(batch: ReadonlyArray<Outcome>): void {
    for (const outcome of batch) {
      if (this.held.get(outcome.job.id)?.attempt === outcome.job.attempt) this.held.delete(outcome.job.id)
    }
  }

  /**
   * Writes the buffered outcomes, one flush at a time and never cut short by
   * an interruption. When the database refuses the batch for what is in it,
   * each outcome is written alone, and one it still refuses is dropped and
   * logged: its job is rescued when its lease runs out. When the database
   * cannot be reached, the outcomes stay buffered.
   */
  private flush(): Effect.Effect<void, SqlError> {
    const self = this
    return this.writing.withPermits(1)(Effect.uninterruptible(Effect.gen(function*() {
      const batch = self.outcomes.splice(0, 5000)
      if (batch.length === 0) return
      const all = yield* Effect.either(self.write(batch))
      if (all._tag === "Right") return self.written(batch)
      if (!isDataError(all.left)) {
        self.outcomes.unshift(...batch)
        return yield* all.left
      }
      for (let i = 0; i < batch.length; i++) {
        const one = yield* Effect.either(self.write([batch[i]]))
        if (one._tag === "Right" || isDataError(one.left)) {
          if (one._tag === "Left") {
            yield* Effect.logError(
              `Job runner: the outcome of job "${batch[i].job.name}" ${batch[i].job.id} cannot be stored ` +
                `(${sqlText(one.left)}); it will be rescued when its lease runs out`
            )
          }
          self.written([batch[i]])
        } else {
          self.outcomes.unshift(...batch.slice(i))
          return yield* one.left
        }
      }
    })))
  }

  private writer(): Effect.Effect<never> {
    const self = this
    return Effect.gen(function*() {
      let failures = 0
      while (true) {
        if (self.outcomes.length === 0) {
          const signal = self.flushSignal
          yield* Deferred.await(signal)
          if (self.flushSignal === signal) self.flushSignal = Deferred.unsafeMake(FiberId.none)
        }
        const written = yield* Effect.either(self.flush())
        if (written._tag === "Left") {
          failures++
          yield* Effect.logWarning(`Job runner: writing job outcomes failed (${sqlText(written.left)}); trying again`)
          yield* Effect.sleep(Math.min(100 * 2 ** failures, 5_000))
        } else {
          failures = 0
        }
      }
    })
  }

  // ---- leases, cancellation, maintenance ------------------------------------------------------

  private register(): Effect.Effect<void, SqlError> {
    const { sql } = this
    const store = this.config.store
    return Effect.asVoid(sql`
      INSERT INTO ${store.runners} (id, host, pid, queues, concurrency) VALUES (
        ${this.config.id}, ${hostname()}, ${process.pid}, ${[...this.queues.keys()]}::text[],
        ${JSON.stringify(Object.fromEntries(this.config.queues.map((queue) => [queue.name, queue.concurrency])))}::jsonb
      ) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`)
  }

  /**
   * Renews the leases of every job this runner holds; a job it no longer
   * holds (cancelled, rescued) is dropped. It takes turns with the writer:
   * both update the same rows, in different orders, and would deadlock.
   */
  private heartbeat(): Effect.Effect<void, SqlError> {
    const { sql } = this
    const store = this.config.store
    return this.writing.withPermits(1)(Effect.gen(this, function*() {
      yield* this.register()
      // Only jobs held before the statement starts are judged: a claim committed meanwhile is not in its snapshot.
      const snapshot = [...this.held].map(([id, held]) => ({ id, attempt: held.attempt }))
      if (snapshot.length === 0) return
      const rows = yield* sql<{ readonly id: string; readonly attempt: number }>`
        UPDATE ${store.jobs} SET lease_expires_at = now() + ${this.config.leaseMillis} * interval '1 millisecond'
        WHERE id = ANY(${snapshot.map((held) => held.id)}::bigint[]) AND locked_by = ${this.config.id}
          AND state = 'running'
        RETURNING id::text AS id, attempt`
      const renewed = new Set(rows.map((row) => `${row.id}:${row.attempt}`))
      const written = new Set(this.outcomes.map((o) => `${o.job.id}:${o.job.attempt}`))
      for (const { attempt, id } of snapshot) {
        const key = `${id}:${attempt}`
        const held = this.held.get(id)
        if (renewed.has(key) || written.has(key) || held === undefined || held.attempt !== attempt) continue
        this.held.delete(id)
        if (held.slot !== undefined) this.abandon(held.slot, id, "lost")
      }
    }))
  }

  /** Interrupts a slot's run of job `id` that is no longer this runner's; it writes nothing for it. */
  private abandon(slot: Slot, id: string, reason: "cancelled" | "lost"): void {
    // The slot may have finished that run and started another since.
    if (slot.current?.id !== id || slot.fiber === undefined || slot.abandoned !== undefined) return
    slot.abandoned = reason
    slot.fiber.unsafeInterruptAsFork(FiberId.none)
  }

  /** Cancels job `id` here: its run is interrupted, or, claimed but not started, it is dropped. */
  cancel(id: string): void {
    const held = this.held.get(id)
    if (held === undefined) return
    if (held.slot === undefined) this.held.delete(id)
    else this.abandon(held.slot, id, "cancelled")
  }

  onNotification(payload: string): void {
    if (payload.startsWith("j:")) {
      const queue = this.queues.get(payload.slice(2))
      if (queue !== undefined) {
        queue.drained = false
        queue.wake()
      }
    } else if (payload.startsWith("c:")) this.cancel(payload.slice(2))
  }

  wakeAll(): void {
    for (const queue of this.queues.values()) {
      queue.drained = false
      queue.wake()
    }
  }

  /**
   * Rescues jobs whose lease expired (their runner crashed or was cut off),
   * forgets dead runners and prunes finished jobs; on one process at a time.
   */
  maintain(): Effect.Effect<void, SqlError> {
    const { sql } = this
    const store = this.config.store
    return sql.withTransaction(Effect.gen(this, function*() {
      const [lock] = yield* sql<{ readonly locked: boolean }>`
        SELECT pg_try_advisory_xact_lock(hashtext(${`effect_workers.maintenance:${store.schema}`})) AS locked`
      if (!lock.locked) return
      const rescued = yield* sql<{ readonly id: string; readonly state: string }>`
        WITH rescued AS (
          UPDATE ${store.jobs} SET
            state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
            finalized_at = CASE WHEN attempt >= max_attempts THEN now() ELSE NULL END,
            lease_expires_at = NULL,
            errors = errors || jsonb_build_array(jsonb_build_object(
              'attempt', attempt, 'at', now(),
              'message', 'its runner ' || coalesce(locked_by, '?') || ' stopped renewing the lease (crashed or cut off)',
              'cause', ''))
          WHERE state = 'running' AND lease_expires_at < now()
          RETURNING id, queue, state
        ), notified AS (
          SELECT pg_notify(${store.channel}, 'j:' || queue)
          FROM (SELECT DISTINCT queue FROM rescued WHERE state = 'available') AS due
        )
        SELECT id::text AS id, state FROM rescued, (SELECT count(*) FROM notified) AS n`
      if (rescued.length > 0) {
        yield* Effect.logWarning(`Job runner: rescued ${rescued.length} job(s) whose runner stopped renewing leases`)
      }
      yield* sql`DELETE FROM ${store.runners}
        WHERE heartbeat_at < now() - ${this.config.leaseMillis * 2} * interval '1 millisecond'`
      yield* sql`DELETE FROM ${store.jobs} WHERE id IN (
        SELECT id FROM ${store.jobs}
        WHERE finalized_at < now() - ${this.config.retentionMillis} * interval '1 millisecond'
        LIMIT 10000)`
    }))
  }

  // ---- life cycle -----------------------------------------------------------------------------

  /** Starts the runner's fibers in the current scope; stopping them drains and releases. */
  start(listen: Effect.Effect<never>): Effect.Effect<void, SqlError, Scope.Scope> {
    const self = this
    return Effect.gen(function*() {
      yield* self.register()
      const every = (millis: number, what: string, effect: Effect.Effect<void, SqlError>) =>
        Effect.forkScoped(
          effect.pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`Job runner: ${what} failed (${sqlText(error)}); trying again`)
            ),
            Effect.delay(Duration.millis(millis)),
            Effect.forever
          )
        )
      // Fibers end in the reverse order: the fetchers first, then `stop` drains, then leases and writes stop.
      yield* Effect.forkScoped(self.writer())
      yield* every(Math.max(100, Math.floor(self.config.leaseMillis / 3)), "renewing leases", self.heartbeat())
      yield* Effect.addFinalizer(() => self.stop())
      yield* every(Math.max(100, Math.floor(self.config.leaseMillis / 2)), "maintenance", self.maintain())
      yield* Effect.forkScoped(listen)
      for (const queue of self.queues.values()) {
        for (let i = 0; i < queue.config.concurrency; i++) self.startSlot(queue)
        yield* Effect.forkScoped(self.fetcher(queue))
      }
    })
  }

  /**
   * Stops claiming, gives back claimed jobs not started, lets running jobs
   * finish within the drain time, interrupts and gives back the rest, writes
   * every outcome, and deregisters.
   */
  private stop(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      self.stopping = true
      const giveBackPending = () => {
        for (const queue of self.queues.values()) {
          for (const job of queue.pending.splice(0)) {
            self.finish({ job, state: "available", delayMillis: null, refund: 1, error: null, result: null })
          }
        }
      }
      giveBackPending()
      const busy = () => [...self.queues.values()].some((queue) => queue.busy > 0)
      const drained = Effect.gen(function*() {
        while (busy()) yield* Effect.sleep("10 millis")
      })
      yield* Effect.timeoutOption(Effect.interruptible(drained), self.config.drainMillis)
      if (busy()) {
        yield* Effect.logWarning("Job runner: jobs still running after the drain time are interrupted and released")
      }
      const slots = [...self.queues.values()].flatMap((queue) => [...queue.slots])
      yield* Effect.forEach(slots, (slot) => slot.fiber === undefined ? Effect.void : Fiber.interrupt(slot.fiber), {
        discard: true,
        concurrency: "unbounded"
      })
      // A job handed to a slot as it was interrupted went back to its queue.
      giveBackPending()
      // The first flush also waits for one the writer has in flight.
      for (let round = 0; round === 0 || (self.outcomes.length > 0 && round < 10); round++) {
        const written = yield* Effect.either(self.flush())
        if (written._tag === "Left") {
          yield* Effect.logError(`Job runner: writing job outcomes at shutdown failed (${sqlText(written.left)})`)
          yield* Effect.sleep("200 millis")
        }
      }
      if (self.outcomes.length > 0) {
        yield* Effect.logError(
          `Job runner: ${self.outcomes.length} job outcome(s) could not be written at shutdown; ` +
            "their jobs will be rescued when their leases run out"
        )
      }
      yield* PubSub.shutdown(self.events)
      yield* Effect.ignore(self.sql`DELETE FROM ${self.config.store.runners} WHERE id = ${self.config.id}`)
    }).pipe(Effect.annotateLogs("runner", this.config.id))
  }
}
