/**
 * Errors raised when a worker is defined, registered or run.
 *
 * @since 0.1.0
 */
import { Cause, Schema } from "effect"

/**
 * A cron expression or time zone that cannot be used. Raised when the worker is
 * defined (the layer fails to build), never later while it runs.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCronExpression extends Schema.TaggedError<InvalidCronExpression>()(
  "InvalidCronExpression",
  {
    worker: Schema.String,
    expression: Schema.String,
    field: Schema.Literal("expression", "second", "minute", "hour", "day-of-month", "month", "day-of-week", "timeZone"),
    reason: Schema.String
  }
) {
  override get message(): string {
    const subject = this.field === "timeZone"
      ? `unknown time zone "${this.expression}"`
      : this.field === "expression"
      ? `invalid cron expression "${this.expression}"`
      : `invalid ${this.field} field in cron expression "${this.expression}"`
    return `Worker "${this.worker}": ${subject}: ${this.reason}`
  }
}

/**
 * Options that cannot work together or are out of range (for example a
 * concurrency of 0, or two workers with the same name).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidWorkerOptions extends Schema.TaggedError<InvalidWorkerOptions>()("InvalidWorkerOptions", {
  worker: Schema.String,
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Worker "${this.worker}": option "${this.option}" ${this.reason}`
  }
}

/**
 * A worker whose failure policy is `"stopHost"` failed after its retries were
 * spent. The host stops and the process exits with code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerFailed extends Schema.TaggedError<WorkerFailed>()("WorkerFailed", {
  worker: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return `Worker "${this.worker}" failed and stopped the host: ${describeCause(this.cause)}`
  }
}

/**
 * Shutdown took longer than the grace period; `workers` names the workers
 * that were still running when it ran out.
 *
 * @since 0.1.0
 * @category errors
 */
export class ShutdownTimeout extends Schema.TaggedError<ShutdownTimeout>()("ShutdownTimeout", {
  gracePeriodMillis: Schema.Number,
  workers: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const who = this.workers.length === 0
      ? "finalizers still running"
      : `workers still running: ${this.workers.join(", ")}`
    return `Shutdown did not finish within the grace period of ${this.gracePeriodMillis} ms (${who})`
  }
}

const describeCause = (cause: unknown): string => {
  if (Cause.isCause(cause)) {
    const failure = Cause.squash(cause)
    return failure instanceof Error ? failure.message : String(failure)
  }
  if (cause instanceof Error) return cause.message
  if (typeof cause === "object" && cause !== null && "message" in cause) return String(cause.message)
  return String(cause)
}
