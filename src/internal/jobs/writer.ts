/**
 * A runner's outcome writer: outcomes of runs are buffered and written in
 * batches by one fiber, off the slots' path.
 */
import { SqlError } from "@effect/sql/SqlError"
import { Clock, Deferred, Effect, Exit, FiberId } from "effect"
import type { Outcome } from "./outcomes.js"
import * as Statements from "./statements.js"
import type { Store } from "./store.js"

/** Outcomes written per statement. */
const batchSize = 5_000

export interface WriterConfig {
  readonly store: Store
  readonly runner: string
  /** Above this many unwritten outcomes, claims wait for them to be written. */
  readonly maxUnwritten: number
  /** A write is cancelled after this long, and tried again. */
  readonly timeoutMillis: number
  /** The queues whose runners are to be woken once `batch` is written. */
  readonly wake: (batch: ReadonlyArray<Outcome>) => ReadonlyArray<string>
  /** Called with every outcome once written, or dropped as one the database refuses. */
  readonly written: (batch: ReadonlyArray<Outcome>) => void
}

export class OutcomeWriter {
  private outcomes: Array<Outcome> = []
  /** Outcomes of the flush in flight. */
  private flushing = 0
  private signal = Deferred.unsafeMake<void>(FiberId.none)
  /** One flush at a time: the writer's and shutdown's. */
  private readonly writing = Effect.unsafeMakeSemaphore(1)
  /** Those waiting for room, woken once enough are written. */
  private readonly waiting = new Set<{ wake(): void }>()

  constructor(readonly config: WriterConfig) {}

  /** Outcomes not written yet, the flush in flight's excluded. */
  get buffered(): number {
    return this.outcomes.length
  }

  add(outcome: Outcome): void {
    this.outcomes.push(outcome)
    Deferred.unsafeDone(this.signal, Exit.void)
  }

  /** Whether too many outcomes wait to be written; if so `waiter` is woken once they are. */
  full(waiter: { wake(): void }): boolean {
    if (this.outcomes.length + this.flushing < this.config.maxUnwritten) return false
    this.waiting.add(waiter)
    return true
  }

  /** The jobs (`id:attempt`) whose outcomes wait to be written or are being written. */
  unwritten(): Set<string> {
    return new Set(this.outcomes.map((outcome) => `${outcome.job.id}:${outcome.job.attempt}`))
  }

  /**
   * Writes a batch: plain completions in one simple statement, the rest in
   * another. A write that waits too long (a row held by a user's
   * transaction) is cancelled and tried again later.
   */
  private write(batch: ReadonlyArray<Outcome>): Effect.Effect<void, SqlError> {
    const { runner, store, timeoutMillis } = this.config
    const plain: Array<Outcome> = []
    const other: Array<Outcome> = []
    for (const outcome of batch) {
      if (outcome.state === "completed" && outcome.result === null) plain.push(outcome)
      else other.push(outcome)
    }
    const wake = this.config.wake(batch)
    return Effect.zipRight(
      plain.length === 0 ? Effect.void : Statements.complete(store, runner, plain),
      other.length === 0 ? Effect.void : Statements.settle(store, runner, other)
    ).pipe(
      // A lost wake-up only delays the others until their next poll: the outcomes are written.
      Effect.zipRight(wake.length === 0 ? Effect.void : Effect.ignore(Statements.notifyQueues(store, wake))),
      Effect.interruptible,
      Effect.timeoutFail({
        duration: timeoutMillis,
        onTimeout: () => new SqlError({ message: `writing job outcomes took over ${timeoutMillis} ms` })
      })
    )
  }

  /**
   * Writes the buffered outcomes, one flush at a time and never cut short by
   * an interruption. When the database refuses the batch for what is in it,
   * each outcome is written alone, and one it still refuses is dropped and
   * logged: its job is rescued. When the database cannot be reached, or a
   * write waits too long, the outcomes stay buffered.
   */
  flush(): Effect.Effect<void, SqlError> {
    const self = this
    return this.writing.withPermits(1)(Effect.uninterruptible(
      Effect.gen(function*() {
        const batch = self.outcomes.splice(0, batchSize)
        if (batch.length === 0) return
        self.flushing = batch.length
        const all = yield* Effect.either(self.write(batch))
        if (all._tag === "Right") return self.config.written(batch)
        if (!Statements.isDataError(all.left)) {
          self.outcomes.unshift(...batch)
          return yield* all.left
        }
        for (let i = 0; i < batch.length; i++) {
          const one = yield* Effect.either(self.write([batch[i]]))
          if (one._tag === "Right" || Statements.isDataError(one.left)) {
            if (one._tag === "Left") {
              yield* Effect.logError(
                `Job runner: the outcome of job "${batch[i].job.name}" ${batch[i].job.id} cannot be stored ` +
                  `(${Statements.errorText(one.left)}); it will be rescued`
              )
            }
            self.config.written([batch[i]])
          } else {
            self.outcomes.unshift(...batch.slice(i))
            return yield* one.left
          }
        }
      }).pipe(Effect.ensuring(Effect.sync(() => {
        self.flushing = 0
        if (self.waiting.size > 0 && self.outcomes.length < self.config.maxUnwritten) {
          for (const waiter of self.waiting) waiter.wake()
          self.waiting.clear()
        }
      })))
    ))
  }

  /** The writer's fiber: flushes whenever outcomes wait, backing off while writes fail. */
  run(): Effect.Effect<never> {
    const self = this
    return Effect.gen(function*() {
      let failures = 0
      while (true) {
        if (self.outcomes.length === 0) {
          const signal = self.signal
          yield* Deferred.await(signal)
          if (self.signal === signal) self.signal = Deferred.unsafeMake(FiberId.none)
        }
        const written = yield* Effect.either(self.flush())
        if (written._tag === "Left") {
          failures++
          yield* Effect.logWarning(
            `Job runner: writing job outcomes failed (${Statements.errorText(written.left)}); trying again`
          )
          yield* Effect.sleep(Math.min(100 * 2 ** failures, 5_000))
        } else {
          failures = 0
        }
      }
    })
  }

  /**
   * Writes what is left at shutdown, trying again for a while when the
   * database fails, but not past `writeBy` (epoch ms). Returns how many
   * outcomes could not be written.
   */
  drain(writeBy: number): Effect.Effect<number> {
    const self = this
    return Effect.gen(function*() {
      // The first flush also waits for one the writer has in flight.
      for (let round = 0; round === 0 || (self.outcomes.length > 0 && round < 10); round++) {
        const written = yield* Effect.either(self.flush())
        if (written._tag === "Left") {
          yield* Effect.logError(
            `Job runner: writing job outcomes at shutdown failed (${Statements.errorText(written.left)})`
          )
        }
        if (self.outcomes.length === 0 || (yield* Clock.currentTimeMillis) + 200 > writeBy) break
        yield* Effect.sleep("200 millis")
      }
      return self.outcomes.length
    })
  }
}
