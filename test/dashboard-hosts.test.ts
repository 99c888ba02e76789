/**
 * Hosted workers on the dashboard across processes: every process with a
 * JobClient reports its workers to the job tables, and a dashboard on any of
 * them (or on none) shows them all; a process that stops cleanly removes its
 * row, one killed disappears once its report expires.
 */
import { HttpClient, HttpClientRequest, HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Effect, ExecutionStrategy, Exit, Layer, Schedule, Scope } from "effect"
import { Dashboard, JobClient, Worker, WorkerRegistry } from "effect-workers"
import { fileURLToPath } from "node:url"
import * as Children from "./support/children.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

const fixture = fileURLToPath(new URL("./fixtures/worker-host-child.ts", import.meta.url))

interface Hosted {
  readonly name: string
  readonly state: string
  readonly process: string
  readonly pid: number
  readonly iterations: number
  readonly local: boolean
}

/** A "replica" in this process: its own registry with one worker, and its own JobClient on the test schema. */
const replica = (worker: string) =>
  Effect.gen(function*() {
    const { schema } = yield* TestDatabase.TestDatabase
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const context = yield* Layer.buildWithScope(
      Worker.make(worker, Effect.void, { schedule: Schedule.spaced("100 millis") }).pipe(
        Layer.provideMerge(JobClient.layer({ schema })),
        Layer.provideMerge(WorkerRegistry.layer)
      ),
      scope
    )
    return { scope, context }
  })

/** The dashboard served with `context` (a replica's, or only a client's); returns GET /api/workers. */
const workersOf = <R, E, RIn>(context: Layer.Layer<R, E, RIn>) =>
  Effect.gen(function*() {
    const built = yield* Layer.build(
      HttpLayerRouter.serve(Dashboard.routes({ loopbackOnly: true }), { disableLogger: true, disableListenLog: true })
        .pipe(Layer.provideMerge(NodeHttpServer.layerTest), Layer.provide(context))
    )
    const client = yield* Effect.provide(HttpClient.HttpClient, built)
    return Effect.flatMap(
      client.execute(HttpClientRequest.get("/api/workers")),
      (response) => Effect.map(response.json, (json) => json as ReadonlyArray<Hosted>)
    ).pipe(Effect.orDie)
  })

const names = (workers: ReadonlyArray<Hosted>) => workers.map((w) => w.name).sort()

layer(TestDatabase.layer, { excludeTestServices: true })("hosted workers", (it) => {
  it.scoped(
    "every replica's workers are shown by the dashboard of any replica, and go when their process stops",
    () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const a = yield* replica("worker-a")
        const b = yield* replica("worker-b")
        const child = yield* Children.spawn(process.execPath, ["--import", "tsx", fixture], {
          env: { ...process.env, DATABASE_URL: db.url, JOBS_SCHEMA: db.schema, WORKER_NAME: "worker-child" }
        })
        yield* child.waitForOutput("host ready", { timeout: "60 seconds" })
        const fromA = yield* workersOf(Layer.succeedContext(a.context))
        const fromB = yield* workersOf(Layer.succeedContext(b.context))
        // A dashboard-only process: a client, no registry of its own.
        const onlyClient = yield* workersOf(
          JobClient.layer({ schema: db.schema })
        )
        const all = ["worker-a", "worker-b", "worker-child"]
        const seenFromA = yield* eventually(fromA, (w) => names(w).join() === all.join(), "every replica's workers")
        const seenFromB = yield* eventually(fromB, (w) => names(w).join() === all.join(), "every replica's workers")
        yield* eventually(onlyClient, (w) => names(w).join() === all.join(), "every replica's workers")
        // Each page shows its own process's workers as local, the others' as reported, with their process.
        expect(seenFromA.filter((w) => w.local).map((w) => w.name)).toEqual(["worker-a"])
        expect(seenFromB.filter((w) => w.local).map((w) => w.name)).toEqual(["worker-b"])
        expect(seenFromA.find((w) => w.name === "worker-child")?.pid).toBe(child.process.pid)
        expect(new Set(seenFromA.map((w) => w.process)).size).toBe(3)
        // Reports follow on an interval: worker-b's runs show once its process reports after them.
        yield* eventually(
          fromA,
          (w) => (w.find((s) => s.name === "worker-b")?.iterations ?? 0) > 0,
          "a report of worker-b's runs"
        )
        // A replica that stops cleanly removes its row at once.
        yield* Scope.close(b.scope, Exit.void)
        yield* eventually(fromA, (w) => !names(w).includes("worker-b"), "worker-b to go")
        // One killed leaves its row, shown until the report expires (15 s), then not.
        yield* child.kill("SIGKILL")
        yield* child.exit
        yield* eventually(fromA, (w) => names(w).join() === "worker-a", "the killed process's worker to go", 40)
      }),
    90_000
  )
})
