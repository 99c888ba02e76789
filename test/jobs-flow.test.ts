/**
 * Flow control in one process: partition keys, per-key and global
 * concurrency, fair claiming, limits set in code and at run time, what
 * `JobClient.flow` shows, and the errors of bad limits.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, ExecutionStrategy, Exit, Layer, Option, Schema, Scope } from "effect"
import { Job, JobClient, JobRunner } from "effect-workers"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

/** Starts a runner in a scope of its own; closing the scope stops it. */
const startRunner = <Jobs extends Job.Any>(options: JobRunner.Options<Jobs>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    yield* Layer.buildWithScope(JobRunner.layer({ pollInterval: "200 millis", ...options }), scope)
    return scope
  })

const Tenant = Schema.Struct({ tenant: Schema.String, n: Schema.Number })

/** A job of queue `queue` keyed by tenant that records its start order and the most running at once, per key. */
const recorder = (queue: string) => {
  const starts: Array<{ tenant: string; n: number }> = []
  const active = new Map<string, number>()
  const peak = new Map<string, number>()
  let running = 0
  let peakAll = 0
  const job = Job.make(`record-${queue}`, {
    payload: Tenant,
    queue,
    partitionKey: ({ tenant }) => tenant,
    handler: ({ n, tenant }) =>
      Effect.gen(function*() {
        starts.push({ tenant, n })
        const now = (active.get(tenant) ?? 0) + 1
        active.set(tenant, now)
        peak.set(tenant, Math.max(peak.get(tenant) ?? 0, now))
        running++
        peakAll = Math.max(peakAll, running)
        yield* Effect.sleep("2 millis")
        active.set(tenant, (active.get(tenant) ?? 1) - 1)
        running--
      })
  })
  return { job, starts, peak, peakAll: () => peakAll }
}

const completed = (queue: string, count: number) =>
  Effect.flatMap(JobClient.JobClient, (client) =>
    eventually(
      client.counts,
      (counts) => counts.some((c) => c.queue === queue && c.state === "completed" && c.count === count),
      `${count} completed jobs in ${queue}`,
      60
    ))

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("flow control", (it) => {
  it.scoped(
    "a key concurrency of 1 runs each key's jobs one at a time, in FIFO order within the key",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const { job, peak, starts } = recorder("strict")
        yield* client.setLimits("strict", { keyConcurrency: 1 })
        const payloads = Array.from({ length: 90 }, (_, n) => ({ tenant: `t${n % 3}`, n }))
        yield* client.enqueueMany(job, payloads)
        const scope = yield* startRunner({ jobs: [job], queues: { strict: 10 } })
        yield* completed("strict", 90)
        yield* Scope.close(scope, Exit.void)
        expect([...peak.values()]).toEqual([1, 1, 1])
        for (const tenant of ["t0", "t1", "t2"]) {
          const order = starts.filter((s) => s.tenant === tenant).map((s) => s.n)
          expect(order).toEqual(payloads.filter((p) => p.tenant === tenant).map((p) => p.n))
        }
      }),
    { timeout: 90_000 }
  )

  it.scoped(
    "a global and a key concurrency hold in one runner; flow shows the running keys and the held jobs",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const gate = yield* Deferred.make<void>()
        const Blocked = Job.make("blocked", {
          payload: Tenant,
          queue: "gated",
          partitionKey: ({ tenant }) => tenant,
          handler: () => Deferred.await(gate)
        })
        yield* client.enqueueMany(Blocked, Array.from({ length: 20 }, (_, n) => ({ tenant: `t${n % 4}`, n })))
        const scope = yield* startRunner({
          jobs: [Blocked],
          queues: { gated: { concurrency: 10, globalConcurrency: 6, keyConcurrency: 2 } }
        })
        const flow = yield* eventually(client.flow("gated"), (f) => f.running === 6, "6 running jobs", 60)
        expect(flow.limits).toEqual({
          globalConcurrency: 6,
          keyConcurrency: 2,
          rateLimit: null,
          keyRateLimit: null,
          fair: false,
          source: "code"
        })
        expect(flow.waiting).toBe(14)
        expect(flow.heldByGlobalConcurrency).toBe(14)
        // Keys take turns of up to their key concurrency: the claim of 6 visits 3 keys and takes 2 of each.
        expect(flow.keys.map((k) => [k.key, k.running, k.waiting, k.held])).toEqual([
          ["t0", 2, 3, true],
          ["t1", 2, 3, true],
          ["t2", 2, 3, true],
          ["t3", 0, 5, false]
        ])
        expect(flow.heldByKeyLimits).toBe(9)
        // Raised at run time: applies to the next claim, in this runner at once (it is woken).
        yield* client.setLimits("gated", { globalConcurrency: 100, keyConcurrency: 3 })
        const raised = yield* eventually(client.flow("gated"), (f) => f.running === 12, "12 running jobs", 60)
        expect(raised.limits.source).toBe("api")
        expect(raised.heldByGlobalConcurrency).toBe(0)
        expect(raised.heldByKeyLimits).toBe(8)
        expect(raised.keys.map((k) => [k.running, k.held])).toEqual([[3, true], [3, true], [3, true], [3, true]])
        yield* Deferred.succeed(gate, undefined)
        yield* completed("gated", 20)
        yield* Scope.close(scope, Exit.void)
      }),
    { timeout: 90_000 }
  )

  it.scoped(
    "in a queue with a key concurrency, jobs without a key run too, as one group without the key's limit",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const { job, peak } = recorder("mixed")
        let running = 0
        let peakUnkeyed = 0
        const gate = yield* Deferred.make<void>()
        const Unkeyed = Job.make("unkeyed-mixed", {
          payload: Schema.Struct({ n: Schema.Number }),
          queue: "mixed",
          handler: () =>
            Effect.gen(function*() {
              running++
              peakUnkeyed = Math.max(peakUnkeyed, running)
              if (running === 3) yield* Deferred.succeed(gate, undefined)
              yield* Deferred.await(gate)
              running--
            })
        })
        yield* client.setLimits("mixed", { keyConcurrency: 1 })
        yield* client.enqueueMany(job, Array.from({ length: 10 }, (_, n) => ({ tenant: "a", n })))
        const unkeyed = yield* client.enqueueMany(Unkeyed, Array.from({ length: 10 }, (_, n) => ({ n })))
        const scope = yield* startRunner({ jobs: [job, Unkeyed], queues: { mixed: 10 } })
        yield* completed("mixed", 20)
        yield* Scope.close(scope, Exit.void)
        expect([...peak.values()]).toEqual([1])
        // Three ran at once (the gate opens only then): no key limit holds them.
        expect(peakUnkeyed).toBeGreaterThanOrEqual(3)
        expect(Option.getOrThrow(yield* client.get(unkeyed[0].id)).partitionKey).toEqual(Option.none())
      }),
    { timeout: 90_000 }
  )

  it.scoped("fair claiming: a key with a large backlog does not hold up the others", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const { job, starts } = recorder("fair")
      yield* client.setLimits("fair", { fair: true })
      // The big key's backlog is enqueued first: first in, first out would run all of it before the others.
      yield* client.enqueueMany(job, Array.from({ length: 400 }, (_, n) => ({ tenant: "big", n })))
      yield* client.enqueueMany(job, Array.from({ length: 20 }, (_, n) => ({ tenant: `small${n % 10}`, n })))
      const scope = yield* startRunner({ jobs: [job], queues: { fair: 2 }, prefetch: 8 })
      yield* completed("fair", 420)
      yield* Scope.close(scope, Exit.void)
      // Claims take at most 10 jobs (2 slots and 8 ahead) and 11 keys have jobs: each claim visits at most 10 keys,
      // each visited key's first job comes first, so every visit gives a key one job. Keys take turns in their
      // order, "big" first: the small keys' 2 jobs each take two passes over the keys, which give "big" 2 jobs;
      // one more where the last claim takes "big" before the last small jobs. First in, first out runs all 400.
      const lastSmall = Math.max(...starts.flatMap((s, i) => s.tenant === "big" ? [] : [i]))
      const bigBefore = starts.slice(0, lastSmall).filter((s) => s.tenant === "big").length
      expect(bigBefore).toBeLessThanOrEqual(3)
      expect(starts.length).toBe(420)
    }), { timeout: 90_000 })

  it.scoped(
    "limits in code are stored as the code's; set through the client they win until reset",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const sql = yield* SqlClient.SqlClient
        const Noop = Job.make("noop-code", { payload: Schema.Struct({}), queue: "coded", handler: () => Effect.void })
        const limitsOf = Effect.map(
          client.queues,
          (queues) => Option.getOrThrow(Option.fromNullable(queues.find((q) => q.name === "coded"))).limits
        )
        const first = yield* startRunner({
          jobs: [Noop],
          lease: "1200 millis",
          queues: { coded: { rateLimit: { limit: 5, period: "1 second" } } }
        })
        expect(yield* limitsOf).toMatchObject({ rateLimit: { limit: 5, periodMillis: 1000 }, source: "code" })
        yield* client.setLimits("coded", { globalConcurrency: 3 })
        expect(yield* limitsOf).toMatchObject({ globalConcurrency: 3, rateLimit: null, source: "api" })
        // A runner starting with other limits in its code does not undo what was set through the client.
        yield* Scope.close(first, Exit.void)
        const second = yield* startRunner({
          jobs: [Noop],
          lease: "1200 millis",
          queues: { coded: { keyConcurrency: 2 } }
        })
        expect(yield* limitsOf).toMatchObject({ globalConcurrency: 3, keyConcurrency: null, source: "api" })
        // Reset: the code's limits come back at the runner's next heartbeat.
        yield* client.resetLimits("coded")
        yield* eventually(limitsOf, (l) => l.source === "code" && l.keyConcurrency === 2, "the code's limits again")
        yield* Scope.close(second, Exit.void)
        const [row] = yield* sql<{ limited: boolean }>`
        SELECT limited FROM ${sql((yield* TestDatabase.TestDatabase).schema)}.queues WHERE name = 'coded'`
        expect(row.limited).toBe(true)
      }),
    { timeout: 90_000 }
  )

  it.scoped("bad limits and partition keys fail with typed errors naming the option, the value and the rule", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const message = <A, E extends { readonly message: string }, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.map(Effect.flip(effect), (error) => [(error as { _tag?: string })._tag, error.message])
      const cases: ReadonlyArray<readonly [JobClient.QueueLimits, string]> = [
        [{ globalConcurrency: 0 }, "option \"globalConcurrency\" must be a whole number from 1 to 2147483647, got 0"],
        [{ globalConcurrency: -1 }, "must be a whole number from 1 to 2147483647, got -1 (or null for no limit)"],
        [{ keyConcurrency: 1.5 }, "option \"keyConcurrency\" must be a whole number from 1 to 2147483647, got 1.5"],
        [{ keyConcurrency: "5" as unknown as number }, "got \"5\""],
        [
          { rateLimit: { limit: 5, period: "soon" as "1 second" } },
          "option \"rateLimit.period\" must be a duration from 10 milliseconds to 1 week in whole milliseconds, " +
          "such as \"30 seconds\", got \"soon\""
        ],
        [{ rateLimit: { limit: 0, period: "1 second" } }, "option \"rateLimit.limit\" must be a whole number from 1"],
        [{ keyRateLimit: 5 as unknown as JobClient.RateLimit }, "option \"keyRateLimit\" must be { limit, period }"],
        [{ fair: "yes" as unknown as boolean }, "option \"fair\" must be true or false, got \"yes\""],
        [{ concurrency: 5 } as JobClient.QueueLimits, "option \"concurrency\" is not a limit"]
      ]
      for (const [limits, expected] of cases) {
        const [tag, text] = yield* message(client.setLimits("q", limits))
        expect(tag).toBe("InvalidQueueOptions")
        expect(text).toContain("Queue \"q\": ")
        expect(text).toContain(expected)
      }
      expect((yield* message(client.setLimits("", {})))[1]).toContain("option \"queue\" must not be empty")
      for (const keys of [1001, -1, 1.5, "5"]) {
        expect(yield* message(client.flow("q", { keys: keys as number }))).toEqual([
          "InvalidQueueOptions",
          `Queue "q": option "keys" must be a whole number from 0 to 1000, got ${JSON.stringify(keys)}`
        ])
      }
      // The runner's options: the same rules, named by where they were given.
      const Noop = Job.make("noop-bad", { payload: Schema.Struct({}), handler: () => Effect.void })
      const [runnerTag, runnerText] = yield* message(
        startRunner({ jobs: [Noop], queues: { default: { globalConcurrency: 0 } } })
      )
      expect(runnerTag).toBe("InvalidJobOptions")
      expect(runnerText).toBe(
        "JobRunner: option \"queues.default.globalConcurrency\" must be a whole number from 1 to 2147483647, got 0 " +
          "(or null for no limit)"
      )
      // Partition keys, from the definition or the enqueue options.
      const Keyed = Job.make("keyed-bad", {
        payload: Schema.Struct({ key: Schema.Unknown }),
        partitionKey: ({ key }) => key as string,
        handler: () => Effect.void
      })
      expect(yield* message(client.enqueue(Keyed, { key: 5 }))).toEqual([
        "InvalidJobOptions",
        "Job \"keyed-bad\": option \"partitionKey\" must be a string, got 5"
      ])
      expect((yield* message(client.enqueue(Keyed, { key: "a" }, { partitionKey: "" })))[1]).toBe(
        "Job \"keyed-bad\": option \"partitionKey\" must not be empty"
      )
      const { id } = yield* client.enqueue(Keyed, { key: "tenant-1" })
      expect(Option.getOrThrow(yield* client.get(id)).partitionKey).toEqual(Option.some("tenant-1"))
      const other = yield* client.enqueue(Keyed, { key: "tenant-1" }, { partitionKey: "tenant-2" })
      expect(Option.getOrThrow(yield* client.get(other.id)).partitionKey).toEqual(Option.some("tenant-2"))
    }))
})
