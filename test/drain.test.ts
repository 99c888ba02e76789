/**
 * `Testing.drainQueue` inside a test under `TestClock` (the default of
 * `it.effect`): it works without moving the clock, and a drain that does not
 * finish fails with a typed error.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Ref, Schedule, Schema, TestClock } from "effect"
import { Job, JobClient, Testing } from "effect-workers"
import * as TestDatabase from "./support/database.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

layer(Layer.provideMerge(ClientLive, TestDatabase.layer))("drainQueue under TestClock", (it) => {
  it.effect("runs what is waiting, retries on an hour's backoff included, without moving the test clock", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const Flaky = Job.make("flaky", {
        payload: Schema.Struct({ n: Schema.Number }),
        backoff: Schedule.spaced("1 hour"),
        handler: ({ n }) =>
          Effect.flatMap(
            Ref.updateAndGet(runs, (k) => k + 1),
            (k) => k === 1 ? Effect.fail(new Error(`first run of ${n}`)) : Effect.void
          )
      })
      const client = yield* JobClient.JobClient
      yield* client.enqueue(Flaky, { n: 1 })
      const before = yield* TestClock.currentTimeMillis
      const drained = yield* Testing.drainQueue({ jobs: [Flaky] })
      expect(drained.completed).toBe(1)
      expect(drained.jobs[0].attempt).toBe(2)
      expect(yield* Ref.get(runs)).toBe(2)
      expect(yield* TestClock.currentTimeMillis).toBe(before)
    }))

  it.effect("a drain still waiting after its timeout fails with DrainTimeout, and stops its runner", () =>
    Effect.gen(function*() {
      const Stuck = Job.make("stuck", { payload: Schema.Struct({}), handler: () => Effect.never })
      const client = yield* JobClient.JobClient
      const { id } = yield* client.enqueue(Stuck, {})
      const error = yield* Effect.flip(Testing.drainQueue({ jobs: [Stuck], timeout: "500 millis" }))
      expect(error._tag).toBe("DrainTimeout")
      expect(error.message).toBe("drainQueue: 1 job(s) still waiting after the timeout of 500 ms")
      // The runner gave the job back when it stopped.
      const info = yield* client.get(id)
      expect(info._tag === "Some" && info.value.state).toBe("available")
      yield* client.delete(id)
    }))

  it.effect("a wrong timeout is a typed error", () =>
    Effect.gen(function*() {
      const Any = Job.make("any", { payload: Schema.Struct({}), handler: () => Effect.void })
      for (const timeout of [0, -1, NaN, "soon", "-5 seconds"]) {
        const error = yield* Effect.flip(Testing.drainQueue({ jobs: [Any], timeout: timeout as never }))
        expect(error._tag).toBe("InvalidJobOptions")
        expect(error.message).toContain(`option "timeout" must be a positive duration`)
      }
    }))
})
