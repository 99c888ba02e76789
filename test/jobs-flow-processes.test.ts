/**
 * Flow control across real runner processes (test/fixtures/job-runner-child.ts)
 * on one database: global and per-key concurrency and rate limits hold over
 * every process, as computed from the handlers' own start and end records; a
 * killed runner's slots come free by the rescue; limits changed at run time
 * apply to the next claims.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { JobClient } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import {
  countByState,
  createFlowRuns,
  Flow,
  flowRuns,
  peakConcurrency,
  peakStartsPerWindow,
  Setup,
  startRunner,
  stop
} from "./support/runners.js"

const three = (tag: string, env: Record<string, string> = {}) =>
  Effect.all([startRunner(`${tag}-a`, env), startRunner(`${tag}-b`, env), startRunner(`${tag}-c`, env)], {
    concurrency: 3
  })

// A long lease: a runner starved of CPU on a loaded machine must not lose its jobs to the rescuer here.
const steady = { LEASE: "60 seconds", PREFETCH: "4" }

layer(Layer.provideMerge(Setup, TestDatabase.layer), { excludeTestServices: true })(
  "flow control across processes",
  (it) => {
    it.scoped(
      "three runners, 10,000 jobs over 100 keys: never more than 2 per key nor 20 in all run at once; each runs once",
      () =>
        Effect.gen(function*() {
          yield* createFlowRuns
          const client = yield* JobClient.JobClient
          yield* client.setLimits("flow", { globalConcurrency: 20, keyConcurrency: 2 })
          // Keys take turns, so a per-key limit binds only on keys with more due jobs than their turns: 90% of the jobs
          // go to 10 of the 100 keys, which are left alone once the others are done.
          const key = (n: number) => `k${n % 10 < 9 ? n % 10 : Math.floor(n / 10) % 100}`
          yield* client.enqueueMany(Flow, Array.from({ length: 10_000 }, (_, n) => ({ n, key: key(n) })))
          // 3 runners of 10 slots each: 30 slots against a global limit of 20.
          const runners = yield* three("limits", steady)
          yield* eventually(countByState, (counts) => counts.completed === 10_000, "10,000 completed jobs", 240)
          yield* Effect.forEach(runners, stop, { concurrency: 3 })
          const runs = yield* flowRuns
          expect(runs.filter((run) => run.event === "start").length).toBe(10_000)
          expect(new Set(runs.map((run) => run.jobId)).size).toBe(10_000)
          expect(new Set(runs.map((run) => run.key)).size).toBe(100)
          const { peak, peakPerKey } = peakConcurrency(runs)
          expect(peak).toBeLessThanOrEqual(20)
          expect(peakPerKey).toBeLessThanOrEqual(2)
          // The limits are reached, not only respected: the test would pass with a runner that runs one job at a time.
          expect(peakPerKey).toBe(2)
          expect(peak).toBeGreaterThan(2)
        }),
      { timeout: 300_000 }
    )

    it.scoped(
      "three runners under a rate limit of 40 per second: no window of a second has more than 40 starts",
      () =>
        Effect.gen(function*() {
          yield* createFlowRuns
          const client = yield* JobClient.JobClient
          yield* client.setLimits("flow", { rateLimit: { limit: 40, period: "1 second" }, keyRateLimit: null })
          yield* client.enqueueMany(Flow, Array.from({ length: 200 }, (_, n) => ({ n, key: `k${n % 7}` })))
          const runners = yield* three("rate", steady)
          yield* eventually(
            countByState,
            (counts) => counts.completed === 200,
            "200 completed jobs",
            120
          )
          yield* Effect.forEach(runners, stop, { concurrency: 3 })
          const runs = yield* flowRuns
          expect(runs.filter((run) => run.event === "start").length).toBe(200)
          const peak = peakStartsPerWindow(runs, 1000)
          expect(peak).toBeLessThanOrEqual(40)
          expect(peak).toBeGreaterThan(20)
          // Per key too: at most 3 starts per key in any 500 ms.
          yield* createFlowRuns
          yield* client.setLimits("flow", { keyRateLimit: { limit: 3, period: "500 millis" } })
          yield* client.enqueueMany(Flow, Array.from({ length: 60 }, (_, n) => ({ n, key: `k${n % 4}` })))
          const again = yield* three("key-rate", steady)
          yield* eventually(countByState, (counts) => counts.completed === 60, "60 completed jobs", 120)
          yield* Effect.forEach(again, stop, { concurrency: 3 })
          const keyed = yield* flowRuns
          expect(peakStartsPerWindow(keyed, 500, true)).toBeLessThanOrEqual(3)
          expect(peakStartsPerWindow(keyed, 500, true)).toBeGreaterThan(1)
        }),
      { timeout: 300_000 }
    )

    it.scoped(
      "kill -9 of a runner holding every slot of a global limit: the rescue frees them for the others",
      () =>
        Effect.gen(function*() {
          yield* createFlowRuns
          const client = yield* JobClient.JobClient
          yield* client.setLimits("flow", { globalConcurrency: 4 })
          yield* client.enqueueMany(Flow, Array.from({ length: 40 }, (_, n) => ({ n, key: `k${n % 2}` })))
          // Its runs never end: it holds the 4 slots until it dies.
          const doomed = yield* startRunner("flow-doomed", { STALL: "1", PREFETCH: "0" })
          yield* eventually(flowRuns, (runs) => runs.length === 4, "4 stalled runs")
          const survivors = yield* Effect.all([startRunner("flow-s1"), startRunner("flow-s2")], { concurrency: 2 })
          const held = yield* client.flow("flow")
          expect([held.running, held.heldByGlobalConcurrency]).toEqual([4, 36])
          yield* doomed.kill("SIGKILL")
          expect((yield* doomed.exit).signal).toBe("SIGKILL")
          // The fixture's lease is 2 s: the dead runner counts as dead after 1 s, and its slots are free after a rescue.
          yield* eventually(countByState, (counts) => counts.completed === 40, "40 completed jobs", 90)
          yield* Effect.forEach(survivors, stop, { concurrency: 2 })
          const runs = yield* flowRuns
          // The 4 stalled runs ran again elsewhere, and the survivors never ran more than 4 at once.
          const stalled = runs.slice(0, 4).map((run) => run.jobId)
          for (const id of stalled) expect(runs.filter((run) => run.jobId === id && run.event === "end").length).toBe(1)
          expect(peakConcurrency(runs.slice(4)).peak).toBeLessThanOrEqual(4)
        }),
      { timeout: 120_000 }
    )

    it.scoped(
      "a global limit raised and lowered at run time applies to the next claims of every runner",
      () =>
        Effect.gen(function*() {
          yield* createFlowRuns
          const client = yield* JobClient.JobClient
          yield* client.setLimits("flow", { globalConcurrency: 2 })
          yield* client.enqueueMany(Flow, Array.from({ length: 400 }, (_, n) => ({ n, key: `k${n}`, millis: 150 })))
          const runners = yield* three("change", steady)
          yield* eventually(
            client.flow("flow"),
            (flow) => flow.running === 2,
            "2 running jobs",
            60
          )
          const early = peakConcurrency(yield* flowRuns)
          expect(early.peak).toBeLessThanOrEqual(2)
          yield* client.setLimits("flow", { globalConcurrency: 9 })
          yield* eventually(client.flow("flow"), (flow) => flow.running === 9, "9 running jobs", 60)
          yield* client.setLimits("flow", { globalConcurrency: 1 })
          yield* eventually(client.flow("flow"), (flow) => flow.running <= 1, "at most 1 running job", 60)
          const mark = (yield* flowRuns).length
          yield* eventually(flowRuns, (runs) => runs.length >= mark + 10, "10 more records", 60)
          for (const id of runners) yield* stop(id)
          const all = yield* flowRuns
          expect(peakConcurrency(all).peak).toBeLessThanOrEqual(9)
          // From the moment at most one ran, runs go one at a time: those under way then are counted as going on.
          const open = new Set<string>()
          for (const run of all.slice(0, mark)) {
            if (run.event === "start") open.add(run.jobId)
            else open.delete(run.jobId)
          }
          let running = open.size
          let peak = running
          for (const run of all.slice(mark)) {
            running += run.event === "start" ? 1 : -1
            peak = Math.max(peak, running)
          }
          expect(peak).toBeLessThanOrEqual(1)
        }),
      { timeout: 180_000 }
    )
  }
)
