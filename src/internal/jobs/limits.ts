/**
 * Flow-control limits of a queue, as given (by a runner's options or
 * `JobClient.setLimits`), checked, and as stored in the queues table.
 */
import { Either } from "effect"
import * as Check from "../options.js"
import { textProblem } from "./values.js"

/** At most `limit` starts in any window of `period`. */
export interface RateLimitInput {
  readonly limit: number
  readonly period: unknown
}

/** The limits of a queue as given; a missing or `null` limit is none. */
export interface LimitsInput {
  readonly globalConcurrency?: number | null | undefined
  readonly keyConcurrency?: number | null | undefined
  readonly rateLimit?: RateLimitInput | null | undefined
  readonly keyRateLimit?: RateLimitInput | null | undefined
  readonly fair?: boolean | undefined
}

export interface Rate {
  readonly limit: number
  readonly periodMillis: number
}

/** Checked limits, as stored. */
export interface Limits {
  readonly globalConcurrency: number | null
  readonly keyConcurrency: number | null
  readonly rateLimit: Rate | null
  readonly keyRateLimit: Rate | null
  readonly fair: boolean
}

export const none: Limits = {
  globalConcurrency: null,
  keyConcurrency: null,
  rateLimit: null,
  keyRateLimit: null,
  fair: false
}

/** Whether any limit is set: such a queue is claimed under its lock. */
export const isLimited = (limits: Limits): boolean =>
  limits.globalConcurrency !== null || limits.keyConcurrency !== null || limits.rateLimit !== null ||
  limits.keyRateLimit !== null || limits.fair

/** Claims visit keys in turn: per-key limits, or fairness. */
export const isKeyed = (limits: Limits): boolean =>
  limits.keyConcurrency !== null || limits.keyRateLimit !== null || limits.fair

/** Only `fair`: claims visit keys in turn, and nothing is counted. */
export const isFairOnly = (limits: Limits): boolean =>
  limits.fair && limits.globalConcurrency === null && limits.keyConcurrency === null && limits.rateLimit === null &&
  limits.keyRateLimit === null

/** Largest concurrency limit: the `integer` column. */
export const maxConcurrencyLimit = Check.int32.max
/** Largest rate limit: the starts of a window are kept, at most one entry per claim. */
export const maxRateLimit = 1_000_000
/** A window from 10 ms to 7 days, in whole milliseconds (an `integer` column). */
export const periodRule: Check.DurationRule = { min: 10, max: 7 * 86_400_000, wholeMillis: true }

/** A problem with one option: its name (`keyRateLimit.period`) and why. */
export interface Problem {
  readonly option: string
  readonly reason: string
}

const known = new Set(["globalConcurrency", "keyConcurrency", "rateLimit", "keyRateLimit", "fair"])

const concurrency = (value: unknown): Either.Either<number | null, string> =>
  value === null || value === undefined
    ? Either.right(null)
    : Either.mapLeft(Check.integer(value, 1, maxConcurrencyLimit), (reason) => `${reason} (or null for no limit)`)

const rate = (option: string, value: unknown): Either.Either<Rate | null, Problem> => {
  if (value === null || value === undefined) return Either.right(null)
  if (typeof value !== "object" || Array.isArray(value)) {
    return Either.left({
      option,
      reason: `must be { limit, period } (or null for no limit), got ${Check.show(value)}`
    })
  }
  const { limit, period, ...rest } = value as { limit?: unknown; period?: unknown }
  const extra = Object.keys(rest)
  if (extra.length > 0) {
    return Either.left({ option: `${option}.${extra[0]}`, reason: "is not an option (limit and period are)" })
  }
  const checkedLimit = Check.integer(limit, 1, maxRateLimit)
  if (Either.isLeft(checkedLimit)) return Either.left({ option: `${option}.limit`, reason: checkedLimit.left })
  const checkedPeriod = Check.durationMillis(period, periodRule)
  if (Either.isLeft(checkedPeriod)) return Either.left({ option: `${option}.period`, reason: checkedPeriod.left })
  return Either.right({ limit: checkedLimit.right, periodMillis: checkedPeriod.right })
}

/** Checks raw limits; `prefix` names where they were given (`queues.email.`). */
export const check = (value: unknown, prefix = ""): Either.Either<Limits, Problem> => {
  if (value === undefined || value === null) return Either.right(none)
  if (typeof value !== "object" || Array.isArray(value)) {
    return Either.left({
      option: prefix === "" ? "limits" : prefix.slice(0, -1),
      reason: `must be an object of limits, got ${Check.show(value)}`
    })
  }
  const input = value as Record<string, unknown>
  for (const key of Object.keys(input)) {
    if (!known.has(key)) {
      return Either.left({
        option: `${prefix}${key}`,
        reason: `is not a limit (the limits are ${[...known].join(", ")})`
      })
    }
  }
  const global = concurrency(input.globalConcurrency)
  if (Either.isLeft(global)) return Either.left({ option: `${prefix}globalConcurrency`, reason: global.left })
  const key = concurrency(input.keyConcurrency)
  if (Either.isLeft(key)) return Either.left({ option: `${prefix}keyConcurrency`, reason: key.left })
  const queueRate = rate(`${prefix}rateLimit`, input.rateLimit)
  if (Either.isLeft(queueRate)) return Either.left(queueRate.left)
  const keyRate = rate(`${prefix}keyRateLimit`, input.keyRateLimit)
  if (Either.isLeft(keyRate)) return Either.left(keyRate.left)
  const fair = input.fair === undefined ? Either.right(false) : Check.boolean(input.fair)
  if (Either.isLeft(fair)) return Either.left({ option: `${prefix}fair`, reason: fair.left })
  return Either.right({
    globalConcurrency: global.right,
    keyConcurrency: key.right,
    rateLimit: queueRate.right,
    keyRateLimit: keyRate.right,
    fair: fair.right
  })
}

/** Longest partition key, in UTF-8 bytes: it is a column of two btree indexes with the queue's name. */
export const maxPartitionKeyBytes = 1_000

/** Why `key` cannot be a partition key, or `undefined`. */
export const partitionKeyProblem = (key: unknown): string | undefined => {
  if (typeof key !== "string") return `must be a string, got ${Check.show(key)}`
  if (key.length === 0) return "must not be empty"
  const bytes = Buffer.byteLength(key)
  if (bytes > maxPartitionKeyBytes) return `must have at most ${maxPartitionKeyBytes} bytes (UTF-8), got ${bytes}`
  return textProblem(key)
}

/** A queues row's limit columns (`fair` is false where an outer join found no row). */
export interface LimitsRow {
  readonly globalConcurrency: number | null
  readonly keyConcurrency: number | null
  readonly rateLimit: number | null
  readonly ratePeriodMs: number | null
  readonly keyRateLimit: number | null
  readonly keyRatePeriodMs: number | null
  readonly fair: boolean
}

export const limitsColumns = `global_concurrency AS "globalConcurrency", key_concurrency AS "keyConcurrency",
  rate_limit AS "rateLimit", rate_period_ms AS "ratePeriodMs", key_rate_limit AS "keyRateLimit",
  key_rate_period_ms AS "keyRatePeriodMs", coalesce(fair, false) AS fair`

export const fromRow = (row: LimitsRow): Limits => ({
  globalConcurrency: row.globalConcurrency,
  keyConcurrency: row.keyConcurrency,
  rateLimit: row.rateLimit === null || row.ratePeriodMs === null
    ? null
    : { limit: row.rateLimit, periodMillis: row.ratePeriodMs },
  keyRateLimit: row.keyRateLimit === null || row.keyRatePeriodMs === null
    ? null
    : { limit: row.keyRateLimit, periodMillis: row.keyRatePeriodMs },
  fair: row.fair
})

/** The limits as statement parameters, in the order of the columns of {@link limitsColumns}. */
export const toParams = (limits: Limits) =>
  [
    limits.globalConcurrency,
    limits.keyConcurrency,
    limits.rateLimit?.limit ?? null,
    limits.rateLimit?.periodMillis ?? null,
    limits.keyRateLimit?.limit ?? null,
    limits.keyRateLimit?.periodMillis ?? null,
    limits.fair
  ] as const
