import {
  Deferred,
  Effect,
  Exit,
  FiberId,
  Metric,
  type MetricHook,
  MetricKey,
  type MetricKeyType,
  MetricLabel,
  Option
} from "effect"
import type * as Job from "../../Job.js"
import * as Metrics from "../../Metrics.js"
import type { Limits } from "./limits.js"
import type { Claimed } from "./outcomes.js"

export interface QueueConfig {
  readonly name: string
  readonly concurrency: number
  /** Limits the runner's options give the queue, stored when it starts. */
  readonly limits?: Limits | undefined
}

export type Hook = MetricHook.MetricHook<number, unknown>

export const hookOf = (
  key: MetricKey.MetricKey<MetricKeyType.MetricKeyType<number, unknown>>,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): Hook => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, labels)) as Hook

/** State of one queue in this runner. */
export class QueueRunner {
  readonly pending: Array<Claimed> = []
  busy = 0
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

  /** Completed, and replaced, each time `busy` drops to 0. */
  private becameIdle = Deferred.unsafeMake<void>(FiberId.none)

  /** Called when `busy` drops to 0. */
  idleSignal(): void {
    Deferred.unsafeDone(this.becameIdle, Exit.void)
    this.becameIdle = Deferred.unsafeMake(FiberId.none)
  }

  /** Completes when no slot of the queue runs a job. */
  untilIdle(): Effect.Effect<void> {
    return Effect.suspend(() => this.busy === 0 ? Effect.void : Deferred.await(this.becameIdle))
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
      if (waiter !== undefined) {
        // Counted as taken from now on, so that room for claims never counts it twice.
        this.busy++
        this.taken++
        Deferred.unsafeDone(waiter, Exit.succeed(job))
      } else this.pending.push(job)
    }
  }

  /**
   * The next claimed job, or `undefined` when the runner stops. A job taken
   * counts in `busy` until {@link done} is called for it.
   */
  take(): Effect.Effect<Claimed | undefined> {
    return Effect.suspend(() => {
      const next = this.takeNow()
      if (next !== undefined) return Effect.succeed(next)
      const waiter = Deferred.unsafeMake<Claimed | undefined>(FiberId.none)
      this.waiters.push(waiter)
      return Effect.onInterrupt(Deferred.await(waiter), () =>
        Effect.flatMap(Deferred.poll(waiter), (handed) => {
          const index = this.waiters.indexOf(waiter)
          if (index >= 0) this.waiters.splice(index, 1)
          // Handed a job just as it was interrupted: the job goes back, first in line.
          return Option.isNone(handed) ? Effect.void : Effect.map(handed.value, (job) => {
            if (job !== undefined) {
              this.pending.unshift(job)
              this.done()
            }
          })
        }))
    })
  }

  /** The next job already claimed, if any, taken at once (see {@link take}). */
  takeNow(): Claimed | undefined {
    const next = this.pending.shift()
    if (next !== undefined) {
      this.busy++
      this.taken++
    }
    return next
  }

  /** A job taken is done with (run, or dropped). */
  done(): void {
    this.busy--
    if (this.busy === 0) this.idleSignal()
  }

  /** Slots waiting for a job. */
  get idle(): number {
    return this.waiters.length
  }

  get capacity(): number {
    return this.config.concurrency + this.prefetch
  }

  /** Free room for claims: slots and prefetch not taken. */
  room(): number {
    return this.capacity - this.pending.length - this.busy
  }

  /** Jobs taken by slots so far. */
  taken = 0

  /**
   * Jobs slots took while a claim of a queue with limits ran, a moving
   * average over the last claims: what the jobs claimed ahead must cover
   * for the slots not to run dry before the next claim lands.
   */
  claimLead = 0

  /** Records that `taken` jobs were taken while a claim ran. */
  claimed(taken: number): void {
    this.claimLead = (this.claimLead + taken) / 2
  }

  /**
   * Whether enough room is free to claim: half of it, or any when slots are
   * idle, or, for a queue with limits, any once the jobs claimed ahead would
   * run out before a claim lands. Its claims, under the queue's lock, take
   * longer: claiming only at half the room, 255 of 510 jobs lasted ~17.5 ms
   * while a keyed claim of 100 keys took 20-30 ms, and the slots ran dry.
   */
  wantsClaim(): boolean {
    const room = this.room()
    return room > 0 && (
      room >= Math.floor(this.capacity / 2) || this.pending.length === 0 ||
      (this.limited && this.pending.length <= this.claimLead)
    )
  }

  /** Whether the last claim found fewer jobs than it asked for: only a notification or the poll wakes it then. */
  drained = false

  /**
   * Whether the queue may have limits: it is then claimed under its lock,
   * which finds out. Set by heartbeats and notifications; the unlimited claim
   * claims nothing from a queue with limits, so a stale `false` only delays.
   */
  limited = true
  /** The queue had only `fair` at the last claim: it is claimed by one statement that takes the lock itself. */
  fairOnly = false
  /** A rate limit counts claims as starts: such a queue claims only for free slots, nothing ahead. */
  rateLimited = false

  /** Slots free for a job, not counting jobs claimed ahead. */
  freeSlots(): number {
    return Math.max(0, this.config.concurrency - this.busy - this.pending.length)
  }

  /** Adapts the prefetch before a claim. */
  adapt(): void {
    if (!this.drained && this.pending.length === 0 && this.busy < this.config.concurrency) {
      this.prefetch = Math.min(this.maxPrefetch, Math.max(this.config.concurrency, this.prefetch * 2))
    } else if (this.pending.length > this.prefetch / 2) {
      this.prefetch = Math.floor(this.prefetch / 2)
    }
  }
}
