/**
 * Daylight-saving cases of docs/recurring.md, checked for cron workers
 * (schedules.test.ts) and recurring jobs (recurring.test.ts): expression,
 * zone, window, and the ticks the rules give in it.
 */
export const gapCases: ReadonlyArray<
  readonly [cron: string, zone: string, from: string, to: string, ticks: ReadonlyArray<string>]
> = [
  // 02:30 does not exist on 8 March in New York: 03:00 EDT.
  ["30 2 * * *", "America/New_York", "2026-03-08T00:00:00Z", "2026-03-08T12:00:00Z", ["2026-03-08T07:00:00.000Z"]],
  // Naming the hour after the gap too keeps the gap's run.
  ["30 2,3 * * *", "America/New_York", "2026-03-08T00:00:00Z", "2026-03-08T12:00:00Z", [
    "2026-03-08T07:00:00.000Z",
    "2026-03-08T07:30:00.000Z"
  ]],
  ["15 0,1,2,3 * * *", "America/New_York", "2026-03-08T04:00:00Z", "2026-03-08T10:00:00Z", [
    "2026-03-08T05:15:00.000Z",
    "2026-03-08T06:15:00.000Z",
    "2026-03-08T07:00:00.000Z",
    "2026-03-08T07:15:00.000Z"
  ]],
  ["30 2,3 * * *", "Europe/Berlin", "2026-03-28T20:00:00Z", "2026-03-29T08:00:00Z", [
    "2026-03-29T01:00:00.000Z",
    "2026-03-29T01:30:00.000Z"
  ]],
  // A wall time after the gap's run, moved by Effect, is not run again.
  ["0,45 2 * * *", "Europe/Berlin", "2026-03-28T20:00:00Z", "2026-03-29T08:00:00Z", [
    "2026-03-29T01:00:00.000Z"
  ]],
  // Hourly and finer follow elapsed time: both passes of a fall-back hour.
  ["*/30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z", [
    "2026-11-01T04:00:00.000Z",
    "2026-11-01T04:30:00.000Z",
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T05:30:00.000Z",
    "2026-11-01T06:00:00.000Z",
    "2026-11-01T06:30:00.000Z",
    "2026-11-01T07:00:00.000Z",
    "2026-11-01T07:30:00.000Z",
    "2026-11-01T08:00:00.000Z"
  ]],
  // A named hour runs once, in the first pass.
  ["30 1 * * *", "America/New_York", "2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z", ["2026-11-01T05:30:00.000Z"]]
]
