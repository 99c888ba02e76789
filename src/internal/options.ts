import { DateTime, Duration, Either } from "effect"

/**
 * Checks of raw option values, shared by every public entry point so that a
 * duration, a time zone or an integer follows the same rules everywhere.
 * Each check answers the value or the reason it is refused; the caller wraps
 * the reason in its own typed error, with the option's name.
 */

/** A value as a caller wrote it, for error messages. */
export const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "function") return "a function"
  if (typeof value === "symbol" || typeof value === "number" || value === undefined) return String(value)
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "an invalid Date" : value.toISOString()
  if (Duration.isDuration(value)) return Duration.format(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const units: ReadonlyArray<readonly [number, string]> = [
  [604_800_000, "week"],
  [86_400_000, "day"],
  [3_600_000, "hour"],
  [60_000, "minute"],
  [1_000, "second"],
  [1, "millisecond"]
]

/** Milliseconds in the largest unit that divides them: 1 second, 90 minutes. */
export const formatMillis = (millis: number): string => {
  if (millis === 0) return "0"
  for (const [size, unit] of units) {
    if (millis % size === 0) {
      const n = millis / size
      return `${n} ${unit}${n === 1 ? "" : "s"}`
    }
  }
  return `${millis} milliseconds`
}

/** The largest finite duration any option takes: ticks and run times stay far inside the dates PostgreSQL and JavaScript hold. */
export const maxDurationMillis = 365_000 * 86_400_000

export interface DurationRule {
  /** The smallest value allowed, in milliseconds. */
  readonly min: number
  /** The largest finite value allowed, in milliseconds. Default {@link maxDurationMillis}. */
  readonly max?: number | undefined
  /** `Duration.infinity` (or `Infinity`) is allowed too. */
  readonly infinite?: boolean | undefined
  /** Only whole milliseconds. */
  readonly wholeMillis?: boolean | undefined
}

// Effect's own pattern, without the minus sign its decoder reads as 0.
const durationString = /^(\d+(?:\.\d+)?)\s+(nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$/

/**
 * The milliseconds of a raw duration input, or `undefined` when it is not one
 * or is negative or NaN: Effect's `Duration.decode` turns -1, NaN and
 * "-5 seconds" into 0, so they are caught before decoding.
 */
const rawMillis = (value: unknown): number | undefined => {
  if (Duration.isDuration(value)) return Duration.toMillis(value)
  if (typeof value === "number") return Number.isNaN(value) || value < 0 ? undefined : value
  if (typeof value === "bigint") return value < BigInt(0) ? undefined : Number(value) / 1_000_000
  if (Array.isArray(value)) {
    if (value.length !== 2 || !value.every((n) => typeof n === "number" && !Number.isNaN(n) && n >= 0)) {
      return undefined
    }
    return Duration.toMillis(Duration.decode(value as unknown as readonly [number, number]))
  }
  if (typeof value === "string" && durationString.test(value.trim())) {
    return Duration.toMillis(Duration.decode(value.trim() as Duration.DurationInput))
  }
  return undefined
}

/** The allowed range of a duration rule, in words. */
export const describeDuration = (rule: DurationRule): string => {
  const max = rule.infinite === true ? undefined : rule.max ?? maxDurationMillis
  const range = max === undefined
    ? `of ${formatMillis(rule.min)} or more${rule.infinite === true ? " (or Duration.infinity)" : ""}`
    : `from ${formatMillis(rule.min)} to ${formatMillis(max)}`
  return `a duration ${range}${rule.wholeMillis === true ? " in whole milliseconds" : ""}, such as "30 seconds"`
}

/** Checks a raw duration input and returns its milliseconds (`Infinity` for an allowed infinite one). */
export const durationMillis = (value: unknown, rule: DurationRule): Either.Either<number, string> => {
  const millis = rawMillis(value)
  const ok = millis !== undefined && millis >= rule.min && (
    millis === Number.POSITIVE_INFINITY
      ? rule.infinite === true
      : millis <= (rule.max ?? maxDurationMillis) && (rule.wholeMillis !== true || Number.isInteger(millis))
  )
  return ok ? Either.right(millis) : Either.left(`must be ${describeDuration(rule)}, got ${show(value)}`)
}

/** Range of a PostgreSQL `integer` column. */
export const int32 = { min: -(2 ** 31), max: 2 ** 31 - 1 } as const

/** Checks a raw whole number in `[min, max]`. */
export const integer = (value: unknown, min: number, max: number): Either.Either<number, string> =>
  typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
    ? Either.right(value)
    : Either.left(`must be a whole number from ${min} to ${max}, got ${show(value)}`)

/** Checks a raw value against a list of allowed strings. */
export const oneOf = <const A extends string>(value: unknown, allowed: ReadonlyArray<A>): Either.Either<A, string> =>
  typeof value === "string" && (allowed as ReadonlyArray<string>).includes(value)
    ? Either.right(value as A)
    : Either.left(`must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${show(value)}`)

/** Checks a raw boolean. */
export const boolean = (value: unknown): Either.Either<boolean, string> =>
  typeof value === "boolean" ? Either.right(value) : Either.left(`must be true or false, got ${show(value)}`)

/** Checks a raw function. */
export const isFunction = (value: unknown): Either.Either<(...args: Array<any>) => unknown, string> =>
  typeof value === "function"
    ? Either.right(value as (...args: Array<any>) => unknown)
    : Either.left(`must be a function, got ${show(value)}`)

/** What a time zone may be, for messages. */
export const zoneHelp = "an IANA time zone name such as \"Europe/Berlin\" or \"UTC\", " +
  "or a UTC offset from \"-12:00\" to \"+14:00\" such as \"+02:00\""

// Real offsets run from -12:00 to +14:00; Effect's parser reads "+99:00", "+00:60" and "--05:00" too.
const offsetPattern = /^([+-])(\d{2}):(\d{2})$/

/** Checks a raw time zone: an IANA name, or an offset that some place on Earth uses. */
export const timeZone = (value: unknown): Either.Either<DateTime.TimeZone, string> => {
  const refused = Either.left(`must be ${zoneHelp}, got ${show(value)}`)
  if (typeof value !== "string") return refused
  if (/^[+\-\d]/.test(value)) {
    const match = offsetPattern.exec(value)
    if (match === null) return refused
    const hours = Number(match[2])
    const minutes = Number(match[3])
    const signed = (match[1] === "+" ? 1 : -1) * (hours * 60 + minutes)
    if (minutes > 59 || signed < -12 * 60 || signed > 14 * 60) return refused
    return Either.right(DateTime.zoneMakeOffset(signed * 60_000))
  }
  const named = DateTime.zoneMakeNamed(value)
  return named._tag === "Some" ? Either.right(named.value) : refused
}
