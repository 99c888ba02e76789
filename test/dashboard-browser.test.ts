/**
 * The dashboard in a real browser (Debian's Chromium, driven by
 * playwright-core) against a real server and database: real counts, a
 * discarded job retried until it runs, a queue paused and resumed, a payload
 * with HTML shown as text. Screenshots of the main pages are saved to
 * `test-artifacts/dashboard/`.
 */
import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"
import { Dashboard, Job, JobClient, JobRunner, Recurring } from "effect-workers"
import { mkdirSync } from "node:fs"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import type { Page } from "playwright-core"
import { artifactsDir, launch } from "./support/browser.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const screenshots = fileURLToPath(new URL("dashboard/", artifactsDir))

/** Fails on its first attempt of each payload, succeeds on the next. */
const attempts = Effect.runSync(Ref.make(new Map<string, number>()))
const Flaky = Job.make("flaky", {
  payload: Schema.Struct({ text: Schema.String }),
  queue: "mail",
  maxAttempts: 1,
  handler: ({ text }) =>
    Effect.gen(function*() {
      const seen = yield* Ref.modify(attempts, (map) => {
        const n = (map.get(text) ?? 0) + 1
        return [n, new Map(map).set(text, n)]
      })
      if (seen === 1) return yield* Effect.fail(new Error(`the mail server refused "${text}"`))
    })
})

const Report = Job.make("report", { payload: Schema.Struct({}), queue: "reports", handler: () => Effect.void })

const Note = Job.make("note", {
  payload: Schema.Struct({ text: Schema.String }),
  queue: "notes",
  handler: () => Effect.void
})

/** The dashboard on a real port, with a runner for `mail` and a recurring definition to show. */
const Server = HttpLayerRouter.serve(Dashboard.routes({ loopbackOnly: true }), { disableLogger: true }).pipe(
  Layer.provideMerge(JobRunner.layer({ jobs: [Flaky], pollInterval: "200 millis" })),
  Layer.provideMerge(Recurring.layer({
    definitions: [Recurring.make("nightly-report", { job: Report, payload: {}, cron: Recurring.daily(2) })],
    fire: false
  })),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

const jobInfo = (id: string) =>
  Effect.flatMap(JobClient.JobClient, (client) => Effect.map(client.get(id), Option.getOrThrow))

const text = (page: Page, testId: string) =>
  Effect.promise(() => page.getByTestId(testId).first().textContent()).pipe(Effect.map((t) => t?.trim() ?? ""))

const shoot = (page: Page, name: string) =>
  Effect.promise(() => page.screenshot({ path: `${screenshots}${name}.png`, fullPage: true }))

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })(
  "dashboard in a browser",
  (it) => {
    it.scoped(
      "shows real counts; retries a discarded job that then runs; pauses and resumes a queue; renders HTML as text",
      () =>
        Effect.gen(function*() {
          mkdirSync(screenshots, { recursive: true })
          const client = yield* JobClient.JobClient
          const sql = yield* SqlClient.SqlClient
          const { schema } = yield* TestDatabase.TestDatabase
          // Jobs nobody runs: three waiting in "reports", one scheduled, and a note whose payload holds HTML.
          yield* client.enqueueMany(Report, [{}, {}, {}])
          yield* client.enqueue(Report, {}, { delay: "1 hour" })
          const hostile = "<script>window.__pwned = 1</script><b>bold</b><img src=x onerror=\"window.__pwned = 2\">"
          const { id: hostileId } = yield* client.enqueue(Note, { text: hostile })
          // A mail job that fails on its only attempt and is discarded.
          const context = yield* Layer.build(Server)
          const address = Context.get(context, HttpServer.HttpServer).address
          const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
          const { id: mailId } = yield* client.enqueue(Flaky, { text: "welcome" })
          yield* eventually(jobInfo(mailId), (job) => job.state === "discarded", "the mail job to be discarded")

          const browser = yield* launch
          const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 800 } }))
          const problems: Array<string> = []
          page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
          page.on("console", (message) => {
            if (message.type() === "error") problems.push(`console: ${message.text()}`)
          })

          // Overview: the counts the database holds.
          yield* Effect.promise(() => page.goto(`${base}/#/`))
          yield* Effect.promise(() => page.getByTestId("count-reports-available").waitFor())
          expect(yield* text(page, "count-reports-available")).toBe("3")
          expect(yield* text(page, "count-reports-scheduled")).toBe("1")
          expect(yield* text(page, "count-mail-discarded")).toBe("1")
          yield* shoot(page, "overview")

          // The discarded job, retried from the jobs page, runs and completes.
          yield* Effect.promise(() => page.goto(`${base}/#/jobs?queue=mail&state=discarded`))
          const row = page.getByTestId(`job-row-${mailId}`)
          yield* Effect.promise(() => row.waitFor())
          yield* shoot(page, "jobs")
          yield* Effect.promise(() => row.locator("[data-action=\"retry\"]").click())
          const done = yield* eventually(
            jobInfo(mailId),
            (job) => job.state === "completed",
            "the retried job to complete"
          )
          expect(done.attempt).toBe(2)
          expect(done.errors.map((error) => error.message)).toEqual(["Error: the mail server refused \"welcome\""])

          // Its detail page shows the attempt's error.
          yield* Effect.promise(() => page.goto(`${base}/#/jobs/${mailId}`))
          yield* Effect.promise(() => page.getByTestId("error-1").waitFor())
          expect(yield* text(page, "job-state")).toContain("completed")
          expect(yield* text(page, "error-1")).toContain("the mail server refused")
          yield* shoot(page, "job")

          // A payload with HTML in it is shown as text, and runs nothing.
          yield* Effect.promise(() => page.goto(`${base}/#/jobs/${hostileId}`))
          yield* Effect.promise(() => page.getByTestId("payload").waitFor())
          expect(yield* text(page, "payload")).toContain(JSON.stringify(hostile))
          expect(yield* Effect.promise(() => page.getByTestId("payload").locator("b, img, script").count())).toBe(0)
          expect(yield* Effect.promise(() => page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)))
            .toBeUndefined()

          // The "mail" queue, paused and resumed from the queues page.
          yield* Effect.promise(() => page.goto(`${base}/#/queues`))
          yield* Effect.promise(() => page.getByTestId("pause-mail").click())
          yield* Effect.promise(() => page.locator("[data-testid=\"queue-mail\"][data-paused=\"true\"]").waitFor())
          const paused = (yield* client.queues).find((queue) => queue.name === "mail")
          expect(paused?.paused).toBe(true)
          yield* shoot(page, "queues")
          yield* Effect.promise(() => page.getByTestId("resume-mail").click())
          yield* Effect.promise(() => page.locator("[data-testid=\"queue-mail\"][data-paused=\"false\"]").waitFor())
          expect((yield* client.queues).find((queue) => queue.name === "mail")?.paused).toBe(false)

          // Recurring definitions and processes.
          yield* Effect.promise(() => page.goto(`${base}/#/recurring`))
          yield* Effect.promise(() => page.getByTestId("recurring-nightly-report").waitFor())
          yield* shoot(page, "recurring")
          yield* Effect.promise(() => page.goto(`${base}/#/processes`))
          const runner = yield* Effect.promise(() =>
            page.locator("[data-testid^=\"runner-\"][data-alive]").first().getAttribute("data-alive")
          )
          expect(runner).toBe("true")
          yield* shoot(page, "processes")

          expect(problems).toEqual([])
          yield* sql`DELETE FROM ${sql(schema)}.recurring`
        }),
      120_000
    )
  }
)
