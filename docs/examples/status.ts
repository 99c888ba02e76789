// #region imports
import { Effect, Metric, Option, Schedule, Schema } from "effect"
import { Metrics, Worker, WorkerRegistry, WorkerStatus } from "effect-workers"
// #endregion

// #region status
// A worker that reports the status of every worker once a minute, as JSON.
const encode = Schema.encodeSync(Schema.Array(WorkerStatus.WorkerStatus))

export const StatusReport = Worker.make(
  "status-report",
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry.WorkerRegistry
    const statuses = yield* registry.all
    // Dates become epoch milliseconds and `Option`s become `null`.
    yield* Effect.log(JSON.stringify(encode(statuses)))
    const unhealthy = statuses.filter((status) => status.state === "failed")
    if (unhealthy.length > 0) yield* Effect.logWarning(`failed workers: ${unhealthy.map((s) => s.name).join(", ")}`)
  }),
  { schedule: Schedule.spaced("1 minute") }
)

// One worker's status; `None` when no worker has that name.
export const lastError = (name: string) =>
  Effect.gen(function*() {
    const registry = yield* WorkerRegistry.WorkerRegistry
    const status = yield* registry.get(name)
    return Option.flatMap(status, (s) => s.lastError)
  })
// #endregion

// #region metrics
// Successful iterations of one worker, read from Effect's metric registry.
export const successes = (worker: string) =>
  Metric.value(Metrics.workerIterations.pipe(Metric.tagged("worker", worker), Metric.tagged("outcome", "success")))
// #endregion
