/** What the recurring suite runs, shared by its parent and child processes. */

export const roles = ["lateness", "db-time", "graphile-lateness", "graphile-db-time"] as const
export type Role = (typeof roles)[number]

/** Definitions due in the same second, for the lateness runs. */
export const dueCount = 1_000
/** Definitions firing every minute, for the database time runs. */
export const minutelyCount = 10_000
/** The database time window. */
export const windowMs = 60_000
/** A firing that takes longer is not wholly counted in its window. */
export const maxFiringMs = 45_000
/** A process not ready this long before its tick would count its own start-up as lateness. */
export const readyMarginMs = 500
/** Where the processes of one lateness run say they are ready, in the run's schema. */
export const meetingTable = "bench_ready"

/** What a lateness child reports. */
export interface LatenessResult {
  readonly role: "lateness" | "graphile-lateness"
  /** When the process was ready to fire and run jobs (epoch ms). */
  readonly readyAt: number
  /** The tick every definition was due at (epoch ms). */
  readonly tick: number
  /** For each job this process ran: ms from its tick to its handler's start. */
  readonly samples: ReadonlyArray<number>
  /** From the tick until the last of its jobs was enqueued (committed), if seen. */
  readonly enqueuedMs: number | undefined
}

/** What a database time child reports. */
export interface DbTimeResult {
  readonly role: "db-time" | "graphile-db-time"
  readonly readyAt: number
  readonly windowStart: number
  readonly windowEnd: number
  /** The one whole minute in the window (epoch ms). */
  readonly tick: number
  /** Growth of `pg_stat_database.active_time` of the benchmark's database over the window. */
  readonly activeMs: number
  /** Jobs enqueued for `tick`, and how many definitions (crontab items) they stand for. */
  readonly jobs: number
  readonly definitions: number
  /** From the tick until the last of its jobs was enqueued (committed), if seen. */
  readonly enqueuedMs: number | undefined
}

export type ChildResult = LatenessResult | DbTimeResult
