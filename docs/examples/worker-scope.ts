// #region imports
import { Context, Effect, Layer, Schedule } from "effect"
import { Worker } from "effect-workers"
// #endregion

// #region scope
// A service the task needs, acquired for one iteration and released after it:
// the `IServiceScope` that `OrderProcessingService` creates per iteration.
class Database extends Context.Tag("app/Database")<Database, {
  readonly pendingOrders: Effect.Effect<ReadonlyArray<string>>
}>() {}

const DatabasePerIteration = Layer.scoped(
  Database,
  Effect.acquireRelease(
    Effect.log("1. open connection").pipe(Effect.as({ pendingOrders: Effect.succeed(["order-1", "order-2"]) })),
    () => Effect.log("5. close connection")
  )
)

const processOrders = Effect.gen(function*() {
  const database = yield* Database
  // Resources acquired here belong to the iteration's own `Scope`.
  yield* Effect.acquireRelease(Effect.log("2. lock the batch"), () => Effect.log("4. unlock the batch"))
  const orders = yield* database.pendingOrders
  yield* Effect.log(`3. processing ${orders.length} orders`)
})

// The layer's type has no `Database` or `Scope` left to provide.
export const OrderProcessor = Worker.make("order-processor", processOrders, {
  schedule: Schedule.spaced("10 seconds"),
  layer: DatabasePerIteration
})
// #endregion
