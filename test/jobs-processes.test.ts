/**
 * Durable jobs across real runner processes (test/fixtures/job-runner-child.ts)
 * on one database: exactly-once completion, crash rescue, graceful stop, a
 * database outage, cancellation and pause seen by every process.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { JobClient } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { countByState, createRuns, Long, Setup, startRunner, stop, Work } from "./support/runners.js"

const runs = (event: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase.TestDatabase
    return yield* sql<{ jobId: string; n: number; pid: number; active: number }>`
      SELECT job_id::text AS "jobId", n, pid, active FROM ${sql(schema)}.runs WHERE event = ${event}`
  })

layer(Layer.provideMerge(Setup, TestDatabase.layer), { excludeTestServices: true })("job runner processes", (it) => {
  it.scoped(
    "three runners complete 10,000 jobs, each exactly once, never above a runner's concurrency",
    () =>
      Effect.gen(function*() {
        yield* createRuns
        const client = yield* JobClient.JobClient
        yield* client.enqueueMany(Work, Array.from({ length: 10_000 }, (_, n) => ({ n })))
        // A long lease: a runner starved of CPU for longer than its lease (a loaded test machine running
        // many processes) rightly loses its jobs to the rescuer, and they run again. Rescue is tested below.
        const env = { LEASE: "60 seconds" }
        const runners = yield* Effect.all([startRunner("a", env), startRunner("b", env), startRunner("c", env)], {
          concurrency: 3
        })
        yield* eventually(countByState, (counts) => counts.completed === 10_000, "10,000 completed jobs", 90)
        yield* Effect.forEach(runners, stop, { concurrency: 3 })
        const started = yield* runs("started")
        const runsPerJob = new Map<string, number>()
        for (const run of started) runsPerJob.set(run.jobId, (runsPerJob.get(run.jobId) ?? 0) + 1)
        const twice = [...runsPerJob].filter(([, n]) => n > 1).map(([id]) => id).slice(0, 3)
        const explained = yield* Effect.forEach(twice, (id) => Effect.map(client.get(id), (job) => JSON.stringify(job)))
        expect(started.length, `jobs run more than once: ${explained.join("\n")}`).toBe(10_000)
        expect(new Set(started.map((run) => run.n)).size).toBe(10_000)
        expect(Math.max(...started.map((run) => run.active))).toBeLessThanOrEqual(5)
        expect(yield* countByState).toEqual({ completed: 10_000 })
      }),
    { timeout: 120_000 }
  )

  it.scoped(
    "kill -9 of a runner mid-batch: another runner rescues its jobs and completes them; nothing is lost",
    () =>
      Effect.gen(function*() {
        yield* createRuns
        const client = yield* JobClient.JobClient
        yield* client.enqueueMany(Work, Array.from({ length: 100 }, (_, n) => ({ n, millis: 100 })))
        const doomed = yield* startRunner("doomed")
        yield* eventually(runs("started"), (rows) => rows.length >= 5, "the first runs")
        yield* doomed.kill("SIGKILL")
        expect((yield* doomed.exit).signal).toBe("SIGKILL")
        const survivor = yield* startRunner("survivor")
        yield* eventually(countByState, (counts) => counts.completed === 100, "100 completed jobs", 60)
        yield* stop(survivor)
        const completedNs = new Set((yield* runs("started")).map((run) => run.n))
        expect(completedNs.size).toBe(100)
        // Jobs it had started count the attempt and say why; those it had claimed ahead get their attempt back.
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* TestDatabase.TestDatabase
        const rescued = yield* sql<{ id: string }>`SELECT id::text AS id FROM ${sql(schema)}.jobs WHERE rescues > 0`
        expect(rescued.length).toBeGreaterThan(0)
        for (const { id } of rescued) {
          const job = Option.getOrThrow(yield* client.get(id))
          if (job.attempt === 2) {
            expect(job.errors[0].message).toContain("stopped (crashed or cut off) while the job ran")
          } else expect([job.attempt, job.errors]).toEqual([1, []])
        }
      }),
    { timeout: 180_000 }
  )

  it.scoped(
    "SIGTERM with running jobs: they finish within the drain time; nothing is left running",
    () =>
      Effect.gen(function*() {
        yield* createRuns
        const client = yield* JobClient.JobClient
        yield* client.enqueueMany(Work, Array.from({ length: 20 }, (_, n) => ({ n, millis: 300 })))
        const runner = yield* startRunner("graceful")
        yield* eventually(runs("started"), (rows) => rows.length >= 5, "running jobs")
        yield* stop(runner)
        const counts = yield* countByState
        expect(counts.running).toBeUndefined()
        expect(counts.completed).toBeGreaterThanOrEqual(5)
        expect((counts.completed ?? 0) + (counts.available ?? 0)).toBe(20)
        const waiting = yield* client.list({ state: "available", limit: 100 })
        for (const job of waiting) expect(job.attempt).toBe(0)
      }),
    { timeout: 180_000 }
  )

  for (
    const [what, grace, drain] of [
      ["shorter than", "1500 millis", "3 seconds"],
      ["as long as", "2 seconds", "2 seconds"],
      ["longer than", "4 seconds", "2 seconds"]
    ] as const
  ) {
    it.scoped(
      `SIGTERM with a grace period ${what} the drain: unfinished jobs are given back before the exit`,
      () =>
        Effect.gen(function*() {
          yield* createRuns
          const client = yield* JobClient.JobClient
          yield* client.enqueueMany(Long, [{ n: 1 }, { n: 2 }])
          const runner = yield* startRunner(`grace-${grace.replace(" ", "-")}`, {
            GRACE_PERIOD: grace,
            DRAIN_TIMEOUT: drain
          })
          yield* eventually(runs("started"), (rows) => rows.length === 2, "two long jobs running")
          yield* stop(runner)
          const jobs = yield* client.list({ queue: "long", limit: 10 })
          expect(jobs.map((job) => [job.state, job.attempt])).toEqual([["available", 0], ["available", 0]])
          expect(yield* runner.output).not.toContain("did not finish within the grace period")
        }),
      { timeout: 180_000 }
    )
  }

  it.scoped(
    "a database outage: the runner recovers, and its listener reconnects so new jobs start without a poll",
    () =>
      Effect.gen(function*() {
        yield* createRuns
        const client = yield* JobClient.JobClient
        const sql = yield* SqlClient.SqlClient
        // An hour between polls: only a notification can start a job quickly.
        const runner = yield* startRunner("outage", { POLL_INTERVAL: "1 hour" })
        const before = yield* client.enqueue(Work, { n: 1 })
        yield* eventually(
          client.get(before.id),
          (job) => job._tag === "Some" && job.value.state === "completed",
          "a job"
        )
        const killed = yield* sql<{ n: number }>`
        SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE application_name LIKE ${"% outage"} AND pid <> pg_backend_pid()`
        expect(killed[0].n).toBeGreaterThan(0)
        yield* runner.waitForOutput("listening again after a lost connection")
        const after = yield* client.enqueue(Work, { n: 2 })
        yield* eventually(
          client.get(after.id),
          (job) => job._tag === "Some" && job.value.state === "completed",
          "a job"
        )
        yield* stop(runner)
        expect(yield* runner.output).toContain("connecting again")
      }),
    { timeout: 180_000 }
  )

  it.scoped("cancelling a running job from another process interrupts it", () =>
    Effect.gen(function*() {
      yield* createRuns
      const client = yield* JobClient.JobClient
      const runner = yield* startRunner("cancel")
      const { id } = yield* client.enqueue(Long, { n: 7 })
      yield* eventually(runs("started"), (rows) => rows.some((row) => row.jobId === id), "the job to start")
      yield* client.cancel(id)
      yield* eventually(
        runs("interrupted"),
        (rows) => rows.some((row) => row.jobId === id),
        "the job to be interrupted"
      )
      yield* stop(runner)
      const job = yield* client.get(id)
      expect(job._tag === "Some" && job.value.state).toBe("cancelled")
    }), { timeout: 180_000 })

  it.scoped("a paused queue is claimed by no runner until it is resumed", () =>
    Effect.gen(function*() {
      yield* createRuns
      const client = yield* JobClient.JobClient
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      const runners = yield* Effect.all([startRunner("p1"), startRunner("p2")], { concurrency: 2 })
      yield* client.pause("work")
      yield* client.enqueueMany(Work, Array.from({ length: 5 }, (_, n) => ({ n })))
      const [{ now }] = yield* sql<{ now: Date }>`SELECT now() AS now`
      // Each runner renews its lease every 2/3 s and polls every 200 ms: two heartbeats each are many polls.
      const heartbeats = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.runners
        WHERE heartbeat_at > ${new Date(now.getTime() + 1500)}`
      yield* eventually(heartbeats, (rows) => rows[0].n === 2, "two heartbeats from both runners")
      expect(yield* countByState).toEqual({ available: 5 })
      yield* client.resume("work")
      yield* eventually(countByState, (counts) => counts.completed === 5, "5 completed jobs")
      yield* Effect.forEach(runners, stop, { concurrency: 2 })
    }), { timeout: 180_000 })
})
