/**
 * The metrics effect-workers records. All names start with `effect_workers_`;
 * the counters carry a `worker` label; the duration histogram is shared by
 * all workers (per-worker durations are in the status registry).
 *
 * @since 0.1.0
 */
import { Metric, MetricBoundaries, MetricKey } from "effect"

/** @internal */
export const keys = {
  iterations: MetricKey.counter("effect_workers_worker_iterations", {
    description: "Worker iterations that ended, by outcome",
    incremental: true
  }),
  failures: MetricKey.counter("effect_workers_worker_failures", {
    description: "Failed worker attempts, retries included",
    incremental: true
  }),
  skipped: MetricKey.counter("effect_workers_worker_skipped", {
    description: "Cron ticks skipped because the previous run had not finished",
    incremental: true
  }),
  duration: MetricKey.histogram(
    "effect_workers_worker_duration_seconds",
    MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 }),
    "Duration of worker iterations in seconds"
  ),
  items: MetricKey.counter("effect_workers_consumer_items", {
    description: "Items handled by queue consumers, by outcome",
    incremental: true
  }),
  jobRuns: MetricKey.counter("effect_workers_job_runs", {
    description: "Job runs that ended, by queue, job and outcome",
    incremental: true
  }),
  jobDuration: MetricKey.histogram(
    "effect_workers_job_duration_seconds",
    MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 }),
    "Duration of job runs in seconds"
  ),
  jobWait: MetricKey.histogram(
    "effect_workers_job_wait_seconds",
    MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 }),
    "Time from a job's run_at to the start of its run, in seconds"
  ),
  jobsRunning: MetricKey.gauge("effect_workers_jobs_running", {
    description: "Jobs running now in this process"
  })
}

/**
 * Iterations that ended, labelled by `outcome` (`success` or `failure`).
 * A failure is counted once per iteration, after its retries are spent.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workerIterations: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.iterations)

/**
 * Failed attempts, each retry included.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workerFailures: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.failures)

/**
 * Cron ticks skipped because the previous run was still going.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workerSkipped: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.skipped)

/**
 * Duration of iterations in seconds, retries included, over all workers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workerDuration: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.duration)

/**
 * Items a queue consumer finished, labelled by `outcome` (`ack` or `deadLetter`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const consumerItems: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.items)

/**
 * Job runs that ended, labelled by `queue`, `job` and `outcome`: `completed`,
 * `failed` (to be retried), `discarded`, `snoozed`, `cancelled`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const jobRuns: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.jobRuns)

/**
 * Duration of job runs in seconds, labelled by `queue`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const jobDuration: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.jobDuration)

/**
 * Time from a job's `runAt` to the start of its run, in seconds, labelled by `queue`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const jobWait: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.jobWait)

/**
 * Jobs running now in this process, labelled by `queue`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const jobsRunning: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.jobsRunning)
