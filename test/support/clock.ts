import { Clock, Effect } from "effect"

/**
 * A clock that shows the time it is set to, for code that reads the time
 * (`Clock.currentTimeMillis`) while it talks to a real database: unlike
 * `TestClock`, its sleeps are real.
 *
 * ```ts
 * const clock = settableClock("2026-03-08T00:00:00Z")
 * yield* clock.use(service.fireDue)
 * clock.set("2026-03-08T01:00:00Z")
 * ```
 */
export const settableClock = (start: string | Date) => {
  let now = new Date(start).getTime()
  const live = Clock.make()
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: (duration) => live.sleep(duration)
  }
  return {
    set: (at: string | Date) => {
      now = new Date(at).getTime()
    },
    get now() {
      return new Date(now)
    },
    use: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withClock(effect, clock)
  }
}
