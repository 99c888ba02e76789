/**
 * ResilientBackgroundService: every 5 minutes, runs a task that fails now and
 * then. A failed run is retried 3 times, 5 seconds apart; when the retries
 * are spent the failure is logged and the worker waits for its next run.
 *
 *   node --import tsx examples/resilient-background.ts
 */
import { Context, Data, Effect, Layer, Random, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
import { isMain } from "./support/main.js"

export class TransientFailure extends Data.TaggedError("TransientFailure")<{ readonly message: string }> {}

/** The work itself; a service so that tests decide when it fails. */
export class FlakyTask extends Context.Tag("examples/FlakyTask")<FlakyTask, {
  readonly run: Effect.Effect<void, TransientFailure>
}>() {
  /** Fails about one time in three, like a call to a service that times out now and then. */
  static readonly Default = Layer.succeed(FlakyTask, {
    run: Effect.flatMap(Random.next, (roll) =>
      roll < 1 / 3
        ? Effect.fail(
          new TransientFailure({
            message: "the upstream service timed out (deliberately, one run in three, to show retries)"
          })
        )
        : Effect.logInfo("Work done"))
  })
}

/** 3 retries, 5 seconds apart. */
export const retryPolicy: Schedule.Schedule<unknown, unknown> = Schedule.spaced("5 seconds").pipe(
  Schedule.intersect(Schedule.recurs(3))
)

export const ResilientBackgroundService = Worker.make(
  "resilient-background",
  Effect.flatMap(FlakyTask, (task) => task.run),
  {
    schedule: Schedule.spaced("5 minutes"),
    retry: retryPolicy
  }
)

if (isMain(import.meta)) Host.run(ResilientBackgroundService.pipe(Layer.provide(FlakyTask.Default)))
