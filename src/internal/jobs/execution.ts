/** What a run of a job executes: its handler, with its timeout and span, and the context it reads. */
import { Duration, Effect, Option, Tracer } from "effect"
import type * as Job from "../../Job.js"
import { JobTimeout } from "../../JobError.js"
import type { Claimed } from "./outcomes.js"
import * as Statements from "./statements.js"
import type { Store } from "./store.js"

/** The `JobContext` of a run of `job` by `runner`. */
export const contextOf = (job: Claimed, store: Store, runner: string): Job.Context => ({
  id: job.id,
  name: job.name,
  queue: job.queue,
  attempt: job.attempt,
  maxAttempts: job.maxAttempts,
  insertedAt: job.insertedAt,
  runAt: job.runAt,
  recurring: job.recurringId === null
    ? Option.none()
    : Option.some({ id: job.recurringId, at: job.recurringTick ?? job.runAt }),
  progress: (value) => Statements.storeProgress(store, runner, job, value)
})

/**
 * The handler of `definition` on the decoded `payload`, failing with
 * `JobTimeout` past the definition's timeout, in a root span linked to the
 * enqueuer's when `tracing`.
 */
export const handlerOf = (
  job: Claimed,
  definition: Job.Any,
  payload: unknown,
  tracing: boolean
): Effect.Effect<unknown, unknown> => {
  let handler = definition.handler(payload) as Effect.Effect<unknown, unknown>
  if (definition.timeout !== undefined) {
    const timeoutMillis = Duration.toMillis(definition.timeout)
    handler = Effect.timeoutFail(handler, {
      duration: definition.timeout,
      onTimeout: () => new JobTimeout({ job: job.name, timeoutMillis })
    })
  }
  if (!tracing) return handler
  return Effect.withSpan(handler, "effect_workers.job.run", {
    root: true,
    attributes: {
      "effect_workers.job.id": job.id,
      "effect_workers.job.name": job.name,
      "effect_workers.job.queue": job.queue,
      "effect_workers.job.attempt": job.attempt
    },
    links: job.traceId !== null && job.spanId !== null
      ? [{
        _tag: "SpanLink",
        span: Tracer.externalSpan({ traceId: job.traceId, spanId: job.spanId }),
        attributes: {}
      }]
      : [],
    captureStackTrace: false
  })
}
