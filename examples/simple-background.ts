/**
 * SimpleBackgroundService: a worker that logs that it is working, at start
 * and then every 30 seconds, until the host stops.
 *
 *   node --import tsx examples/simple-background.ts
 */
import { Clock, Effect, Layer, Ref, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
import { isMain } from "./support/main.js"

/**
 * The count of runs lives in a `Ref` made when the layer is built, so it is
 * shared by the iterations of one worker and fresh for each host or test.
 */
export const SimpleBackgroundService = Layer.unwrapEffect(
  Effect.map(Ref.make(0), (runs) =>
    Worker.make(
      "simple-background",
      Effect.gen(function*() {
        const run = yield* Ref.updateAndGet(runs, (n) => n + 1)
        const now = yield* Clock.currentTimeMillis
        yield* Effect.logInfo(`Background work #${run} executing at ${new Date(now).toISOString()}`)
      }),
      { schedule: Schedule.spaced("30 seconds") }
    ))
)

if (isMain(import.meta)) Host.run(SimpleBackgroundService)
