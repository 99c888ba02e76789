/**
 * What the status registry reports about each worker.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The states a worker moves through.
 *
 * - `starting`: registered, waiting for the host to start it.
 * - `idle`: waiting for the next run (`nextRunAt`), including the initial delay.
 * - `running`: an iteration is running.
 * - `backingOff`: an iteration failed and waits for its next retry (or restart).
 * - `failed`: retries are spent and the worker will not run again.
 * - `stopped`: stopped by shutdown, or finished (a run-once worker).
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerState = Schema.Literal("starting", "idle", "running", "backingOff", "failed", "stopped")

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerState = typeof WorkerState.Type

/**
 * A snapshot of one worker's status.
 *
 * @since 0.1.0
 * @category models
 */
export class WorkerStatus extends Schema.Class<WorkerStatus>("WorkerStatus")({
  name: Schema.String,
  kind: Schema.Literal("scheduled", "cron", "consumer"),
  state: WorkerState,
  lastStartedAt: Schema.OptionFromNullOr(Schema.DateFromNumber),
  lastEndedAt: Schema.OptionFromNullOr(Schema.DateFromNumber),
  lastError: Schema.OptionFromNullOr(Schema.String),
  iterations: Schema.Number,
  failures: Schema.Number,
  skipped: Schema.Number,
  nextRunAt: Schema.OptionFromNullOr(Schema.DateFromNumber)
}) {}
