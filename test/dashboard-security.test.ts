/**
 * The dashboard attacked from outside, on a real server and database: a
 * client on another host (a network namespace of the test's own, joined by a
 * veth pair), a reverse proxy that rewrites `Host`, guessed and weak tokens,
 * a database starved by searches, oversized bodies and bulk actions; and
 * what every answer carries (headers, messages, the audit log).
 */
import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Ref, Schema } from "effect"
import { Dashboard, Job, JobClient } from "effect-workers"
import { createServer, request as httpRequest } from "node:http"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { post, send } from "./support/http.js"
import { captureLogs } from "./support/logs.js"
import * as Netns from "./support/netns.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const Note = Job.make("note", {
  payload: Schema.Struct({ text: Schema.String }),
  queue: "notes",
  handler: () => Effect.void
})

const token = "dashboard-token-for-tests-0123"

/** Serves `routes` on `host` in the current scope; returns the port. */
const listen = (routes: Layer.Layer<never, any, any>, host = "127.0.0.1") =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpLayerRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host }))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? address.port : 0
  })

const bearer = { authorization: `Bearer ${token}` }

const clean = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`DELETE FROM ${sql(schema)}.jobs`
  yield* sql`DELETE FROM ${sql(schema)}.queues`
})

const paused = (queue: string) =>
  Effect.flatMap(
    JobClient.JobClient,
    (client) => Effect.map(client.queues, (queues) => queues.find((q) => q.name === queue)?.paused ?? false)
  )

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("dashboard security", (it) => {
  it.scoped("without a token, a client on another host is refused whatever Host it sends", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      yield* client.enqueue(Note, { text: "private" })
      const ns = yield* Netns.make
      // Served on the veth address only: the namespace's client can reach it, nothing beyond this machine can.
      const port = yield* listen(Dashboard.routes({ loopbackOnly: true }), Netns.hostAddress)
      const url = (path: string) => `http://${Netns.hostAddress}:${port}${path}`
      const read = yield* ns.request(url("/api/jobs"), { headers: { host: "localhost" } })
      expect(read.status).toBe(403)
      expect(JSON.parse(read.text).message).toBe(
        `without a token, the dashboard answers only clients on this machine (loopback), not ${Netns.clientAddress}: ` +
          "set a token or an authorize hook to serve others"
      )
      expect(read.text).not.toContain("private")
      const pause = yield* ns.request(url("/api/queues/notes/pause"), {
        method: "POST",
        headers: { host: "127.0.0.1", "x-effect-workers": "1", "content-type": "application/json" },
        body: "{}"
      })
      expect(pause.status).toBe(403)
      expect(yield* paused("notes")).toBe(false)
      expect((yield* ns.request(url("/readyz"), { headers: { host: "localhost" } })).status).toBe(403)
      expect((yield* ns.request(url("/metrics"), { headers: { host: "localhost" } })).status).toBe(403)
      expect((yield* ns.request(url("/healthz"))).status).toBe(200)

      // With a token, the same client is served once it shows it.
      const protectedPort = yield* listen(Dashboard.routes({ token }), Netns.hostAddress)
      const authorized = yield* ns.request(`http://${Netns.hostAddress}:${protectedPort}/api/jobs`, { headers: bearer })
      expect(authorized.status).toBe(200)
      expect(authorized.text).toContain("private")

      // And routes() does not start unprotected unless told it is loopback-only.
      const error = yield* Effect.flip(listen(Dashboard.routes()))
      expect(error.message).toMatch(/^Dashboard: option "token" is needed, or an authorize hook/)
    }))

  it.scoped("without a token, requests through a proxy that rewrites Host are refused", () =>
    Effect.gen(function*() {
      yield* clean
      const port = yield* listen(Dashboard.routes({ loopbackOnly: true }))
      // A reverse proxy on this machine, as nginx is set up: Host rewritten to the upstream, the client's address
      // in X-Forwarded-For (or Forwarded).
      const proxy = (extra: Record<string, string>) =>
        Effect.acquireRelease(
          Effect.async<{ port: number; close: () => void }>((resume) => {
            const server = createServer((req, res) => {
              const upstream = httpRequest({
                host: "127.0.0.1",
                port,
                path: req.url,
                method: req.method,
                headers: { ...req.headers, host: `127.0.0.1:${port}`, ...extra }
              }, (answer) => {
                res.writeHead(answer.statusCode ?? 502, answer.headers)
                answer.pipe(res)
              })
              req.pipe(upstream)
            })
            server.listen(0, "127.0.0.1", () => {
              const address = server.address()
              resume(Effect.succeed({
                port: typeof address === "object" && address !== null ? address.port : 0,
                close: () => server.close()
              }))
            })
          }),
          (p) => Effect.sync(() => p.close())
        )
      for (const headers of [{ "x-forwarded-for": "203.0.113.7" }, { forwarded: "for=203.0.113.7" }]) {
        const through = yield* proxy(headers)
        const read = yield* send(through.port, "/api/jobs", { headers: { host: "dashboard.example.com" } })
        expect(read.status).toBe(403)
        expect(read.json().message).toContain("without a token, the dashboard refuses requests through a proxy")
        const action = yield* post(through.port, "/api/queues/notes/pause", {}, { host: "dashboard.example.com" })
        expect(action.status).toBe(403)
      }
      expect(yield* paused("notes")).toBe(false)
      // Directly, from this machine, it answers.
      expect((yield* send(port, "/api/jobs", { headers: { host: `127.0.0.1:${port}` } })).status).toBe(200)
    }))

  it.scoped("/readyz without the token tells only the status; its checks run one at a time and are reused", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const check = Effect.gen(function*() {
        yield* Ref.update(runs, (n) => n + 1)
        yield* Deferred.await(release)
        return yield* Effect.fail(new Error("the payments API said: key sk_live_123 revoked"))
      })
      const port = yield* listen(Dashboard.routes({ token, checks: [{ name: "payments", check }] }))
      const probes = yield* Effect.forkScoped(
        Effect.all(Array.from({ length: 10 }, () => send(port, "/readyz")), { concurrency: "unbounded" })
      )
      yield* eventually(Ref.get(runs), (n) => n === 1, "the check to start")
      yield* Deferred.succeed(release, undefined)
      const answers = yield* Fiber.join(probes)
      for (const answer of answers) {
        expect([answer.status, answer.json()]).toEqual([503, { status: "unready" }])
        expect(answer.headers["cache-control"]).toBe("no-store")
      }
      expect(yield* Ref.get(runs)).toBe(1)
      const detailed = (yield* send(port, "/readyz", { headers: bearer })).json()
      expect(detailed.checks).toContainEqual({
        name: "payments",
        ok: false,
        detail: "the payments API said: key sk_live_123 revoked"
      })
    }))

  it.scoped("the dashboard's queries run on two connections at most, each under a statement timeout", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      yield* client.enqueue(Note, { text: "needle" })
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      const port = yield* listen(Dashboard.routes({ token, statementTimeout: "30 seconds" }))
      const fastPort = yield* listen(Dashboard.routes({ token, statementTimeout: "200 millis" }))
      // An exclusive lock on the jobs table makes every dashboard query wait in PostgreSQL, as a scan would.
      const unlock = yield* Deferred.make<void>()
      const locked = yield* Deferred.make<void>()
      const holder = yield* Effect.forkScoped(sql.withTransaction(Effect.gen(function*() {
        yield* sql`LOCK TABLE ${sql(schema)}.jobs IN ACCESS EXCLUSIVE MODE`
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(unlock)
      })))
      yield* Deferred.await(locked)
      const waiting = Effect.map(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%payload::text ILIKE%'`,
        (rows) => rows[0].n
      )
      const searches = yield* Effect.forkScoped(Effect.all(
        Array.from({ length: 24 }, () => send(port, "/api/jobs?search=needle", { headers: bearer })),
        { concurrency: "unbounded" }
      ))
      yield* eventually(waiting, (n) => n === 2, "two searches waiting in PostgreSQL")
      // The application's own queries still get connections, and no third search got one meanwhile.
      expect((yield* sql<{ one: number }>`SELECT 1 AS one`)[0].one).toBe(1)
      expect(yield* waiting).toBe(2)
      const timedOut = yield* send(fastPort, "/api/jobs?search=needle", { headers: bearer })
      expect([timedOut.status, timedOut.json()]).toEqual([503, {
        _tag: "DatabaseUnavailable",
        message: "the query ran past the dashboard's statement timeout (200 ms): narrow the filter"
      }])
      yield* Deferred.succeed(unlock, undefined)
      yield* Fiber.join(holder)
      const answers = yield* Fiber.join(searches)
      expect(answers.map((answer) => answer.status)).toEqual(Array(24).fill(200))
      expect(answers[0].json().jobs.map((job: { payload: unknown }) => job.payload)).toEqual([{ text: "needle" }])
    }))

  it.scoped("bad input is a 400, big bodies and bulk actions have limits, and guessing the token is slowed", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      yield* client.enqueueMany(Note, Array.from({ length: 5 }, (_, n) => ({ text: `note ${n}` })))
      const port = yield* listen(Dashboard.routes({ token, bulkLimit: 3 }))
      const nul = yield* send(port, "/api/jobs?search=a%00b", { headers: bearer })
      expect(nul.status).toBe(400)
      expect(nul.text).toContain("must not contain a NUL byte")
      const badQueue = yield* post(port, "/api/queues/a%00b/pause", {}, bearer)
      expect([badQueue.status, badQueue.json()._tag]).toEqual([400, "InvalidQueue"])
      expect(badQueue.json().message).toContain("NUL")
      const long = yield* send(port, `/api/jobs?search=${"x".repeat(201)}`, { headers: bearer })
      expect(long.status).toBe(400)
      expect(long.text).toContain("at most 200 characters")
      // Refused on its declared length, before the body is read: the client sends its first kilobyte and waits.
      const huge = yield* Effect.async<{ status: number; text: string }>((resume) => {
        const req = httpRequest({
          host: "127.0.0.1",
          port,
          path: "/api/jobs/bulk",
          method: "POST",
          headers: {
            ...bearer,
            "x-effect-workers": "1",
            "content-type": "application/json",
            "content-length": 60_000_000
          }
        }, (res) => {
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (chunk) => (text += chunk))
          res.on("end", () => {
            req.destroy()
            resume(Effect.succeed({ status: res.statusCode ?? 0, text }))
          })
        })
        req.on("error", () => {})
        req.write("x".repeat(1024))
      })
      expect([huge.status, JSON.parse(huge.text).message]).toEqual([
        413,
        "a request body may have at most 65536 bytes, not 60000000"
      ])
      const tooMany = yield* post(port, "/api/jobs/bulk", { action: "delete", filter: { queue: "notes" } }, bearer)
      expect([tooMany.status, tooMany.json()]).toEqual([409, {
        _tag: "BulkLimitExceeded",
        message: "this delete would touch more than 3 jobs (the dashboard's bulkLimit): narrow the filter, or " +
          "raise bulkLimit"
      }])
      const preview = yield* post(port, "/api/jobs/bulk", {
        action: "delete",
        filter: { queue: "notes" },
        dryRun: true
      }, bearer)
      expect(preview.json()).toEqual({ count: 4, limit: 3 })
      expect((yield* client.counts).reduce((n, c) => n + c.count, 0)).toBe(5)

      // Ten wrong tokens from one address within a minute, and it is answered 429 until the minute is over.
      for (let n = 0; n < 10; n++) {
        expect((yield* send(port, "/api/jobs", { headers: { authorization: `Bearer guess-${n}` } })).status).toBe(401)
      }
      const slowed = yield* send(port, "/api/jobs", { headers: bearer })
      expect(slowed.status).toBe(429)
      expect(Number(slowed.headers["retry-after"])).toBeGreaterThan(0)
    }))

  it.scoped("weak tokens are refused, saying how long a token must be and why", () =>
    Effect.gen(function*() {
      for (const weak of ["        ", "12345678", "\u{1F511}\u{1F511}\u{1F511}\u{1F511}", "aaaaaaaaaaaaaaaaaaaa"]) {
        const error = yield* Effect.flip(listen(Dashboard.routes({ token: weak })))
        expect([weak, error._tag]).toEqual([weak, "InvalidDashboardOptions"])
        expect(error.message).toMatch(/^Dashboard: option "token" must (not be blank|be at least 16 characters)/)
      }
      const error = yield* Effect.flip(Layer.build(Dashboard.layer({ host: "0.0.0.0", port: 0, token: "12345678" })))
      expect(error.message).toContain("a short token can be guessed; generate one")
    }))

  it.scoped("every answer carries nosniff and no-store; errors carry a message; a malformed row is left out", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      const logs = yield* captureLogs
      const port = yield* listen(Dashboard.routes({ token }))
      for (
        const [path, headers] of [
          ["/api/jobs", bearer],
          ["/api/jobs", {}],
          ["/metrics", bearer],
          ["/readyz", {}],
          ["/", bearer],
          ["/api/nothing-here", bearer]
        ] as const
      ) {
        const answer = yield* send(port, path, { headers })
        expect([path, answer.headers["x-content-type-options"], answer.headers["cache-control"]])
          .toEqual([path, "nosniff", "no-store"])
      }
      const unauthorized = yield* send(port, "/api/jobs")
      expect(unauthorized.headers["www-authenticate"]).toBe("Basic realm=\"effect-workers\"")

      const missing = yield* send(port, "/api/jobs/12345", { headers: bearer })
      expect([missing.status, missing.json()]).toEqual([404, {
        _tag: "JobNotFound",
        id: "12345",
        message: "No job with id 12345"
      }])
      // A discarded job whose unique key a live job holds again: a conflict, not an outage.
      const Unique = Job.make("unique", {
        payload: Schema.Struct({}),
        queue: "unique",
        uniqueKey: () => "the-one",
        handler: () => Effect.void
      })
      const { id: first } = yield* client.enqueue(Unique, {})
      yield* sql`UPDATE ${sql(schema)}.jobs SET state = 'discarded', finalized_at = now() WHERE id = ${first}::bigint`
      const { id: second } = yield* client.enqueue(Unique, {})
      const conflict = yield* post(port, `/api/jobs/${first}/retry`, {}, bearer)
      expect([conflict.status, conflict.json()]).toEqual([409, {
        _tag: "Conflict",
        message: `Cannot retry job ${first}: it is discarded, and job ${second} holds its unique key "the-one"`
      }])
      // A row the page cannot show does not take the list down with it.
      const { id: broken } = yield* client.enqueue(Note, { text: "broken" })
      yield* sql`UPDATE ${sql(schema)}.jobs SET run_at = 'infinity' WHERE id = ${broken}::bigint`
      const list = yield* send(port, "/api/jobs", { headers: bearer })
      expect(list.status).toBe(200)
      expect(list.json().malformed).toEqual([broken])
      expect(list.json().jobs.map((job: { id: string }) => job.id)).toContain(first)
      expect(yield* logs).toContainEqual(`Dashboard: job(s) ${broken} cannot be shown: malformed rows`)
    }))

  it.scoped("a defect is logged and answered 500 with a message, and the server goes on", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      const port = yield* listen(Dashboard.routes({ token, checks: [{ name: "broken", check: Effect.die("boom") }] }))
      const answer = yield* send(port, "/readyz", { headers: bearer })
      expect([answer.status, answer.json()]).toEqual([500, {
        _tag: "InternalError",
        message: "the dashboard failed to answer; the error is in its log"
      }])
      expect(yield* logs).toContain("Dashboard: a request failed unexpectedly")
      expect((yield* send(port, "/healthz")).status).toBe(200)
    }))

  it.scoped("every action logs one audit line: who, what, the filter and how many jobs", () =>
    Effect.gen(function*() {
      yield* clean
      const client = yield* JobClient.JobClient
      const jobs = yield* client.enqueueMany(Note, [{ text: "a" }, { text: "b" }, { text: "c" }])
      const logs = yield* captureLogs
      const port = yield* listen(Dashboard.routes({
        authorize: (request) =>
          request.headers["x-user"] === "ada"
            ? { access: "full", user: "ada@example.com" }
            : { access: "refused", reason: "sign in first" }
      }))
      const as = { "x-user": "ada" }
      expect((yield* post(port, `/api/jobs/${jobs[0].id}/cancel`, {}, as)).status).toBe(200)
      expect((yield* post(port, "/api/queues/notes/pause", {}, as)).status).toBe(204)
      expect((yield* post(port, "/api/jobs/bulk", { action: "cancel", filter: { queue: "notes" } }, as)).json())
        .toEqual({ count: 2, limit: 1000 })
      expect((yield* post(port, "/api/jobs/bulk", { action: "delete", filter: { queue: "notes" } }, {})).status)
        .toBe(403)
      expect((yield* logs).filter((line) => line.startsWith("Dashboard:"))).toEqual([
        `Dashboard: ada@example.com did cancel on job ${jobs[0].id}: 1 job(s)`,
        "Dashboard: ada@example.com did pause on queue \"notes\": 0 job(s)",
        "Dashboard: ada@example.com did bulk cancel on jobs matching queue=\"notes\": 2 job(s)"
      ])
    }))
})
