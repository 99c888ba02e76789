import { Cron, DateTime, Either } from "effect"

/** When a recurring definition ticks: a parsed cron expression in a zone, or a fixed interval from an anchor. */
export type Ticks = CronTicks | IntervalTicks

export interface CronTicks {
  readonly _tag: "Cron"
  readonly cron: Cron.Cron
  readonly zone: DateTime.TimeZone
  readonly expression: string
  /** The hour field is `*`: across a fall-back overlap it follows elapsed time, both passes. */
  readonly everyHour: boolean
  /** A fixed offset (UTC, "+02:00"): no daylight saving time to handle. */
  readonly fixedOffset: boolean
  readonly start: Date | undefined
  readonly end: Date | undefined
  /** The expression read in fixed offsets, by offset: to find ticks in the second pass of a repeated hour. */
  readonly fixed: Map<number, Cron.Cron>
}

export interface IntervalTicks {
  readonly _tag: "Interval"
  readonly everyMillis: number
  /** The first tick. */
  readonly anchor: Date
  readonly end: Date | undefined
}

export const cronTicks = (
  cron: Cron.Cron,
  expression: string,
  start: Date | undefined,
  end: Date | undefined
): CronTicks => ({
  _tag: "Cron",
  cron,
  zone: cron.tz._tag === "Some" ? cron.tz.value : DateTime.zoneMakeOffset(0),
  expression,
  everyHour: cron.hours.size === 0 || cron.hours.size === 24,
  fixedOffset: cron.tz._tag === "Some" && DateTime.isTimeZoneOffset(cron.tz.value),
  start,
  end,
  fixed: new Map()
})

const offsetAt = (zone: DateTime.TimeZone, at: Date): number =>
  DateTime.zonedOffset(DateTime.unsafeMakeZoned(at, { timeZone: zone }))

/**
 * The instant, at most three hours before `at`, since which the zone has had
 * the offset it has at `at`: the last transition before it.
 */
const transitionBefore = (zone: DateTime.TimeZone, at: Date): Date => {
  const offset = offsetAt(zone, at)
  let low = at.getTime() - 3 * 3_600_000
  let high = at.getTime()
  while (high - low > 1_000) {
    const middle = low + Math.floor((high - low) / 2_000) * 1_000
    if (offsetAt(zone, new Date(middle)) === offset) high = middle
    else low = middle
  }
  return new Date(high)
}

/** The end of the second pass of a fall-back overlap that `at` is in. */
const overlapEnd = (zone: DateTime.TimeZone, at: Date): Date => {
  const transition = transitionBefore(zone, at)
  const length = offsetAt(zone, new Date(transition.getTime() - 1_000)) - offsetAt(zone, transition)
  return new Date(transition.getTime() + (length > 0 ? length : 3_600_000))
}

/** The expression read at a fixed offset, parsed once per offset. */
const atOffset = (ticks: CronTicks, offset: number): Cron.Cron => {
  let fixed = ticks.fixed.get(offset)
  if (fixed === undefined) {
    fixed = Either.getOrThrow(Cron.parse(ticks.expression, DateTime.zoneMakeOffset(offset)))
    ticks.fixed.set(offset, fixed)
  }
  return fixed
}

const threeHours = 3 * 3_600_000

/**
 * Applies the gap rule to `next`, Effect's answer for an expression naming
 * its hours: Effect moves a wall time that a spring-forward skips by the
 * gap's length, and may return that moved time even when the expression also
 * names the hour after the gap, or after the gap's run has been fired.
 */
const throughGap = (ticks: CronTicks, after: Date, next: Date): Date => {
  const offset = offsetAt(ticks.zone, next)
  const offsetBefore = offsetAt(ticks.zone, new Date(next.getTime() - threeHours))
  if (offset <= offsetBefore) return next
  const transition = transitionBefore(ticks.zone, next)
  const gapEnd = transition.getTime() + offset - offsetBefore
  if (next.getTime() >= gapEnd) return next
  if (transition > after) {
    // Read at the offset before the change, the instants of the gap are its skipped wall times.
    const skipped = Cron.next(atOffset(ticks, offsetBefore), new Date(transition.getTime() - 1))
    return skipped.getTime() < gapEnd ? transition : next
  }
  // The gap's run is done: a moved wall time is not run again, a real one is.
  return Cron.match(ticks.cron, next) ? next : nextCron(ticks, new Date(gapEnd - 1))
}

/**
 * The next tick of a cron expression strictly after `after`, with our rules
 * for daylight saving time, shared by cron workers and recurring jobs:
 * - a wall time that a spring-forward gap skips runs at the first instant
 *   after the gap, once however many skipped wall times match;
 * - in a fall-back overlap, an expression naming its hours runs once, in the
 *   first pass; one whose hour field is `*` runs in both passes, keeping its
 *   spacing in elapsed time.
 */
const nextCron = (ticks: CronTicks, after: Date): Date => {
  let next = Cron.next(ticks.cron, after)
  if (ticks.fixedOffset) return next
  // Inside the second pass of an overlap, Effect reads a repeated wall time as its first pass, in the past.
  const inOverlap = next <= after
  if (inOverlap) next = Cron.next(ticks.cron, new Date(overlapEnd(ticks.zone, after).getTime() - 1))
  if (ticks.everyHour) {
    const offset = offsetAt(ticks.zone, after)
    if (!inOverlap && offset === offsetAt(ticks.zone, next)) return next
    const second = Cron.next(atOffset(ticks, offset), after)
    return second > after && second < next && Cron.match(ticks.cron, second) ? second : next
  }
  return throughGap(ticks, after, next)
}

/** The next tick strictly after `after`, or `undefined` when the definition has ended. */
export const nextTick = (ticks: Ticks, after: Date): Date | undefined => {
  let next: Date
  if (ticks._tag === "Interval") {
    const since = after.getTime() - ticks.anchor.getTime()
    next = since < 0
      ? ticks.anchor
      : new Date(ticks.anchor.getTime() + (Math.floor(since / ticks.everyMillis) + 1) * ticks.everyMillis)
  } else {
    const from = ticks.start !== undefined && ticks.start > after ? new Date(ticks.start.getTime() - 1) : after
    next = nextCron(ticks, from)
    // Never at or before the instant it is asked from, whatever the zone does: a caller would fire it at once.
    if (next <= from) next = nextCron(ticks, new Date(from.getTime() + 1_000))
    if (next <= from) throw new Error(`no cron tick after ${from.toISOString()}`)
  }
  return ticks.end !== undefined && next > ticks.end ? undefined : next
}

/** The first tick at or after `at`. */
export const tickFrom = (ticks: Ticks, at: Date): Date | undefined => nextTick(ticks, new Date(at.getTime() - 1))

/** The last `count` ticks in `[notBefore, before)`, oldest first. */
export const lastTicksBefore = (ticks: Ticks, before: Date, count: number, notBefore: Date): Array<Date> => {
  if (count <= 0) return []
  let from = notBefore
  if (ticks._tag === "Interval") {
    const back = new Date(before.getTime() - (count + 1) * ticks.everyMillis)
    if (back > from) from = back
  } else {
    // Walk back with Effect's own `prev`, then an hour more for ticks our DST rules add; then forward.
    try {
      let back = before
      for (let i = 0; i <= count; i++) back = Cron.prev(ticks.cron, back)
      const margin = new Date(back.getTime() - 3_600_000)
      if (margin > from) from = margin
    } catch {
      // No earlier tick within Effect's search limit: walk forward from `notBefore`.
    }
  }
  const found: Array<Date> = []
  for (let tick = tickFrom(ticks, from); tick !== undefined && tick < before;) {
    found.push(tick)
    if (found.length > count) found.shift()
    tick = nextTick(ticks, tick)
  }
  return found
}

/**
 * What a definition due since `from` fires at `at`: ticks missed (before
 * `cut`) as its policy keeps the last `keepMissed` of them, then every tick
 * up to `at` (at most 1,000; later ones are skipped); and its next tick after
 * `at`.
 */
export const dueTicks = (
  ticks: Ticks,
  from: Date,
  at: Date,
  cut: Date,
  keepMissed: number
): { readonly fire: ReadonlyArray<Date>; readonly next: Date | undefined } => {
  const fire = from < cut ? lastTicksBefore(ticks, cut, keepMissed, from) : []
  let tick = tickFrom(ticks, from < cut ? cut : from)
  for (let onTime = 0; tick !== undefined && tick <= at && onTime < 1_000; onTime++) {
    fire.push(tick)
    tick = nextTick(ticks, tick)
  }
  return { fire, next: tick !== undefined && tick <= at ? nextTick(ticks, at) : tick }
}
