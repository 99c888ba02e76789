/**
 * The dashboard's HTTP side on a real server and database: the token, the
 * read-only mode, refusal of cross-site actions, filters and paging, bulk
 * actions, the OpenAPI document, `/metrics`, and `/readyz` across a database
 * stop and start.
 */
import { FileSystem, HttpClient, HttpClientRequest, HttpLayerRouter } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, ExecutionStrategy, Exit, Layer, Redacted, Ref, Schema, Scope } from "effect"
import { Dashboard, Job, JobClient, JobRunner } from "effect-workers"
import { createRequire } from "node:module"
import * as Postgres from "../src/internal/dev/embedded.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"
import { setByHand } from "./support/states.js"

// The parser ships no type declarations.
const parsePrometheus = createRequire(import.meta.url)("parse-prometheus-text-format") as (
  text: string
) => ReadonlyArray<{
  readonly name: string
  readonly metrics: ReadonlyArray<{ readonly value?: string; readonly labels?: Record<string, string> }>
}>

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const Note = Job.make("note", {
  payload: Schema.Struct({ text: Schema.String }),
  queue: "notes",
  handler: () => Effect.void
})

/** Serves the dashboard's routes on a test server in the current scope; returns a client for it. */
const serve = (options: Dashboard.Options = { loopbackOnly: true }) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpLayerRouter.serve(Dashboard.routes(options), { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest)
      )
    )
    const client = yield* Effect.provide(HttpClient.HttpClient, context)
    const send = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.flatMap(client.execute(request), (response) =>
        Effect.map(response.text, (text) => ({
          status: response.status,
          headers: response.headers,
          text,
          json: () => JSON.parse(text)
        })))
    return {
      get: (path: string, headers: Record<string, string> = {}) =>
        send(HttpClientRequest.get(path).pipe(HttpClientRequest.setHeaders(headers))),
      post: (path: string, body: unknown = {}, headers: Record<string, string> = { "x-effect-workers": "1" }) =>
        send(
          HttpClientRequest.post(path).pipe(
            HttpClientRequest.setHeaders(headers),
            HttpClientRequest.bodyUnsafeJson(body)
          )
        )
    }
  })

const clean = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`DELETE FROM ${sql(schema)}.jobs`
  yield* sql`DELETE FROM ${sql(schema)}.queues`
})

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("dashboard", (it) => {
  it.scoped("with a token, every request but the health checks needs it: 401 without, Bearer or Basic with", () =>
    Effect.gen(function*() {
      const http = yield* serve({ token: Redacted.make("s3cret-token-for-tests") })
      const refused = yield* http.get("/api/queues")
      expect(refused.status).toBe(401)
      expect(refused.json()).toEqual({
        _tag: "Unauthorized",
        message: "this dashboard needs its token (HTTP Basic password, or Bearer)"
      })
      expect((yield* http.get("/")).status).toBe(401)
      expect((yield* http.get("/")).headers["www-authenticate"]).toBe("Basic realm=\"effect-workers\"")
      expect((yield* http.get("/metrics")).status).toBe(401)
      expect((yield* http.get("/api/queues", { authorization: "Bearer wrong" })).status).toBe(401)
      expect((yield* http.post("/api/queues/notes/pause")).status).toBe(401)
      expect((yield* http.get("/api/queues", { authorization: "Bearer s3cret-token-for-tests" })).status).toBe(200)
      const basic = `Basic ${Buffer.from("ops:s3cret-token-for-tests").toString("base64")}`
      expect((yield* http.get("/", { authorization: basic })).status).toBe(200)
      expect((yield* http.get("/api/openapi.json")).status).toBe(401)
      expect((yield* http.get("/healthz")).json()).toEqual({ status: "ok" })
      expect((yield* http.get("/readyz")).status).toBe(200)
      // A token that is given but empty or short (an unset environment variable) is refused, not ignored.
      const error = yield* Effect.flip(serve({ token: Redacted.make(process.env.NO_SUCH_VARIABLE!) }))
      expect(error.message).toMatch(/^Dashboard: option "token" must be a string or a Redacted string/)
    }))

  it.scoped("without a token, it answers only requests sent to a loopback name (no DNS rebinding)", () =>
    Effect.gen(function*() {
      const http = yield* serve()
      const rebound = yield* http.get("/api/jobs", { host: "attacker.example:3000" })
      expect(rebound.status).toBe(403)
      expect(rebound.json().message).toContain("without a token, the dashboard answers only requests to 127.0.0.1")
      const action = yield* http.post("/api/queues/notes/pause", {}, {
        host: "attacker.example",
        "x-effect-workers": "1"
      })
      expect(action.status).toBe(403)
      expect((yield* http.get("/", { host: "localhost:3000" })).status).toBe(200)
      expect((yield* http.get("/api/queues", { host: "[::1]:3000" })).status).toBe(200)
    }))

  it.scoped("a wrong option fails the layer before it listens, and a statement timeout PostgreSQL refuses is one", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      for (
        const [option, options] of [
          ["statementTimeout", { statementTimeout: "30 days" }],
          ["statementTimeout", { statementTimeout: 2 ** 31 }],
          ["token", { token: "short" }],
          ["basePath", { basePath: "no-slash" }],
          ["bulkLimit", { bulkLimit: 0 }]
        ] as const
      ) {
        const error = yield* Effect.flip(Layer.build(Dashboard.layer({ port: 0, ...options } as never)))
        expect([option, error._tag]).toEqual([option, "InvalidDashboardOptions"])
        expect((error as Dashboard.InvalidDashboardOptions).option).toBe(option)
      }
      expect((yield* logs).filter((line) => line.includes("istening on"))).toEqual([])
      yield* Layer.build(Dashboard.layer({ port: 0, statementTimeout: 2 ** 31 - 1 }))
      expect((yield* logs).filter((line) => line.includes("istening on"))).toHaveLength(1)
    }))

  it.scoped("it binds to 127.0.0.1 by default, and to no other address without a token", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Dashboard.layer({ host: "0.0.0.0", port: 0 })))
      expect(error._tag).toBe("InvalidDashboardOptions")
      expect(error.message).toBe(
        "Dashboard: option \"host\" \"0.0.0.0\" would expose the dashboard beyond this machine without a token: " +
          "set \"token\" (or \"authorize\"), or bind to 127.0.0.1"
      )
      const logs = yield* captureLogs
      yield* Layer.build(Dashboard.layer({ port: 0 }))
      yield* Layer.build(Dashboard.layer({ host: "0.0.0.0", port: 0, token: "s3cret-token-for-tests" }))
      const listening = (yield* logs).filter((line) => line.includes("istening on"))
      expect(listening).toHaveLength(2)
      expect(listening[0]).toMatch(/^Dashboard listening on http:\/\/127\.0\.0\.1:\d+$/)
      expect(listening[1]).toMatch(/^Dashboard listening on http:\/\/0\.0\.0\.0:\d+$/)
    }))

  it.scoped("read-only: every action is refused with 403, reads still work", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Note, { text: "hello" })
      const http = yield* serve({ readOnly: true, loopbackOnly: true })
      for (const path of [`/api/jobs/${id}/cancel`, "/api/queues/notes/pause", "/api/jobs/bulk"]) {
        const response = yield* http.post(path, { action: "delete", filter: {} })
        expect([path, response.status, response.json()]).toEqual([
          path,
          403,
          { _tag: "Forbidden", message: "the dashboard is read-only" }
        ])
      }
      expect((yield* http.get(`/api/jobs/${id}`)).json().state).toBe("available")
      expect((yield* http.get("/api/session")).json()).toEqual({
        readOnly: true,
        protected: false,
        user: "local client (127.0.0.1)",
        bulkLimit: 1000
      })
    }))

  it.scoped("a cross-site POST is refused; a same-origin one with the header is done", () =>
    Effect.gen(function*() {
      yield* clean
      const http = yield* serve()
      const crossSite = [
        { origin: "http://evil.example", "x-effect-workers": "1" },
        { "sec-fetch-site": "cross-site", "x-effect-workers": "1" },
        // A form post from anywhere cannot set the header.
        { "content-type": "application/x-www-form-urlencoded" }
      ]
      for (const headers of crossSite) {
        const response = yield* http.post("/api/queues/notes/pause", {}, headers)
        expect(response.status).toBe(403)
        expect(response.json()._tag).toBe("Forbidden")
      }
      const client = yield* JobClient.JobClient
      expect((yield* client.queues).find((queue) => queue.name === "notes")?.paused ?? false).toBe(false)
      const done = yield* http.post("/api/queues/notes/pause", {}, {
        "x-effect-workers": "1",
        "sec-fetch-site": "same-origin"
      })
      expect(done.status).toBe(204)
      expect((yield* client.queues).find((queue) => queue.name === "notes")?.paused).toBe(true)
      yield* http.post("/api/queues/notes/resume")
      expect((yield* client.queues).find((queue) => queue.name === "notes")?.paused).toBe(false)
    }))

  it.scoped("a page of /api/jobs holds 50 jobs by default and at most 500, whatever limit is asked", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      yield* client.enqueueMany(Note, Array.from({ length: 501 }, (_, n) => ({ text: `page ${n}` })), {
        queue: "pages"
      })
      const http = yield* serve()
      const byDefault = (yield* http.get("/api/jobs?queue=pages")).json()
      expect(byDefault.jobs).toHaveLength(50)
      const capped = (yield* http.get("/api/jobs?queue=pages&limit=1000")).json()
      expect(capped.jobs).toHaveLength(500)
      const rest = (yield* http.get(`/api/jobs?queue=pages&limit=1000&before=${capped.next}`)).json()
      expect([rest.jobs.length, rest.next]).toEqual([1, null])
      yield* clean
    }))

  it.scoped("the queues page's oldest wait is the longest-due waiting job over every priority; future jobs do not count", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      const http = yield* serve()
      const now = Date.now()
      const at = (minutes: number) => ({ runAt: new Date(now + minutes * 60_000) })
      yield* client.enqueue(Note, { text: "due a minute ago" }, { queue: "waits", priority: 0, ...at(-1) })
      yield* client.enqueue(Note, { text: "due ten minutes ago" }, { queue: "waits", priority: 5, ...at(-10) })
      yield* client.enqueue(Note, { text: "due in an hour" }, { queue: "waits", priority: -1, ...at(60) })
      yield* client.enqueue(Note, { text: "only in the future" }, { queue: "later", ...at(60) })
      const queues = (yield* http.get("/api/queues")).json() as ReadonlyArray<
        { name: string; oldestWaitMillis: number | null; counts: Record<string, number> }
      >
      const waits = queues.find((q) => q.name === "waits")!
      expect(waits.oldestWaitMillis).toBeGreaterThanOrEqual(10 * 60_000)
      expect(waits.oldestWaitMillis).toBeLessThan(11 * 60_000)
      expect(queues.find((q) => q.name === "later")?.oldestWaitMillis).toBeNull()
      expect(Object.values(waits.counts).reduce((a, b) => a + b, 0)).toBe(3)
    }))

  it.scoped("filters, search and paging return what the database holds; bulk actions cover the filter", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      const ids: Array<string> = []
      for (let n = 0; n < 7; n++) {
        ids.push((yield* client.enqueue(Note, { text: `note ${n}` }, { queue: n < 5 ? "notes" : "other" })).id)
      }
      yield* client.cancel(ids[1])
      yield* client.cancel(ids[3])
      const http = yield* serve()
      const first = (yield* http.get("/api/jobs?queue=notes&limit=2")).json()
      expect(first.jobs.map((job: { id: string }) => job.id)).toEqual([ids[4], ids[3]])
      const second = (yield* http.get(`/api/jobs?queue=notes&limit=2&before=${first.next}`)).json()
      expect(second.jobs.map((job: { id: string }) => job.id)).toEqual([ids[2], ids[1]])
      const third = (yield* http.get(`/api/jobs?queue=notes&limit=2&before=${second.next}`)).json()
      expect([third.jobs.map((job: { id: string }) => job.id), third.next]).toEqual([[ids[0]], null])
      const cancelled = (yield* http.get("/api/jobs?state=cancelled")).json()
      expect(cancelled.jobs.map((job: { id: string }) => job.id)).toEqual([ids[3], ids[1]])
      const byText = (yield* http.get("/api/jobs?search=note%206")).json()
      expect(byText.jobs.map((job: { id: string }) => job.id)).toEqual([ids[6]])
      // A number finds the job with that id, and payloads that contain it.
      const byId = (yield* http.get(`/api/jobs?search=${ids[2]}`)).json()
      expect(byId.jobs.map((job: { id: string }) => job.id)).toContain(ids[2])
      const unknownState = yield* http.get("/api/jobs?state=finished")
      expect([unknownState.status, unknownState.json()._tag]).toEqual([400, "HttpApiDecodeError"])
      const missing = yield* http.get("/api/jobs/999999999")
      expect([missing.status, missing.json()._tag]).toEqual([404, "JobNotFound"])
      const unfiltered = yield* http.post("/api/jobs/bulk", { action: "delete", filter: {} })
      expect([unfiltered.status, unfiltered.json()._tag]).toEqual([400, "InvalidFilter"])
      expect((yield* http.get("/api/jobs?limit=0")).status).toBe(400)
      expect((yield* http.get("/api/jobs?search=99999999999999999999")).json().jobs).toEqual([])
      const retried = yield* http.post("/api/jobs/bulk", {
        action: "retry",
        filter: { queue: "notes", state: "cancelled" }
      })
      expect(retried.json()).toEqual({ count: 2, limit: 1000 })
      expect((yield* client.counts).filter((c) => c.queue === "notes")).toEqual([
        { queue: "notes", state: "available", count: 5 }
      ])
      const deleted = yield* http.post("/api/jobs/bulk", { action: "delete", filter: { queue: "other" } })
      expect(deleted.json()).toEqual({ count: 2, limit: 1000 })
      const sql = yield* SqlClient.SqlClient
      yield* setByHand(ids[0], sql`state = 'completed', finalized_at = now()`)
      const conflict = yield* http.post(`/api/jobs/${ids[0]}/retry`)
      expect([conflict.status, conflict.json()._tag]).toEqual([409, "InvalidJobState"])
      const queues = (yield* http.get("/api/queues")).json()
      expect(queues.find((queue: { name: string }) => queue.name === "notes").counts).toMatchObject({
        available: 4,
        completed: 1
      })
      const overview = (yield* http.get("/api/overview")).json()
      expect(overview.throughput).toHaveLength(60)
      expect(overview.throughput.at(-1).completed).toBe(1)
      expect(overview.counts).toEqual([
        { queue: "notes", state: "available", count: 4 },
        { queue: "notes", state: "completed", count: 1 }
      ])
      const openapi = (yield* http.get("/api/openapi.json")).json()
      expect(Object.keys(openapi.paths)).toContain("/api/jobs/{id}/retry")
      const { version } = createRequire(import.meta.url)("../package.json") as { version: string }
      expect(openapi.info).toMatchObject({ title: "effect-workers dashboard", version })
    }))

  it.scoped("/metrics parses as Prometheus text, and its job counter moves when jobs run", () =>
    Effect.gen(function*() {
      yield* clean
      const http = yield* serve()
      const runs = Effect.map(http.get("/metrics"), (response) => {
        const families = parsePrometheus(response.text)
        const family = families.find((f) => f.name.startsWith("effect_workers_job_runs"))
        return (family?.metrics ?? [])
          .filter((metric) => metric.labels?.job === "note" && metric.labels?.outcome === "completed")
          .reduce((sum, metric) => sum + Number(metric.value ?? 0), 0)
      })
      const before = yield* runs
      const client = yield* JobClient.JobClient
      yield* client.enqueueMany(Note, [{ text: "a" }, { text: "b" }, { text: "c" }])
      const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      yield* Layer.buildWithScope(JobRunner.layer({ jobs: [Note], pollInterval: "100 millis" }), scope)
      yield* eventually(runs, (after) => after >= before + 3, "three more completed runs in /metrics")
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("/metrics counts the jobs running: effect_workers_jobs_running is 3 with three jobs running", () =>
    Effect.gen(function*() {
      yield* clean
      const http = yield* serve()
      const release = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const Held = Job.make("held", {
        payload: Schema.Struct({}),
        queue: "held",
        handler: () => Effect.zipRight(Ref.update(started, (n) => n + 1), Deferred.await(release))
      })
      const running = Effect.map(http.get("/metrics"), (response) => {
        const family = parsePrometheus(response.text).find((f) => f.name === "effect_workers_jobs_running")
        return Number(family?.metrics.find((metric) => metric.labels?.queue === "held")?.value ?? 0)
      })
      const client = yield* JobClient.JobClient
      yield* client.enqueueMany(Held, [{}, {}, {}])
      const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      yield* Layer.buildWithScope(
        JobRunner.layer({ jobs: [Held], queues: { held: 5 }, pollInterval: "100 millis" }),
        scope
      )
      yield* eventually(Ref.get(started), (n) => n === 3, "three running jobs")
      expect(yield* running).toBe(3)
      yield* Deferred.succeed(release, undefined)
      yield* eventually(running, (n) => n === 0, "no running jobs in /metrics")
      yield* Scope.close(scope, Exit.void)
    }))
})

layer(NodeContext.layer, { excludeTestServices: true })("dashboard readiness", (it) => {
  it.scoped(
    "/readyz turns unready when the database stops and ready again when it is back",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dataDir = yield* fs.makeTempDirectoryScoped()
        const port = yield* Postgres.freePort
        const startServer = Effect.gen(function*() {
          const scope = yield* Scope.make()
          const url = yield* Scope.extend(Postgres.start({ dataDir, port, persistent: true }), scope)
          return { scope, url }
        })
        const first = yield* startServer
        const context = yield* Layer.build(
          HttpLayerRouter.serve(Dashboard.routes({ loopbackOnly: true }), {
            disableLogger: true,
            disableListenLog: true
          }).pipe(
            Layer.provide(JobClient.layer()),
            Layer.provideMerge(PgClient.layer({ url: Redacted.make(first.url) })),
            Layer.provideMerge(NodeHttpServer.layerTest)
          )
        )
        const client = yield* Effect.provide(HttpClient.HttpClient, context)
        const readyz = Effect.flatMap(
          client.get("/readyz"),
          (response) =>
            Effect.map(response.json, (body) => ({ status: response.status, body: body as { status: string } }))
        )
        expect((yield* readyz).status).toBe(200)
        yield* Scope.close(first.scope, Exit.void)
        const down = yield* eventually(readyz, (r) => r.status === 503, "/readyz to turn unready", 30)
        expect(down.body.status).toBe("unready")
        expect(JSON.stringify(down.body)).toContain("unreachable")
        const second = yield* startServer
        yield* eventually(
          readyz,
          (r) => r.status === 200,
          "/readyz to be ready again",
          30
        )
        yield* Scope.close(second.scope, Exit.void)
      }),
    120_000
  )
})
