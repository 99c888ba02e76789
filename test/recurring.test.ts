/**
 * Recurring definitions on a real database: ticks fired exactly once, the
 * misfire policies, daylight saving time in two zones (with the time set, not
 * waited for), schedule changes, removal, pause and resume, definitions from
 * code, and typed errors for bad definitions.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"
import { Job, JobClient, JobError, JobRunner, Recurring } from "effect-workers"
import { settableClock } from "./support/clock.js"
import * as TestDatabase from "./support/database.js"
import { gapCases } from "./support/dstCases.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"
import { recordingTracer } from "./support/tracer.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const Report = Job.make("report", {
  payload: Schema.Struct({ kind: Schema.String }),
  queue: "reports",
  handler: () => Effect.void
})

/** The service, built in the test's scope; it fires nothing by itself unless `fire: true`. */
const service = (options: Recurring.LayerOptions = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.buildWithScope(Recurring.layer({ fire: false, ...options }), yield* Effect.scope)
    return Context.get(context, Recurring.Recurring)
  })

/** Every test starts without definitions or jobs of others. */
const clean = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { schema } = yield* TestDatabase.TestDatabase
  yield* sql`DELETE FROM ${sql(schema)}.recurring`
  yield* sql`DELETE FROM ${sql(schema)}.jobs`
})

/** Ticks of a definition's scheduled jobs, from the jobs table, oldest first. */
const ticksOf = (id: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase.TestDatabase
    const rows = yield* sql<{ readonly tick: Date }>`
      SELECT recurring_tick AS tick FROM ${sql(schema)}.jobs
      WHERE recurring_id = ${id} AND unique_key IS NOT NULL ORDER BY recurring_tick`
    return rows.map((row) => row.tick.toISOString())
  })

const at = (iso: string, plusMinutes = 0, plusSeconds = 0) =>
  new Date(new Date(iso).getTime() + plusMinutes * 60_000 + plusSeconds * 1_000).toISOString()

/** Differences between consecutive ticks, in minutes. */
const steps = (ticks: ReadonlyArray<string>) =>
  ticks.slice(1).map((tick, i) => (new Date(tick).getTime() - new Date(ticks[i]).getTime()) / 60_000)

/**
 * Defines cron definitions at `from` and fires what is due every 20 minutes
 * of set time until `to`; returns each definition's ticks.
 */
const runWindow = (
  timeZone: string,
  crons: Record<string, string>,
  from: string,
  to: string
) =>
  Effect.gen(function*() {
    yield* clean
    const clock = settableClock(from)
    const recurring = yield* service({ misfireThreshold: "1 hour" })
    for (const [id, cron] of Object.entries(crons)) {
      yield* clock.use(
        recurring.addOrUpdate(Recurring.make(id, { job: Report, payload: { kind: id }, cron, timeZone }))
      )
    }
    for (let time = new Date(from).getTime(); time <= new Date(to).getTime(); time += 20 * 60_000) {
      clock.set(new Date(time))
      yield* clock.use(recurring.fireDue)
    }
    const ticks: Record<string, ReadonlyArray<string>> = {}
    for (const id of Object.keys(crons)) ticks[id] = yield* ticksOf(id)
    return ticks
  })

const hoursFrom = (from: string, count: number) => Array.from({ length: count }, (_, i) => at(from, i * 60))

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("recurring", (it) => {
  it.scoped("America/New_York, spring forward: a wall time in the gap runs when the gap ends, once", () =>
    Effect.gen(function*() {
      const ticks = yield* runWindow(
        "America/New_York",
        {
          "daily-0230": "30 2 * * *",
          "daily-0200-0230": "0,30 2 * * *",
          "half-hourly": "*/30 * * * *"
        },
        "2026-03-07T12:00:00Z",
        "2026-03-09T12:00:00Z"
      )
      // 02:30 EST on the 7th was before the window; on the 8th 02:30 does not exist: 03:00 EDT (07:00Z).
      expect(ticks["daily-0230"]).toEqual(["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"])
      // Both wall times in the gap become one tick at its end.
      expect(ticks["daily-0200-0230"]).toEqual([
        "2026-03-08T07:00:00.000Z",
        "2026-03-09T06:00:00.000Z",
        "2026-03-09T06:30:00.000Z"
      ])
      // Every half hour of elapsed time, with no gap and no tick twice: 48 hours, 97 ticks.
      expect(ticks["half-hourly"]).toHaveLength(97)
      expect(new Set(steps(ticks["half-hourly"]))).toEqual(new Set([30]))
    }))

  it.scoped("America/New_York, fall back: a named hour runs once, an hourly one keeps its spacing", () =>
    Effect.gen(function*() {
      const ticks = yield* runWindow(
        "America/New_York",
        {
          "daily-0130": "30 1 * * *",
          "quarter-past-1am": "*/15 1 * * *",
          "hourly": "0 * * * *"
        },
        "2026-10-31T12:00:00Z",
        "2026-11-02T12:00:00Z"
      )
      // 01:30 happens twice on the 1st (EDT 05:30Z, EST 06:30Z): it runs at the first.
      expect(ticks["daily-0130"]).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
      expect(ticks["quarter-past-1am"]).toEqual([
        ...["05:00", "05:15", "05:30", "05:45"].map((t) => `2026-11-01T${t}:00.000Z`),
        ...["06:00", "06:15", "06:30", "06:45"].map((t) => `2026-11-02T${t}:00.000Z`)
      ])
      // Hourly in elapsed time: both 01:00s (05:00Z and 06:00Z), every hour once, 49 in 48 hours.
      expect(ticks.hourly).toEqual(hoursFrom("2026-10-31T12:00:00Z", 49))
    }))

  it.scoped("the daylight-saving cases cron workers are checked on give the same ticks", () =>
    Effect.gen(function*() {
      for (const [cron, zone, from, to, expected] of gapCases) {
        const ticks = yield* runWindow(zone, { case: cron }, from, to)
        expect(ticks["case"], `${cron} in ${zone}`).toEqual(expected)
      }
    }))

  it.scoped("Europe/Berlin, spring forward and fall back", () =>
    Effect.gen(function*() {
      const spring = yield* runWindow(
        "Europe/Berlin",
        { "daily-0230": "30 2 * * *", "hourly": "0 * * * *" },
        "2026-03-28T12:00:00Z",
        "2026-03-30T12:00:00Z"
      )
      // 02:30 does not exist on the 29th: it runs at 03:00 CEST (01:00Z).
      expect(spring["daily-0230"]).toEqual(["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"])
      expect(spring.hourly).toEqual(hoursFrom("2026-03-28T12:00:00Z", 49))
      const fall = yield* runWindow(
        "Europe/Berlin",
        { "daily-0230": "30 2 * * *", "hourly": "0 * * * *" },
        "2026-10-24T12:00:00Z",
        "2026-10-26T12:00:00Z"
      )
      // 02:30 happens twice on the 25th (CEST 00:30Z, CET 01:30Z): it runs at the first.
      expect(fall["daily-0230"]).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"])
      expect(fall.hourly).toEqual(hoursFrom("2026-10-24T12:00:00Z", 49))
    }))

  it.scoped("ticks missed while no process ran: each misfire policy does what it says", () =>
    Effect.gen(function*() {
      yield* clean
      const t0 = "2026-06-01T00:00:00Z"
      const clock = settableClock(t0)
      const definitions = [
        Recurring.make("skip", { job: Report, payload: { kind: "skip" }, cron: "* * * * *", misfire: "skip" }),
        Recurring.make("run-once", { job: Report, payload: { kind: "once" }, cron: "* * * * *", misfire: "runOnce" }),
        Recurring.make("backfill", {
          job: Report,
          payload: { kind: "backfill" },
          cron: "* * * * *",
          misfire: { backfill: 3 }
        }),
        Recurring.make("interval-backfill", {
          job: Report,
          payload: { kind: "interval" },
          every: "5 minutes",
          misfire: { backfill: 2 }
        })
      ]
      const first = yield* clock.use(service({ definitions, misfireThreshold: "1 second" }))
      const fired = yield* clock.use(first.fireDue)
      // Each fires its first tick at once (the interval starts when it is first stored).
      expect(fired.fired.map((f) => f.id).sort()).toEqual(["backfill", "interval-backfill", "run-once", "skip"])
      // Every process is down for 22.5 minutes; one comes back and stores the same definitions.
      clock.set(at(t0, 22, 30))
      const again = yield* clock.use(service({ definitions, misfireThreshold: "1 second" }))
      yield* clock.use(again.fireDue)
      expect(yield* ticksOf("skip")).toEqual([at(t0)])
      expect(yield* ticksOf("run-once")).toEqual([at(t0), at(t0, 22)])
      expect(yield* ticksOf("backfill")).toEqual([at(t0), at(t0, 20), at(t0, 21), at(t0, 22)])
      expect(yield* ticksOf("interval-backfill")).toEqual([at(t0), at(t0, 15), at(t0, 20)])
      // Then they go on from their next tick.
      for (const info of yield* again.list) {
        expect(Option.getOrThrow(info.nextRunAt).toISOString()).toBe(
          info.id === "interval-backfill" ? at(t0, 25) : at(t0, 23)
        )
      }
      clock.set(at(t0, 23))
      yield* clock.use(again.fireDue)
      expect(yield* ticksOf("skip")).toEqual([at(t0), at(t0, 23)])
    }))

  it.scoped("a late tick within the misfire threshold still fires, once, told its own tick", () =>
    Effect.gen(function*() {
      yield* clean
      const t0 = "2026-06-01T00:00:00Z"
      const clock = settableClock(t0)
      const recurring = yield* clock.use(service({ misfireThreshold: "1 minute" }))
      yield* clock.use(
        recurring.addOrUpdate(
          Recurring.make("every-10s", { job: Report, payload: { kind: "x" }, cron: "*/10 * * * * *", misfire: "skip" })
        )
      )
      clock.set(at(t0, 0, 35))
      const { fired } = yield* clock.use(recurring.fireDue)
      expect(fired.map((f) => f.tick.toISOString())).toEqual([at(t0), at(t0, 0, 10), at(t0, 0, 20), at(t0, 0, 30)])
      // Firing again at the same time finds nothing due.
      expect((yield* clock.use(recurring.fireDue)).fired).toEqual([])
      expect(yield* ticksOf("every-10s")).toHaveLength(4)
    }))

  it.scoped("a changed schedule takes effect from its next tick; an unchanged one keeps its place", () =>
    Effect.gen(function*() {
      yield* clean
      const t0 = "2026-06-01T00:00:00Z"
      const clock = settableClock(t0)
      const recurring = yield* clock.use(service())
      const define = (cron: string) =>
        clock.use(recurring.addOrUpdate(Recurring.make("changing", { job: Report, payload: { kind: "c" }, cron })))
      yield* define("* * * * *")
      yield* clock.use(recurring.fireDue)
      clock.set(at(t0, 0, 30))
      expect(Option.getOrThrow((yield* define("* * * * *")).nextRunAt).toISOString()).toBe(at(t0, 1))
      const changed = yield* define("*/5 * * * *")
      expect(Option.getOrThrow(changed.nextRunAt).toISOString()).toBe(at(t0, 5))
      for (const minute of [1, 2, 3, 4, 5]) {
        clock.set(at(t0, minute))
        yield* clock.use(recurring.fireDue)
      }
      expect(yield* ticksOf("changing")).toEqual([at(t0), at(t0, 5)])
    }))

  it.scoped("a removed definition fires nothing more; a paused one fires nothing and resumes from its next tick", () =>
    Effect.gen(function*() {
      yield* clean
      const t0 = "2026-06-01T00:00:00Z"
      const clock = settableClock(t0)
      const recurring = yield* clock.use(service())
      for (const id of ["removed", "paused"]) {
        yield* clock.use(
          recurring.addOrUpdate(Recurring.make(id, { job: Report, payload: { kind: id }, cron: "* * * * *" }))
        )
      }
      yield* clock.use(recurring.fireDue)
      yield* recurring.remove("removed")
      const paused = yield* recurring.pause("paused")
      expect(paused.paused).toBe(true)
      expect(Option.isNone(paused.nextRunAt)).toBe(true)
      for (const minute of [1, 2, 3, 4, 5]) {
        clock.set(at(t0, minute))
        yield* clock.use(recurring.fireDue)
      }
      clock.set(at(t0, 5, 30))
      const resumed = yield* clock.use(recurring.resume("paused"))
      expect(Option.getOrThrow(resumed.nextRunAt).toISOString()).toBe(at(t0, 6))
      clock.set(at(t0, 6))
      yield* clock.use(recurring.fireDue)
      expect(yield* ticksOf("removed")).toEqual([at(t0)])
      expect(yield* ticksOf("paused")).toEqual([at(t0), at(t0, 6)])
      expect(Option.isNone(yield* recurring.get("removed"))).toBe(true)
      const missing = yield* Effect.flip(recurring.remove("removed"))
      expect(missing).toBeInstanceOf(JobError.RecurringNotFound)
      expect(missing.message).toBe("No recurring definition with id \"removed\"")
      expect((yield* Effect.flip(recurring.trigger("nope")))._tag).toBe("RecurringNotFound")
    }))

  it.scoped("jobs fired by a tick or a trigger carry the trace of the span that enqueued them", () =>
    Effect.gen(function*() {
      yield* clean
      const { tracer } = recordingTracer()
      const clock = settableClock("2026-06-01T00:00:00Z")
      const recurring = yield* service()
      yield* clock.use(recurring.addOrUpdate(
        Recurring.make("traced", { job: Report, payload: { kind: "t" }, cron: "* * * * *" })
      ))
      clock.set(at("2026-06-01T00:00:00Z", 1))
      const client = yield* JobClient.JobClient
      const spans = yield* Effect.gen(function*() {
        const fired = yield* clock.use(recurring.fireDue).pipe(Effect.withSpan("scheduler-pass"))
        const triggered = yield* clock.use(recurring.trigger("traced")).pipe(Effect.withSpan("admin-request"))
        return { fired: fired.fired[0].jobId, triggered: triggered.id }
      }).pipe(Effect.withTracer(tracer))
      for (const id of [spans.fired, spans.triggered]) {
        const job = Option.getOrThrow(yield* client.get(id))
        expect(Option.isSome(job.traceId), `job ${id} has a trace id`).toBe(true)
      }
    }))

  it.scoped("definitions from code: stored at start-up, paused ones fire nothing, missing ones removed or kept", () =>
    Effect.gen(function*() {
      yield* clean
      const clock = settableClock("2026-06-01T00:00:00Z")
      const a = Recurring.make("code-a", { job: Report, payload: { kind: "a" }, cron: Recurring.daily(2) })
      const b = Recurring.make("code-b", { job: Report, payload: { kind: "b" }, every: "1 hour", paused: true })
      const api = Recurring.make("api-c", { job: Report, payload: { kind: "c" }, cron: Recurring.hourly(15) })
      const first = yield* clock.use(service({ definitions: [a, b] }))
      yield* clock.use(first.addOrUpdate(api))
      const listed = yield* first.list
      expect(listed.map((info) => [info.id, info.source, info.paused])).toEqual([
        ["api-c", "api", false],
        ["code-a", "code", false],
        ["code-b", "code", true]
      ])
      const codeA = listed.find((info) => info.id === "code-a")!
      expect(codeA.cron).toEqual(Option.some("0 2 * * *"))
      expect(codeA.timeZone).toEqual(Option.some("UTC"))
      expect(codeA.queue).toBe("reports")
      expect(codeA.payload).toEqual({ kind: "a" })
      expect(Option.getOrThrow(codeA.nextRunAt).toISOString()).toBe("2026-06-01T02:00:00.000Z")
      clock.set("2026-06-01T03:00:00Z")
      yield* clock.use(first.fireDue)
      expect(yield* ticksOf("code-b")).toEqual([])
      // A pause through the API holds when the code's flag has not changed.
      yield* first.pause("code-a")
      yield* clock.use(service({ definitions: [a, b], missing: "keep" }))
      expect((yield* first.get("code-a")).pipe(Option.map((info) => info.paused))).toEqual(Option.some(true))
      // A definition gone from code is kept with "keep", removed by default; those from the API stay.
      yield* clock.use(service({ definitions: [a], missing: "keep" }))
      expect((yield* first.list).map((info) => info.id)).toEqual(["api-c", "code-a", "code-b"])
      yield* clock.use(service({ definitions: [a] }))
      expect((yield* first.list).map((info) => info.id)).toEqual(["api-c", "code-a"])
      // Without definitions, nothing is synchronised.
      yield* clock.use(service())
      expect((yield* first.list).map((info) => info.id)).toEqual(["api-c", "code-a"])
    }))

  it.scoped("a definition unpaused in code goes on from its next tick, without firing what it missed", () =>
    Effect.gen(function*() {
      yield* clean
      const t0 = "2026-06-01T00:00:00Z"
      const clock = settableClock(t0)
      const define = (paused: boolean) =>
        clock.use(service({
          definitions: [Recurring.make("held", {
            job: Report,
            payload: { kind: "held" },
            cron: "* * * * *",
            misfire: { backfill: 5 },
            paused
          })]
        }))
      yield* define(true)
      clock.set(at(t0, 10, 30))
      const recurring = yield* define(false)
      const info = Option.getOrThrow(yield* recurring.get("held"))
      expect(Option.getOrThrow(info.nextRunAt).toISOString()).toBe(at(t0, 11))
      yield* clock.use(recurring.fireDue)
      clock.set(at(t0, 11))
      yield* clock.use(recurring.fireDue)
      expect(yield* ticksOf("held")).toEqual([at(t0, 11)])
    }))

  it.scoped("a bad cron expression, time zone or option is a typed error that says what is wrong", () =>
    Effect.gen(function*() {
      yield* clean
      const invalid = (options: Partial<Recurring.Options<{ kind: string }>>) =>
        Recurring.make("bad", { job: Report, payload: { kind: "x" }, cron: "* * * * *", ...options } as never).invalid
      expect(invalid({ cron: "61 * * * *" })?.message).toMatch(
        /^Recurring "bad": option "cron" "61 \* \* \* \*" is not a valid cron expression \(its minute field\)/
      )
      expect(invalid({ cron: "* * *" })?.message).toMatch(/it has 3 fields; a cron expression has 5 fields/)
      expect(invalid({ timeZone: "Mars/Olympus_Mons" })?.message).toMatch(
        /^Recurring "bad": option "timeZone" "Mars\/Olympus_Mons" is not a known time zone: use an IANA time zone name/
      )
      expect(invalid({ cron: Recurring.daily(25) })?.message).toMatch(/\(its hour field\)/)
      expect(invalid({ cron: undefined, every: "500 millis" })?.message).toBe(
        "Recurring \"bad\": option \"every\" must be a duration from 1 second to 365000 days in whole milliseconds, " +
          "such as \"30 seconds\", got \"500 millis\""
      )
      // Beyond any date a tick could have: refused when defined, not when it fires.
      for (const every of ["20000000 weeks", 2 ** 53, "-5 seconds", Number.NaN, -1]) {
        expect(invalid({ cron: undefined, every } as never)?.message, String(every)).toMatch(
          /option "every" must be a duration from 1 second to 365000 days/
        )
      }
      expect(invalid({ every: "1 minute" })?.message).toMatch(/option "cron" or "every" must be given, and not both/)
      expect(invalid({ misfire: { backfill: 0 } })?.message).toMatch(/option "misfire" must be "skip", "runOnce" or/)
      expect(invalid({ start: new Date(2), end: new Date(1) })?.message).toMatch(
        /option "end" must not be before start/
      )
      expect(invalid({})).toBeUndefined()
      // Storing a bad definition fails with the error and stores nothing.
      const bad = Recurring.make("bad", { job: Report, payload: { kind: "x" }, cron: "0 25 * * *" })
      const error = yield* Effect.flip(service({ definitions: [bad] }))
      expect(error._tag).toBe("InvalidRecurring")
      const recurring = yield* service()
      expect((yield* Effect.flip(recurring.addOrUpdate(bad)))._tag).toBe("InvalidRecurring")
      const badPayload = Recurring.make("bad-payload", {
        job: Report,
        payload: { kind: 1 } as never,
        cron: "* * * * *"
      })
      expect((yield* Effect.flip(recurring.addOrUpdate(badPayload)))._tag).toBe("InvalidPayload")
      expect(yield* recurring.list).toEqual([])
    }))

  it.scoped("a definition that cannot be fired is set aside, shown with its error and logged once; the others go on", () =>
    Effect.gen(function*() {
      yield* clean
      const logs = yield* captureLogs
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* TestDatabase.TestDatabase
      const clock = settableClock("2026-05-01T00:00:00Z")
      const recurring = yield* service()
      yield* clock.use(
        recurring.addOrUpdate(
          Recurring.make("every-second", { job: Report, payload: { kind: "s" }, every: "1 second" })
        )
      )
      // As stored by an older version, whose interval checks let 2^53 ms through: its next tick is no date.
      yield* sql`INSERT INTO ${sql(schema)}.recurring (id, job_name, queue, priority, max_attempts, payload, every_ms,
          anchor_at, misfire, source, next_run_at)
        VALUES ('huge', 'report', 'reports', 0, 20, '{"kind":"h"}', ${2 ** 53}, ${clock.now}, 'runOnce', 'api',
          ${clock.now})`
      for (const at of ["2026-05-01T00:00:01Z", "2026-05-01T00:00:02Z", "2026-05-01T00:00:03Z"]) {
        clock.set(at)
        yield* clock.use(recurring.fireDue)
      }
      expect(yield* ticksOf("every-second")).toEqual([
        "2026-05-01T00:00:00.000Z",
        "2026-05-01T00:00:01.000Z",
        "2026-05-01T00:00:02.000Z",
        "2026-05-01T00:00:03.000Z"
      ])
      // Its tick after the due one is no date: it is set aside before it fires anything.
      expect(yield* ticksOf("huge")).toEqual([])
      const huge = Option.getOrThrow(yield* recurring.get("huge"))
      expect(Option.getOrThrow(huge.error)).toMatch(/its tick is not a valid date|outside the years 0 to 9999/)
      expect(huge.nextRunAt).toEqual(Option.none())
      const listed = (yield* recurring.list).find((info) => info.id === "huge")
      expect(listed?.error).toEqual(huge.error)
      expect((yield* logs).filter((line) => line.includes(`Recurring "huge" is set aside`))).toHaveLength(1)
      expect(Option.isNone(Option.getOrThrow(yield* recurring.get("every-second")).error)).toBe(true)
      // Resuming tries again, and keeps it aside while its next tick still cannot be fired.
      const resumed = yield* clock.use(recurring.resume("huge"))
      expect(resumed.error).toEqual(huge.error)
      expect(resumed.nextRunAt).toEqual(Option.none())
    }))

  it.scoped("the cron helpers produce the expressions their names say", () =>
    Effect.sync(() => {
      expect(Recurring.everyMinutes()).toBe("* * * * *")
      expect(Recurring.everyMinutes(5)).toBe("*/5 * * * *")
      expect(Recurring.hourly(15)).toBe("15 * * * *")
      expect(Recurring.daily(2)).toBe("0 2 * * *")
      expect(Recurring.daily(2, 30)).toBe("30 2 * * *")
      expect(Recurring.weekly("monday", 9)).toBe("0 9 * * 1")
      expect(Recurring.monthly(1, 3)).toBe("0 3 1 * *")
      for (const cron of ["* * * * *", "*/5 * * * *", "15 * * * *", "0 2 * * *", "0 9 * * 1", "0 3 1 * *"]) {
        expect(Recurring.make("ok", { job: Report, payload: { kind: "x" }, cron }).invalid).toBeUndefined()
      }
    }))

  it.scoped("the layer fires ticks on its own; jobs know their tick; a manual trigger runs at once", () =>
    Effect.gen(function*() {
      yield* clean
      const seen = yield* Ref.make<ReadonlyArray<Option.Option<Job.Tick>>>([])
      const Tock = Job.make("tock", {
        payload: Schema.Struct({}),
        handler: () =>
          Effect.flatMap(Job.JobContext, (context) => Ref.update(seen, (all) => [...all, context.recurring]))
      })
      const context = yield* Layer.buildWithScope(
        Layer.merge(
          JobRunner.layer({ jobs: [Tock], pollInterval: "200 millis" }),
          Recurring.layer({
            definitions: [Recurring.make("tock", { job: Tock, payload: {}, every: "1 second" })]
          })
        ),
        yield* Effect.scope
      )
      const recurring = Context.get(context, Recurring.Recurring)
      yield* eventually(Ref.get(seen), (all) => all.length >= 3, "three ticks to run")
      const ticks = yield* ticksOf("tock")
      expect(new Set(steps(ticks).map((minutes) => minutes * 60))).toEqual(new Set([1]))
      const ran = (yield* Ref.get(seen)).map((tick) => Option.getOrThrow(tick))
      expect(ran.slice(0, 3).map((tick) => [tick.id, tick.at.toISOString()])).toEqual(
        ticks.slice(0, 3).map((tick) => ["tock", tick])
      )
      yield* recurring.pause("tock")
      const before = (yield* Ref.get(seen)).length
      const triggered = yield* recurring.trigger("tock")
      yield* eventually(Ref.get(seen), (all) => all.length > before, "the triggered job to run")
      const client = yield* JobClient.JobClient
      const job = Option.getOrThrow(yield* client.get(triggered.id))
      expect(job.recurringId).toEqual(Option.some("tock"))
      expect(Option.isNone(job.uniqueKey)).toBe(true)
      const info = Option.getOrThrow(yield* recurring.get("tock"))
      expect(info.lastJobId).toEqual(Option.some(triggered.id))
    }))
})
