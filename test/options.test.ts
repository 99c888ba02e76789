/**
 * Option values as JavaScript callers, JSON and config send them: tables of
 * durations, UTC offsets and integers given to every entry point that takes
 * one. Accepted values are used exactly as given; refused values fail where
 * they are given with the typed error naming the option, the value and the
 * range, and insert nothing.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Cron, DateTime, Duration, Effect, Either, Exit, Layer, Option, Schema } from "effect"
import { Job, JobClient, JobError, JobRunner, Recurring, Testing, Worker } from "effect-workers"
import * as TestDatabase from "./support/database.js"

/** A duration value, and its milliseconds when it is a well-formed non-negative finite duration. */
const durations: ReadonlyArray<readonly [value: unknown, millis: number | undefined]> = [
  [0, 0],
  [1, 1],
  [1.5, 1.5],
  [999, 999],
  [1_000, 1_000],
  [86_400_000, 86_400_000],
  ["0 millis", 0],
  ["1 milli", 1],
  ["5 seconds", 5_000],
  ["1.5 seconds", 1_500],
  ["2 minutes", 120_000],
  ["3 hours", 10_800_000],
  ["1 day", 86_400_000],
  ["2 weeks", 1_209_600_000],
  ["1000000 nanos", 1],
  ["5000 micros", 5],
  [Duration.seconds(3), 3_000],
  [Duration.millis(250), 250],
  [[1, 500_000_000], 1_500],
  [BigInt(2_000_000), 2],
  // Refused everywhere: negative, NaN, unreadable, infinite, beyond any date.
  [-1, undefined],
  [-0.5, undefined],
  [Number.NaN, undefined],
  [Number.POSITIVE_INFINITY, undefined],
  [Number.NEGATIVE_INFINITY, undefined],
  ["-5 seconds", undefined],
  ["-1 millis", undefined],
  ["NaN seconds", undefined],
  ["5 lightyears", undefined],
  ["5", undefined],
  ["", undefined],
  ["banana", undefined],
  [null, undefined],
  [true, undefined],
  [{}, undefined],
  [[-1, 0], undefined],
  [[Number.NaN, 0], undefined],
  [[1], undefined],
  [BigInt(-1), undefined],
  [Duration.infinity, undefined],
  ["20000000 weeks", undefined],
  [2 ** 53, undefined]
]

/** Whether a duration entry point with minimum `min` (milliseconds) accepts `millis`. */
const accepts = (millis: number | undefined, min: number) => millis !== undefined && millis >= min

const failure = <A, E>(exit: Exit.Exit<A, E>): unknown => Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined

/** Builds a worker layer and answers its error, or undefined when it starts. */
const workerError = (worker: Layer.Layer<never, unknown, never>) =>
  Effect.map(Effect.exit(Effect.scoped(Testing.start(worker))), failure)

const task = Effect.void

describe("durations", () => {
  it.effect("Worker.make, Worker.cron and Job.make take exactly the durations their rules allow", () =>
    Effect.gen(function*() {
      for (const [value, millis] of durations) {
        const label = `${String(value)} (${typeof value})`
        const cases = [
          ["initialDelay", 0, Worker.make("w", task, { initialDelay: value as never })],
          ["schedule", 1, Worker.make("w", task, { schedule: value as never })],
          ["initialDelay", 0, Worker.cron("w", task, { cron: "0 0 1 1 *", initialDelay: value as never })]
        ] as const
        for (const [option, min, worker] of cases) {
          const error = yield* workerError(worker as Layer.Layer<never>)
          if (accepts(millis, min)) {
            expect(error, `${option} ${label}`).toBeUndefined()
          } else {
            expect(error, `${option} ${label}`).toBeInstanceOf(Worker.InvalidWorkerOptions)
            const e = error as Worker.InvalidWorkerOptions
            expect(e.option).toBe(option)
            expect(e.message).toMatch(new RegExp(`option "${option}" must be (a Schedule or )?a duration from`))
            expect(e.message).toContain("got ")
          }
        }
        const job = Job.make("timed", { payload: Schema.Struct({}), handler: () => task, timeout: value as never })
        if (accepts(millis, 1)) {
          expect(job.invalid, label).toBeUndefined()
          expect(Duration.toMillis(job.timeout!)).toBe(millis)
        } else {
          expect(job.invalid?.option, label).toBe("timeout")
          expect(job.invalid?.message).toMatch(/option "timeout" must be a duration from 1 millisecond to 365000 days/)
        }
        const definition = Recurring.make("r", { job, payload: {}, every: value as never })
        if (accepts(millis, 1_000) && Number.isInteger(millis) && job.invalid === undefined) {
          expect(definition.invalid, label).toBeUndefined()
          expect(Duration.toMillis(definition.every!)).toBe(millis)
        } else if (job.invalid === undefined) {
          expect(definition.invalid?.message, label).toMatch(/option "every" must be a duration from 1 second/)
        }
      }
    }))

  it.effect("an accepted worker interval runs exactly that far apart", () =>
    Effect.gen(function*() {
      const values: ReadonlyArray<Duration.DurationInput> = ["250 millis", 1_500, [2, 0], Duration.seconds(4)]
      for (const value of values) {
        const every = Duration.toMillis(Duration.decode(value))
        const registry = yield* Testing.start(Worker.make("spaced", task, { schedule: value }))
        yield* registry.awaitStatus("spaced", (s) => s.iterations === 1 && s.state === "idle")
        const status = Option.getOrThrow(yield* registry.get("spaced"))
        expect(status.nextRunAt.pipe(Option.map((d) => d.getTime() - Option.getOrThrow(status.lastEndedAt).getTime())))
          .toEqual(Option.some(every))
      }
    }).pipe(Effect.scoped))
})

/** Offsets "+HH:MM" / "-HH:MM" over the whole clock, and malformed ones. */
const offsets = (() => {
  const table: Array<readonly [zone: string, minutes: number | undefined]> = []
  for (let hours = 0; hours <= 16; hours++) {
    for (const minutes of [0, 1, 15, 30, 45, 59, 60, 99]) {
      for (const sign of [1, -1]) {
        const total = sign * (hours * 60 + minutes)
        const real = minutes <= 59 && total >= -720 && total <= 840
        const text = `${sign > 0 ? "+" : "-"}${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}`
        table.push([text, real ? total : undefined])
      }
    }
  }
  for (
    const bad of ["--05:00", "++05:00", "+5:00", "+05", "+0500", "+05:00:00", "05:00", "+05:0", " +05:00", "+٠٥:٠٠"]
  ) {
    table.push([bad, undefined])
  }
  return table
})()

describe("time zones", () => {
  it("only real UTC offsets and IANA names are time zones, for workers and recurring jobs alike", () => {
    const Noop = Job.make("noop", { payload: Schema.Struct({}), handler: () => Effect.void })
    for (const [zone, minutes] of offsets) {
      const worker = Worker.validateCron("0 12 * * *", zone)
      const recurring = Recurring.make("r", { job: Noop, payload: {}, cron: "0 12 * * *", timeZone: zone })
      if (minutes === undefined) {
        expect(Either.isLeft(worker) && worker.left.field, zone).toBe("timeZone")
        expect(recurring.invalid?.message, zone).toMatch(/option "timeZone" .* is not a known time zone/)
        expect(recurring.invalid?.message).toContain("from \"-12:00\" to \"+14:00\"")
      } else {
        expect(recurring.invalid, zone).toBeUndefined()
        // 12:00 at that offset, on 2026-06-01, exactly.
        const cron = Either.getOrThrow(worker)
        const next = Cron.next(cron, new Date("2026-05-31T00:00:00Z"))
        const from = Date.parse("2026-05-31T12:00:00Z") - minutes * 60_000
        expect(next.getTime(), zone).toBe(from <= Date.parse("2026-05-31T00:00:00Z") ? from + 86_400_000 : from)
      }
    }
    for (const zone of ["America/New_York", "Europe/Berlin", "Asia/Kathmandu", "UTC", "Etc/GMT+12"]) {
      expect(Either.isRight(Worker.validateCron("0 12 * * *", zone)), zone).toBe(true)
    }
    for (const zone of ["Mars/Olympus", "", "utc+2", 5, null]) {
      const worker = Worker.validateCron("0 12 * * *", zone as never)
      expect(Either.isLeft(worker) && worker.left.field, String(zone)).toBe("timeZone")
    }
    // An accepted offset is that offset, not another one.
    expect(
      DateTime.zoneToString(Either.getOrThrow(Worker.validateCron("0 0 * * *", "+05:45")).tz.pipe(Option.getOrThrow))
    )
      .toBe("+05:45")
  })
})

/** Integers as given, and whether they fit a PostgreSQL integer. */
const integers: ReadonlyArray<readonly [value: unknown, fits: boolean]> = [
  [0, true],
  [1, true],
  [-1, true],
  [100, true],
  [2 ** 31 - 1, true],
  [-(2 ** 31), true],
  [2 ** 31, false],
  [-(2 ** 31) - 1, false],
  [2 ** 53, false],
  [1.5, false],
  [Number.NaN, false],
  [Number.POSITIVE_INFINITY, false],
  ["1", false],
  [null, false],
  [BigInt(1), false]
]

describe("integers", () => {
  it("priority and maxAttempts follow one rule in Job.make and Recurring.make", () => {
    for (const [value, fits] of integers) {
      const label = String(value)
      const job = Job.make("n", { payload: Schema.Struct({}), handler: () => Effect.void, priority: value as never })
      const attempts = Job.make("n", {
        payload: Schema.Struct({}),
        handler: () => Effect.void,
        maxAttempts: value as never
      })
      const Noop = Job.make("noop", { payload: Schema.Struct({}), handler: () => Effect.void })
      const recurring = Recurring.make("r", {
        job: Noop,
        payload: {},
        every: "1 minute",
        priority: value as never
      })
      if (fits) {
        expect(job.invalid, label).toBeUndefined()
        expect(job.priority).toBe(value)
        expect(recurring.invalid, label).toBeUndefined()
        expect(recurring.priority).toBe(value)
      } else {
        expect(job.invalid?.message, label).toContain(
          `option "priority" must be a whole number from -2147483648 to 2147483647, got`
        )
        expect(recurring.invalid?.message, label).toContain(
          `option "priority" must be a whole number from -2147483648 to 2147483647, got`
        )
      }
      if (fits && (value as number) >= 1) {
        expect(attempts.invalid, label).toBeUndefined()
        expect(attempts.maxAttempts).toBe(value)
      } else {
        expect(attempts.invalid?.message, label).toContain(
          `option "maxAttempts" must be a whole number from 1 to 2147483647, got`
        )
      }
    }
  })
})

describe("options the types forbid", () => {
  it.effect("workers refuse them where they are defined, naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, Layer.Layer<never, unknown, never>]> = [
        ["onFailure", Worker.make("w", task, { onFailure: "banana" as never }) as Layer.Layer<never>],
        ["retry", Worker.make("w", task, { retry: "banana" as never }) as Layer.Layer<never>],
        ["layer", Worker.make("w", task, { layer: "banana" as never }) as Layer.Layer<never>],
        ["tracing", Worker.make("w", task, { tracing: "yes" as never }) as Layer.Layer<never>],
        ["overlap", Worker.cron("w", task, { cron: "* * * * *", overlap: "banana" as never }) as Layer.Layer<never>],
        ["concurrency", Worker.consumer("w", { source: null as never, handler: () => task, concurrency: 0 }) as never],
        ["handler", Worker.consumer("w", { source: null as never, handler: "banana" as never }) as never],
        ["name", Worker.make(undefined as never, task) as never],
        ["task", Worker.make("w", 5 as never) as never],
        ["task", Worker.cron("w", "banana" as never, { cron: "* * * * *" }) as never],
        ["source", Worker.consumer("w", { source: undefined as never, handler: () => task }) as never],
        ["source", Worker.consumer("w", { source: [1, 2] as never, handler: () => task }) as never]
      ]
      for (const [option, worker] of cases) {
        const error = yield* workerError(worker)
        expect(error, option).toBeInstanceOf(Worker.InvalidWorkerOptions)
        expect((error as Worker.InvalidWorkerOptions).option).toBe(option)
      }
      const cron = yield* workerError(Worker.cron("w", task, { cron: undefined as never }) as Layer.Layer<never>)
      expect(cron).toBeInstanceOf(Worker.InvalidCronExpression)
      expect((cron as Worker.InvalidCronExpression).message).toContain("must be a string")
    }))

  it("recurring definitions refuse them where they are defined", () => {
    const Noop = Job.make("noop", { payload: Schema.Struct({}), handler: () => Effect.void })
    const make = (options: object) =>
      Recurring.make("r", { job: Noop, payload: {}, cron: "* * * * *", ...options } as never).invalid as
        | { readonly option?: string }
        | undefined
    expect(make({ misfire: null })?.option).toBe("misfire")
    expect(make({ misfire: { backfill: "3" } })?.option).toBe("misfire")
    expect(make({ paused: "no" })?.option).toBe("paused")
    expect(make({ queue: 5 })?.option).toBe("queue")
    expect(make({ cron: 5 })?.option).toBe("cron")
    expect(make({ cron: undefined, every: "1 minute", timeZone: "UTC" })?.option).toBe("timeZone")
    expect(
      (Recurring.make("r", { job: undefined, payload: {}, every: "1 minute" } as never).invalid as
        | { readonly option?: string }
        | undefined)?.option
    )
      .toBe("job")
    const job = Job.make("k", { payload: Schema.Struct({}), handler: () => Effect.void, uniqueKey: "banana" as never })
    expect(job.invalid?.option).toBe("uniqueKey")
    const noPayload = Job.make("p", { handler: () => Effect.void } as never)
    expect(noPayload.invalid?.message).toBe("Job \"p\": option \"payload\" must be a Schema, got undefined")
    const badResult = Job.make("r", { payload: Schema.Struct({}), handler: () => Effect.void, result: "n" as never })
    expect(badResult.invalid?.option).toBe("result")
  })
})

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("on a database", (it) => {
  const Note = Job.make("note", { payload: Schema.Struct({ n: Schema.Number }), handler: () => Effect.void })

  const count = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase.TestDatabase
    const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.jobs`
    return rows[0].n
  })

  it.effect("enqueue takes exactly the delays and priorities its rules allow, and inserts nothing otherwise", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      for (const [value, millis] of durations) {
        const before = yield* count
        const exit = yield* Effect.exit(client.enqueue(Note, { n: 1 }, { delay: value as never }))
        if (accepts(millis, 0)) {
          const info = Option.getOrThrow(yield* client.get(Exit.getOrElse(exit, () => ({ id: "0" })).id))
          // Stored as the database's now() plus the delay, to the millisecond.
          expect(info.runAt.getTime() - info.insertedAt.getTime(), String(value)).toBeGreaterThanOrEqual(
            Math.floor(millis!)
          )
          expect(info.runAt.getTime() - info.insertedAt.getTime()).toBeLessThanOrEqual(Math.ceil(millis!) + 1)
        } else {
          const error = failure(exit)
          expect(error, String(value)).toBeInstanceOf(JobError.InvalidJobOptions)
          expect((error as JobError.InvalidJobOptions).option).toBe("delay")
          expect(yield* count).toBe(before)
        }
      }
      for (const [value, fits] of integers) {
        const before = yield* count
        const exit = yield* Effect.exit(client.enqueue(Note, { n: 1 }, { priority: value as never }))
        if (fits) {
          const info = Option.getOrThrow(yield* client.get(Exit.getOrElse(exit, () => ({ id: "0" })).id))
          expect(info.priority, String(value)).toBe(value)
        } else {
          expect((failure(exit) as JobError.InvalidJobOptions).option, String(value)).toBe("priority")
          expect(yield* count).toBe(before)
        }
      }
    }))

  it.effect("a job without a payload schema fails its enqueue with InvalidJobOptions, inserting nothing", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const before = yield* count
      const error = yield* Effect.flip(
        client.enqueue(Job.make("schemaless", { handler: () => Effect.void } as never), {})
      )
      expect(error).toBeInstanceOf(JobError.InvalidJobOptions)
      expect((error as JobError.InvalidJobOptions).option).toBe("payload")
      expect(yield* count).toBe(before)
    }))

  it.effect("options that are not an object, and queue names no queue can have, are typed errors", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const before = yield* count
      for (const options of [undefined, null, "email"]) {
        const error = yield* Effect.flip(client.enqueue(Job.make("shapeless", options as never), {}))
        expect(error).toBeInstanceOf(JobError.InvalidJobOptions)
        expect((error as JobError.InvalidJobOptions).message).toMatch(
          /^Job "shapeless": option "options" must be an object with a payload schema and a handler, got/
        )
      }
      expect(yield* count).toBe(before)
      for (const queue of ["", "  ", "a\u0000b"]) {
        for (const action of [client.pause(queue), client.resume(queue)]) {
          const error = yield* Effect.flip(action)
          expect(error, JSON.stringify(queue)).toBeInstanceOf(JobError.InvalidQueueOptions)
          expect((error as JobError.InvalidQueueOptions).option).toBe("queue")
        }
      }
      expect((yield* client.queues).map((q) => q.name)).not.toContain("")
    }))

  it.effect("list takes at most 1,000 jobs a page, at least 1, and 50 for a limit that is not a number", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      yield* client.enqueueMany(Note, Array.from({ length: 60 }, (_, n) => ({ n })))
      expect((yield* client.list({ limit: 0 })).length).toBe(1)
      expect((yield* client.list({ limit: -3 })).length).toBe(1)
      expect((yield* client.list({ limit: Number.NaN })).length).toBe(50)
      expect((yield* client.list({})).length).toBe(50)
      const total = yield* count
      expect((yield* client.list({ limit: 5_000 })).length).toBe(Math.min(total, 1_000))
    }))

  it.effect("a unique key that is not a string is refused before anything is inserted", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const Keyed = Job.make("keyed", {
        payload: Schema.Struct({ n: Schema.Number }),
        handler: () => Effect.void,
        uniqueKey: (p) => p.n as never
      })
      const before = yield* count
      const error = yield* Effect.flip(client.enqueueMany(Keyed, [{ n: 1 }, { n: 2 }]))
      expect(error._tag).toBe("InvalidJobOptions")
      expect(error.message).toMatch(/option "uniqueKey" (of payloads\[\d+\] )?must be a string, got 1/)
      expect(yield* count).toBe(before)
    }))

  it.scoped("the runner and the recurring layer refuse wrong options when built", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const build = <E>(runner: Layer.Layer<unknown, E, never>) =>
        Effect.map(Effect.exit(Layer.buildWithScope(runner, scope)), failure)
      const runner = (options: object) =>
        build(JobRunner.layer({ jobs: [Note], listen: false, ...options }) as Layer.Layer<unknown, unknown, never>)
      for (
        const [option, value, range] of [
          ["lease", "5 millis", "from 1 second"],
          ["lease", -1, "from 1 second"],
          ["pollInterval", "1 millis", "from 10 milliseconds"],
          ["pollInterval", Number.NaN, "from 10 milliseconds"],
          ["drainTimeout", "-5 seconds", "from 0 to"],
          ["retention", "20000000 weeks", "from 1 second"],
          ["concurrency", 0, "from 1 to 10000"],
          ["concurrency", 1e6, "from 1 to 10000"],
          ["prefetch", -1, "from 0 to 100000"],
          ["listen", "no", "true or false"]
        ] as const
      ) {
        const error = yield* runner({ [option]: value })
        expect(error, `${option} ${value}`).toBeInstanceOf(JobError.InvalidJobOptions)
        expect((error as JobError.InvalidJobOptions).message).toMatch(
          new RegExp(`^JobRunner: option "${option}" must be .*${range}.*, got`)
        )
      }
      for (const name of ["", " ", "a\u0000b"]) {
        const error = yield* runner({ queues: { [name]: 5 } })
        expect(error, JSON.stringify(name)).toBeInstanceOf(JobError.InvalidJobOptions)
        expect((error as JobError.InvalidJobOptions).message).toMatch(
          /^JobRunner: option "queues" has a queue name that/
        )
      }
      const recurring = (options: object) =>
        build(Recurring.layer({ fire: false, ...options }) as Layer.Layer<unknown, unknown, never>)
      for (
        const [option, value] of [
          ["missing", "banana"],
          ["fire", "yes"],
          ["pollInterval", -1],
          ["misfireThreshold", "-5 seconds"]
        ] as const
      ) {
        const error = yield* recurring({ [option]: value })
        expect(error, `${option} ${value}`).toBeInstanceOf(JobError.InvalidRecurring)
        expect((error as JobError.InvalidRecurring).option).toBe(option)
      }
    }))
})
