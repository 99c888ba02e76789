/**
 * Checks of the values a job stores, made before any statement: payloads
 * must survive JSON and PostgreSQL's `jsonb` unchanged, and text columns
 * refuse what PostgreSQL refuses (NUL) or changes (lone UTF-16 surrogates,
 * which the driver turns into U+FFFD).
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { InvalidPayload, MigrationError } from "../../JobError.js"

/** Deeper payloads are refused: JSON's parsers and Schema's decoders recurse per level. */
export const maxDepth = 1_000

/**
 * Longest unique key, in UTF-8 bytes. Its btree index holds entries of at
 * most 2,704 bytes; the rest leaves room for the entry's header.
 */
export const maxUniqueKeyBytes = 2_000

/** Earliest `timestamptz` (4714-11-24 BC, UTC), in epoch milliseconds. */
export const minTimestampMillis = -210_866_803_200_000

const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
/** Cheap first look: most text has neither a NUL nor any surrogate. */
// eslint-disable-next-line no-control-regex
const suspect = /[\u0000\uD800-\uDFFF]/

/** Why PostgreSQL would refuse or change `text`, or `undefined`. */
export const textProblem = (text: string): string | undefined => {
  if (!suspect.test(text)) return undefined
  const nul = text.indexOf("\u0000")
  if (nul >= 0) return `contains a NUL character (U+0000) at index ${nul}, which PostgreSQL cannot store`
  const surrogate = lone.exec(text)
  return surrogate === null
    ? undefined
    : `contains a lone UTF-16 surrogate at index ${surrogate.index}, which PostgreSQL cannot store`
}

/**
 * Why a name, queue or key cannot be stored: not a string, empty or only
 * whitespace, or text PostgreSQL refuses. `undefined` when it can.
 */
export const nameProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return `must be a string, got ${describe(value)}`
  if (value.trim().length === 0) return `must not be empty or only whitespace, got ${JSON.stringify(value)}`
  return textProblem(value)
}

/** Why `key` cannot be a unique key, or `undefined`. */
export const uniqueKeyProblem = (key: unknown): string | undefined => {
  if (typeof key !== "string") return `must be a string, got ${describe(key)}`
  const bytes = Buffer.byteLength(key)
  if (bytes > maxUniqueKeyBytes) return `must have at most ${maxUniqueKeyBytes} bytes (UTF-8), got ${bytes}`
  return textProblem(key)
}

const describe = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : String(value)

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const child = (path: string, key: string | number) =>
  typeof key === "number"
    ? `${path}[${key}]`
    : identifier.test(key)
    ? `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`

interface Walk {
  /** An object property is `undefined`: JSON leaves it out. */
  omits: boolean
  /** Where the problem is, innermost first; filled in on the way out, so that good values build no paths. */
  readonly at: Array<string | number>
}

/**
 * Why the encoded value `value` would not read back from JSON as it is, or
 * `undefined`. Only plain objects, arrays, finite numbers, well-formed
 * strings, booleans and `null` do; `-0` reads back as `0`.
 */
const jsonProblem = (value: unknown, depth: number, parents: Array<object>, walk: Walk): string | undefined => {
  switch (typeof value) {
    case "string": {
      const problem = textProblem(value)
      return problem === undefined ? undefined : `the text ${problem}`
    }
    case "number":
      return Number.isFinite(value) ? undefined : `${value} is not a JSON number (it would be stored as null)`
    case "boolean":
      return undefined
    case "undefined":
      return "undefined cannot be stored as JSON"
    case "bigint":
      return `a bigint (${value}n) cannot be stored as JSON; encode it with a schema such as Schema.BigInt`
    case "function":
    case "symbol":
      return `a ${typeof value} cannot be stored as JSON`
  }
  if (value === null) return undefined
  const object = value as object
  if (depth >= maxDepth) return `nesting deeper than ${maxDepth} levels cannot be stored`
  if (parents.includes(object)) return "the value contains itself (a cycle)"
  if (object instanceof Date) {
    return "a Date object would be stored as a string; encode it with a schema such as Schema.Date"
  }
  const isArray = Array.isArray(object)
  const proto = Object.getPrototypeOf(object)
  if (!isArray && proto !== Object.prototype && proto !== null) {
    const name = (proto as { readonly constructor?: { readonly name?: unknown } }).constructor?.name
    return `an object of class ${typeof name === "string" && name !== "" ? name : "(anonymous)"} ` +
      "would not read back from JSON as it is; only plain objects and arrays can be stored"
  }
  // A problem ends the walk, so `parents` needs no cleaning on the way out.
  parents.push(object)
  if (isArray) {
    const array = object as ReadonlyArray<unknown>
    for (let i = 0; i < array.length; i++) {
      const problem = i in array
        ? jsonProblem(array[i], depth + 1, parents, walk)
        : "an empty array slot would be stored as null"
      if (problem !== undefined) {
        walk.at.push(i)
        return problem
      }
    }
  } else {
    const record = object as Readonly<Record<string, unknown>>
    for (const key of Object.keys(record)) {
      const keyProblem = textProblem(key)
      const item = record[key]
      if (keyProblem === undefined && item === undefined) {
        walk.omits = true
        continue
      }
      const problem = keyProblem === undefined
        ? jsonProblem(item, depth + 1, parents, walk)
        : `the property name ${keyProblem}`
      if (problem !== undefined) {
        walk.at.push(key)
        return problem
      }
    }
  }
  parents.pop()
  return undefined
}

/** A payload's encoded form as JSON text, or why it cannot be stored; `omits` when a property was left out. */
const toJson = (encoded: unknown, path: string): Either.Either<{ json: string; omits: boolean }, string> => {
  const walk: Walk = { omits: false, at: [] }
  const problem = jsonProblem(encoded, 0, [], walk)
  return problem === undefined
    ? Either.right({ json: JSON.stringify(encoded), omits: walk.omits })
    : Either.left(`${walk.at.reduceRight<string>(child, path)}: ${problem}`)
}

const pathOf = (index: number, count: number) => count === 1 ? "payload" : `payloads[${index}]`

const thrown = (error: unknown) => error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/**
 * Encodes payloads of one job with its schema into JSON text that decodes
 * back to them, or fails with `InvalidPayload` saying why (the first bad
 * payload, by index when there are several). `label` prefixes the issue.
 */
export const encodePayloads = <P, I>(
  job: { readonly name: string; readonly payload: Schema.Schema<P, I> },
  payloads: ReadonlyArray<P>,
  label = ""
): Effect.Effect<ReadonlyArray<string>, InvalidPayload> => {
  const fail = (issue: string) => Effect.fail(new InvalidPayload({ job: job.name, issue: `${label}${issue}` }))
  const encode = payloads.length === 1
    ? Effect.map(Schema.encode(job.payload)(payloads[0]), (encoded): ReadonlyArray<I> => [encoded])
    : Schema.encode(Schema.Array(job.payload))(payloads)
  return encode.pipe(
    Effect.catchAllDefect((defect) => fail(`encoding the payload threw ${thrown(defect)}`)),
    Effect.catchTag(
      "ParseError",
      (error) => fail(`the payload does not match its schema:\n${ParseResult.TreeFormatter.formatErrorSync(error)}`)
    ),
    Effect.flatMap((encoded) => {
      const texts: Array<string> = []
      const omitted: Array<number> = []
      for (let i = 0; i < encoded.length; i++) {
        const json = toJson(encoded[i], pathOf(i, encoded.length))
        if (Either.isLeft(json)) return fail(json.left)
        texts.push(json.right.json)
        if (json.right.omits) omitted.push(i)
      }
      if (omitted.length === 0) return Effect.succeed(texts)
      // JSON leaves out properties set to `undefined`: what is stored must still decode.
      return Effect.forEach(omitted, (i) =>
        Schema.decodeUnknown(job.payload)(JSON.parse(texts[i])).pipe(
          Effect.catchAllDefect((defect) => fail(`decoding the stored payload threw ${thrown(defect)}`)),
          Effect.catchTag("ParseError", (error) =>
            fail(
              `${pathOf(i, encoded.length)}: properties set to undefined are left out of JSON, and without them ` +
                `the payload does not decode:\n${ParseResult.TreeFormatter.formatErrorSync(error)}`
            ))
        ), { discard: true }).pipe(Effect.as(texts))
    })
  )
}

/**
 * Allowed schema names. Notifications go on a channel named after the schema, and channel names have at
 * most 63 bytes: 48 leave room for the prefix. Without quotes, dots or dollars, a name is the same in every
 * statement, quoted or not, in the client's and in users' own SQL.
 */
const schemaName = /^(?!pg_)[a-z_][a-z0-9_]{0,47}$/

/** The rule a schema name follows, in words. */
export const schemaRule = "1 to 48 lowercase letters, digits and underscores, not starting with a digit or \"pg_\""

/** Whether `schema` can name the job tables' schema. */
export const isSchemaName = (schema: unknown): schema is string => typeof schema === "string" && schemaName.test(schema)

/** Checks a schema name given as an option (`JobClient`, `Migrations`). */
export const validSchema = (schema: unknown): Effect.Effect<string, MigrationError> =>
  isSchemaName(schema)
    ? Effect.succeed(schema)
    : Effect.fail(
      new MigrationError({
        schema: String(schema),
        reason: `option "schema" must be ${schemaRule}, ` +
          `got ${typeof schema === "string" ? JSON.stringify(schema) : String(schema)}`
      })
    )
