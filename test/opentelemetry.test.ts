/**
 * The workers' and jobs' spans and metrics as `@effect/opentelemetry` exports
 * them, through the SDK's in-memory exporters: a job run's span links to the
 * span that enqueued it; every metric has the name, type and labels the
 * documentation's tables give. And examples/opentelemetry.ts, run as a
 * program, exports over OTLP/HTTP to an endpoint started here.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Data, Deferred, Effect, Layer, Option, Queue, Ref, Schedule, Schema } from "effect"
import { Job, JobClient, JobRunner, Worker, WorkerRegistry } from "effect-workers"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import * as Children from "./support/children.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"

const root = path.resolve(import.meta.dirname, "..")

/** Names of this file's workers, queues and jobs: the metric registry is the process's. */
const prefix = `otel-${randomBytes(3).toString("hex")}`

class Deliberate extends Data.TaggedError("Deliberate")<{ readonly message: string }> {}

/** An OpenTelemetry SDK whose spans and metrics stay in memory, exported when the test asks. */
const telemetry = () => {
  const spans = new InMemorySpanExporter()
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // An hour: the test exports with `forceFlush`, not on a timer.
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 })
  return {
    layer: NodeSdk.layer(() => ({
      resource: { serviceName: "effect-workers-test" },
      spanProcessor: new SimpleSpanProcessor(spans),
      metricReader: reader
    })),
    finishedSpans: Effect.sync(() => spans.getFinishedSpans()),
    exportedMetrics: Effect.promise(async (): Promise<ReadonlyArray<MetricData>> => {
      metrics.reset()
      await reader.forceFlush()
      return metrics.getMetrics().flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
    })
  }
}

interface DocumentedMetric {
  readonly file: string
  readonly name: string
  readonly type: string
  /** Label names, each with its documented values (empty when they are not a fixed set). */
  readonly labels: ReadonlyMap<string, ReadonlyArray<string>>
}

/**
 * The rows of the metrics tables of a Markdown file: `| \`name\` ... | type |
 * \`label\`, \`label\` (\`value\`, \`value\`) | meaning |`, or `none` for no labels.
 */
const documentedMetrics = (file: string): ReadonlyArray<DocumentedMetric> =>
  readFileSync(path.join(root, file), "utf8").split("\n")
    .filter((line) => line.startsWith("| `effect_workers_"))
    .map((line) => {
      const [nameCell, type, labelsCell] = line.split("|").slice(1).map((cell) => cell.trim())
      const labels = new Map<string, ReadonlyArray<string>>()
      // Items are separated by commas outside parentheses.
      const items: Array<string> = []
      let depth = 0
      let current = ""
      for (const char of labelsCell === "none" ? "" : labelsCell) {
        if (char === "(") depth++
        if (char === ")") depth--
        if (char === "," && depth === 0) {
          items.push(current)
          current = ""
        } else current += char
      }
      if (current.trim() !== "") items.push(current)
      for (const item of items) {
        const [label, ...values] = [...item.matchAll(/`([^`]+)`/g)].map((match) => match[1])
        labels.set(label, values)
      }
      return { file, name: /`([^`]+)`/.exec(nameCell)![1], type, labels }
    })

const otelType = (metric: MetricData) =>
  metric.dataPointType === DataPointType.HISTOGRAM
    ? "histogram"
    : metric.dataPointType === DataPointType.GAUGE
    ? "gauge"
    : metric.dataPointType === DataPointType.SUM && metric.isMonotonic
    ? "counter"
    : `other (${metric.dataPointType})`

/** This file's data points: labelled with one of its workers or queues, or unlabelled. */
const ours = (metric: MetricData) =>
  (metric.dataPoints as ReadonlyArray<{ readonly attributes: Readonly<Record<string, unknown>> }>).filter((point) => {
    const values = Object.values(point.attributes)
    return values.length === 0 || values.some((value) => String(value).startsWith(prefix))
  })

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

/** Polls the job until it is in `state`. */
const awaitState = (id: string, state: string) =>
  eventually(
    Effect.flatMap(JobClient.JobClient, (client) => Effect.map(client.get(id), Option.getOrThrow)),
    (job) => job.state === state,
    `job ${id} to be ${state}`,
    60
  )

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("OpenTelemetry", (it) => {
  it.scoped(
    "a job run's span starts its own trace, linked to the span that enqueued the job",
    () =>
      Effect.gen(function*() {
        yield* captureLogs
        const otel = telemetry()
        const queue = `${prefix}-traced`
        const Ship = Job.make(`${prefix}-ship`, {
          payload: Schema.Struct({ order: Schema.Number }),
          queue,
          handler: ({ order }) => Effect.withSpan(Effect.void, "pack-parcel", { attributes: { order } })
        })
        const Refuse = Job.make(`${prefix}-refuse`, {
          payload: Schema.Struct({}),
          queue,
          maxAttempts: 1,
          handler: () => new Deliberate({ message: "refused on purpose" })
        })
        // Read before the SDK shuts down: its in-memory exporter forgets its spans then.
        const { enqueued, refused, spans, untraced } = yield* Effect.gen(function*() {
          const enqueued = yield* Effect.gen(function*() {
            const span = yield* Effect.currentSpan
            const { id } = yield* JobClient.enqueue(Ship, { order: 1 })
            return { id, traceId: span.traceId, spanId: span.spanId }
          }).pipe(Effect.withSpan("place-order"))
          const refused = yield* JobClient.enqueue(Refuse, {}).pipe(Effect.withSpan("refuse-order"))
          const untraced = yield* JobClient.enqueue(Ship, { order: 2 })
          yield* awaitState(enqueued.id, "completed")
          yield* awaitState(untraced.id, "completed")
          yield* awaitState(refused.id, "discarded")
          const spans = yield* eventually(
            otel.finishedSpans,
            (spans) => spans.filter((s) => s.name === "effect_workers.job.run").length === 3,
            "the spans of the three runs"
          )
          return { enqueued, refused, spans, untraced }
        }).pipe(
          Effect.provide(JobRunner.layer({ jobs: [Ship, Refuse] }).pipe(Layer.provideMerge(otel.layer)))
        )
        const runOf = (id: string) => {
          const run = spans.find((s) =>
            s.name === "effect_workers.job.run" && s.attributes["effect_workers.job.id"] === id
          )
          if (run === undefined) throw new Error(`no span of the run of job ${id} among ${spans.map((s) => s.name)}`)
          return run
        }
        const linksOf = (span: ReadableSpan) =>
          span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId }))

        const placed = spans.find((s) => s.name === "place-order")!
        expect(placed.spanContext().spanId).toBe(enqueued.spanId)
        const run = runOf(enqueued.id)
        expect(run.parentSpanContext).toBeUndefined()
        expect(run.spanContext().traceId).not.toBe(enqueued.traceId)
        expect(linksOf(run)).toEqual([{ traceId: enqueued.traceId, spanId: enqueued.spanId }])
        expect(run.attributes).toEqual({
          "effect_workers.job.id": enqueued.id,
          "effect_workers.job.name": `${prefix}-ship`,
          "effect_workers.job.queue": queue,
          "effect_workers.job.attempt": 1
        })
        expect(run.status.code).toBe(1) // OK
        // The handler's spans are the run's children.
        const packed = spans.filter((s) => s.name === "pack-parcel" && s.attributes.order === 1)
        expect(packed.map((s) => [s.parentSpanContext?.spanId, s.spanContext().traceId])).toEqual([
          [run.spanContext().spanId, run.spanContext().traceId]
        ])
        // Enqueued outside any span: no link.
        expect(linksOf(runOf(untraced.id))).toEqual([])
        // A failed run ends its span with the error.
        const failed = runOf(refused.id)
        expect(linksOf(failed)).toEqual([{
          traceId: spans.find((s) => s.name === "refuse-order")!.spanContext().traceId,
          spanId: spans.find((s) => s.name === "refuse-order")!.spanContext().spanId
        }])
        expect([failed.status.code, failed.status.message]).toEqual([2, "refused on purpose"])
      }),
    120_000
  )

  it.scoped(
    "a worker iteration is a root span named for its worker, failed when its last attempt failed",
    () =>
      Effect.gen(function*() {
        yield* captureLogs
        const otel = telemetry()
        const attempts = yield* Ref.make(0)
        const workers = Layer.mergeAll(
          Worker.make(`${prefix}-fine`, Effect.withSpan(Effect.void, "inside-fine")),
          Worker.make(
            `${prefix}-broken`,
            Effect.zipRight(Ref.update(attempts, (n) => n + 1), new Deliberate({ message: "broken on purpose" })),
            { retry: Schedule.recurs(1) }
          )
        ).pipe(Layer.provideMerge(WorkerRegistry.layer))
        const spans = yield* Effect.gen(function*() {
          const registry = yield* WorkerRegistry.WorkerRegistry
          yield* registry.awaitStatus(`${prefix}-fine`, (s) => s.iterations === 1)
          yield* registry.awaitStatus(`${prefix}-broken`, (s) => s.iterations === 1)
          return yield* eventually(
            otel.finishedSpans,
            (spans) => spans.filter((s) => s.name === "effect_workers.worker.iteration").length === 2,
            "both iterations' spans"
          )
        }).pipe(Effect.provide(workers.pipe(Layer.provideMerge(otel.layer))))
        const iteration = (worker: string) =>
          spans.find((s) =>
            s.name === "effect_workers.worker.iteration" && s.attributes["effect_workers.worker"] === worker
          )!
        const fine = iteration(`${prefix}-fine`)
        expect([fine.parentSpanContext, fine.status.code]).toEqual([undefined, 1])
        expect(spans.find((s) => s.name === "inside-fine")!.parentSpanContext?.spanId).toBe(fine.spanContext().spanId)
        // One span for the iteration, its retry included.
        const broken = iteration(`${prefix}-broken`)
        expect(yield* Ref.get(attempts)).toBe(2)
        expect([broken.status.code, broken.status.message]).toEqual([2, "broken on purpose"])
      }),
    60_000
  )

  it.scoped(
    "exports every documented metric with the name, type and labels of the documentation",
    () =>
      Effect.gen(function*() {
        yield* captureLogs
        const otel = telemetry()
        const release = yield* Deferred.make<void>()
        const items = yield* Queue.unbounded<number>()
        yield* Queue.offerAll(items, [1, 2])
        const workers = Layer.mergeAll(
          Worker.make(`${prefix}-ok`, Effect.void),
          Worker.make(`${prefix}-failing`, new Deliberate({ message: "fails on purpose" }), { retry: false }),
          // Every second, each run held until released: the ticks meanwhile are skipped.
          Worker.cron(`${prefix}-cron`, Deferred.await(release), { cron: "* * * * * *", overlap: "skip" }),
          Worker.consumer(`${prefix}-consumer`, {
            source: items,
            handler: (item) => item === 2 ? new Deliberate({ message: "dead on purpose" }) : Effect.void,
            retry: false,
            deadLetter: () => Effect.void
          })
        ).pipe(Layer.provideMerge(WorkerRegistry.layer))

        const queue = `${prefix}-jobs`
        const cancelled = yield* Deferred.make<void>()
        const snoozed = yield* Ref.make(false)
        const jobs = [
          Job.make(`${prefix}-done`, { payload: Schema.Struct({}), queue, handler: () => Effect.void }),
          Job.make(`${prefix}-flaky`, {
            payload: Schema.Struct({}),
            queue,
            maxAttempts: 2,
            backoff: Schedule.spaced("10 millis"),
            handler: () =>
              Effect.flatMap(
                Job.JobContext,
                (job) => job.attempt === 1 ? new Deliberate({ message: "once" }) : Effect.void
              )
          }),
          Job.make(`${prefix}-doomed`, {
            payload: Schema.Struct({}),
            queue,
            maxAttempts: 1,
            handler: () => new Deliberate({ message: "never works" })
          }),
          Job.make(`${prefix}-sleepy`, {
            payload: Schema.Struct({}),
            queue,
            handler: () =>
              Effect.flatMap(Ref.getAndSet(snoozed, true), (done) => done ? Effect.void : Job.snooze("10 millis"))
          }),
          Job.make(`${prefix}-stuck`, {
            payload: Schema.Struct({}),
            queue,
            handler: () => Effect.zipRight(Deferred.succeed(cancelled, undefined), Effect.never)
          })
        ] as const

        const documented = [...documentedMetrics("docs/observability.md"), ...documentedMetrics("docs/workers.md")]
        expect(new Set(documented.map((m) => m.file))).toEqual(new Set(["docs/observability.md", "docs/workers.md"]))
        const everyValueSeen = (exported: ReadonlyArray<MetricData>) =>
          documented.every((doc) => {
            const metric = exported.find((m) => m.descriptor.name === doc.name)
            if (metric === undefined) return false
            return [...doc.labels].every(([label, values]) =>
              values.every((value) => ours(metric).some((point) => point.attributes[label] === value))
            )
          })

        const exported = yield* Effect.gen(function*() {
          const client = yield* JobClient.JobClient
          const registry = yield* WorkerRegistry.WorkerRegistry
          const ids = yield* Effect.forEach(jobs, (job) => Effect.map(JobClient.enqueue(job, {}), (j) => j.id))
          yield* Deferred.await(cancelled)
          yield* client.cancel(ids[4])
          yield* registry.awaitStatus(`${prefix}-cron`, (s) => s.skipped >= 1)
          yield* Deferred.succeed(release, undefined)
          return yield* eventually(otel.exportedMetrics, everyValueSeen, "every documented metric and label value", 60)
        }).pipe(
          Effect.provide(Layer.mergeAll(workers, JobRunner.layer({ jobs })).pipe(Layer.provideMerge(otel.layer)))
        )

        for (const doc of documented) {
          const metric = exported.find((m) => m.descriptor.name === doc.name)!
          expect({ metric: doc.name, type: otelType(metric) }).toEqual({ metric: doc.name, type: doc.type })
          const points = ours(metric)
          expect(points.length).toBeGreaterThan(0)
          for (const point of points) {
            expect({ metric: doc.name, labels: Object.keys(point.attributes).sort() }).toEqual({
              metric: doc.name,
              labels: [...doc.labels.keys()].sort()
            })
          }
          for (const [label, values] of doc.labels) {
            if (values.length === 0) continue
            const seen = new Set(points.map((point) => point.attributes[label]))
            expect({ metric: doc.name, label, values: seen }).toEqual({
              metric: doc.name,
              label,
              values: new Set(values)
            })
          }
        }
        // Nothing exported that the documentation does not name.
        const names = exported.map((m) => m.descriptor.name).filter((name) => name.startsWith("effect_workers_"))
        expect(new Set(names)).toEqual(new Set(documented.map((m) => m.name)))
      }),
    120_000
  )

  it.scoped("examples/opentelemetry.ts exports its spans and metrics over OTLP/HTTP", () =>
    Effect.gen(function*() {
      const db = yield* TestDatabase.TestDatabase
      const fs = yield* FileSystem.FileSystem
      const received: Array<{ readonly path: string; readonly body: any }> = []
      const server = yield* Effect.acquireRelease(
        Effect.async<http.Server>((resume) => {
          const server = http.createServer((request, response) => {
            let body = ""
            request.on("data", (chunk) => body += chunk)
            request.on("end", () => {
              received.push({ path: request.url ?? "", body: JSON.parse(body) })
              response.writeHead(200, { "content-type": "application/json" }).end("{}")
            })
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const { port } = server.address() as { readonly port: number }
      const example = yield* Children.spawn(process.execPath, ["--import", "tsx", "examples/opentelemetry.ts"], {
        cwd: root,
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          JOBS_SCHEMA: db.schema,
          EXAMPLES_DATA_DIR: yield* fs.makeTempDirectoryScoped(),
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`
        }
      })
      yield* example.waitForOutput("Order 1 shipped", { timeout: "60 seconds" })
      // Spans and metrics are sent at the latest when the process stops.
      yield* example.kill("SIGINT")
      expect(yield* example.exit).toEqual({ code: 0, signal: null })

      const attributes = (list: ReadonlyArray<{ key: string; value: Record<string, unknown> }>) =>
        Object.fromEntries(list.map(({ key, value }) => [key, Object.values(value)[0]]))
      const spans = received.filter((r) => r.path === "/v1/traces").flatMap((r) =>
        r.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans))
      )
      const iterations = spans.filter((s: any) => s.name === "effect_workers.worker.iteration")
      const runs = spans.filter((s: any) => s.name === "effect_workers.job.run")
      expect(iterations.length).toBeGreaterThan(0)
      expect(attributes(iterations[0].attributes)).toEqual({ "effect_workers.worker": "order-intake" })
      expect(runs.length).toBeGreaterThan(0)
      // The first run is linked to the iteration that enqueued it.
      expect(runs[0].links.map((l: any) => l.spanId)).toEqual([
        expect.toSatisfy((id: string) => iterations.some((s: any) => s.spanId === id))
      ])
      const metrics = received.filter((r) => r.path === "/v1/metrics").flatMap((r) =>
        r.body.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics))
      )
      const pointsOf = (name: string) =>
        metrics.filter((m: any) => m.name === name).flatMap((m: any) =>
          (m.sum ?? m.gauge ?? m.histogram).dataPoints.map((p: any) => attributes(p.attributes))
        )
      expect(pointsOf("effect_workers_job_runs")).toContainEqual({
        queue: "shipping",
        job: "ship-order",
        outcome: "completed"
      })
      expect(pointsOf("effect_workers_worker_iterations")).toContainEqual({
        worker: "order-intake",
        outcome: "success"
      })
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)
})
