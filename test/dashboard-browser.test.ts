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
import { Context, Deferred, Effect, Layer, Option, Ref, Schedule, Schema } from "effect"
import { Dashboard, Job, JobClient, JobRunner, Recurring, Worker, WorkerRegistry } from "effect-workers"
import { mkdirSync } from "node:fs"
import { createServer, type Server as NodeServer } from "node:http"
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

/** Lets the running exports finish: until then, what runs stays running. */
const exportsDone = Effect.runSync(Deferred.make<void>())

const Export = Job.make("export", {
  payload: Schema.Struct({ tenant: Schema.String }),
  queue: "exports",
  partitionKey: ({ tenant }) => tenant,
  handler: () => Deferred.await(exportsDone)
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

/**
 * What a reader could not see: the page wider than the window, a navigation
 * link off screen, a table cell outside the window and outside any box that
 * scrolls sideways (a cell inside one can be scrolled to), or, from 1366 px
 * up, a table that needs scrolling.
 */
const clippedScript = `(() => {
  const out = []
  const width = window.innerWidth
  if (document.documentElement.scrollWidth > width) out.push("page " + document.documentElement.scrollWidth)
  for (const link of document.querySelectorAll("[data-nav]")) {
    const box = link.getBoundingClientRect()
    if (box.left < 0 || box.right > width + 1) out.push("nav " + link.textContent)
  }
  for (const cell of document.querySelectorAll("th, td")) {
    let scroller = cell.parentElement
    while (scroller && !["auto", "scroll"].includes(getComputedStyle(scroller).overflowX)) scroller = scroller.parentElement
    if (!scroller && cell.getBoundingClientRect().right > width + 1) out.push("cell " + cell.textContent.slice(0, 40))
  }
  // From a laptop's width up, no table needs scrolling at all.
  if (width >= 1366) {
    for (const box of document.querySelectorAll(".scroll")) {
      if (box.scrollWidth > box.clientWidth + 1) out.push("scrolls " + box.scrollWidth + " > " + box.clientWidth)
    }
  }
  return out
})()`

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

    it.scoped(
      "the queues page shows a queue's limits set at run time, the running jobs of its busiest keys, and the " +
        "jobs each limit holds back; reset, the limits leave the page",
      () =>
        Effect.gen(function*() {
          mkdirSync(screenshots, { recursive: true })
          const client = yield* JobClient.JobClient
          yield* client.setLimits("exports", {
            globalConcurrency: 2,
            keyConcurrency: 1,
            rateLimit: { limit: 100, period: "1 minute" }
          })
          // Three exports of one tenant and one of another: one of each runs, and the global limit is then reached.
          yield* client.enqueueMany(Export, [{ tenant: "acme" }, { tenant: "acme" }, { tenant: "acme" }, {
            tenant: "globex"
          }])
          const context = yield* Layer.build(
            HttpLayerRouter.serve(Dashboard.routes({ loopbackOnly: true }), {
              disableLogger: true,
              disableListenLog: true
            }).pipe(
              Layer.provideMerge(JobRunner.layer({ jobs: [Export], pollInterval: "200 millis" })),
              Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
            )
          )
          const address = Context.get(context, HttpServer.HttpServer).address
          const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
          yield* eventually(client.flow("exports"), (flow) => flow.running === 2, "two exports to run")

          const browser = yield* launch
          const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1366, height: 800 } }))
          const problems: Array<string> = []
          page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
          yield* Effect.promise(() => page.goto(`${base}/#/queues`))
          yield* Effect.promise(() => page.getByTestId("flow-exports").waitFor())
          expect(yield* Effect.promise(() => page.getByTestId("flow-exports").getAttribute("data-source"))).toBe("api")
          const shown = yield* Effect.forEach([
            "limit-exports-globalConcurrency",
            "limit-exports-keyConcurrency",
            "limit-exports-rateLimit",
            "limit-exports-keyRateLimit",
            "limit-exports-fair",
            "flow-running-exports",
            "flow-waiting-exports",
            "flow-started-exports",
            "held-exports-global",
            "held-exports-rate",
            "held-exports-keys"
          ], (testId) => Effect.map(text(page, testId), (value) => [testId, value] as const))
          expect(Object.fromEntries(shown)).toEqual({
            "limit-exports-globalConcurrency": "2",
            "limit-exports-keyConcurrency": "1",
            "limit-exports-rateLimit": "100 per 1 min",
            "limit-exports-keyRateLimit": "none",
            "limit-exports-fair": "no",
            "flow-running-exports": "2",
            "flow-waiting-exports": "2",
            "flow-started-exports": "2",
            "held-exports-global": "2",
            "held-exports-rate": "0",
            "held-exports-keys": "2"
          })
          // The busiest keys, most running first: each runs one, its limit, so both are held.
          const keys = page.getByTestId("flow-keys-exports").locator("tbody tr")
          const rows = yield* Effect.promise(() =>
            keys.evaluateAll((trs) =>
              trs.map((tr) => [
                tr.getAttribute("data-testid"),
                tr.getAttribute("data-held"),
                ...[...tr.querySelectorAll("td")].map((td) => td.textContent?.trim() ?? "")
              ])
            )
          )
          expect(rows).toEqual([
            ["flow-key-exports-acme", "true", "1", "2", "held"],
            ["flow-key-exports-globex", "true", "1", "0", "held"]
          ])
          // Only queues with limits get a card.
          expect(yield* Effect.promise(() => page.locator("[data-testid^=\"flow-\"][data-source]").count())).toBe(1)
          yield* shoot(page, "queues-flow")
          for (const width of [1366, 390]) {
            yield* Effect.promise(() => page.setViewportSize({ width, height: 800 }))
            const clipped = yield* Effect.promise(() => page.evaluate(clippedScript) as Promise<Array<string>>)
            expect([width, clipped]).toEqual([width, []])
          }

          yield* client.resetLimits("exports")
          yield* Effect.promise(() => page.getByTestId("refresh").click())
          yield* Effect.promise(() => page.getByTestId("flow-none").waitFor())
          expect(yield* Effect.promise(() => page.getByTestId("flow-exports").count())).toBe(0)
          yield* Deferred.succeed(exportsDone, undefined)
          yield* eventually(
            client.counts,
            (counts) => counts.some((c) => c.queue === "exports" && c.state === "completed" && c.count === 4),
            "the four exports to complete"
          )
          expect(problems).toEqual([])
        }),
      120_000
    )

    it.scoped(
      "a page on another site cannot read the jobs beside a CORS layer; under a base path the page works, asks before " +
        "deleting with the count, keeps open details across refreshes, and fits 1366 and 390 px",
      () =>
        Effect.gen(function*() {
          mkdirSync(screenshots, { recursive: true })
          const client = yield* JobClient.JobClient
          const sql = yield* SqlClient.SqlClient
          const { schema } = yield* TestDatabase.TestDatabase
          yield* sql`DELETE FROM ${sql(schema)}.jobs`
          yield* client.enqueueMany(Note, Array.from({ length: 3 }, (_, n) => ({ text: `secret note ${n}` })))
          const Failing = Worker.make(
            "a-worker-with-a-long-name-that-failed",
            Effect.fail(new Error(`the upstream refused the request: ${"detail ".repeat(30)}`)),
            { schedule: Schedule.spaced("1 hour"), onFailure: "continue" }
          )
          // As an application serves it: under a path, beside the CORS layer of Effect's docs.
          const context = yield* Layer.build(
            HttpLayerRouter.serve(
              Layer.mergeAll(Dashboard.routes({ basePath: "/ops", loopbackOnly: true }), HttpLayerRouter.cors()),
              { disableLogger: true, disableListenLog: true }
            ).pipe(
              Layer.provideMerge(Failing),
              Layer.provideMerge(WorkerRegistry.layer),
              Layer.provideMerge(JobRunner.layer({ jobs: [Flaky], queues: { mail: 1 }, pollInterval: "1 second" })),
              // A second runner in the same process: one process on the page, with its two runners.
              Layer.provideMerge(JobRunner.layer({ jobs: [Report], queues: { reports: 1 }, pollInterval: "1 second" })),
              Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
            )
          )
          const address = Context.get(context, HttpServer.HttpServer).address
          const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}/ops` : ""

          // Another site (localhost is not 127.0.0.1) whose script reads the dashboard's API.
          const attacker = yield* Effect.acquireRelease(
            Effect.async<{ server: NodeServer; url: string }>((resume) => {
              const server = createServer((_request, response) => {
                response.writeHead(200, { "content-type": "text/html" })
                response.end(`<!doctype html><script>
                  fetch(${JSON.stringify(`${base}/api/jobs`)}).then((r) => r.text().then((t) => r.status + " " + t))
                    .catch((e) => "blocked " + e.message).then((result) => { document.title = "done"; window.result = result })
                </script>`)
              })
              server.listen(0, "127.0.0.1", () => {
                const a = server.address()
                resume(Effect.succeed({
                  server,
                  url: `http://localhost:${typeof a === "object" && a !== null ? a.port : 0}/`
                }))
              })
            }),
            ({ server }) => Effect.sync(() => server.close())
          )
          const browser = yield* launch
          const evil = yield* Effect.promise(() => browser.newPage())
          yield* Effect.promise(() => evil.goto(attacker.url))
          yield* Effect.promise(() => evil.waitForFunction("document.title === 'done'"))
          const stolen = yield* Effect.promise(() => evil.evaluate("String(window.result)"))
          expect(stolen).not.toContain("secret note")
          expect(stolen).toMatch(/^403 .*requests from other sites are refused/)

          // The dashboard itself, under /ops.
          const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1366, height: 800 } }))
          const problems: Array<string> = []
          page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
          const dialogs: Array<string> = []
          let answer = false
          page.on("dialog", (dialog) => {
            dialogs.push(dialog.message())
            void (answer ? dialog.accept() : dialog.dismiss())
          })
          yield* Effect.promise(() => page.goto(`${base}/#/jobs?queue=notes`))
          yield* Effect.promise(() => page.locator("[data-testid^=\"job-row-\"]").first().waitFor())
          expect(yield* Effect.promise(() => page.locator("[data-testid^=\"job-row-\"]").count())).toBe(3)

          // Bulk delete: counted, asked with the count; dismissed, nothing is deleted.
          yield* Effect.promise(() => page.getByTestId("bulk-action").selectOption("delete"))
          yield* Effect.promise(() => page.getByTestId("bulk-apply").click())
          yield* Effect.promise(() => page.getByTestId("message").waitFor())
          expect(dialogs).toEqual(["Delete 3 jobs matching queue = notes? This cannot be undone."])
          expect((yield* client.counts).find((c) => c.queue === "notes")?.count).toBe(3)
          // Without a filter, no bulk bar at all.
          yield* Effect.promise(() => page.goto(`${base}/#/jobs`))
          yield* Effect.promise(() => page.locator("[data-testid^=\"job-row-\"]").first().waitFor())
          expect(yield* Effect.promise(() => page.getByTestId("bulk").count())).toBe(0)
          // One job, deleted from its row once confirmed.
          const [first] = yield* client.list({ queue: "notes", limit: 1 })
          answer = true
          yield* Effect.promise(() => page.getByTestId(`delete-${first.id}`).click())
          yield* eventually(client.get(first.id), Option.isNone, "the job to be deleted")
          expect(dialogs[1]).toBe(`Delete job #${first.id} (note)? This cannot be undone.`)
          yield* Effect.promise(() => page.getByTestId("message").filter({ hasText: "deleted" }).waitFor())
          // A success message goes away when the page changes.
          yield* Effect.promise(() => page.getByTestId("nav-queues").click())
          yield* Effect.promise(() => page.getByTestId("page-queues").waitFor())
          expect(yield* Effect.promise(() => page.locator("#message-bar").isHidden())).toBe(true)

          // Processes: an opened error stays open across refreshes (the runner's heartbeat changes the data).
          yield* Effect.promise(() => page.goto(`${base}/#/processes`))
          const worker = page.getByTestId("worker-a-worker-with-a-long-name-that-failed")
          yield* Effect.promise(() => worker.locator("summary").waitFor())
          yield* Effect.promise(() => worker.locator("summary").click())
          // Rendered again with new data (the runner's heartbeat moves on): the old row is gone, the new one open.
          const row = "document.querySelector('[data-testid=\"worker-a-worker-with-a-long-name-that-failed\"]')"
          yield* Effect.promise(() => page.evaluate(`${row}.dataset.old = "1"`))
          yield* eventually(
            Effect.promise(() =>
              page.getByTestId("refresh").click().then(() => page.evaluate(`${row}?.dataset.old === undefined`))
            ),
            (replaced) => replaced === true,
            "the processes page to be rendered again",
            30
          )
          expect(yield* Effect.promise(() => worker.locator("details").getAttribute("open"))).toBe("")
          const processRows = page.locator("[data-testid^=\"process-\"][data-alive]")
          expect(yield* Effect.promise(() => processRows.count())).toBe(1)
          expect(yield* Effect.promise(() => processRows.locator("[data-testid^=\"runner-\"]").count())).toBe(2)
          // Another replica's workers, as it reports them to the job tables: shown beside this process's own.
          yield* Layer.build(
            Worker.make("a-worker-of-another-replica", Effect.void, { schedule: Schedule.spaced("1 hour") }).pipe(
              Layer.provideMerge(JobClient.layer({ schema })),
              Layer.provideMerge(WorkerRegistry.layer)
            )
          )
          const remote = page.getByTestId("worker-a-worker-of-another-replica")
          yield* eventually(
            Effect.promise(() => page.getByTestId("refresh").click().then(() => remote.count())),
            (n) => n === 1,
            "the other replica's worker on the page",
            30
          )
          expect(yield* Effect.promise(() => remote.textContent())).not.toContain("(this one)")
          expect(yield* Effect.promise(() => worker.textContent())).toContain("(this one)")
          yield* shoot(page, "processes-1366")

          // Nothing is cut off: at 1366 and 390 px every table cell is on the page or in a scrolling box.
          for (const width of [1366, 390]) {
            yield* Effect.promise(() => page.setViewportSize({ width, height: 800 }))
            for (const hash of ["#/processes", "#/jobs", "#/"]) {
              yield* Effect.promise(() => page.goto(`${base}/${hash}`))
              yield* Effect.promise(() => page.locator("table").first().waitFor())
              const clipped = yield* Effect.promise(() => page.evaluate(clippedScript) as Promise<Array<string>>)
              expect([width, hash, clipped]).toEqual([width, hash, []])
            }
            yield* shoot(page, `jobs-${width}`)
          }
          expect(problems).toEqual([])
        }),
      120_000
    )
  }
)
