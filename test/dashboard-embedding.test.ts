/**
 * The dashboard inside an application: under a base path beside the app's
 * own routes, twice in one server, behind the app's own authorization, and
 * in a plain Node `http` server and in Express, all on real servers and a
 * real database.
 */
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { Dashboard, Job, JobClient } from "effect-workers"
import express from "express"
import { readdirSync, readFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { join, posix, relative, sep } from "node:path"
import { fileURLToPath } from "node:url"
import * as TestDatabase from "./support/database.js"
import { post, send } from "./support/http.js"
import { captureLogs } from "./support/logs.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const Note = Job.make("note", {
  payload: Schema.Struct({ text: Schema.String }),
  queue: "notes",
  handler: () => Effect.void
})

const token = "dashboard-token-for-tests-0123"

const listen = (routes: Layer.Layer<never, any, any>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpLayerRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? address.port : 0
  })

/** A Node server of the test's, listening on 127.0.0.1 until the scope closes. */
const listenNode = (server: Server) =>
  Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    }),
    () =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

const bearer = { authorization: `Bearer ${token}` }

const assetsDir = fileURLToPath(new URL("../src/internal/dashboard/assets/", import.meta.url))

/** Every file of the page's assets but the page itself, as paths under `assets/`. */
const assetFiles = readdirSync(assetsDir, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name !== "index.html")
  .map((entry) => relative(assetsDir, join(entry.parentPath, entry.name)).split(sep).join("/"))
  .sort()

const clean = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`DELETE FROM ${sql(schema)}.jobs`
  yield* sql`DELETE FROM ${sql(schema)}.queues`
})

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })(
  "dashboard embedding",
  (it) => {
    it.scoped("serves every module and the stylesheet under the base path, with its type and the page's CSP", () =>
      Effect.gen(function*() {
        const port = yield* listen(Dashboard.routes({ basePath: "/admin/jobs", token }))
        expect(assetFiles).toContain("app.js")
        expect(assetFiles.filter((name) => name.endsWith(".js")).length).toBeGreaterThan(1)
        for (const name of assetFiles) {
          const answer = yield* send(port, `/admin/jobs/assets/${name}`, { headers: bearer })
          expect([name, answer.status, answer.headers["content-type"]]).toEqual([
            name,
            200,
            name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8"
          ])
          expect(answer.headers["content-security-policy"]).toContain("script-src 'self'")
          expect(answer.text).toBe(readFileSync(`${assetsDir}${name}`, "utf8"))
          // Every import is relative and names a file that is served.
          for (const [, specifier] of answer.text.matchAll(/^import .* from "([^"]+)"$/gm)) {
            expect([name, specifier.startsWith("./") || specifier.startsWith("../")]).toEqual([name, true])
            expect(assetFiles).toContain(posix.join(posix.dirname(name), specifier))
          }
        }
        expect((yield* send(port, "/admin/jobs/assets/index.html", { headers: bearer })).status).toBe(404)
      }))

    it.scoped("under a base path beside the app's own /, and twice in one server (read-only and full)", () =>
      Effect.gen(function*() {
        yield* clean
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Note, { text: "hello" })
        const port = yield* listen(Layer.mergeAll(
          HttpLayerRouter.add("GET", "/", HttpServerResponse.text("my app")),
          Dashboard.routes({ basePath: "/admin/jobs", token }),
          Dashboard.routes({ basePath: "/ops/", token, readOnly: true })
        ))
        expect((yield* send(port, "/")).text).toBe("my app")
        const page = yield* send(port, "/admin/jobs", { headers: bearer })
        expect(page.status).toBe(200)
        expect(page.text).toContain("<meta name=\"effect-workers-base\" content=\"/admin/jobs\">")
        expect(page.text).toContain("src=\"/admin/jobs/assets/app.js\"")
        expect((yield* send(port, "/admin/jobs/", { headers: bearer })).status).toBe(200)
        expect((yield* send(port, "/admin/jobs/assets/app.js", { headers: bearer })).status).toBe(200)
        const jobs = (yield* send(port, "/admin/jobs/api/jobs?queue=notes", { headers: bearer })).json()
        expect(jobs.jobs.map((job: { id: string }) => job.id)).toEqual([id])
        expect((yield* send(port, "/admin/jobs/healthz")).json()).toEqual({ status: "ok" })
        expect((yield* send(port, "/api/jobs", { headers: bearer })).status).toBe(404)
        expect((yield* send(port, "/ops/api/session", { headers: bearer })).json().readOnly).toBe(true)
        expect((yield* post(port, `/ops/api/jobs/${id}/cancel`, {}, bearer)).status).toBe(403)
        expect((yield* post(port, `/admin/jobs/api/jobs/${id}/cancel`, {}, bearer)).json().state).toBe("cancelled")
        const bad = yield* Effect.flip(listen(Dashboard.routes({ basePath: "admin jobs", token })))
        expect(bad.message).toBe(
          "Dashboard: option \"basePath\" must be a path like \"/admin/jobs\" (letters, digits, \"._~-\" between " +
            "slashes), got \"admin jobs\""
        )
      }))

    it.scoped("authorize decides each request: full, read-only, refused; a failing hook refuses and is logged", () =>
      Effect.gen(function*() {
        yield* clean
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Note, { text: "hello" })
        const logs = yield* captureLogs
        const port = yield* listen(Dashboard.routes({
          authorize: (request) => {
            switch (request.headers["x-user"]) {
              case "ada":
                return { access: "full", user: "ada@example.com" }
              case "bob":
                return Promise.resolve({ access: "read-only", user: "bob@example.com" } as const)
              case "eve":
                return Effect.succeed({ access: "refused", reason: "eve is not on the team" } as const)
              case "broken":
                throw new Error("session store down")
              default:
                return { access: "maybe" } as never
            }
          }
        }))
        expect((yield* send(port, "/api/session", { headers: { "x-user": "bob" } })).json()).toEqual({
          readOnly: true,
          protected: true,
          user: "bob@example.com",
          bulkLimit: 1000
        })
        const bob = yield* post(port, `/api/jobs/${id}/cancel`, {}, { "x-user": "bob" })
        expect([bob.status, bob.json().message]).toEqual([403, "bob@example.com may only read"])
        const eve = yield* send(port, "/api/jobs", { headers: { "x-user": "eve" } })
        expect([eve.status, eve.json()]).toEqual([403, { _tag: "Forbidden", message: "eve is not on the team" }])
        for (const user of ["broken", "nobody"]) {
          const failed = yield* send(port, "/api/jobs", { headers: { "x-user": user } })
          expect([failed.status, failed.json().message]).toEqual([500, "the dashboard's authorize hook failed"])
        }
        expect((yield* logs).filter((line) => line.includes("authorize hook failed"))).toHaveLength(2)
        expect((yield* post(port, `/api/jobs/${id}/cancel`, {}, { "x-user": "ada" })).json().state).toBe("cancelled")
        expect(yield* logs).toContain(`Dashboard: ada@example.com did cancel on job ${id}: 1 job(s)`)
        const both = yield* Effect.flip(listen(Dashboard.routes({ token, authorize: () => ({ access: "refused" }) })))
        expect(both.message).toBe("Dashboard: option \"authorize\" cannot be given with a token: use one or the other")
      }))

    it.scoped("in a plain Node http server, and in Express beside the app's own routes", () =>
      Effect.gen(function*() {
        yield* clean
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Note, { text: "from node" })
        const Jobs = Layer.succeedContext(yield* Effect.context<JobClient.JobClient>())
        const dashboard = yield* Effect.acquireRelease(
          Effect.sync(() => Dashboard.toNodeHandler(Jobs, { basePath: "/jobs", token })),
          (d) => Effect.promise(() => d.dispose())
        )
        yield* Effect.promise(() => dashboard.ready)

        const plain = yield* listenNode(createServer(dashboard.handler))
        expect((yield* send(plain, "/jobs/api/jobs", { headers: bearer })).json().jobs[0].id).toBe(id)
        expect((yield* send(plain, "/jobs/api/jobs")).status).toBe(401)
        expect((yield* send(plain, "/elsewhere")).status).toBe(404)
        expect((yield* post(plain, `/jobs/api/jobs/${id}/cancel`, {}, bearer)).json().state).toBe("cancelled")

        const app = express()
        app.get("/", (_request, response) => {
          response.send("my app")
        })
        app.use(dashboard.handler)
        const mounted = express()
        mounted.use("/jobs", dashboard.handler)
        for (const port of [yield* listenNode(createServer(app)), yield* listenNode(createServer(mounted))]) {
          expect((yield* send(port, "/jobs", { headers: bearer })).text).toContain("src=\"/jobs/assets/app.js\"")
          expect((yield* send(port, `/jobs/api/jobs/${id}`, { headers: bearer })).json().state).toBe("cancelled")
          expect((yield* post(port, `/jobs/api/jobs/${id}/retry`, {}, bearer)).json().state).toBe("available")
          expect((yield* post(port, `/jobs/api/jobs/${id}/cancel`, {}, bearer)).status).toBe(200)
        }
        const appPort = yield* listenNode(createServer(app))
        expect((yield* send(appPort, "/")).text).toBe("my app")
        expect((yield* send(appPort, "/nothing")).status).toBe(404)

        const invalid = Dashboard.toNodeHandler(Jobs, { token: "short" })
        const error = yield* Effect.promise(() => invalid.ready.then(() => undefined, (e: Error) => e))
        expect(error?.message).toMatch(/^Dashboard: option "token" must be at least 16 characters/)
        yield* Effect.promise(() => invalid.dispose())
      }))
  }
)
