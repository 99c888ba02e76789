/** What the dashboard suite and its child share. */

/** A child's report: how long the runner took to process the jobs. */
export interface RunResult {
  readonly jobs: number
  readonly runMs: number
}

/** The queue the throughput runs use; the generated rows are in other queues. */
export const benchQueue = "bench"
