/**
 * Cron workers under `TestClock` follow the same daylight-saving rules as
 * recurring jobs (docs/recurring.md; the same cases are checked for
 * `Recurring` on a database in recurring.test.ts), default to the same zone,
 * and never fire twice from one instant.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Option, Ref, TestClock } from "effect"
import { Testing, Worker } from "../src/index.js"
import { gapCases } from "./support/dstCases.js"

/** Runs a cron worker from `from` to `to` of test time, in steps of `stepMinutes`; answers its runs. */
const runWindow = (cron: string, timeZone: string | undefined, from: string, to: string, stepMinutes = 5) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.parse(from))
    const runs = yield* Ref.make<Array<number>>([])
    const task = Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(runs, (xs) => [...xs, now]))
    const options = timeZone === undefined ? { cron } : { cron, timeZone }
    yield* Testing.start(Worker.cron("window", task, options))
    const steps = (Date.parse(to) - Date.parse(from)) / (stepMinutes * 60_000)
    for (let i = 0; i < steps; i++) yield* Testing.advance(`${stepMinutes} minutes`)
    return (yield* Ref.get(runs)).map((t) => new Date(t).toISOString())
  })

describe("cron schedules", () => {
  it.scoped("a cron worker started in the second pass of a fall-back hour runs every 5 minutes, not at once again", () =>
    Effect.gen(function*() {
      // 01:10 EST, in the repeated hour, is a tick: it runs at once, then every 5 minutes.
      const runs = yield* runWindow("*/5 * * * *", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-01T07:10:00Z")
      assert.deepStrictEqual(
        runs,
        Array.from({ length: 13 }, (_, i) => new Date(Date.parse("2026-11-01T06:10:00Z") + i * 300_000).toISOString())
      )
    }))

  it.scoped("a cron worker follows the daylight-saving rules of recurring jobs", () =>
    Effect.gen(function*() {
      for (const [cron, zone, from, to, ticks] of gapCases) {
        const runs = yield* Effect.scoped(runWindow(cron, zone, from, to, 15))
        assert.deepStrictEqual(runs, ticks, `${cron} in ${zone}`)
      }
    }))

  it.scoped("a cron worker without a time zone runs in UTC, as recurring jobs do", () =>
    Effect.gen(function*() {
      // A process whose local zone is not UTC: the default must not follow it.
      const previous = process.env.TZ
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.env.TZ = "America/Los_Angeles"
        }),
        () =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env.TZ
            else process.env.TZ = previous
          })
      )
      yield* TestClock.setTime(Date.parse("2026-06-01T00:00:00Z"))
      const registry = yield* Testing.start(Worker.cron("utc", Effect.void, { cron: "0 9 * * *" }))
      const status = yield* registry.awaitStatus("utc", (s) => s.state === "idle")
      assert.deepStrictEqual(status.nextRunAt, Option.some(new Date("2026-06-01T09:00:00Z")))
    }))
})
