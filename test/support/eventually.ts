import { Effect } from "effect"

/**
 * Polls `query` until `done` holds, every 20 ms for at most `seconds`
 * (default 15); then dies, naming `what` and the last value. For state that
 * another process or the database changes, where there is nothing to await.
 */
export const eventually = <A, E, R>(
  query: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  what: string,
  seconds = 15
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + seconds * 1000
    while (true) {
      const value = yield* query
      if (done(value)) return value
      if (Date.now() > deadline) {
        return yield* Effect.dieMessage(`timed out waiting for ${what}: ${JSON.stringify(value)}`)
      }
      yield* Effect.sleep("20 millis")
    }
  })
