/** What the jobs suite runs, shared by its parent and child processes. */

export const impls = ["effect-workers", "graphile-default", "graphile-best", "pg-boss"] as const
export type Impl = (typeof impls)[number]

export const modes = ["throughput", "latency"] as const
export type Mode = (typeof modes)[number]

/** How each implementation runs its jobs, per mode. */
export const labels: Record<Impl, Record<Mode, string>> = {
  "effect-workers": {
    throughput: "effect-workers (defaults)",
    latency: "effect-workers (defaults)"
  },
  "graphile-default": {
    throughput: "graphile-worker (defaults)",
    latency: "graphile-worker (defaults)"
  },
  "graphile-best": {
    throughput: "graphile-worker (documented best)",
    latency: "graphile-worker (documented best)"
  },
  "pg-boss": {
    throughput: "pg-boss (batchSize 100, burst)",
    latency: "pg-boss (LISTEN/NOTIFY)"
  }
}

/** Enqueued in calls of this many jobs. */
export const bulkChunk = 5_000

/** What a throughput child reports. */
export interface ThroughputResult {
  readonly impl: Impl
  readonly mode: "throughput"
  readonly jobs: number
  /** Time to enqueue every job with the bulk API, in chunks of {@link bulkChunk}, runner stopped. */
  readonly enqueueMs: number
  /** From starting the runner until every job is recorded as completed. */
  readonly runMs: number
  /** CPU time of the process (user and system) over `runMs`: steadier than `runMs` on a busy machine. */
  readonly runCpuMs: number
  /** Time to start the runner (part of `runMs`). */
  readonly startMs: number
  /** Handler runs counted (more than `jobs` if some ran twice). */
  readonly handled: number
}

/** What a latency child reports. */
export interface LatencyResult {
  readonly impl: Impl
  readonly mode: "latency"
  /** Enqueue-to-start times, in milliseconds, in the order measured. */
  readonly samples: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

export type ChildResult = ThroughputResult | LatencyResult
