// Run with `npx tsx docs/examples/host.ts`; stop with Ctrl-C (twice to force).
// #region imports
import { Effect, Layer, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
// #endregion

// #region host
const Heartbeat = Worker.make("heartbeat", Effect.log("still alive"), {
  schedule: Schedule.spaced("5 seconds")
})

// `IHostApplicationLifetime`: hooks registered while the layers are built.
const Lifetime = Layer.effectDiscard(
  Effect.gen(function*() {
    const lifecycle = yield* Host.Lifecycle
    yield* lifecycle.onStarted(Effect.log("every worker has started"))
    yield* lifecycle.onStopping(Effect.log("shutdown begins: workers are still running"))
    yield* lifecycle.onStopped(Effect.log("workers stopped and resources released"))
  })
)

Host.run(Layer.mergeAll(Heartbeat, Lifetime), {
  // Default: the SHUTDOWN_GRACE_PERIOD config value, else 30 seconds.
  gracePeriod: "10 seconds",
  // Default false: stop workers one after another, in reverse order of start.
  concurrent: false
})
// #endregion

// #region stop
// A run-once worker that asks the host to stop once it is done (exit code 0),
// for a process that runs a batch and exits.
export const MigrateThenExit = Worker.make(
  "migrate",
  Effect.gen(function*() {
    yield* Effect.log("migrating")
    const lifecycle = yield* Host.Lifecycle
    yield* lifecycle.stop
  })
)
// #endregion
