/**
 * Values a job stores: payloads that must read back from PostgreSQL as they
 * were given, and text and times PostgreSQL refuses. Each refused value fails
 * with a typed error before any statement, and inserts nothing.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Layer, Option, Schedule, Schema } from "effect"
import { Job, JobClient, Migrations, Recurring, Testing } from "effect-workers"
import { isDeepStrictEqual } from "node:util"
import * as TestDatabase from "./support/database.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const jobOf = <P, I>(name: string, payload: Schema.Schema<P, I>) =>
  Job.make(name, { payload, handler: () => Effect.void })

const countOf = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase.TestDatabase
    const [{ n }] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.jobs
      WHERE name = ${name}`
    return n
  })

const nested = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

const cycle = (): unknown => {
  const value: Record<string, unknown> = { a: 1 }
  value.self = value
  return value
}

class Point {
  constructor(readonly x: number) {}
}

/** Accepted: each reads back, decoded with its schema, equal to what was given. */
const accepted: ReadonlyArray<readonly [string, Schema.Schema<any, any>, unknown]> = [
  ["a struct of string, number and boolean", Schema.Struct({ s: Schema.String, n: Schema.Number, b: Schema.Boolean }), {
    s: "x",
    n: -1.5,
    b: false
  }],
  ["the largest finite number", Schema.Number, Number.MAX_VALUE],
  ["the smallest positive number", Schema.Number, Number.MIN_VALUE],
  ["an unsafe integer", Schema.Number, 2 ** 60],
  ["the empty string", Schema.String, ""],
  ["text with emoji, accents and a right-to-left mark", Schema.String, "h\u00e9llo \u{1F600} \u200f\u05e9"],
  ["text with a backslash-u sequence", Schema.String, "C:\\u0000dir"],
  ["null", Schema.Null, null],
  ["a Date through Schema.Date", Schema.Date, new Date("2026-03-08T07:30:00.123Z")],
  ["a bigint through Schema.BigInt", Schema.BigInt, 2n ** 70n],
  ["an optional property left out", Schema.Struct({ a: Schema.optional(Schema.String) }), {}],
  ["an optional property set to undefined", Schema.Struct({ a: Schema.optional(Schema.String) }), { a: undefined }],
  ["any JSON under Schema.Unknown", Schema.Unknown, {
    a: [1, "two", null, true, { b: [] }],
    "": 0,
    "a.b": { "\u00e9": 1 }
  }],
  ["an object without a prototype", Schema.Unknown, Object.assign(Object.create(null), { a: 1 })],
  ["a shared, not cyclic, reference", Schema.Unknown, ((shared) => ({ a: shared, b: shared }))({ x: 1 })],
  ["nesting of 999 levels", Schema.Unknown, nested(999)],
  ["an array of 10,000 numbers", Schema.Array(Schema.Number), Array.from({ length: 10_000 }, (_, i) => i / 7)],
  ["a record", Schema.Record({ key: Schema.String, value: Schema.Int }), { a: 1, b: -2 }],
  ["a union of literals", Schema.Literal("a", "b"), "b"],
  ["a struct of a number", Schema.Struct({ x: Schema.Number }), { x: 3 }]
]

/** Refused: each fails with InvalidPayload whose issue contains the fragment. */
const refused: ReadonlyArray<readonly [string, Schema.Schema<any, any>, unknown, string]> = [
  ["Schema.Void", Schema.Void, undefined, "payload: undefined cannot be stored as JSON"],
  ["Schema.Undefined", Schema.Undefined, undefined, "undefined cannot be stored"],
  ["undefined in Schema.Unknown", Schema.Unknown, undefined, "undefined cannot be stored"],
  ["undefined in an array", Schema.Unknown, [1, undefined], "payload[1]: undefined cannot be stored"],
  ["a function", Schema.Unknown, { f: () => 1 }, "payload.f: a function cannot be stored"],
  ["a symbol", Schema.Unknown, [Symbol("s")], "payload[0]: a symbol cannot be stored"],
  ["NaN", Schema.Number, NaN, "NaN is not a JSON number"],
  ["Infinity", Schema.Number, Infinity, "Infinity is not a JSON number"],
  ["1e309", Schema.Struct({ n: Schema.Number }), { n: Number("1e309") }, "payload.n: Infinity is not a JSON number"],
  ["-Infinity", Schema.Number, -Infinity, "-Infinity is not a JSON number"],
  ["a Date object", Schema.DateFromSelf, new Date(0), "a Date object would be stored as a string"],
  ["a bigint", Schema.BigIntFromSelf, 1n, "a bigint (1n) cannot be stored"],
  ["a cycle", Schema.Unknown, cycle(), "payload.self: the value contains itself"],
  ["nesting of 10,000 levels", Schema.Unknown, nested(10_000), "nesting deeper than 1000 levels"],
  ["nesting of 1,001 levels", Schema.Unknown, nested(1_001), "nesting deeper than 1000 levels"],
  ["a NUL character", Schema.String, "a\u0000b", "a NUL character (U+0000) at index 1"],
  ["a NUL in a property name", Schema.Unknown, { "k\u0000": 1 }, "the property name contains a NUL"],
  ["a lone high surrogate", Schema.String, "x\ud800", "a lone UTF-16 surrogate at index 1"],
  ["a lone low surrogate", Schema.Unknown, { s: "\udc00y" }, "payload.s: the text contains a lone UTF-16 surrogate"],
  ["an empty array slot", Schema.Unknown, [1, , 2], "payload[1]: an empty array slot"], // eslint-disable-line no-sparse-arrays
  ["a Map", Schema.Unknown, new Map([[1, 2]]), "an object of class Map"],
  ["a class instance", Schema.Unknown, new Point(1), "an object of class Point"],
  [
    "a property set to undefined that the schema needs present",
    Schema.Struct({ a: Schema.optional(Schema.Undefined) }).pipe(Schema.filter((o) => "a" in o)),
    { a: undefined },
    "properties set to undefined are left out of JSON"
  ],
  ["a value the schema rejects", Schema.Struct({ n: Schema.Number }), { n: "1" }, "does not match its schema"]
]

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("payloads", (it) => {
  it.effect("accepted payloads of many shapes read back exactly as they were given", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      for (const [i, [what, schema, value]] of accepted.entries()) {
        const job = jobOf(`accepted-${i}`, schema)
        const { id } = yield* client.enqueue(job, value)
        const info = yield* Effect.map(client.get(id), Option.getOrThrow)
        const decoded = yield* Schema.decodeUnknown(schema)(info.payload)
        if (what === "an optional property set to undefined") expect(decoded, what).toStrictEqual({})
        // Schema.Unknown decodes to plain objects, whatever prototype the value had.
        else if (schema === Schema.Unknown) expect(decoded, what).toEqual(value)
        else expect(decoded, what).toStrictEqual(value)
      }
    }))

  it.effect("refused payloads fail with InvalidPayload saying why, and insert nothing", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      for (const [i, [what, schema, value, fragment]] of refused.entries()) {
        const job = jobOf(`refused-${i}`, schema)
        const result = yield* Effect.either(client.enqueue(job, value))
        expect(Either.isLeft(result), what).toBe(true)
        const error = Either.getLeft(result).pipe(Option.getOrThrow)
        expect(error._tag, what).toBe("InvalidPayload")
        expect(error.message, what).toContain(fragment)
        expect(error.message, what).toContain(`Job "refused-${i}": the payload cannot be stored, nothing was enqueued`)
        expect(yield* countOf(job.name), what).toBe(0)
      }
    }))

  it.effect("enqueueMany stays all-or-nothing: one bad payload among many inserts none, and says which", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const job = jobOf("many", Schema.Struct({ n: Schema.Number }))
      for (const bad of [NaN, undefined, Infinity]) {
        const payloads = [{ n: 1 }, { n: 2 }, { n: bad as number }, { n: 4 }]
        const error = yield* Effect.flip(client.enqueueMany(job, payloads))
        expect(error._tag).toBe("InvalidPayload")
        expect(error.message).toContain("[2]")
        expect(yield* countOf("many")).toBe(0)
      }
      const good = yield* client.enqueueMany(job, [{ n: 1 }, { n: 2.5 }])
      expect(good.map((e) => e.inserted)).toEqual([true, true])
      expect(yield* countOf("many")).toBe(2)
    }))

  it.effect("a recurring payload is checked at definition, as enqueue checks it", () =>
    Effect.sync(() => {
      const Tick = jobOf("tick", Schema.Struct({ n: Schema.Number }))
      for (const n of [NaN, Infinity]) {
        const invalid = Recurring.make("nan", { job: Tick, payload: { n }, every: "1 minute" }).invalid
        expect(invalid?._tag).toBe("InvalidPayload")
        expect(invalid?.message).toContain(`recurring "nan": payload.n: ${n} is not a JSON number`)
      }
      const Empty = jobOf("void", Schema.Void)
      expect(Recurring.make("void", { job: Empty, payload: undefined, every: "1 minute" }).invalid?.message)
        .toContain("undefined cannot be stored")
      expect(Recurring.make("ok", { job: Tick, payload: { n: 1 }, every: "1 minute" }).invalid).toBeUndefined()
    }))
})

describe("values PostgreSQL refuses", () => {
  it.effect("a job name or queue with a NUL, a lone surrogate or only whitespace is refused at definition", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [string, string, string | undefined, string]> = [
        ["name", "a\u0000b", undefined, "contains a NUL character"],
        ["name", "a\ud800", undefined, "lone UTF-16 surrogate"],
        ["queue", "job", "q\u0000", "contains a NUL character"],
        ["queue", "job", "\udfff", "lone UTF-16 surrogate"],
        ["queue", "job", " \t", "must not be empty or only whitespace"]
      ]
      for (const [option, name, queue, fragment] of cases) {
        const invalid = Job.make(name, { payload: Schema.Void, queue, handler: () => Effect.void }).invalid
        expect(invalid?._tag).toBe("InvalidJobOptions")
        expect(invalid?.option).toBe(option)
        expect(invalid?.message).toContain(fragment)
      }
    }))

  it.effect("a recurring id or queue PostgreSQL refuses, or a start outside years 0-9999, is refused at definition", () =>
    Effect.sync(() => {
      const job = jobOf("r", Schema.Struct({}))
      const cases: ReadonlyArray<
        readonly [string, string, { readonly queue?: string; readonly start?: Date; readonly end?: Date }, string]
      > = [
        ["id", "a\u0000", {}, "contains a NUL character"],
        ["id", "\ud800", {}, "lone UTF-16 surrogate"],
        ["queue", "r", { queue: "q\u0000" }, "contains a NUL character"],
        ["start", "r", { start: new Date(Date.UTC(-1, 11, 31)) }, "must be in the years 0 to 9999 (UTC)"],
        ["start", "r", { start: new Date(Date.UTC(10000, 0, 1)) }, "must be in the years 0 to 9999 (UTC)"],
        ["end", "r", { end: new Date(Date.UTC(10000, 0, 1)) }, "must be in the years 0 to 9999 (UTC)"]
      ]
      for (const [option, id, options, fragment] of cases) {
        const invalid = Recurring.make(id, { job, payload: {}, every: "1 minute", ...options }).invalid
        expect(invalid?._tag, `${option} ${fragment}`).toBe("InvalidRecurring")
        expect((invalid as { readonly option: string }).option).toBe(option)
        expect(invalid?.message).toContain(fragment)
      }
      const edge = new Date(Date.UTC(0, 0, 1))
      edge.setUTCFullYear(0)
      expect(Recurring.make("r", { job, payload: {}, every: "1 minute", start: edge }).invalid).toBeUndefined()
    }))
})

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("enqueue values", (it) => {
  it.effect("enqueue options PostgreSQL refuses fail with InvalidJobOptions naming the option, and insert nothing", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const job = jobOf("opts", Schema.Struct({ k: Schema.String }))
      const cases: ReadonlyArray<readonly [string, JobClient.EnqueueOptions, string]> = [
        ["queue", { queue: "" }, "must not be empty or only whitespace"],
        ["queue", { queue: "  " }, "must not be empty or only whitespace"],
        ["queue", { queue: "q\u0000" }, "contains a NUL character"],
        ["queue", { queue: "q\ud800" }, "lone UTF-16 surrogate"],
        ["uniqueKey", { uniqueKey: "k\u0000" }, "contains a NUL character"],
        ["uniqueKey", { uniqueKey: "k\udc00" }, "lone UTF-16 surrogate"],
        ["uniqueKey", { uniqueKey: "x".repeat(3000) }, "must have at most 2000 bytes (UTF-8), got 3000"],
        ["uniqueKey", { uniqueKey: "\u00e9".repeat(1001) }, "got 2002"],
        ["runAt", { runAt: new Date(-210_866_803_200_001) }, "must not be before 4714-11-24 BC"],
        ["runAt", { runAt: new Date(Date.UTC(-10000, 0, 1)) }, "must not be before 4714-11-24 BC"],
        ["runAt", { runAt: new Date(NaN) }, "must be a valid Date"]
      ]
      for (const [option, options, fragment] of cases) {
        const error = yield* Effect.flip(client.enqueue(job, { k: "a" }, options))
        expect(error._tag, fragment).toBe("InvalidJobOptions")
        expect((error as { readonly option: string }).option).toBe(option)
        expect(error.message).toContain(fragment)
      }
      expect(yield* countOf("opts")).toBe(0)
      // The limits themselves are stored, and read back unchanged.
      const longest = "x".repeat(2000)
      const earliest = new Date(-210_866_803_200_000)
      const { id } = yield* client.enqueue(job, { k: "a" }, { uniqueKey: longest, runAt: earliest })
      const info = yield* Effect.map(client.get(id), Option.getOrThrow)
      expect(info.uniqueKey).toEqual(Option.some(longest))
      expect(info.runAt.getTime()).toBe(earliest.getTime())
    }))

  it.effect("a unique key function's bad key fails before anything of the batch is inserted", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const job = Job.make("keyed", {
        payload: Schema.Struct({ k: Schema.String }),
        uniqueKey: ({ k }) => k === "b" ? "b\u0000" : k,
        handler: () => Effect.void
      })
      const error = yield* Effect.flip(client.enqueueMany(job, [{ k: "a" }, { k: "b" }]))
      expect(error._tag).toBe("InvalidJobOptions")
      expect(error.message).toContain(`option "uniqueKey" of payloads[1] contains a NUL character`)
      expect(yield* countOf("keyed")).toBe(0)
      expect(Either.isRight(yield* Effect.either(client.enqueue(job, { k: "a" })))).toBe(true)
    }))
})

const schemasNamed = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly nspname: string }>`SELECT nspname FROM pg_namespace
      WHERE nspname = ANY(${names}::text[])`
    return rows.map((row) => row.nspname)
  })

layer(TestDatabase.layer, { excludeTestServices: true })("schema names", (it) => {
  it.scoped("a schema name outside the allowed ones is refused before any statement, by every layer that takes it", () =>
    Effect.gen(function*() {
      const { schema } = yield* TestDatabase.TestDatabase
      const sql = yield* SqlClient.SqlClient
      // The schema a `$$` would have become in a string replacement.
      const decoy = `${schema}$x`
      yield* Effect.acquireRelease(
        sql`CREATE SCHEMA ${sql(decoy)}`,
        () => Effect.orDie(sql`DROP SCHEMA ${sql(decoy)} CASCADE`)
      )
      const names = [`${schema}$$x`, `${schema}.x`, `${schema}"x`, "", "Upper", "1st", "pg_jobs", "a b", "x".repeat(49)]
      for (const name of names) {
        for (
          const attempt of [
            Migrations.run({ schema: name }),
            Migrations.check({ schema: name }),
            Layer.build(JobClient.layer({ schema: name })),
            Layer.build(Migrations.layer({ schema: name }))
          ]
        ) {
          const error = yield* Effect.flip(attempt)
          expect(error._tag, name).toBe("MigrationError")
          expect(error.message, name).toContain(`option "schema" must be 1 to 48 lowercase letters`)
        }
      }
      const [{ n }] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM information_schema.tables
        WHERE table_schema = ${decoy}`
      expect(n).toBe(0)
      expect(yield* schemasNamed(names)).toEqual([])
    }))

  it.scoped("an allowed schema name gets every table, and the client stores its jobs there", () =>
    Effect.gen(function*() {
      const { schema } = yield* TestDatabase.TestDatabase
      const sql = yield* SqlClient.SqlClient
      const name = `_${schema}_9`.slice(0, 48)
      yield* Effect.addFinalizer(() => Effect.orDie(sql`DROP SCHEMA IF EXISTS ${sql(name)} CASCADE`))
      const client = yield* Effect.provide(JobClient.JobClient, JobClient.layer({ schema: name }))
      const tables = yield* sql<{ readonly table_name: string }>`SELECT table_name FROM information_schema.tables
        WHERE table_schema = ${name} ORDER BY table_name`
      expect(tables.map((t) => t.table_name).sort()).toEqual([
        "job_count_deltas",
        "job_counts",
        "job_minute_deltas",
        "job_minutes",
        "jobs",
        "migrations",
        "queue_keys",
        "queues",
        "recurring",
        "runners",
        "worker_hosts"
      ].sort())
      const { id } = yield* client.enqueue(jobOf("in-schema", Schema.Struct({})), {})
      const [{ n }] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(name)}.jobs
        WHERE id = ${id}::bigint`
      expect(n).toBe(1)
      yield* Migrations.check({ schema: name })
    }))
})

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("stored outcomes", (it) => {
  it.effect("results and errors keep the text \\u0000 as it is; only real NUL characters and lone surrogates change", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const path = "C:\\u0000dir\\ud800"
      const Windows = Job.make("windows-path", {
        payload: Schema.Struct({}),
        result: Schema.Array(Schema.String),
        maxAttempts: 2,
        backoff: Schedule.spaced("1 millis"),
        handler: () =>
          Effect.flatMap(Job.JobContext, (job) =>
            job.attempt === 1
              ? Effect.fail(new Error(`cannot open ${path}, nul \u0000 here`))
              : Effect.succeed([path, "a\u0000b", "c\udc00d"]))
      })
      const { id } = yield* client.enqueue(Windows, {})
      const drained = yield* Testing.drainQueue({ jobs: [Windows] })
      expect(drained.completed).toBe(1)
      const info = yield* Effect.map(client.get(id), Option.getOrThrow)
      expect(info.result).toEqual([path, "a\ufffdb", "c\ufffdd"])
      expect(info.errors[0].message).toBe(`Error: cannot open ${path}, nul \ufffd here`)
    }))
})

/** Sparse-array holes, in {@link normalized}: equal to nothing JSON gives back. */
const hole = Symbol("hole")

/** What JSON and PostgreSQL give back for `value` when it can be stored: properties set to `undefined` left out, `-0` as `0`. */
const normalized = (value: unknown): unknown => {
  if (Object.is(value, -0)) return 0
  if (Array.isArray(value)) {
    return Array.from({ length: value.length }, (_, i) => i in value ? normalized(value[i]) : hole)
  }
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = normalized(v)
    return out
  }
  return value
}

// UTF-8 cannot carry a lone surrogate: it comes back as U+FFFD.
const storable = (text: string) => !text.includes("\u0000") && Buffer.from(text).toString() === text

/** The oracle: JSON gives the value back, and PostgreSQL takes every string in it. */
const storableAsJson = (value: unknown): boolean => {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {
    return false
  }
  if (json === undefined) return false
  const strings: Array<string> = []
  const back = JSON.parse(json, (key, v) => {
    strings.push(key)
    if (typeof v === "string") strings.push(v)
    return v
  })
  return strings.every(storable) && isDeepStrictEqual(back, normalized(value))
}

const leaf = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.string16bits({ maxLength: 4 }),
  fc.constantFrom(undefined, null, true, false, "\u0000", "a\ud800", -0, NaN, Infinity),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.constant(() => 1)
)
const shapes = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("sparse"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 4 }),
  sparse: fc.sparseArray(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(fc.string(), fc.string16bits({ maxLength: 3 })), tie("value"), { maxKeys: 4 })
})).value

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("payload properties", (it) => {
  it.effect("any value: stored and read back as JSON gives it, or refused with InvalidPayload and nothing inserted", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const job = jobOf("property", Schema.Unknown)
      const values = fc.sample(shapes, { numRuns: 300, seed: 42 })
      let stored = 0
      let refusedCount = 0
      for (const value of values) {
        const result = yield* Effect.either(client.enqueue(job, value))
        if (storableAsJson(value)) {
          expect(Either.isRight(result), fc.stringify(value)).toBe(true)
          const info = yield* Effect.map(client.get(Either.getOrThrow(result).id), Option.getOrThrow)
          expect(info.payload).toStrictEqual(normalized(value))
          stored++
        } else {
          expect(Either.isLeft(result) && result.left._tag, fc.stringify(value)).toBe("InvalidPayload")
          refusedCount++
        }
        expect(yield* countOf("property")).toBe(stored)
      }
      // The sample covers both sides.
      expect(stored).toBeGreaterThan(30)
      expect(refusedCount).toBeGreaterThan(30)
    }))

  it.effect("enqueueMany of any values inserts all of them, or none", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const job = jobOf("property-many", Schema.Unknown)
      let stored = 0
      for (const batch of fc.sample(fc.array(shapes, { minLength: 1, maxLength: 6 }), { numRuns: 100, seed: 7 })) {
        const result = yield* Effect.either(client.enqueueMany(job, batch))
        if (batch.every(storableAsJson)) {
          expect(Either.isRight(result), fc.stringify(batch)).toBe(true)
          stored += batch.length
        } else {
          expect(Either.isLeft(result) && result.left._tag, fc.stringify(batch)).toBe("InvalidPayload")
        }
        expect(yield* countOf("property-many")).toBe(stored)
      }
    }))
})
