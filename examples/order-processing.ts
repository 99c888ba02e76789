/**
 * OrderProcessingService: every 5 minutes, takes the pending orders from the
 * `pending_orders` table and processes each one. An order whose processing
 * fails is marked `failed` with the reason; the others are still processed.
 *
 * Each iteration runs in a scope of its own, like the seed's `IServiceScope`:
 * the `OrderRepository` is built for the iteration, and the orders it claimed
 * but did not finish go back to `pending` when that scope closes, also when
 * the host stops in the middle of an iteration.
 *
 *   node --import tsx examples/order-processing.ts
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, HashSet, Layer, Ref, Schedule, Schema } from "effect"
import { Host, Worker } from "effect-workers"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

export interface Order {
  readonly id: number
  readonly product: string
  readonly quantity: number
}

export class OrderRejected extends Schema.TaggedError<OrderRejected>()("OrderRejected", {
  orderId: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Order ${this.orderId} rejected: ${this.reason}`
  }
}

/** Creates the example's table (idempotent). */
export const migrate: Effect.Effect<void, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS pending_orders (
      id serial PRIMARY KEY,
      product text NOT NULL,
      quantity integer NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'processed', 'failed')),
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      processed_at timestamptz
    )`
  yield* sql`CREATE INDEX IF NOT EXISTS pending_orders_pending ON pending_orders (id) WHERE status = 'pending'`
})

/** Places an order (for the demo and the tests). */
export const placeOrder = (product: string, quantity: number): Effect.Effect<number, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ readonly id: number }>`INSERT INTO pending_orders ${sql.insert({ product, quantity })} RETURNING id`
  ).pipe(
    Effect.map((rows) => rows[0].id)
  )

/**
 * What processing an order means. A service, so that the host decides how
 * (and tests can make it block or fail).
 */
export class OrderProcessor extends Context.Tag("examples/OrderProcessor")<OrderProcessor, {
  readonly process: (order: Order) => Effect.Effect<void, OrderRejected>
}>() {
  static readonly Default = Layer.succeed(OrderProcessor, {
    process: (order) =>
      order.quantity > 0
        ? Effect.logInfo(`Order ${order.id}: ${order.quantity} x ${order.product} shipped`)
        : Effect.fail(
          new OrderRejected({ orderId: order.id, reason: `quantity must be positive (got ${order.quantity})` })
        )
  })
}

/** Data access for one iteration. */
export class OrderRepository extends Context.Tag("examples/OrderRepository")<OrderRepository, {
  /** Takes up to `limit` pending orders for this iteration, oldest first. */
  readonly claimPending: (limit: number) => Effect.Effect<ReadonlyArray<Order>, SqlError>
  readonly markProcessed: (id: number) => Effect.Effect<void, SqlError>
  readonly markFailed: (id: number, reason: string) => Effect.Effect<void, SqlError>
}>() {
  /** Built fresh for every iteration (see the worker's `layer` option). */
  static readonly PerIteration = Layer.scoped(
    OrderRepository,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const unfinished = yield* Ref.make(HashSet.empty<number>())
      const finish = (id: number) => Ref.update(unfinished, HashSet.remove(id))
      // Claimed orders this iteration did not finish are returned when its scope closes.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          const ids = [...yield* Ref.get(unfinished)]
          if (ids.length === 0) return
          yield* sql`UPDATE pending_orders SET status = 'pending' WHERE id IN ${sql.in(ids)} AND status = 'processing'`
          yield* Effect.logInfo(`Returned ${ids.length} unfinished order(s) to pending`)
        }).pipe(Effect.catchAllCause((cause) => Effect.logError("Could not return unfinished orders", cause)))
      )
      return {
        claimPending: (limit) =>
          // SKIP LOCKED: several processes can run this worker without taking the same order.
          sql<Order>`
            UPDATE pending_orders SET status = 'processing'
            WHERE id IN (
              SELECT id FROM pending_orders WHERE status = 'pending'
              ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED)
            RETURNING id, product, quantity`.pipe(
            Effect.map((orders) => [...orders].sort((a, b) => a.id - b.id)),
            Effect.tap((orders) => Ref.update(unfinished, HashSet.union(orders.map((order) => order.id))))
          ),
        markProcessed: (id) =>
          Effect.zipRight(
            sql`UPDATE pending_orders SET status = 'processed', processed_at = now() WHERE id = ${id}`,
            finish(id)
          ),
        markFailed: (id, reason) =>
          Effect.zipRight(
            sql`UPDATE pending_orders SET status = 'failed', error = ${reason}, processed_at = now() WHERE id = ${id}`,
            finish(id)
          )
      }
    })
  )
}

/** One iteration: process every pending order, each on its own. */
export const processPendingOrders = Effect.gen(function*() {
  const repository = yield* OrderRepository
  const processor = yield* OrderProcessor
  const orders = yield* repository.claimPending(100)
  if (orders.length === 0) return yield* Effect.logInfo("No pending orders")
  const failed = yield* Ref.make(0)
  yield* Effect.forEach(orders, (order) =>
    processor.process(order).pipe(
      Effect.zipRight(repository.markProcessed(order.id)),
      Effect.catchTag("OrderRejected", (rejected) =>
        Effect.logWarning(rejected.message).pipe(
          Effect.zipRight(repository.markFailed(order.id, rejected.reason)),
          Effect.zipRight(Ref.update(failed, (n) => n + 1))
        ))
    ), { discard: true })
  yield* Effect.logInfo(`Processed ${orders.length} order(s), ${yield* Ref.get(failed)} failed`)
})

/**
 * The worker. Needs an `OrderProcessor` and a `SqlClient`; creates its table
 * before it starts.
 */
export const OrderProcessingService = Worker.make("order-processing", processPendingOrders, {
  schedule: Schedule.spaced("5 minutes"),
  layer: OrderRepository.PerIteration,
  // The seed waits 30 seconds after an error before it tries again.
  retry: Schedule.spaced("30 seconds").pipe(Schedule.intersect(Schedule.recurs(3)))
}).pipe(Layer.provide(Layer.effectDiscard(migrate)))

if (isMain(import.meta)) {
  Host.run(OrderProcessingService.pipe(Layer.provide(OrderProcessor.Default), Layer.provide(Database.layer)))
}
