/**
 * How a run (or a rescue) ends, decided without the database: the new state
 * of the job, the wait before its next attempt, and the error kept on it.
 */
import {
  Cause,
  Duration,
  Effect,
  Exit,
  Option,
  type Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Schema
} from "effect"
import type * as Job from "../../Job.js"
import { defaultBackoff } from "../../Job.js"
import { Snooze, Unrecoverable } from "../../JobError.js"
import { causeText } from "../registry.js"

/** A claimed job, as the claim returns it. */
export interface Claimed {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly payload: unknown
  readonly attempt: number
  readonly maxAttempts: number
  readonly runAt: Date
  readonly insertedAt: Date
  readonly traceId: string | null
  readonly spanId: string | null
  readonly recurringId: string | null
  readonly recurringTick: Date | null
  /** Claimed ahead of a free slot: the database does not know whether it started. */
  readonly claimedAhead: boolean
  /** How often the job was rescued from a runner that stopped. */
  readonly rescues: number
  /** '' for none. */
  readonly partitionKey: string
}

/** What an outcome is, for metrics and events. */
export type Kind = "completed" | "failed" | "snoozed" | "discarded" | "released"

/** How a run ended, to be written. */
export interface Outcome {
  readonly job: Claimed
  readonly kind: Kind
  readonly state: "completed" | "retryable" | "discarded" | "scheduled" | "available"
  /** Wait before the next attempt, from now; `null` keeps `run_at`. */
  readonly delayMillis: number | null
  /** 1 when the attempt is given back (snooze, release, a rescue of a job that had not started). */
  readonly refund: number
  /** The attempt's error as JSON text, kept on the job. */
  readonly error: string | null
  /** The failure in one line, for events. */
  readonly text: string
  readonly result: string | null
  /** Something to log about the outcome. */
  readonly warning?: string | undefined
  /** Set on a rescue from a runner that stopped, which the job counts. */
  readonly rescued?: true | undefined
  /** Why a discarded job is given up. */
  readonly reason?: string | undefined
}

/** The log line of a discarded job: which job, its attempts, why, and its last error. */
export const discardedLine = (outcome: Outcome): string => {
  const { job } = outcome
  return `Job "${job.name}" ${job.id} discarded after attempt ${job.attempt} of ${job.maxAttempts}: ` +
    `${outcome.reason ?? "it failed"}${outcome.text === "" ? "" : ` (${outcome.text})`}`
}

/** Delays are kept below 10 years, which PostgreSQL's intervals and timestamps hold. */
const maxDelayMillis = 10 * 365 * 86_400_000
export const clampDelay = (millis: number): number =>
  Number.isFinite(millis) ? Math.min(Math.max(0, millis), maxDelayMillis) : maxDelayMillis

/**
 * JSON text PostgreSQL's `jsonb` accepts: it refuses the escaped NUL character and lone surrogates (which
 * `JSON.stringify` escapes), so those become U+FFFD. An escape is one preceded by an even number of
 * backslashes: the text `\u0000` (a backslash, then `u0000`) is kept as it is.
 */
export const jsonText = (value: unknown): string =>
  JSON.stringify(value).replace(
    /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g,
    (_, backslashes) => `${backslashes}\\ufffd`
  )

const errorJson = (attempt: number, now: number, message: string, cause: string) =>
  jsonText({ attempt, at: new Date(now).toISOString(), message, cause })

/** The wait before attempt `attempt + 1` by `schedule`, or none when it gives up. */
export const backoffDelay = (
  schedule: Schedule.Schedule<unknown, unknown>,
  attempt: number,
  error: unknown,
  now: number
): Effect.Effect<Option.Option<number>> =>
  Effect.gen(function*() {
    let state = schedule.initial
    let delay = 0
    for (let i = 0; i < attempt; i++) {
      const [next, , decision] = yield* schedule.step(now, error, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
    }
    return Option.some(clampDelay(delay))
  })

const base = (job: Claimed) => ({ job, delayMillis: null, refund: 0, error: null, text: "", result: null })

/** Given back unfinished (shutdown, a slot interrupted): the attempt does not count. */
export const released = (job: Claimed): Outcome => ({ ...base(job), kind: "released", state: "available", refund: 1 })

export const discarded = (
  job: Claimed,
  cause: Cause.Cause<unknown>,
  now: number,
  reason: string,
  why?: string
): Outcome => {
  const text = why === undefined ? causeText(cause) : `${why}: ${causeText(cause)}`
  return {
    ...base(job),
    kind: "discarded",
    state: "discarded",
    text,
    reason,
    error: errorJson(job.attempt, now, text, Cause.pretty(cause))
  }
}

/** A failed attempt: retried after `delay`, or discarded when attempts or backoff are spent. */
const retried = (
  job: Claimed,
  backoff: Schedule.Schedule<unknown, unknown>,
  error: unknown,
  text: string,
  cause: string,
  now: number
): Effect.Effect<Outcome> => {
  const failed = (delayMillis: number): Outcome => ({
    ...base(job),
    kind: "failed",
    state: "retryable",
    delayMillis,
    text,
    error: errorJson(job.attempt, now, text, cause)
  })
  const spent = (reason: string): Outcome => ({
    ...failed(0),
    kind: "discarded",
    state: "discarded",
    delayMillis: null,
    reason
  })
  if (job.attempt >= job.maxAttempts) return Effect.succeed(spent("its attempts are spent"))
  return Effect.map(
    backoffDelay(backoff, job.attempt, error, now),
    Option.match({
      onNone: () => spent("its backoff gave up"),
      onSome: failed
    })
  )
}

/** The stored payload does not decode: the job can never run. */
export const undecodable = (job: Claimed, error: unknown, now: number): Outcome =>
  discarded(job, Cause.fail(error), now, "its stored payload does not decode", "the stored payload does not decode")

/** The outcome of a handler's run. */
export const ofRun = (
  job: Claimed,
  definition: Job.Any,
  exit: Exit.Exit<unknown, unknown>,
  now: number
): Effect.Effect<Outcome> => {
  if (Exit.isSuccess(exit)) return Effect.succeed(ofSuccess(job, definition, exit.value))
  const cause = exit.cause
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value instanceof Snooze) {
    return Effect.succeed({
      ...base(job),
      kind: "snoozed",
      state: "scheduled",
      delayMillis: clampDelay(Duration.toMillis(failure.value.delay)),
      refund: 1
    })
  }
  if (Option.isSome(failure) && failure.value instanceof Unrecoverable) {
    return Effect.succeed(discarded(job, cause, now, "it failed as unrecoverable"))
  }
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  return retried(job, definition.backoff, error, causeText(cause), Cause.pretty(cause), now)
}

/** The outcome of a handler that succeeded with `value`. */
export const ofSuccess = (job: Claimed, definition: Job.Any, value: unknown): Outcome => {
  // Built whole rather than spread from `base`: this is the outcome of most runs.
  const outcome: Outcome = {
    job,
    kind: "completed",
    state: "completed",
    delayMillis: null,
    refund: 0,
    error: null,
    text: "",
    result: null
  }
  if (definition.result === undefined) return outcome
  const encoded = Schema.encodeEither(definition.result)(value)
  let problem: string
  if (encoded._tag === "Right") {
    try {
      return { ...outcome, result: jsonText(encoded.right) }
    } catch (error) {
      problem = String(error)
    }
  } else {
    problem = encoded.left.message
  }
  return { ...outcome, warning: `Job "${job.name}" ${job.id} completed; its result cannot be stored: ${problem}` }
}

/** A failure outside the handler (in recording its outcome): a failed attempt, retried in a minute. */
export const broken = (job: Claimed, cause: Cause.Cause<unknown>, now: number): Outcome => {
  if (job.attempt >= job.maxAttempts) return discarded(job, cause, now, "its attempts are spent")
  const text = causeText(cause)
  return {
    ...base(job),
    kind: "failed",
    state: "retryable",
    delayMillis: 60_000,
    text,
    error: errorJson(job.attempt, now, text, Cause.pretty(cause))
  }
}

/**
 * A job rescued from a runner that stopped. Claimed ahead of a free slot, it
 * may never have started: its attempt is given back and it is due at once.
 * Otherwise the attempt failed: it is retried after its backoff (the
 * default one when this runner does not know the job), or discarded when
 * its attempts are spent, so that a job that kills its process cannot crash
 * runners forever.
 */
export const rescued = (
  job: Claimed,
  lockedBy: string | null,
  definition: Job.Any | undefined,
  now: number
): Effect.Effect<Outcome> => {
  if (job.claimedAhead) return Effect.succeed({ ...released(job), rescued: true })
  const text = `its runner ${lockedBy ?? "?"} stopped (crashed or cut off) while the job ran`
  return Effect.map(
    retried(job, definition?.backoff ?? defaultBackoff, new Error(text), text, "", now),
    (outcome): Outcome => ({ ...outcome, rescued: true })
  )
}
