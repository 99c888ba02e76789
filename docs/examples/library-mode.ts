// Workers inside a program that is not run by `Host`: an existing server, a CLI, a test.
// #region imports
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schedule } from "effect"
import { Worker, WorkerRegistry } from "effect-workers"
// #endregion

// #region library
const Heartbeat = Worker.make("heartbeat", Effect.log("still alive"), {
  schedule: Schedule.spaced("5 seconds")
})

const Importer = Worker.make("importer", Effect.log("importing"), {
  schedule: Schedule.spaced("1 minute"),
  onFailure: "stopHost"
})

// Workers start as soon as their layer is built and stop when it is released.
const Workers = Layer.mergeAll(Heartbeat, Importer).pipe(Layer.provideMerge(WorkerRegistry.layer))

const main = Effect.gen(function*() {
  const registry = yield* WorkerRegistry.WorkerRegistry
  // Without a host, a `"stopHost"` failure only completes `registry.failure`:
  // this program decides to end with it.
  const failure = yield* registry.failure
  return yield* failure
}).pipe(Effect.provide(Workers))

NodeRuntime.runMain(main)
// #endregion
