import { Clock, Deferred, Duration, Effect, Exit, FiberId } from "effect"

/**
 * An entry in the shared timer. `fire` runs on the timer's fiber, so it must
 * only fork work, never do it.
 */
export interface TimerEntry {
  at: number
  index: number
  readonly fire: () => void
}

/**
 * One timer fiber for every periodic worker of a registry, over a binary heap
 * of due times.
 *
 * Measured with 10,000 workers at 1 Hz: one sleeping `Effect.repeat` fiber per
 * worker used about 67% of a core and 13 KB of heap per worker; a shared timer
 * that forks an iteration when it is due used a small fraction of that (see
 * bench/workers.ts for the figures of each run).
 */
export class SharedTimer {
  private readonly heap: Array<TimerEntry> = []
  private wake: Deferred.Deferred<void> = Deferred.unsafeMake(FiberId.none)
  private sleepingUntil = Number.POSITIVE_INFINITY

  schedule(entry: TimerEntry, at: number): void {
    if (entry.index >= 0) this.remove(entry)
    entry.at = at
    entry.index = this.heap.length
    this.heap.push(entry)
    this.up(entry.index)
    if (at < this.sleepingUntil) {
      this.sleepingUntil = Number.NEGATIVE_INFINITY
      Deferred.unsafeDone(this.wake, Exit.void)
    }
  }

  remove(entry: TimerEntry): void {
    const i = entry.index
    if (i < 0) return
    const last = this.heap.pop()!
    entry.index = -1
    if (last !== entry) {
      this.heap[i] = last
      last.index = i
      this.down(i)
      this.up(last.index)
    }
  }

  /** The timer loop; runs until interrupted. */
  readonly run: Effect.Effect<never> = Effect.gen(this, function*() {
    const clock = yield* Effect.clock
    while (true) {
      const now = clock.unsafeCurrentTimeMillis()
      let fired = 0
      while (this.heap.length > 0 && this.heap[0].at <= now) {
        const entry = this.heap[0]
        this.remove(entry)
        entry.fire()
        // Each fire starts a fiber at once; a burst of thousands would stall the event loop.
        if (++fired % 256 === 0) yield* Effect.yieldNow()
      }
      this.wake = Deferred.unsafeMake(FiberId.none)
      if (this.heap.length === 0) {
        this.sleepingUntil = Number.POSITIVE_INFINITY
        yield* Deferred.await(this.wake)
      } else {
        const at = this.heap[0].at
        this.sleepingUntil = at
        yield* Effect.raceFirst(Clock.sleep(Duration.millis(at - now)), Deferred.await(this.wake))
      }
    }
  })

  private up(i: number): void {
    const heap = this.heap
    const entry = heap[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].at <= entry.at) break
      heap[i] = heap[parent]
      heap[i].index = i
      i = parent
    }
    heap[i] = entry
    entry.index = i
  }

  private down(i: number): void {
    const heap = this.heap
    const n = heap.length
    const entry = heap[i]
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && heap[right].at < heap[left].at ? right : left
      if (heap[child].at >= entry.at) break
      heap[i] = heap[child]
      heap[i].index = i
      i = child
    }
    heap[i] = entry
    entry.index = i
  }
}
