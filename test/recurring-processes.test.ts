/**
 * Recurring ticks across real processes (test/fixtures/recurring-child.ts) on
 * one database: exactly one job per tick while processes die and come back.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { JobClient } from "effect-workers"
import { fileURLToPath } from "node:url"
import * as Children from "./support/children.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

const fixture = fileURLToPath(new URL("./fixtures/recurring-child.ts", import.meta.url))

const Setup = Layer.unwrapEffect(Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema })))

const start = (tag: string) =>
  Effect.gen(function*() {
    const db = yield* TestDatabase.TestDatabase
    const url = new URL(db.url)
    url.searchParams.set("application_name", `${url.searchParams.get("application_name")} ${tag}`)
    const child = yield* Children.spawn(process.execPath, ["--import", "tsx", fixture], {
      env: { ...process.env, DATABASE_URL: url.href, JOBS_SCHEMA: db.schema }
    })
    yield* child.waitForOutput("recurring ready")
    return child
  })

const stop = (child: Children.Child) =>
  Effect.gen(function*() {
    yield* child.kill("SIGTERM")
    expect(yield* child.exit, yield* child.output).toEqual({ code: 0, signal: null })
  })

/** The tick jobs in the jobs table: how many, how many distinct ticks, and the span of ticks in seconds. */
const tickStats = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  const rows = yield* sql<{ jobs: number; ticks: number; span: number | null; completed: number; unfinished: number }>`
    SELECT count(*)::int AS jobs, count(DISTINCT recurring_tick)::int AS ticks,
      extract(epoch FROM max(recurring_tick) - min(recurring_tick))::int AS span,
      count(*) FILTER (WHERE state = 'completed')::int AS completed,
      count(*) FILTER (WHERE state NOT IN ('completed', 'available'))::int AS unfinished
    FROM ${sql(schema)}.jobs WHERE recurring_id = 'every-second'`
  return rows[0]
})

layer(Layer.provideMerge(Setup, TestDatabase.layer), { excludeTestServices: true })("recurring processes", (it) => {
  it.scoped(
    "three processes, a tick every second, one killed with SIGKILL and restarted: exactly one job per tick, none missing",
    () =>
      Effect.gen(function*() {
        const [a, b, c] = yield* Effect.all([start("a"), start("b"), start("c")], { concurrency: 3 })
        yield* eventually(tickStats, (stats) => stats.ticks >= 20, "20 ticks", 60)
        yield* b.kill("SIGKILL")
        expect((yield* b.exit).signal).toBe("SIGKILL")
        yield* eventually(tickStats, (stats) => stats.ticks >= 35, "35 ticks", 60)
        const restarted = yield* start("b-again")
        yield* eventually(tickStats, (stats) => stats.ticks >= 62, "62 ticks", 90)
        yield* Effect.forEach([a, c, restarted], stop, { concurrency: 3 })
        const stats = yield* tickStats
        // One job per tick, and every second from the first tick to the last has its tick.
        expect(stats.jobs).toBe(stats.ticks)
        expect(stats.ticks).toBe(stats.span! + 1)
        expect(stats.ticks).toBeGreaterThanOrEqual(62)
        // The jobs ran: completed, or, fired as the processes stopped, waiting for the next runner; none failed or
        // was left running.
        expect(stats.unfinished).toBe(0)
        expect(stats.completed).toBeGreaterThanOrEqual(stats.jobs - 5)
      }),
    { timeout: 180_000 }
  )
})
