import type { Clock, Layer, MetricHook, MetricKeyType, Runtime } from "effect"
import {
  Cause,
  Chunk,
  Context,
  Effect,
  Exit,
  FiberRefs,
  Metric,
  MetricKey,
  MetricLabel,
  Option,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Scope,
  Stream,
  Tracer
} from "effect"
import * as DefaultServices from "effect/DefaultServices"
import * as Metrics from "../Metrics.js"
import { WorkerFailed } from "../WorkerError.js"
import type { WorkerStatus } from "../WorkerStatus.js"
import { IterationScope } from "./iterationScope.js"
import { type CronTicks, nextTick, tickFrom } from "./recurring/schedule.js"
import { causeText, FiberTracker, loggedCause, type Managed, type Registry, StatusCell } from "./registry.js"
import type { TimerEntry } from "./timer.js"

export type FailurePolicy = "continue" | "restart" | "stopHost"
export type Overlap = "skip" | "wait" | "allow"

export type Timing =
  | {
    readonly _tag: "Schedule"
    readonly schedule: Schedule.Schedule<unknown, unknown, never> | undefined
    /** Set instead of `schedule` for a plain interval: stepped without running an effect. */
    readonly everyMillis?: number | undefined
  }
  | { readonly _tag: "Cron"; readonly ticks: CronTicks; readonly overlap: Overlap }

export interface Common {
  readonly name: string
  /** The `worker` label of its metrics, when shared with other workers (`Worker.mergeAll`). */
  readonly metricsLabel: string | undefined
  readonly retry: Schedule.Schedule<unknown, unknown, never> | undefined
  readonly onFailure: FailurePolicy
  /** `undefined`: trace when a tracer other than Effect's built-in one is installed. */
  readonly tracing: boolean | undefined
}

/** What one attempt runs: the task, and the layer built fresh for it. */
export interface Attempt {
  readonly task: Effect.Effect<unknown, unknown, Scope.Scope>
  readonly layer: Layer.Layer<never> | undefined
}

/** Effect's built-in tracer, which records spans that nothing exports. */
const builtInTracer = Effect.runSync(Effect.tracer)

const scopedAttempt = (attempt: Attempt): Effect.Effect<unknown, unknown> => {
  const scoped = Effect.scoped(attempt.task)
  return attempt.layer === undefined ? scoped : Effect.provide(scoped, attempt.layer)
}

const outcomeSuccess = MetricLabel.make("outcome", "success")
const outcomeFailure = MetricLabel.make("outcome", "failure")
const outcomeAck = MetricLabel.make("outcome", "ack")
const outcomeDeadLetter = MetricLabel.make("outcome", "deadLetter")

/** Delay before the n-th consecutive restart: 1 s, doubling, at most 1 min. */
const restartDelayMillis = (restarts: number): number => Math.min(60_000, 1000 * 2 ** Math.max(0, restarts - 1))

type Hook = MetricHook.MetricHook<number, unknown>

/**
 * One duration histogram for all workers: a histogram per worker cost about
 * 1.1 KB of heap each, more than the rest of a worker.
 */
const durationHook = Metric.globalMetricRegistry.get(Metrics.keys.duration) as Hook

/**
 * Metric hooks of one worker, looked up once: `Metric.unsafeUpdate` with tags
 * hashes the key on every call, which cost more than the rest of a cheap
 * iteration with thousands of workers. Rare outcomes are looked up lazily.
 */
class WorkerMetrics {
  private readonly label: MetricLabel.MetricLabel
  private hooks: Partial<
    Record<"success" | "failure" | "failures" | "skipped" | "duration" | "ack" | "deadLetter", Hook>
  > = {}
  constructor(name: string) {
    this.label = MetricLabel.make("worker", name)
  }
  private hook(
    slot: keyof WorkerMetrics["hooks"],
    key: MetricKey.MetricKey<MetricKeyType.MetricKeyType<number, unknown>>,
    outcome?: MetricLabel.MetricLabel
  ): Hook {
    return this.hooks[slot] ??= Metric.globalMetricRegistry.get(
      MetricKey.taggedWithLabels(key, outcome === undefined ? [this.label] : [this.label, outcome])
    ) as Hook
  }
  success(seconds: number): void {
    this.hook("success", Metrics.keys.iterations, outcomeSuccess).update(1)
    durationHook.update(seconds)
  }
  failure(seconds: number): void {
    this.hook("failure", Metrics.keys.iterations, outcomeFailure).update(1)
    durationHook.update(seconds)
  }
  failedAttempt(): void {
    this.hook("failures", Metrics.keys.failures).update(1)
  }
  skipped(): void {
    this.hook("skipped", Metrics.keys.skipped).update(1)
  }
  ack(): void {
    this.hook("ack", Metrics.keys.items, outcomeAck).update(1)
  }
  deadLetter(): void {
    this.hook("deadLetter", Metrics.keys.items, outcomeDeadLetter).update(1)
  }
}

/**
 * Runs `attempt` until it succeeds or `retry` gives up, keeping the status
 * cell and metrics current. Interruption is returned as is.
 */
interface Retrying {
  readonly retry: Schedule.Schedule<unknown, unknown, never> | undefined
  readonly cell: StatusCell
  readonly metrics: WorkerMetrics
  /** What failed, for the log: `Worker "x" iteration`. */
  readonly what: string
}

const withRetries = <A>(attempt: Effect.Effect<A, unknown>, retrying: Retrying): Effect.Effect<Exit.Exit<A, unknown>> =>
  Effect.flatMap(Effect.exit(attempt), (exit) =>
    Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)
      ? Effect.succeed(exit)
      : retryLoop(exit, attempt, retrying))

/** The slow path of `withRetries`, from the first failed attempt on. */
const retryLoop = <A>(
  first: Exit.Exit<A, unknown>,
  attempt: Effect.Effect<A, unknown>,
  { cell, metrics, retry, what }: Retrying
): Effect.Effect<Exit.Exit<A, unknown>> =>
  Effect.gen(function*() {
    let driver: Schedule.ScheduleDriver<unknown, unknown, never> | undefined
    let exit = first
    let attempts = 0
    while (true) {
      if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return exit
      const cause = exit.cause
      attempts++
      cell.failures++
      cell.lastError = causeText(cause)
      metrics.failedAttempt()
      if (retry === undefined) {
        yield* Effect.logError(`${what} failed`, loggedCause(cause))
        return exit
      }
      driver ??= yield* Schedule.driver(retry)
      cell.set("backingOff")
      // The driver waits before answering, so a retry is announced by attempt number, not delay.
      yield* Effect.logWarning(
        `${what} failed (attempt ${attempts}); retrying on its retry schedule`,
        loggedCause(cause)
      )
      const next = yield* Effect.either(driver.next(Cause.squash(cause)))
      if (next._tag === "Left") {
        yield* Effect.logError(`${what} failed, retries spent`, loggedCause(cause))
        return exit
      }
      cell.set("running")
      exit = yield* Effect.exit(attempt)
    }
  }).pipe(Effect.annotateLogs("worker", cell.name))

abstract class Base implements Managed {
  readonly status: StatusCell
  protected readonly tracker: FiberTracker
  protected readonly metrics: WorkerMetrics
  protected stopping = false
  protected restarts = 0
  protected readonly entry: TimerEntry = { at: 0, index: -1, fire: () => this.fire() }

  /** Whether a tracer other than Effect's built-in one was installed where the worker was built. */
  protected readonly customTracer: boolean

  constructor(
    protected readonly registry: Registry,
    runtime: Runtime.Runtime<never>,
    protected readonly clock: Clock.Clock,
    protected readonly common: Common,
    readonly kind: WorkerStatus["kind"],
    scope?: IterationScope
  ) {
    this.status = new StatusCell(common.name, kind, registry)
    this.tracker = new FiberTracker(runtime, scope)
    this.customTracer = Context.get(
      FiberRefs.getOrDefault(runtime.fiberRefs, DefaultServices.currentServices),
      Tracer.Tracer
    ) !== builtInTracer
    const label = common.metricsLabel
    this.metrics = label === undefined
      ? new WorkerMetrics(common.name)
      : registry.shared(`metrics:${label}`, () => new WorkerMetrics(label))
  }

  get name(): string {
    return this.common.name
  }

  abstract start(): void
  protected abstract fire(): void

  stopFork(): void {
    this.stopping = true
    this.registry.timer.remove(this.entry)
    this.status.nextRunAt = undefined
    this.tracker.interruptAll()
    if (this.tracker.size === 0 && this.status.state !== "failed") this.status.set("stopped")
  }

  awaitStopped(): Effect.Effect<void> {
    return Effect.zipRight(
      this.tracker.awaitEmpty(),
      Effect.sync(() => {
        if (this.status.state !== "failed" && this.status.state !== "stopped") this.status.set("stopped")
      })
    )
  }

  /** Waits out the restart delay, then runs the worker from the start. */
  protected scheduleRestart(): void {
    this.status.set("backingOff")
    this.scheduleAt(this.clock.unsafeCurrentTimeMillis() + restartDelayMillis(this.restarts))
  }

  protected scheduleAt(at: number): void {
    if (this.stopping) return
    this.status.nextRunAt = at
    this.registry.timer.schedule(this.entry, at)
  }

  /** Applies the failure policy once retries are spent: run `"again"` after the restart delay, at the `"next"` time, or `"end"`. */
  protected giveUp(cause: Cause.Cause<unknown>): "again" | "next" | "end" {
    switch (this.common.onFailure) {
      case "continue":
        return "next"
      case "restart": {
        this.restarts++
        return "again"
      }
      case "stopHost": {
        this.status.set("failed")
        this.registry.signalFailure(new WorkerFailed({ worker: this.name, cause: Cause.squash(cause) }))
        return "end"
      }
    }
  }
}

/** Workers driven by a `Schedule` (or run once) and cron workers. */
export class ScheduledWorker extends Base {
  private scheduleState: unknown
  private running = 0
  private pending = false
  private readonly shared: IterationScope | undefined
  private readonly tracing: boolean

  constructor(
    registry: Registry,
    runtime: Runtime.Runtime<never>,
    clock: Clock.Clock,
    common: Common,
    private readonly timing: Timing,
    private readonly initialDelayMillis: number,
    private readonly attempt: Attempt
  ) {
    const shared = attempt.layer === undefined && !(timing._tag === "Cron" && timing.overlap === "allow")
      ? new IterationScope()
      : undefined
    super(registry, runtime, clock, common, timing._tag === "Cron" ? "cron" : "scheduled", shared)
    this.shared = shared
    this.scheduleState = timing._tag === "Schedule" ? timing.schedule?.initial : undefined
    this.tracing = common.tracing ?? this.customTracer
  }

  /** One attempt of the task, in its own scope (and layer). */
  private task(): Effect.Effect<unknown, unknown> {
    return this.shared === undefined ? scopedAttempt(this.attempt) : this.shared.run(this.attempt.task)
  }

  private begin(): number {
    const started = this.clock.unsafeCurrentTimeMillis()
    this.status.lastStartedAt = started
    this.status.set("running")
    return started
  }

  /**
   * Records how an iteration ended and decides what comes next. Returns what
   * is left to run as an effect (logging, a schedule step with effects), if any.
   */
  private finish(exit: Exit.Exit<unknown, unknown>, started: number): Effect.Effect<void> | undefined {
    const ended = this.clock.unsafeCurrentTimeMillis()
    this.status.lastEndedAt = ended
    this.running--
    if (Exit.isSuccess(exit)) {
      this.status.iterations++
      this.restarts = 0
      this.metrics.success((ended - started) / 1000)
      return this.next("next", false, ended)
    }
    // Interrupted by stop: nothing more to do. Interrupted by itself (Effect.interrupt, a joined
    // interrupted fiber): a failed iteration like any other, or the worker would silently end.
    if (Cause.isInterruptedOnly(exit.cause) && this.stopping) return undefined
    this.status.iterations++
    this.metrics.failure((ended - started) / 1000)
    if (Cause.isInterruptedOnly(exit.cause)) {
      this.status.failures++
      this.status.lastError = "the iteration interrupted itself"
      const logged = Effect.logError(`Worker "${this.name}" iteration interrupted itself`).pipe(
        Effect.annotateLogs("worker", this.name)
      )
      const rest = this.next(this.giveUp(exit.cause), true, ended)
      return rest === undefined ? logged : Effect.zipRight(logged, rest)
    }
    return this.next(this.giveUp(exit.cause), true, ended)
  }

  private retries(
    first: Exit.Exit<unknown, unknown>,
    started: number,
    ended?: (exit: Exit.Exit<unknown, unknown>) => void
  ): Effect.Effect<void> {
    return Effect.flatMap(
      retryLoop(first, this.task(), {
        retry: this.common.retry,
        cell: this.status,
        metrics: this.metrics,
        what: `Worker "${this.name}" iteration`
      }),
      (exit) => {
        ended?.(exit)
        return this.finish(exit, started) ?? Effect.void
      }
    )
  }

  /**
   * What follows the first attempt of an iteration: its scope closed, then its
   * outcome recorded, or the task retried. `undefined` when nothing is left to run.
   */
  private settle(
    exit: Exit.Exit<unknown, unknown>,
    started: number,
    ended?: (exit: Exit.Exit<unknown, unknown>) => void
  ): Effect.Effect<void> | undefined {
    const close = this.shared?.end(exit)
    const rest = Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)
      ? this.finish(exit, started)
      : this.retries(exit, started, ended)
    if (close === undefined) return rest
    const closing = Effect.uninterruptible(close)
    return rest === undefined ? closing : Effect.zipRight(closing, rest)
  }

  /**
   * Starts an iteration. Untraced, its fiber runs the task alone and `onExit`
   * settles it: a cheap task then costs one fiber and no other effect, and
   * only what is left (a retry, a log line) runs on a fiber of its own. Traced,
   * the span covers the whole iteration, retries included, so it settles itself.
   */
  private launch(): void {
    this.running++
    const started = this.begin()
    this.shared?.begin()
    const first = this.shared === undefined ? scopedAttempt(this.attempt) : this.attempt.task as Effect.Effect<unknown>
    if (!this.tracing) {
      this.tracker.fork(first, this, started)
      return
    }
    // The span ends with the iteration's outcome, after its retries: failed when the last attempt failed.
    let outcome: Exit.Exit<unknown, unknown> = Exit.void
    const iteration = Effect.flatMap(Effect.exit(first), (exit) => {
      outcome = exit
      return this.settle(exit, started, (last) => outcome = last) ?? Effect.void
    })
    const failed = Effect.suspend(() =>
      Exit.isFailure(outcome) && !Cause.isInterruptedOnly(outcome.cause) ? outcome : Effect.void
    )
    this.tracker.fork(
      Effect.exit(Effect.withSpan(Effect.zipRight(iteration, failed), "effect_workers.worker.iteration", {
        attributes: { "effect_workers.worker": this.name },
        root: true,
        // A stack trace per span was the largest single cost of a cheap iteration.
        captureStackTrace: false
      })),
      this
    )
  }

  /**
   * Called as an iteration's fiber ends, with its start time when it is left
   * to settle here. A traced iteration settles itself, but one interrupted may
   * leave the scope its task opened: it is closed on a fiber of its own.
   */
  onExit(exit: Exit.Exit<unknown, unknown>, started: number | undefined): void {
    const rest = started !== undefined
      ? this.settle(exit, started)
      : Exit.isFailure(exit)
      ? this.shared?.end(exit)
      : undefined
    if (rest !== undefined) this.tracker.fork(rest)
  }

  private afterStep(
    now: number,
    [state, _out, decision]: readonly [unknown, unknown, ScheduleDecision.ScheduleDecision]
  ) {
    this.scheduleState = state
    if (ScheduleDecision.isDone(decision)) {
      this.status.nextRunAt = undefined
      this.status.set("stopped")
      return
    }
    this.status.set("idle")
    this.scheduleAt(Math.max(now, ScheduleIntervals.start(decision.intervals)))
  }

  start(): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    const from = now + this.initialDelayMillis
    this.status.set("idle")
    if (this.timing._tag === "Cron") {
      const ticks = this.timing.ticks
      this.scheduleTick(() => tickFrom(ticks, new Date(from)), from - 1)
    } else {
      this.scheduleAt(from)
    }
  }

  protected fire(): void {
    if (this.stopping) return
    if (this.timing._tag === "Cron") {
      // Next tick after this one, or after now when the process was paused past several ticks.
      const from = Math.max(this.entry.at, this.clock.unsafeCurrentTimeMillis())
      const ticks = this.timing.ticks
      this.scheduleTick(() => nextTick(ticks, new Date(from)), from)
      if (this.running > 0) {
        switch (this.timing.overlap) {
          case "skip": {
            this.status.skipped++
            this.metrics.skipped()
            this.registry.notify()
            return
          }
          case "wait": {
            this.pending = true
            return
          }
          case "allow":
            break
        }
      }
    } else {
      this.status.nextRunAt = undefined
    }
    this.launch()
  }

  /** Schedules a cron tick; never at or before `from`, which the timer would fire at once, again and again. */
  private scheduleTick(next: () => Date | undefined, from: number): void {
    let at: number | undefined
    try {
      at = next()?.getTime()
    } catch {
      at = undefined
    }
    if (at !== undefined && at > from) return this.scheduleAt(at)
    this.status.nextRunAt = undefined
    this.status.lastError = `no cron tick after ${new Date(from).toISOString()}`
    this.status.set("failed")
  }

  /** Decides the next run once an iteration has ended at `now`; called from the iteration's fiber. */
  private next(decision: "again" | "next" | "end", failed: boolean, now: number): Effect.Effect<void> | undefined {
    if (this.stopping || decision === "end") return undefined
    if (this.timing._tag === "Cron") {
      if (decision === "again") {
        this.scheduleRestart()
      } else if (this.pending) {
        this.pending = false
        this.launch()
      } else if (this.running === 0) {
        this.status.set("idle")
      }
      return undefined
    }
    const schedule = this.timing.schedule
    const every = this.timing.everyMillis
    if (every !== undefined && decision !== "again") {
      // Stepping an Effect `Schedule` runs several effects; a plain interval is one addition.
      this.status.set("idle")
      this.scheduleAt(now + every)
      return undefined
    }
    if (decision === "again") {
      this.scheduleState = schedule?.initial
      this.scheduleRestart()
      return undefined
    }
    if (schedule === undefined) {
      this.status.set(failed ? "failed" : "stopped")
      return undefined
    }
    const step = schedule.step(now, undefined, this.scheduleState)
    // A step that is already a value (an Exit) is read directly instead of being run.
    if (Exit.isExit(step) && Exit.isSuccess(step)) {
      this.afterStep(now, step.value as readonly [unknown, unknown, ScheduleDecision.ScheduleDecision])
      return undefined
    }
    return Effect.map(step, (result) => this.afterStep(now, result))
  }
}

/** A source a consumer takes items from, and gives unfinished items back to. */
export interface Source<A> {
  /** Takes the next item; `None` when the source has ended. */
  readonly take: Effect.Effect<Option.Option<A>, unknown, Scope.Scope>
  readonly handBack: (item: A) => Effect.Effect<void>
}

export interface ConsumerOptions<A> {
  readonly source: (scope: Scope.Scope) => Effect.Effect<Source<A>>
  readonly handler: (item: A) => Attempt
  readonly concurrency: number
  readonly deadLetter: (item: A, cause: Cause.Cause<unknown>) => Effect.Effect<void, unknown>
}

/** A queue consumer: takes items while a slot is free, retries each, dead-letters what still fails. */
export class ConsumerWorker<A> extends Base {
  private inFlight = 0
  private sourceEnded = false
  // One semaphore for the worker's life: handlers still in flight from before a restart keep their slots.
  private readonly slots: Effect.Semaphore

  constructor(
    registry: Registry,
    runtime: Runtime.Runtime<never>,
    clock: Clock.Clock,
    common: Common,
    private readonly options: ConsumerOptions<A>
  ) {
    super(registry, runtime, clock, common, "consumer")
    this.slots = Effect.unsafeMakeSemaphore(options.concurrency)
  }

  start(): void {
    this.status.set("idle")
    this.scheduleAt(this.clock.unsafeCurrentTimeMillis())
  }

  protected fire(): void {
    if (this.stopping) return
    this.status.nextRunAt = undefined
    this.tracker.fork(this.loop)
  }

  private handle(item: A, source: Source<A>): Effect.Effect<void> {
    const self = this
    const what = `Worker "${this.name}" item`
    const attempt = Effect.suspend(() => scopedAttempt(this.options.handler(item)))
    return Effect.gen(function*() {
      self.inFlight++
      self.status.lastStartedAt = self.clock.unsafeCurrentTimeMillis()
      if (self.status.state !== "running") self.status.set("running")
      const exit = yield* withRetries(attempt, {
        retry: self.common.retry,
        cell: self.status,
        metrics: self.metrics,
        what
      })
      self.status.lastEndedAt = self.clock.unsafeCurrentTimeMillis()
      if (Exit.isSuccess(exit)) {
        self.status.iterations++
        self.restarts = 0
        self.metrics.ack()
        return
      }
      // Interrupted by stop: the item is handed back. Interrupted by itself: dead-lettered like a failure.
      if (Cause.isInterruptedOnly(exit.cause) && self.stopping) return yield* Effect.interrupt
      self.status.iterations++
      self.metrics.deadLetter()
      yield* self.options.deadLetter(item, exit.cause).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logError(
            `Worker "${self.name}": the dead-letter handler failed; the item is only in this log`,
            loggedCause(cause)
          )
            .pipe(Effect.annotateLogs("item", String(item)))
        )
      )
    }).pipe(
      Effect.onInterrupt(() => source.handBack(item)),
      Effect.ensuring(Effect.sync(() => {
        self.inFlight--
        if (self.inFlight === 0 && !self.stopping && self.status.state !== "failed") {
          self.status.set(self.sourceEnded ? "stopped" : "idle")
        }
      })),
      Effect.annotateLogs("worker", this.name)
    )
  }

  private readonly loop: Effect.Effect<void> = Effect.gen(this, function*() {
    this.sourceEnded = false
    // The scope holds the source (a stream's pull); closing it hands back what was pulled but not started.
    const exit = yield* Effect.exit(Effect.acquireUseRelease(
      Scope.make(),
      (scope) =>
        Effect.gen(this, function*() {
          const source = yield* this.options.source(scope)
          const slots = this.slots
          while (true) {
            yield* slots.take(1)
            const ended = yield* Effect.uninterruptibleMask((restore) =>
              restore(Scope.extend(source.take, scope)).pipe(
                Effect.map((next) => {
                  if (Option.isNone(next)) return true
                  this.tracker.fork(this.handle(next.value, source).pipe(Effect.ensuring(slots.release(1))))
                  return false
                })
              )
            )
            if (ended) return
          }
        }),
      (scope, exit) => Scope.close(scope, exit)
    ))
    // A source that ended, or a queue that was shut down (its take is interrupted), ends the worker.
    if (Exit.isSuccess(exit) || (Cause.isInterruptedOnly(exit.cause) && !this.stopping)) {
      // The worker is done once the items in flight are.
      this.sourceEnded = true
      if (!this.stopping && this.inFlight === 0) this.status.set("stopped")
      return
    }
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    this.status.failures++
    this.status.lastError = causeText(exit.cause)
    yield* Effect.logError(`Worker "${this.name}": its source failed`, loggedCause(exit.cause))
    const decision = this.giveUp(exit.cause)
    if (decision === "again") {
      this.scheduleRestart()
    } else if (decision === "next") {
      this.status.set("failed")
    }
  }).pipe(Effect.annotateLogs("worker", this.name))
}

/** Source over an Effect queue: untaken items stay in it, unfinished ones are offered back. */
export const queueSource = <A>(
  take: Effect.Effect<A, unknown>,
  offer: ((item: A) => Effect.Effect<boolean>) | undefined,
  onUnfinished: ((item: A) => Effect.Effect<void>) | undefined,
  name: string
): Source<A> => ({
  take: Effect.map(take, Option.some),
  handBack: (item) =>
    onUnfinished !== undefined
      ? onUnfinished(item)
      : offer !== undefined
      ? Effect.flatMap(offer(item), (accepted) =>
        accepted ? Effect.void : Effect.logWarning(`Worker "${name}": the queue refused an unfinished item`).pipe(
          Effect.annotateLogs("item", String(item))
        ))
      : Effect.logWarning(`Worker "${name}": an unfinished item could not be handed back`).pipe(
        Effect.annotateLogs("item", String(item))
      )
})

/** Source over a stream: pulled one chunk at a time; buffered and unfinished items go to `onUnfinished`. */
export const streamSource = <A>(
  stream: Stream.Stream<A, unknown>,
  onUnfinished: ((item: A) => Effect.Effect<void>) | undefined,
  name: string
) =>
(scope: Scope.Scope): Effect.Effect<Source<A>> =>
  Effect.gen(function*() {
    const pull = yield* Scope.extend(Stream.toPull(stream), scope)
    let buffer: Array<A> = []
    const handBack = (item: A): Effect.Effect<void> =>
      onUnfinished !== undefined
        ? onUnfinished(item)
        : Effect.logWarning(`Worker "${name}": an unfinished stream item was not handed back; set onUnfinished`).pipe(
          Effect.annotateLogs("item", String(item))
        )
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        const rest = buffer
        buffer = []
        return Effect.forEach(rest, handBack, { discard: true })
      })
    )
    const take: Effect.Effect<Option.Option<A>, unknown> = Effect.suspend(() => {
      if (buffer.length > 0) return Effect.succeed(Option.some(buffer.shift()!))
      return Effect.matchEffect(pull, {
        onFailure: (error) => Option.isNone(error) ? Effect.succeed(Option.none<A>()) : Effect.fail(error.value),
        onSuccess: (chunk) => {
          buffer = Chunk.toArray(chunk)
          return buffer.length > 0 ? Effect.succeed(Option.some(buffer.shift()!)) : take
        }
      })
    })
    return { take, handBack }
  })
