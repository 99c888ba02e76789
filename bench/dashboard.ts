/**
 * Dashboard suite: what the dashboard's pages cost on a large jobs table, and
 * what they and the job counts' triggers cost the jobs.
 *
 * - Page times: the overview, queues and jobs-list responses (p50/p95 over
 *   `DASHBOARD_SAMPLES` requests each, default 40) at 10,000, 1,000,000 and
 *   5,000,000 jobs (`DASHBOARD_SIZES`, comma-separated), generated with
 *   `generate_series` into a schema of their own: a day of completed jobs,
 *   a backlog of available ones, some scheduled, retryable, discarded,
 *   cancelled and running, over five queues of unequal size. Also the plan
 *   of each list query (`EXPLAIN`).
 * - Tabs: on the largest table, the throughput of one runner processing
 *   `DASHBOARD_JOBS` no-op jobs (default 50,000, in a child process) with 10
 *   dashboard tabs polling the overview and the queues every 5 s as the page
 *   does, against none, in turn (each round in the other order),
 *   `DASHBOARD_ROUNDS` times (default 3).
 * - Triggers: the same throughput in a fresh schema with the counts'
 *   triggers (and the list's state index), against a schema without them.
 *
 * Prints tables, then one JSON line of every figure.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import pg from "pg"
import * as Dashboard from "../src/Dashboard.js"
import * as JobClient from "../src/JobClient.js"
import * as Migrations from "../src/Migrations.js"
import { runJsonChild } from "./child.js"
import type { RunResult } from "./dashboard-config.js"
import { serverUrl } from "./database.js"
import { formatTable } from "./table.js"

const sizes = (process.env.DASHBOARD_SIZES ?? "10000,1000000,5000000").split(",").map(Number)
const samples = Number(process.env.DASHBOARD_SAMPLES ?? "40")
const rounds = Number(process.env.DASHBOARD_ROUNDS ?? "3")
const runJobs = Number(process.env.DASHBOARD_JOBS ?? "50000")
const tabs = 10
const pollMs = 5_000
const targets = { pageMs: 100, tabsRatio: 0.95, triggersRatio: 0.95 }

const child = fileURLToPath(new URL("./dashboard-child.ts", import.meta.url))
const schemaOf = (name: string) => `bench_dashboard_${name}`

const pages = {
  overview: "/api/overview",
  queues: "/api/queues",
  jobs: "/api/jobs",
  "jobs state=discarded": "/api/jobs?state=discarded",
  "jobs state=retryable": "/api/jobs?state=retryable",
  "jobs queue=rare": "/api/jobs?queue=rare",
  "jobs queue=email state=cancelled": "/api/jobs?queue=email&state=cancelled"
} as const
type Page = keyof typeof pages

/** The list queries the jobs page runs (`handlers.ts`), to EXPLAIN. */
const listQueries: ReadonlyArray<readonly [Page, string]> = [
  ["jobs", ""],
  ["jobs state=discarded", "WHERE state = 'discarded'"],
  ["jobs state=retryable", "WHERE state = 'retryable'"],
  ["jobs queue=rare", "WHERE queue = 'rare'"],
  ["jobs queue=email state=cancelled", "WHERE queue = 'email' AND state = 'cancelled'"]
]

const admin = async (url: string) => {
  const client = new pg.Client({ connectionString: url, application_name: "effect-workers-bench" })
  await client.connect()
  await client.query("SET client_min_messages = warning")
  return client
}

const migrate = (url: string, schema: string) =>
  Effect.runPromise(
    Migrations.run({ schema }).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), applicationName: "effect-workers-bench" })),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  )

/**
 * `total` jobs: by a hash of the row number, 96.5% completed over the last day (newest ids newest), 2% available
 * (due in the last 10 minutes), 1% scheduled in the next hour, 0.2% retryable, 0.5% discarded, 0.3% cancelled; and
 * 50 running. Queues: default 50%, email 25%, reports 15%, webhooks 9%, rare 1%.
 */
const generate = async (db: pg.Client, schema: string, total: number) => {
  const jobs = `${pg.escapeIdentifier(schema)}.jobs`
  for (let from = 1; from <= total; from += 1_000_000) {
    const to = Math.min(total, from + 999_999)
    await db.query(
      `INSERT INTO ${jobs} (name, queue, payload, state, priority, attempt, max_attempts, run_at, inserted_at,
         attempted_at, finalized_at, errors)
       SELECT (ARRAY['send-email', 'render-report', 'deliver-webhook', 'sync-account', 'resize-image'])[1 + i % 5],
         CASE WHEN q < 50 THEN 'default' WHEN q < 75 THEN 'email' WHEN q < 90 THEN 'reports'
           WHEN q < 99 THEN 'webhooks' ELSE 'rare' END,
         jsonb_build_object('user', 'user-' || (i % 10000), 'n', i),
         state, i % 3, CASE WHEN state IN ('available', 'scheduled', 'cancelled') THEN 0
           WHEN state = 'discarded' THEN 3 ELSE 1 END, 3,
         CASE WHEN state = 'available' THEN now() - (i % 600) * interval '1 second'
           WHEN state IN ('scheduled', 'retryable') THEN now() + (1 + i % 3600) * interval '1 second' ELSE at END,
         at - interval '2 seconds',
         CASE WHEN state IN ('available', 'scheduled', 'cancelled') THEN NULL ELSE at - interval '1 second' END,
         CASE WHEN state IN ('completed', 'discarded', 'cancelled') THEN at END,
         CASE WHEN state IN ('retryable', 'discarded') THEN jsonb_build_array(jsonb_build_object(
           'attempt', 1, 'at', at, 'message', 'connection refused', 'cause', 'Error: connection refused'))
           ELSE '[]' END
       FROM (
         SELECT i, (i * 40503) % 100 AS q,
           CASE WHEN r < 5 THEN 'discarded' WHEN r < 8 THEN 'cancelled' WHEN r < 10 THEN 'retryable'
             WHEN r < 30 THEN 'available' WHEN r < 40 THEN 'scheduled' ELSE 'completed' END AS state,
           now() - ($3::bigint - i) * (interval '1 day' / $3::bigint) AS at
         FROM (SELECT i, (i * 2654435761) % 1000 AS r FROM generate_series($1::bigint, $2::bigint) AS i) AS g
       ) AS rows`,
      [from, to, total]
    )
  }
  await db.query(
    `INSERT INTO ${jobs} (name, queue, payload, state, attempt, max_attempts, attempted_at, locked_by, lease_expires_at)
     SELECT 'send-email', 'email', jsonb_build_object('n', i), 'running', 1, 3, now(), 'bench', now() + interval '1 hour'
     FROM generate_series(1, 50) AS i`
  )
  await db.query(`VACUUM ANALYZE ${jobs}`)
}

interface Served {
  readonly base: string
  readonly close: () => Promise<void>
}

const serve = async (url: string, schema: string): Promise<Served> => {
  const dashboard = Dashboard.toNodeHandler(
    JobClient.layer({ schema, migrate: false }).pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(url), applicationName: "effect-workers-bench" }))
    ),
    { loopbackOnly: true }
  )
  await dashboard.ready
  const server: Server = createServer(dashboard.handler)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await dashboard.dispose()
    }
  }
}

const get = async (base: string, path: string) => {
  const response = await fetch(base + path)
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`)
  await response.arrayBuffer()
}

const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

const timePages = async (base: string) => {
  const result: Partial<Record<Page, { p50: number; p95: number }>> = {}
  for (const [page, path] of Object.entries(pages) as Array<[Page, string]>) {
    for (let i = 0; i < 10; i++) await get(base, path)
    const times: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const start = performance.now()
      await get(base, path)
      times.push(performance.now() - start)
    }
    result[page] = { p50: quantile(times, 0.5), p95: quantile(times, 0.95) }
  }
  return result as Record<Page, { p50: number; p95: number }>
}

/** The plan of each list query: its first nodes, one line. */
const plans = async (db: pg.Client, schema: string) => {
  const out: Array<readonly [Page, string]> = []
  for (const [page, where] of listQueries) {
    const result = await db.query<{ "QUERY PLAN": string }>(
      `EXPLAIN ANALYZE SELECT id FROM ${pg.escapeIdentifier(schema)}.jobs ${where} ORDER BY jobs.id DESC LIMIT 51`
    )
    const lines = result.rows.map((r) => r["QUERY PLAN"].trim().replace(/^->\s*/, ""))
    out.push([page, lines.filter((l) => /Scan|Sort|Limit|Execution/.test(l)).slice(0, 4).join(" | ")])
  }
  return out
}

/** Ten tabs: each loads the overview and the queues every 5 s, starting at random moments of the first 5 s. */
const startTabs = (base: string) => {
  let stopped = false
  let requests = 0
  // Stopping wakes every tab waiting for its next poll.
  const sleeping = new Set<() => void>()
  const tab = async () => {
    while (!stopped) {
      await Promise.all([get(base, pages.overview), get(base, pages.queues)])
      requests += 2
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, pollMs)
        function wake() {
          clearTimeout(timer)
          sleeping.delete(wake)
          resolve()
        }
        sleeping.add(wake)
      })
    }
  }
  const running = Array.from(
    { length: tabs },
    () => new Promise<void>((resolve) => setTimeout(resolve, Math.random() * pollMs)).then(tab)
  )
  return async () => {
    stopped = true
    for (const wake of [...sleeping]) wake()
    await Promise.allSettled(running)
    return requests
  }
}

const median = (values: ReadonlyArray<number>) => quantile(values, 0.5)
const rate = (results: ReadonlyArray<RunResult>) => median(results.map((r) => r.jobs / (r.runMs / 1000)))
const fixed = (n: number, digits = 1) => n.toFixed(digits)
const verdict = (met: boolean) => (met ? "met" : "MISSED")

const figures: Record<string, number> = {}
const failures: Array<string> = []
const scope = Effect.runSync(Scope.make())
try {
  const url = await serverUrl("dashboard", scope)
  const db = await admin(url)
  try {
    const pageRows: Array<Array<string>> = []
    const planRows: Array<Array<string>> = []
    let largest: string | undefined
    for (const size of sizes) {
      const schema = schemaOf(`${size}`)
      console.error(`dashboard suite: generating ${size.toLocaleString("en")} jobs`)
      await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
      await migrate(url, schema)
      const started = performance.now()
      await generate(db, schema, size)
      console.error(`  generated in ${fixed((performance.now() - started) / 1000)} s`)
      const served = await serve(url, schema)
      try {
        const times = await timePages(served.base)
        for (const [page, { p50, p95 }] of Object.entries(times) as Array<[Page, { p50: number; p95: number }]>) {
          pageRows.push([size.toLocaleString("en"), page, fixed(p50), fixed(p95)])
          const name = page.replace(/[ =]/g, "_")
          figures[`${name}_${size}_p50_ms`] = Number(fixed(p50))
          figures[`${name}_${size}_p95_ms`] = Number(fixed(p95))
        }
      } finally {
        await served.close()
      }
      for (const [page, plan] of await plans(db, schema)) planRows.push([size.toLocaleString("en"), page, plan])
      if (largest !== undefined) await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(largest)} CASCADE`)
      largest = schema
    }
    console.log("Dashboard responses (ms, one request at a time)")
    console.log(formatTable(["jobs", "page", "p50", "p95"], pageRows, ["right", "left", "right", "right"]))
    console.log("")
    console.log("Plans of the list queries (EXPLAIN ANALYZE)")
    console.log(formatTable(["jobs", "list", "plan"], planRows, ["right", "left", "left"]))
    console.log("")
    const largestSize = sizes[sizes.length - 1]!
    const worst = Math.max(
      ...Object.entries(figures).filter(([k]) => k.endsWith(`_${largestSize}_p95_ms`)).map(([, v]) => v)
    )
    figures.worst_page_p95_ms_at_largest = worst
    console.log(
      `slowest page p95 at ${largestSize.toLocaleString("en")} jobs: ${worst} ms (target <= ${targets.pageMs}, ${
        verdict(worst <= targets.pageMs)
      })`
    )

    // Tabs: throughput on the largest table with and without ten polling tabs.
    const withTabs: Array<RunResult> = []
    const without: Array<RunResult> = []
    let tabRequests = 0
    if (largest !== undefined) {
      const served = await serve(url, largest)
      try {
        for (let round = 1; round <= rounds; round++) {
          // Each round in the other order: the table grows and the machine drifts between runs.
          for (const polled of round % 2 === 1 ? [false, true] : [true, false]) {
            console.error(`  tabs round ${round}: ${polled ? "10 tabs" : "no tabs"}`)
            const stop = polled ? startTabs(served.base) : undefined
            try {
              const result = await runJsonChild<RunResult>(child, [url, largest, `${runJobs}`], "tabs run")
              ;(polled ? withTabs : without).push(result)
            } catch (error) {
              console.error(String(error))
              failures.push(`tabs ${polled ? "10" : "0"} (round ${round})`)
            } finally {
              if (stop !== undefined) tabRequests += await stop()
            }
          }
        }
      } finally {
        await served.close()
        await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(largest)} CASCADE`)
      }
    }

    // Triggers: the same runs in two fresh schemas, with and without the counts' triggers and the list's index.
    const counted = schemaOf("counted")
    const plain = schemaOf("plain")
    for (const schema of [counted, plain]) {
      await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
      await migrate(url, schema)
    }
    const p = pg.escapeIdentifier(plain)
    // The statements that insert and change jobs count their own rows; the deletes' and truncates' triggers and
    // the list's index are what can be taken away.
    for (const trigger of ["deleted", "truncated"]) {
      await db.query(`DROP TRIGGER jobs_count_${trigger} ON ${p}.jobs`)
    }
    await db.query(`DROP INDEX ${p}.jobs_listing`)
    const withTriggers: Array<RunResult> = []
    const withoutTriggers: Array<RunResult> = []
    for (let round = 1; round <= rounds; round++) {
      for (const schema of round % 2 === 1 ? [plain, counted] : [counted, plain]) {
        console.error(`  triggers round ${round}: ${schema === counted ? "with" : "without"}`)
        try {
          const result = await runJsonChild<RunResult>(child, [url, schema, `${runJobs}`], "triggers run")
          ;(schema === counted ? withTriggers : withoutTriggers).push(result)
        } catch (error) {
          console.error(String(error))
          failures.push(`triggers ${schema === counted ? "with" : "without"} (round ${round})`)
        }
      }
    }
    for (const schema of [counted, plain]) {
      await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
    }

    const runs: Array<[string, ReadonlyArray<RunResult>]> = [
      [`no tabs, ${largestSize.toLocaleString("en")} jobs in the table`, without],
      [`10 tabs polling every 5 s (${tabRequests} requests)`, withTabs],
      ["without the counts' triggers, fresh table", withoutTriggers],
      ["with the counts' triggers, fresh table", withTriggers]
    ]
    console.log(
      `Jobs throughput: one runner (defaults), ${runJobs.toLocaleString("en")} no-op jobs; median of ${rounds}`
    )
    console.log(formatTable(
      ["configuration", "runs", "jobs/s (median)"],
      runs.map((
        [label, results]
      ) => [label, String(results.length), results.length === 0 ? "-" : fixed(rate(results), 0)]),
      ["left", "right", "right"]
    ))
    if (without.length > 0 && withTabs.length > 0) {
      figures.jobs_per_s_no_tabs = Math.round(rate(without))
      figures.jobs_per_s_10_tabs = Math.round(rate(withTabs))
      figures.throughput_10_tabs_ratio = Number((rate(withTabs) / rate(without)).toFixed(3))
      console.log(
        `10 tabs against none: ${figures.throughput_10_tabs_ratio}x throughput (target >= ${targets.tabsRatio}, ${
          verdict(figures.throughput_10_tabs_ratio >= targets.tabsRatio)
        })`
      )
    }
    if (withTriggers.length > 0 && withoutTriggers.length > 0) {
      figures.jobs_per_s_without_triggers = Math.round(rate(withoutTriggers))
      figures.jobs_per_s_with_triggers = Math.round(rate(withTriggers))
      figures.throughput_triggers_ratio = Number((rate(withTriggers) / rate(withoutTriggers)).toFixed(3))
      console.log(
        `counts' triggers against none: ${figures.throughput_triggers_ratio}x throughput (target >= ${targets.triggersRatio}, ${
          verdict(figures.throughput_triggers_ratio >= targets.triggersRatio)
        })`
      )
    }
  } finally {
    await db.end()
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
}
if (failures.length > 0) console.log(`! failed, left out: ${failures.join(", ")}`)
console.log(JSON.stringify(figures))
process.exitCode = failures.length > 0 ? 1 : 0
