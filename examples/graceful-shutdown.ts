/**
 * GracefulShutdownService: long-running work (a batch of five 1-second
 * steps) every 30 seconds. Finished steps are buffered in memory and written
 * to a checkpoint file at the end of each batch.
 *
 * When the host stops: a `Lifecycle.onStopping` hook logs the signal; the
 * running batch is interrupted; and a finalizer writes the steps it had
 * finished, so that no finished work is lost.
 *
 *   node --import tsx examples/graceful-shutdown.ts   (then Ctrl-C)
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Ref, Schedule, SynchronizedRef } from "effect"
import { Host, Worker } from "effect-workers"
import * as path from "node:path"
import { dataDir, isMain } from "./support/main.js"

const stepsPerBatch = 5

/**
 * The worker, checkpointing to `checkpointFile` (one line per finished step).
 * Needs a `FileSystem` and the host's `Lifecycle`.
 */
export const make = (checkpointFile: string) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const lifecycle = yield* Host.Lifecycle
      const finished = yield* SynchronizedRef.make<ReadonlyArray<string>>([])
      const batches = yield* Ref.make(0)

      // Appends the buffered steps and empties the buffer as one update, so that each step is written once.
      const flush = SynchronizedRef.updateEffect(finished, (steps) =>
        steps.length === 0
          ? Effect.succeed(steps)
          : fs.writeFileString(checkpointFile, steps.map((step) => `${step}\n`).join(""), { flag: "a" }).pipe(
            Effect.as([])
          ))

      yield* fs.makeDirectory(path.dirname(checkpointFile), { recursive: true })
      yield* lifecycle.onStopping(Effect.logInfo("Application stopping signal received"))
      // Runs when the host releases this layer: after the worker has stopped, before the process exits.
      yield* Effect.addFinalizer(() =>
        Effect.logInfo("Cleaning up resources...").pipe(
          Effect.zipRight(flush),
          Effect.zipRight(Effect.logInfo("Cleanup complete")),
          Effect.catchAll((error) => Effect.logError(`Cleanup failed: ${error.message}`))
        )
      )

      const doLongRunningWork = Effect.gen(function*() {
        const batch = yield* Ref.updateAndGet(batches, (n) => n + 1)
        for (let step = 1; step <= stepsPerBatch; step++) {
          yield* Effect.sleep("1 second")
          yield* SynchronizedRef.update(finished, (steps) => [...steps, `batch ${batch} step ${step}`])
        }
        yield* flush
        yield* Effect.logInfo(`Batch ${batch} done`)
      }).pipe(
        Effect.onInterrupt(() => Effect.logInfo("Background work cancelled, shutting down gracefully"))
      )

      return Worker.make("graceful-shutdown", doLongRunningWork, { schedule: Schedule.spaced("30 seconds") })
    })
  )

/** The worker, checkpointing to `graceful-shutdown.log` in the examples' data directory. */
export const GracefulShutdownService = Layer.unwrapEffect(
  Effect.map(dataDir, (dir) => make(path.join(dir, "graceful-shutdown.log")))
)

if (isMain(import.meta)) Host.run(GracefulShutdownService.pipe(Layer.provide(NodeContext.layer)))
