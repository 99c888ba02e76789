import type { Clock, Cron, Runtime } from "effect"
import {
  Cause,
  Chunk,
  Cron as CronModule,
  Duration,
  Effect,
  Exit,
  Metric,
  MetricLabel,
  Option,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Scope,
  Stream
} from "effect"
import * as Metrics from "../Metrics.js"
import { WorkerFailed } from "../WorkerError.js"
import type { WorkerStatus } from "../WorkerStatus.js"
import { causeText, FiberTracker, type Managed, type Registry, StatusCell } from "./registry.js"
import type { TimerEntry } from "./timer.js"

export type FailurePolicy = "continue" | "restart" | "stopHost"
export type Overlap = "skip" | "wait" | "allow"

export type Timing =
  | { readonly _tag: "Schedule"; readonly schedule: Schedule.Schedule<unknown, unknown, never> | undefined }
  | { readonly _tag: "Cron"; readonly cron: Cron.Cron; readonly overlap: Overlap }

export interface Common {
  readonly name: string
  readonly retry: Schedule.Schedule<unknown, unknown, never> | undefined
  readonly onFailure: FailurePolicy
  readonly tracing: boolean
}

const outcomeSuccess = [MetricLabel.make("outcome", "success")]
const outcomeFailure = [MetricLabel.make("outcome", "failure")]
const outcomeAck = [MetricLabel.make("outcome", "ack")]
const outcomeDeadLetter = [MetricLabel.make("outcome", "deadLetter")]
const noLabels: Array<MetricLabel.MetricLabel> = []

/** Delay before the n-th consecutive restart: 1 s, doubling, at most 1 min. */
export const restartDelayMillis = (restarts: number): number => Math.min(60_000, 1000 * 2 ** Math.max(0, restarts - 1))

/** Metrics of one worker, tagged once at definition. */
class WorkerMetrics {
  readonly iterations: Metric.Metric.Counter<number>
  readonly failures: Metric.Metric.Counter<number>
  readonly skipped: Metric.Metric.Counter<number>
  readonly duration: Metric.Metric.Histogram<number>
  readonly items: Metric.Metric.Counter<number>
  constructor(name: string) {
    this.iterations = Metric.tagged(Metrics.workerIterations, "worker", name)
    this.failures = Metric.tagged(Metrics.workerFailures, "worker", name)
    this.skipped = Metric.tagged(Metrics.workerSkipped, "worker", name)
    this.duration = Metric.tagged(Metrics.workerDuration, "worker", name)
    this.items = Metric.tagged(Metrics.consumerItems, "worker", name)
  }
}

/**
 * Runs `attempt` until it succeeds or `retry` gives up, keeping the status
 * cell and metrics current. Interruption is returned as is.
 */
const withRetries = <A>(
  attempt: Effect.Effect<A, unknown>,
  retry: Schedule.Schedule<unknown, unknown, never> | undefined,
  cell: StatusCell,
  metrics: WorkerMetrics,
  what: string
): Effect.Effect<Exit.Exit<A, unknown>> =>
  Effect.gen(function*() {
    let driver: Schedule.ScheduleDriver<unknown, unknown, never> | undefined
    while (true) {
      const exit = yield* Effect.exit(attempt)
      if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return exit
      cell.failures++
      cell.lastError = causeText(exit.cause)
      metrics.failures.unsafeUpdate(1, noLabels)
      if (retry === undefined) {
        yield* Effect.logError(`${what} failed`, exit.cause)
        return exit
      }
      driver ??= yield* Schedule.driver(retry)
      const next = yield* Effect.either(
        driver.next(Cause.squash(exit.cause)).pipe(
          Effect.tap((delay) =>
            Effect.logWarning(
              `${what} failed, retrying${Duration.isDuration(delay) ? ` in ${Duration.format(delay)}` : ""}`,
              exit.cause
            )
          ),
          Effect.onInterrupt(() => Effect.sync(() => cell.set("running"))),
          Effect.zipLeft(Effect.void),
          Effect.interruptible,
          (eff) => Effect.zipRight(Effect.sync(() => cell.set("backingOff")), eff)
        )
      )
      if (next._tag === "Left") {
        yield* Effect.logError(`${what} failed, retries spent`, exit.cause)
        return exit
      }
      cell.set("running")
    }
  })

abstract class Base implements Managed {
  readonly status: StatusCell
  protected readonly tracker: FiberTracker
  protected readonly metrics: WorkerMetrics
  protected stopping = false
  protected restarts = 0
  protected readonly entry: TimerEntry = { at: 0, index: -1, fire: () => this.fire() }

  constructor(
    protected readonly registry: Registry,
    runtime: Runtime.Runtime<never>,
    protected readonly clock: Clock.Clock,
    protected readonly common: Common,
    readonly kind: WorkerStatus["kind"]
  ) {
    this.status = new StatusCell(common.name, kind, registry)
    this.tracker = new FiberTracker(runtime)
    this.metrics = new WorkerMetrics(common.name)
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

  readonly awaitStopped: Effect.Effect<void> = Effect.suspend(() => this.tracker.awaitEmpty).pipe(
    Effect.zipRight(Effect.sync(() => {
      if (this.status.state !== "failed" && this.status.state !== "stopped") this.status.set("stopped")
    }))
  )

  protected scheduleAt(at: number): void {
    if (this.stopping) return
    this.status.nextRunAt = at
    this.registry.timer.schedule(this.entry, at)
  }

  /** Applies the failure policy once retries are spent; returns true when the worker should run again now. */
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
  private readonly iteration: Effect.Effect<void>

  constructor(
    registry: Registry,
    runtime: Runtime.Runtime<never>,
    clock: Clock.Clock,
    common: Common,
    private readonly timing: Timing,
    private readonly initialDelayMillis: number,
    task: Effect.Effect<unknown, unknown>
  ) {
    super(registry, runtime, clock, common, timing._tag === "Cron" ? "cron" : "scheduled")
    this.scheduleState = timing._tag === "Schedule" ? timing.schedule?.initial : undefined
    const self = this
    const what = `Worker "${common.name}" iteration`
    let body: Effect.Effect<void> = Effect.gen(function*() {
      const started = self.clock.unsafeCurrentTimeMillis()
      self.status.lastStartedAt = started
      self.status.set("running")
      const exit = yield* withRetries(task, common.retry, self.status, self.metrics, what)
      const ended = self.clock.unsafeCurrentTimeMillis()
      self.status.lastEndedAt = ended
      self.metrics.duration.unsafeUpdate((ended - started) / 1000, noLabels)
      self.running--
      if (Exit.isSuccess(exit)) {
        self.status.iterations++
        self.restarts = 0
        self.metrics.iterations.unsafeUpdate(1, outcomeSuccess)
        return yield* self.next("next", false)
      }
      if (Cause.isInterruptedOnly(exit.cause)) return
      self.status.iterations++
      self.metrics.iterations.unsafeUpdate(1, outcomeFailure)
      return yield* self.next(self.giveUp(exit.cause), true)
    })
    if (common.tracing) {
      body = Effect.withSpan(body, "effect_workers.worker.iteration", {
        attributes: { "effect_workers.worker": common.name },
        root: true
      })
    }
    this.iteration = body.pipe(
      Effect.annotateLogs("worker", common.name),
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          this.running = Math.max(0, this.running - 1)
        })
      )
    )
  }

  start(): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    const from = now + this.initialDelayMillis
    this.status.set("idle")
    if (this.timing._tag === "Cron") {
      this.scheduleAt(CronModule.next(this.timing.cron, new Date(from - 1)).getTime())
    } else {
      this.scheduleAt(from)
    }
  }

  protected fire(): void {
    if (this.stopping) return
    if (this.timing._tag === "Cron") {
      const now = this.clock.unsafeCurrentTimeMillis()
      // Next tick after this one, or after now when the process was paused past several ticks.
      this.scheduleAt(CronModule.next(this.timing.cron, new Date(Math.max(this.entry.at, now))).getTime())
      if (this.running > 0) {
        switch (this.timing.overlap) {
          case "skip": {
            this.status.skipped++
            this.metrics.skipped.unsafeUpdate(1, noLabels)
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

  private launch(): void {
    this.running++
    this.tracker.fork(this.iteration)
  }

  private next(decision: "again" | "next" | "end", failed: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.stopping) return Effect.void
      if (decision === "end") return Effect.void
      if (this.timing._tag === "Cron") {
        if (decision === "again") {
          this.status.set("backingOff")
          this.scheduleAt(this.clock.unsafeCurrentTimeMillis() + restartDelayMillis(this.restarts))
          return Effect.void
        }
        if (this.pending) {
          this.pending = false
          this.launch()
        } else if (this.running === 0) {
          this.status.set("idle")
        }
        return Effect.void
      }
      const schedule = this.timing.schedule
      const now = this.clock.unsafeCurrentTimeMillis()
      if (decision === "again") {
        this.scheduleState = schedule?.initial
        this.status.set("backingOff")
        this.scheduleAt(now + restartDelayMillis(this.restarts))
        return Effect.void
      }
      if (schedule === undefined) {
        this.status.set(failed ? "failed" : "stopped")
        return Effect.void
      }
      return schedule.step(now, undefined, this.scheduleState).pipe(
        Effect.map(([state, _out, step]) => {
          this.scheduleState = state
          if (ScheduleDecision.isDone(step)) {
            this.status.nextRunAt = undefined
            this.status.set("stopped")
            return
          }
          this.status.set("idle")
          this.scheduleAt(Math.max(now, ScheduleIntervals.start(step.intervals)))
        })
      )
    })
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
  readonly handler: (item: A) => Effect.Effect<unknown, unknown>
  readonly concurrency: number
  readonly deadLetter: (item: A, cause: Cause.Cause<unknown>) => Effect.Effect<void, unknown>
}

/** A queue consumer: takes items while a slot is free, retries each, dead-letters what still fails. */
export class ConsumerWorker<A> extends Base {
  private inFlight = 0
  private sourceEnded = false

  constructor(
    registry: Registry,
    runtime: Runtime.Runtime<never>,
    clock: Clock.Clock,
    common: Common,
    private readonly options: ConsumerOptions<A>
  ) {
    super(registry, runtime, clock, common, "consumer")
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
    const attempt = Effect.suspend(() => this.options.handler(item))
    return Effect.gen(function*() {
      self.inFlight++
      self.status.lastStartedAt = self.clock.unsafeCurrentTimeMillis()
      if (self.status.state !== "running") self.status.set("running")
      const exit = yield* withRetries(attempt, self.common.retry, self.status, self.metrics, what)
      self.status.lastEndedAt = self.clock.unsafeCurrentTimeMillis()
      if (Exit.isSuccess(exit)) {
        self.status.iterations++
        self.metrics.items.unsafeUpdate(1, outcomeAck)
        return
      }
      if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
      self.status.iterations++
      self.metrics.items.unsafeUpdate(1, outcomeDeadLetter)
      yield* self.options.deadLetter(item, exit.cause).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logError(`Worker "${self.name}": the dead-letter handler failed; the item is only in this log`, cause)
            .pipe(Effect.annotateLogs("item", String(item)))
        )
      )
    }).pipe(
      Effect.onInterrupt(() => source.handBack(item)),
      Effect.ensuring(Effect.sync(() => {
        self.inFlight--
        if (self.inFlight === 0 && !self.stopping) self.status.set(self.sourceEnded ? "stopped" : "idle")
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
          const slots = yield* Effect.makeSemaphore(this.options.concurrency)
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
    if (Exit.isSuccess(exit)) {
      // The source ended: the worker is done once the items in flight are.
      this.sourceEnded = true
      if (!this.stopping && this.inFlight === 0) this.status.set("stopped")
      return
    }
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    this.status.failures++
    this.status.lastError = causeText(exit.cause)
    yield* Effect.logError(`Worker "${this.name}": its source failed`, exit.cause)
    const decision = this.giveUp(exit.cause)
    if (decision === "again") {
      this.status.set("backingOff")
      this.scheduleAt(this.clock.unsafeCurrentTimeMillis() + restartDelayMillis(this.restarts))
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
