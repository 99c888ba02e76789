/**
 * Traces and metrics over OTLP/HTTP with `@effect/opentelemetry`: a worker
 * takes an order every 5 seconds and enqueues a durable job to ship it; the
 * job runner ships it. The worker's iterations and the jobs' runs are spans,
 * each run linked to the iteration that enqueued it; the workers' and jobs'
 * metrics are exported every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds
 * (default 60000) and when the process stops.
 *
 * The exporters send to `OTEL_EXPORTER_OTLP_ENDPOINT` (default
 * http://localhost:4318), for example a Jaeger or an OpenTelemetry Collector:
 *
 *   docker run --rm -p 16686:16686 -p 4318:4318 jaegertracing/all-in-one
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 node --import tsx examples/opentelemetry.ts
 *
 * It runs on the server at `DATABASE_URL`, or on an embedded PostgreSQL.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { diag, DiagConsoleLogger, DiagLogLevel } from "@opentelemetry/api"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Ref, Schema } from "effect"
import { Host, Job, JobClient, JobRunner, Worker } from "effect-workers"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

// #region telemetry
// Both exporters post JSON to OTEL_EXPORTER_OTLP_ENDPOINT: /v1/traces and /v1/metrics.
export const Telemetry = NodeSdk.layer(
  Effect.map(
    Config.integer("OTEL_METRIC_EXPORT_INTERVAL").pipe(Config.withDefault(60_000)),
    (exportIntervalMillis) => ({
      resource: { serviceName: "effect-workers-example" },
      spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()),
      metricReader: new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis })
    })
  )
)

// OpenTelemetry is silent about failed exports unless it has a logger: say when the collector is not there.
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN)
// #endregion

/** Ships an order. Its span (`effect_workers.job.run`) links to the span that enqueued it. */
export const ShipOrder = Job.make("ship-order", {
  payload: Schema.Struct({ orderId: Schema.Number }),
  queue: "shipping",
  handler: ({ orderId }) =>
    Effect.logInfo(`Order ${orderId} shipped`).pipe(
      Effect.delay("20 millis"),
      // A span of the handler's own: a child of the run's span.
      Effect.withSpan("pack-parcel", { attributes: { "order.id": orderId } })
    )
})

/** Takes an order every 5 seconds; each iteration (`effect_workers.worker.iteration`) enqueues its shipping. */
export const OrderIntake = Layer.unwrapEffect(Effect.map(Ref.make(0), (orders) =>
  Worker.make(
    "order-intake",
    Effect.gen(function*() {
      const orderId = yield* Ref.updateAndGet(orders, (n) => n + 1)
      const { id } = yield* JobClient.enqueue(ShipOrder, { orderId })
      yield* Effect.logInfo(`Order ${orderId} taken, shipping as job ${id}`)
    }),
    { schedule: "5 seconds" }
  )))

// #region layers
// The telemetry layer goes outside everything else: workers and job runners built under its tracer
// trace their iterations and runs (the `tracing` option's default), and it exports last, when they
// have stopped.
export const App = Layer.mergeAll(OrderIntake, JobRunner.layer({ jobs: [ShipOrder] })).pipe(
  Layer.provide(Layer.provideMerge(Database.jobClient, Database.layer)),
  Layer.provide(Telemetry)
)
// #endregion

if (isMain(import.meta)) Host.run(App)
