/**
 * Hosted background workers: the `IHostedService` / `BackgroundService` of
 * effect-workers. A worker is a name, a task and options; each worker is a
 * `Layer`, and composing workers is composing layers.
 *
 * @since 0.1.0
 */
import type { Clock, Duration, Runtime, Scope } from "effect"
import { Cause, Effect, Either, Layer, Mailbox, Predicate, Queue, Schedule, Stream } from "effect"
import { parseCron } from "./internal/cron.js"
import * as Check from "./internal/options.js"
import { cronTicks } from "./internal/recurring/schedule.js"
import { loggedCause } from "./internal/registry.js"
import {
  type Attempt,
  type Common,
  ConsumerWorker,
  type FailurePolicy as FailurePolicyInternal,
  type Overlap as OverlapInternal,
  queueSource,
  ScheduledWorker,
  type Source,
  streamSource,
  type Timing
} from "./internal/worker.js"
import { InvalidCronExpression, InvalidWorkerOptions } from "./WorkerError.js"
import { RegistryInternal, WorkerRegistry } from "./WorkerRegistry.js"

/**
 * What a worker does once an iteration has failed and its retries are spent.
 *
 * - `"continue"` (default): log it, count it, and run again at the next
 *   scheduled time. A run-once worker ends in the `failed` state.
 * - `"restart"`: start the worker over (its schedule from the beginning) after
 *   a restart delay of 1 s, doubling with each consecutive restart up to 1 min.
 * - `"stopHost"`: stop the whole host; the process exits with code 1.
 *
 * @since 0.1.0
 * @category models
 */
export type FailurePolicy = FailurePolicyInternal

/**
 * What a cron worker does when a tick comes while the previous run is still going.
 *
 * - `"skip"` (default): skip the tick (counted in the status as `skipped`).
 * - `"wait"`: run once more as soon as the current run ends (at most one waits).
 * - `"allow"`: start another run alongside.
 *
 * @since 0.1.0
 * @category models
 */
export type Overlap = OverlapInternal

/**
 * The retry schedule used when none is given: exponential from 1 second,
 * doubling, jittered, at most 3 retries. A task that fails at once, forever,
 * is slowed down by it instead of spinning.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second", 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

/**
 * Options shared by every kind of worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions<ROut, E2, RIn> {
  /**
   * Retry schedule for a failed iteration (or item, for consumers). It sees the
   * failure (your error, or the defect). `false` disables retries. Default: {@link defaultRetry}.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | false | undefined
  /** What happens once retries are spent. Default `"continue"`. */
  readonly onFailure?: FailurePolicy | undefined
  /**
   * A layer built fresh for every attempt and released when it ends (the
   * `IServiceScope` created per iteration). The task's own `Scope` closes
   * first, then this layer's.
   */
  readonly layer?: Layer.Layer<ROut, E2, RIn> | undefined
  /**
   * Record a span per iteration (`effect_workers.worker.iteration`). Default:
   * when a tracer other than Effect's built-in one is installed (for example
   * through `@effect/opentelemetry`), since spans nobody exports only cost time.
   */
  readonly tracing?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<ROut, E2, RIn> extends CommonOptions<ROut, E2, RIn> {
  /**
   * When to run again. A `Schedule` is stepped after each iteration ends, as
   * `Effect.repeat` does, except that it sees no input (schedules that read
   * the task's result do not apply) and is also stepped after an iteration
   * that failed with the `"continue"` policy. A duration such as `"30 seconds"` runs again that
   * long after the previous iteration ended (what `Schedule.spaced` does) and
   * is the cheapest form, for programs with thousands of workers (at least 1 ms). Omit it to
   * run the task once, like `BackgroundService.ExecuteAsync`.
   */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | Duration.DurationInput | undefined
  /** Delay before the first iteration (0 or more). Default 0. */
  readonly initialDelay?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CronOptions<ROut, E2, RIn> extends CommonOptions<ROut, E2, RIn> {
  /** Cron expression with 5 fields, or 6 with seconds first. */
  readonly cron: string
  /** IANA time zone name, or an offset from "-12:00" to "+14:00". Default `"UTC"`, as for recurring jobs. */
  readonly timeZone?: string | undefined
  /** What to do with a tick that comes while the previous run goes on. Default `"skip"`. */
  readonly overlap?: Overlap | undefined
  /** The first tick considered is the first at or after start + this delay. Default 0. */
  readonly initialDelay?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConsumerOptions<A, E, R, ROut, E2, RIn> extends CommonOptions<ROut, E2, RIn> {
  /**
   * Where items come from. Items are taken only when a slot is free, so
   * untaken items stay in the source at shutdown. Items whose handler is
   * interrupted by shutdown are handed back: offered again to a `Queue` or
   * `Mailbox` (at its end), or passed to `onUnfinished` for a `Stream` (whose
   * already pulled, unstarted items are passed there too). A `Stream`, or a
   * read-only `Dequeue` or mailbox, cannot take items back: give it
   * `onUnfinished`, or unfinished items are only logged.
   */
  readonly source: Queue.Dequeue<A> | Mailbox.ReadonlyMailbox<A, unknown> | Stream.Stream<A, unknown, R>
  /** Handles one item. Success acknowledges it; failure retries it, then dead-letters it. */
  readonly handler: (item: A) => Effect.Effect<unknown, E, R | Scope.Scope>
  /** Items handled at once. Default 1. */
  readonly concurrency?: number | undefined
  /**
   * Receives items that still fail after their retries, with the failure.
   * Default: log the item and the failure as an error.
   */
  readonly deadLetter?: ((item: A, cause: Cause.Cause<unknown>) => Effect.Effect<void, unknown, R>) | undefined
  /** Receives items unfinished at shutdown instead of the default hand-back. */
  readonly onUnfinished?: ((item: A) => Effect.Effect<void, never, R>) | undefined
}

/**
 * The layer type of a worker: it needs the status registry, whatever the task
 * needs (less `Scope`, which each iteration gets fresh, and less what the
 * per-iteration layer provides), and what that layer needs.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerLayer<E, R> = Layer.Layer<never, E, WorkerRegistry | R>

const invalid = (worker: string, option: string, reason: string) =>
  new InvalidWorkerOptions({ worker: typeof worker === "string" ? worker : Check.show(worker), option, reason })

/** A task the types forbid (from JavaScript) fails the layer, not the worker's first iteration. */
const taskProblem = (worker: string, task: unknown) =>
  Effect.isEffect(task) ? undefined : invalid(worker, "task", `must be an Effect, got ${Check.show(task)}`)

const checked = <A>(worker: string, option: string, result: Either.Either<A, string>) =>
  Either.mapLeft(result, (reason) => invalid(worker, option, reason))

/** Rules of the duration options, stated in docs/workers.md. */
const initialDelayRule: Check.DurationRule = { min: 0 }
const everyRule: Check.DurationRule = { min: 1 }

const failurePolicies: ReadonlyArray<FailurePolicy> = ["continue", "restart", "stopHost"]
const overlaps: ReadonlyArray<Overlap> = ["skip", "wait", "allow"]

/** Checks the options every worker has, as raw values; answers the initial delay in milliseconds. */
const validateCommon = (
  name: string,
  options: CommonOptions<any, any, any> & { readonly initialDelay?: unknown } | undefined
): Either.Either<number, InvalidWorkerOptions> => {
  if (typeof name !== "string" || name.trim().length === 0) {
    return Either.left(invalid(name, "name", `must be a non-empty string, got ${Check.show(name)}`))
  }
  const retry = options?.retry
  if (retry !== undefined && retry !== false && !Schedule.isSchedule(retry)) {
    return Either.left(invalid(name, "retry", `must be a Schedule or false, got ${Check.show(retry)}`))
  }
  if (options?.onFailure !== undefined) {
    const policy = checked(name, "onFailure", Check.oneOf(options.onFailure, failurePolicies))
    if (Either.isLeft(policy)) return Either.left(policy.left)
  }
  if (options?.layer !== undefined && !Layer.isLayer(options.layer)) {
    return Either.left(invalid(name, "layer", `must be a Layer, got ${Check.show(options.layer)}`))
  }
  if (options?.tracing !== undefined) {
    const tracing = checked(name, "tracing", Check.boolean(options.tracing))
    if (Either.isLeft(tracing)) return Either.left(tracing.left)
  }
  if (options?.initialDelay === undefined) return Either.right(0)
  return checked(name, "initialDelay", Check.durationMillis(options.initialDelay, initialDelayRule))
}

const timingOf = (
  name: string,
  schedule: Schedule.Schedule<unknown, unknown> | Duration.DurationInput | undefined
): Either.Either<Timing, InvalidWorkerOptions> => {
  if (schedule === undefined || Schedule.isSchedule(schedule)) {
    return Either.right({ _tag: "Schedule", schedule: schedule as Schedule.Schedule<unknown, unknown> | undefined })
  }
  const every = Check.durationMillis(schedule, everyRule)
  if (Either.isLeft(every)) {
    return Either.left(invalid(name, "schedule", `must be a Schedule or ${every.left.slice("must be ".length)}`))
  }
  return Either.right({ _tag: "Schedule", schedule: undefined, everyMillis: every.right })
}

const commonOf = (
  name: string,
  options: Pick<CommonOptions<never, never, never>, "retry" | "onFailure" | "tracing"> | undefined,
  metricsLabel: string | undefined
): Common => ({
  name,
  metricsLabel,
  retry: options?.retry === false ? undefined : options?.retry ?? defaultRetry,
  onFailure: options?.onFailure ?? "continue",
  tracing: options?.tracing
})

const attemptOf = <A, E, R>(
  task: Effect.Effect<A, E, R>,
  layer: Layer.Layer<unknown, unknown, unknown> | undefined
): Attempt => ({
  task: task as Effect.Effect<unknown, unknown, Scope.Scope>,
  layer: layer as Layer.Layer<never> | undefined
})

type Build = (
  registry: WorkerRegistry["Type"],
  runtime: Runtime.Runtime<never>,
  clock: Clock.Clock,
  metricsLabel: string | undefined
) => ScheduledWorker | ConsumerWorker<unknown>

const BuildersId: unique symbol = Symbol.for("effect-workers/Worker/builders")

const registerAll = (builds: ReadonlyArray<Build>) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry
    const runtime = yield* Effect.runtime<never>()
    const clock = yield* Effect.clock
    const internal = registry[RegistryInternal]
    const workers = builds.map((build) => build(registry, runtime, clock, undefined))
    // The finalizer comes first so that it also stops the workers registered before a failure.
    let registered = 0
    yield* Effect.addFinalizer(() =>
      Effect.forEach(workers.slice(0, registered).reverse(), (worker) => internal.deregister(worker), {
        discard: true
      })
    )
    yield* Effect.forEach(workers, (worker) => Effect.map(internal.register(worker), () => void registered++), {
      discard: true
    })
  })

const register = <E>(build: Build): WorkerLayer<E | InvalidWorkerOptions, never> =>
  Object.assign(Layer.scopedDiscard(registerAll([build])), { [BuildersId]: [build] })

/**
 * Options of {@link mergeAll}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MergeOptions {
  /**
   * Count the merged workers' metrics under this one `worker` label instead
   * of a label each. Thousands of label values make thousands of series, which
   * metrics backends handle badly, and each costs about 700 bytes of heap; the
   * status registry still reports every worker on its own. Default: a label
   * per worker.
   */
  readonly metricsLabel?: string | undefined
}

/**
 * Merges worker layers, like `Layer.mergeAll`, into one layer that registers
 * them all at once. Use it when a program defines many workers (hundreds or
 * thousands): each layer in a `Layer.mergeAll` costs about 6 KB of heap for
 * the layer alone, a worker merged here about 2.3 KB in all, 1.6 KB with a
 * shared `metricsLabel`. Layers that are not plain workers are merged with
 * `Layer.mergeAll` as usual.
 *
 * @since 0.1.0
 * @category constructors
 */
export const mergeAll = <E, R>(workers: Iterable<WorkerLayer<E, R>>, options?: MergeOptions): WorkerLayer<E, R> => {
  const builds: Array<Build> = []
  const others: Array<WorkerLayer<E, R>> = []
  const label = options?.metricsLabel
  for (const worker of workers) {
    const own = (worker as { [BuildersId]?: ReadonlyArray<Build> })[BuildersId]
    if (own === undefined) others.push(worker)
    else if (label === undefined) builds.push(...own)
    else for (const build of own) builds.push((registry, runtime, clock) => build(registry, runtime, clock, label))
  }
  const merged = Object.assign(Layer.scopedDiscard(registerAll(builds)), {
    [BuildersId]: builds
  }) as unknown as WorkerLayer<
    E,
    R
  >
  return others.length === 0 ? merged : Layer.mergeAll(merged, ...others)
}

/**
 * A worker that runs `task` on a `Schedule`, or once when no schedule is given.
 *
 * **Details**
 *
 * The worker starts when the host has built the whole layer graph (or at once
 * under `WorkerRegistry.layer`) and never blocks the start of other workers.
 * Each attempt gets a fresh `Scope` (and a fresh `layer`, if given), closed
 * when the attempt ends, on success, failure or interruption. A failed attempt
 * is retried on `retry`; once retries are spent the `onFailure` policy decides.
 * Failures and defects are logged with the worker's name, counted in the
 * status registry and in the `effect_workers_worker_*` metrics. Shutdown
 * interrupts the running iteration.
 *
 * Periodic workers share one timer per registry instead of holding a
 * sleeping fiber each, so thousands of them cost little.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Worker } from "effect-workers"
 *
 * export const Heartbeat = Worker.make("heartbeat", Effect.log("still alive"), {
 *   schedule: Schedule.spaced("30 seconds"),
 *   initialDelay: "5 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E, R, ROut = never, E2 = never, RIn = never>(
  name: string,
  task: Effect.Effect<A, E, R>,
  options?: Options<ROut, E2, RIn>
): WorkerLayer<InvalidWorkerOptions, Exclude<R, Scope.Scope | ROut> | RIn> => {
  const delay = validateCommon(name, options)
  if (Either.isLeft(delay)) return Layer.fail(delay.left)
  const badTask = taskProblem(name, task)
  if (badTask !== undefined) return Layer.fail(badTask)
  const timing = timingOf(name, options?.schedule)
  if (Either.isLeft(timing)) return Layer.fail(timing.left)
  return scheduled(name, task, options, timing.right, delay.right)
}

const scheduled = <E, R, ROut, E2, RIn>(
  name: string,
  task: Effect.Effect<unknown, unknown, unknown>,
  options: CommonOptions<ROut, E2, RIn> | undefined,
  timing: Timing,
  initialDelayMillis: number
): WorkerLayer<E, R> => {
  const attempt = attemptOf(task, options?.layer as Layer.Layer<unknown, unknown, unknown> | undefined)
  return register((registry, runtime, clock, metricsLabel) =>
    new ScheduledWorker(
      registry[RegistryInternal],
      runtime,
      clock,
      commonOf(name, options, metricsLabel),
      timing,
      initialDelayMillis,
      attempt
    )
  ) as WorkerLayer<E, R>
}

/**
 * Checks a cron expression and time zone the way {@link cron} does, without
 * defining a worker.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateCron = (
  expression: string,
  timeZone?: string
): Either.Either<import("effect").Cron.Cron, InvalidCronExpression> => parseCron("(cron)", expression, timeZone)

/**
 * A worker that runs `task` on a cron expression, in a time zone.
 *
 * **Details**
 *
 * The expression (5 fields, or 6 with seconds first) and the time zone are
 * checked when the worker is defined: a bad one makes the layer fail with
 * {@link InvalidCronExpression} naming the field, before any worker starts.
 * Ticks follow wall-clock time in the zone, by the daylight-saving rules of
 * recurring jobs: a wall time skipped by a spring-forward runs when the gap
 * ends (02:30 runs at 03:00), once; across a fall-back, an expression naming
 * its hours runs in the first pass only, an hourly or finer one in both, in
 * elapsed time. No tick is doubled, and none is scheduled at or before the
 * instant it is fired from. The next tick is in the status registry as
 * `nextRunAt`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker } from "effect-workers"
 *
 * export const DailyReport = Worker.cron("daily-report", Effect.log("sending the report"), {
 *   cron: "0 2 * * *",
 *   timeZone: "Europe/Berlin"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const cron = <A, E, R, ROut = never, E2 = never, RIn = never>(
  name: string,
  task: Effect.Effect<A, E, R>,
  options: CronOptions<ROut, E2, RIn>
): WorkerLayer<InvalidWorkerOptions | InvalidCronExpression, Exclude<R, Scope.Scope | ROut> | RIn> => {
  const delay = validateCommon(name, options)
  if (Either.isLeft(delay)) return Layer.fail(delay.left)
  const badTask = taskProblem(name, task)
  if (badTask !== undefined) return Layer.fail(badTask)
  const overlap = options?.overlap === undefined
    ? Either.right<Overlap>("skip")
    : checked(name, "overlap", Check.oneOf(options.overlap, overlaps))
  if (Either.isLeft(overlap)) return Layer.fail(overlap.left)
  const parsed = parseCron(name, options?.cron, options?.timeZone)
  if (Either.isLeft(parsed)) return Layer.fail(parsed.left)
  const expression = (options.cron as string).trim().split(/\s+/).join(" ")
  const ticks = cronTicks(parsed.right, expression, undefined, undefined)
  return scheduled(name, task, options, { _tag: "Cron", ticks, overlap: overlap.right }, delay.right)
}

// Queues and mailboxes are checked first: they can also be used where a Stream is expected.
const sourceOf = <A>(
  source: unknown,
  onUnfinished: ((item: A) => Effect.Effect<void>) | undefined,
  name: string
): (scope: Scope.Scope) => Effect.Effect<Source<A>> => {
  if (Mailbox.isReadonlyMailbox<A>(source)) {
    const offer = Mailbox.isMailbox<A>(source) ? (item: A) => source.offer(item) : undefined
    const base = queueSource<A>(source.take, offer, onUnfinished, name)
    const take = Effect.catchIf(base.take, Cause.isNoSuchElementException, () => Effect.succeedNone)
    return () => Effect.succeed({ ...base, take })
  }
  if (Queue.isDequeue(source)) {
    const queue = source as Queue.Dequeue<A>
    const offer = Queue.isEnqueue(source) ? (item: A) => (source as Queue.Enqueue<A>).offer(item) : undefined
    return () => Effect.succeed(queueSource<A>(queue.take, offer, onUnfinished, name))
  }
  return streamSource(source as Stream.Stream<A, unknown>, onUnfinished, name)
}

/**
 * A queue consumer: takes items from a `Queue`, `Mailbox` or `Stream` and
 * handles up to `concurrency` at once (ack on success, retry on failure, then
 * the dead-letter handler), like the `MessageQueueProcessorService` pattern.
 *
 * **Details**
 *
 * Nothing is dropped at shutdown: items not yet taken stay in the source, and
 * items whose handler is interrupted are handed back (see
 * {@link ConsumerOptions.source}). The worker ends (`stopped`) when a
 * `Mailbox` or `Stream` source ends or its `Queue` is shut down; a source that
 * fails is handled by the `onFailure` policy.
 *
 * @example
 * ```ts
 * import { Effect, Queue } from "effect"
 * import { Worker } from "effect-workers"
 *
 * export const consumer = (queue: Queue.Queue<string>) =>
 *   Worker.consumer("emails", {
 *     source: queue,
 *     handler: (email) => Effect.log(`sending ${email}`),
 *     concurrency: 4
 *   })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const consumer = <A, E, R, ROut = never, E2 = never, RIn = never>(
  name: string,
  options: ConsumerOptions<A, E, R, ROut, E2, RIn>
): WorkerLayer<InvalidWorkerOptions, Exclude<R, Scope.Scope | ROut> | RIn> => {
  const common = validateCommon(name, options)
  if (Either.isLeft(common)) return Layer.fail(common.left)
  const concurrency = checked(name, "concurrency", Check.integer(options.concurrency ?? 1, 1, Check.int32.max))
  if (Either.isLeft(concurrency)) return Layer.fail(concurrency.left)
  for (const option of ["handler", "deadLetter", "onUnfinished"] as const) {
    const value = options[option]
    if ((option === "handler" || value !== undefined) && typeof value !== "function") {
      return Layer.fail(invalid(name, option, `must be a function, got ${Check.show(value)}`))
    }
  }
  const source = options.source as unknown
  if (
    !Mailbox.isReadonlyMailbox(source) && !Queue.isDequeue(source) &&
    !Predicate.hasProperty(source, Stream.StreamTypeId)
  ) {
    return Layer.fail(invalid(name, "source", `must be a Queue, a Mailbox or a Stream, got ${Check.show(source)}`))
  }
  const layer = options.layer as Layer.Layer<unknown, unknown, unknown> | undefined
  const onUnfinished = options.onUnfinished as ((item: A) => Effect.Effect<void>) | undefined
  const handler = (item: A) => attemptOf(options.handler(item), layer)
  const deadLetter = options.deadLetter as
    | ((item: A, cause: Cause.Cause<unknown>) => Effect.Effect<void, unknown>)
    | undefined
  return register((registry, runtime, clock, metricsLabel) =>
    new ConsumerWorker<A>(registry[RegistryInternal], runtime, clock, commonOf(name, options, metricsLabel), {
      concurrency: concurrency.right,
      handler,
      deadLetter: deadLetter ??
        ((item, cause) =>
          Effect.logError(`Worker "${name}": dead letter`, loggedCause(cause)).pipe(
            Effect.annotateLogs("item", String(item))
          )),
      source: sourceOf(source, onUnfinished, name)
    }) as unknown as ConsumerWorker<unknown>
  ) as WorkerLayer<InvalidWorkerOptions, Exclude<R, Scope.Scope | ROut> | RIn>
}

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  InvalidCronExpression,
  /**
   * @since 0.1.0
   * @category errors
   */
  InvalidWorkerOptions
}
