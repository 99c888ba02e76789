/**
 * The metrics effect-workers records. All names start with `effect_workers_`.
 * The workers' counters carry a `worker` label, and their duration histogram
 * is shared by all workers (per-worker durations are in the status
 * registry); the jobs' metrics carry a `queue` label, and `jobRuns` `job`
 * and `outcome` too. docs/observability.md lists them all.
 * `prometheusText` renders them, and every other Effect metric, for a
 * Prometheus scrape.
 *
 * @since 0.1.0
 */
import { Effect, Metric, MetricBoundaries, MetricKey } from "effect"
import * as Prometheus from "./internal/prometheus.js"

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

/**
 * Every metric in Effect's registry (the workers', the jobs', and the
 * application's own), in the Prometheus text format (version 0.0.4).
 *
 * **Details**
 *
 * Counters made with `incremental: true` (all of this module's) are
 * `counter`s, named with a `_total` suffix (`effect_workers_job_runs_total`);
 * other Effect counters can go down, so they are `gauge`s under their own
 * name. Gauges are `gauge`s; histograms are `histogram`s with cumulative
 * `_bucket` series up to `le="+Inf"`, `_sum` and `_count`; frequencies are
 * `counter`s (`_total`) with one series per value, labelled `key`;
 * summaries are `summary`s with `quantile` labels, `_sum` and `_count`.
 * Names and label names are sanitised (characters Prometheus does not allow
 * become `_`), and a metric whose name is already taken by a metric of
 * another type is left out.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Metrics } from "effect-workers"
 *
 * const metrics = Effect.map(Metrics.prometheusText, (body) =>
 *   HttpServerResponse.text(body, { contentType: Metrics.prometheusContentType }))
 * ```
 *
 * @since 0.1.0
 * @category exporters
 */
export const prometheusText: Effect.Effect<string> = Effect.map(Metric.snapshot, Prometheus.render)

/**
 * The content type to serve {@link prometheusText} with:
 * `"text/plain; version=0.0.4; charset=utf-8"`.
 *
 * @since 0.1.0
 * @category exporters
 */
export const prometheusContentType: string = Prometheus.contentType
