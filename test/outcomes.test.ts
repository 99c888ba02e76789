/**
 * How runs and rescues end, decided without a database: the state, the wait
 * before the next attempt, the attempt given back or spent, the error kept.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Schedule, Schema } from "effect"
import { Job, JobError } from "effect-workers"
import * as Outcomes from "../src/internal/jobs/outcomes.js"

const now = Date.parse("2026-12-01T12:00:00Z")

const claimed = (overrides: Partial<Outcomes.Claimed> = {}): Outcomes.Claimed => ({
  id: "1",
  name: "send",
  queue: "default",
  payload: {},
  attempt: 1,
  maxAttempts: 3,
  runAt: new Date(now),
  insertedAt: new Date(now),
  traceId: null,
  spanId: null,
  recurringId: null,
  recurringTick: null,
  claimedAhead: false,
  rescues: 0,
  partitionKey: "",
  ...overrides
})

const Send = Job.make("send", {
  payload: Schema.Struct({}),
  maxAttempts: 3,
  backoff: Schedule.spaced("1 minute"),
  result: Schema.Number,
  handler: () => Effect.succeed(1)
})

describe("outcomes", () => {
  it.effect("a success completes, with its encoded result; one that cannot be encoded completes with a warning", () =>
    Effect.gen(function*() {
      const done = yield* Outcomes.ofRun(claimed(), Send, Exit.succeed(42), now)
      expect([done.kind, done.state, done.result, done.refund]).toEqual(["completed", "completed", "42", 0])
      const odd = yield* Outcomes.ofRun(claimed(), Send, Exit.succeed("not a number"), now)
      expect([odd.state, odd.result]).toEqual(["completed", null])
      expect(odd.warning).toContain("its result cannot be stored")
    }))

  it.effect("a failure is retried after its backoff, and discarded once its attempts are spent", () =>
    Effect.gen(function*() {
      const failed = yield* Outcomes.ofRun(claimed(), Send, Exit.fail(new Error("smtp down")), now)
      expect([failed.kind, failed.state, failed.delayMillis, failed.refund]).toEqual(["failed", "retryable", 60_000, 0])
      expect(JSON.parse(failed.error!)).toMatchObject({ attempt: 1, message: "Error: smtp down" })
      const last = yield* Outcomes.ofRun(claimed({ attempt: 3 }), Send, Exit.fail(new Error("smtp down")), now)
      expect([last.kind, last.state, last.delayMillis]).toEqual(["discarded", "discarded", null])
    }))

  it.effect("a snooze gives the attempt back; an unrecoverable error discards at once", () =>
    Effect.gen(function*() {
      const snoozed = yield* Outcomes.ofRun(
        claimed(),
        Send,
        Exit.fail(new JobError.Snooze({ delay: Duration.seconds(5) })),
        now
      )
      expect([snoozed.state, snoozed.delayMillis, snoozed.refund]).toEqual(["scheduled", 5_000, 1])
      const fatal = yield* Outcomes.ofRun(claimed(), Send, Exit.fail(new JobError.Unrecoverable({ error: "bad" })), now)
      expect([fatal.state, fatal.refund]).toEqual(["discarded", 0])
    }))

  it.effect("a rescue gives back the attempt of a job claimed ahead, and counts it for a job that ran", () =>
    Effect.gen(function*() {
      const ahead = yield* Outcomes.rescued(claimed({ claimedAhead: true }), "dead", Send, now)
      expect([ahead.state, ahead.refund, ahead.error, ahead.rescued]).toEqual(["available", 1, null, true])
      const ran = yield* Outcomes.rescued(claimed(), "dead", Send, now)
      expect([ran.state, ran.delayMillis, ran.refund, ran.rescued]).toEqual(["retryable", 60_000, 0, true])
      expect(ran.text).toBe("its runner dead stopped (crashed or cut off) while the job ran")
      const spent = yield* Outcomes.rescued(claimed({ attempt: 3 }), "dead", Send, now)
      expect([spent.state, spent.rescued]).toEqual(["discarded", true])
      // A job this runner does not know follows the default backoff.
      const unknown = yield* Outcomes.rescued(claimed({ name: "elsewhere" }), "dead", undefined, now)
      expect(unknown.state).toBe("retryable")
      expect(unknown.delayMillis).toBeGreaterThan(0)
    }))

  it("a failure outside the handler is a failed attempt retried in a minute, or discarded on the last", () => {
    const cause = Cause.die(new Error("backoff threw"))
    expect(Outcomes.broken(claimed(), cause, now)).toMatchObject({ state: "retryable", delayMillis: 60_000 })
    expect(Outcomes.broken(claimed({ attempt: 3 }), cause, now).state).toBe("discarded")
    expect(Outcomes.released(claimed())).toMatchObject({ state: "available", refund: 1 })
    expect(Outcomes.clampDelay(Number.NaN)).toBe(Outcomes.clampDelay(Infinity))
  })
})
