/** What the flow suite runs, shared by its parent and child processes. */

export const configs = [
  "unlimited",
  "global",
  "keyed-unlimited",
  "per-key",
  "fifo",
  "fair"
] as const
export type Config = (typeof configs)[number]

export const labels: Record<Config, string> = {
  "unlimited": "no limits, 50,000 jobs",
  "global": "global concurrency 100,000 (not binding), 50,000 jobs",
  "keyed-unlimited": "no limits, 50,000 jobs over 1,000 keys",
  "per-key": "key concurrency 5, 50,000 jobs over 1,000 keys",
  "fifo": "no limits (FIFO): 1 key of 100,000 jobs then 99 keys of 100",
  "fair": "fair: 1 key of 100,000 jobs then 99 keys of 100"
}

/** What a child reports. */
export interface FlowResult {
  readonly config: Config
  readonly jobs: number
  /** From starting the runner until every job is recorded as completed. */
  readonly runMs: number
  /** The small keys' jobs: time from the first job's start until each one's handler started, p50 and p99, in ms. */
  readonly smallKeysWaitP50Ms: number | null
  readonly smallKeysWaitP99Ms: number | null
  /** From starting the runner until the first handler started. */
  readonly firstStartMs: number
}
