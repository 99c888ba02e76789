/**
 * MessageQueueProcessorService on the durable queue: each message is a job.
 * A message handled is acknowledged (the job completes); one whose handling
 * fails is retried (nack: the job fails and runs again after its backoff);
 * one that can never succeed, or still fails after 3 attempts, is
 * dead-lettered (the job is discarded, with every attempt's error kept).
 * Messages survive restarts and crashes, unlike the in-memory queue of
 * ./message-queue.ts.
 *
 *   node --import tsx examples/durable-message-queue.ts
 */
import { Effect, Layer, Schedule, Schema } from "effect"
import { Host, Job, JobClient, JobRunner } from "effect-workers"
import * as Database from "./support/database.js"
import { isMain } from "./support/main.js"

export const Message = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  payload: Schema.Unknown
})
export type Message = typeof Message.Type

/** Handling one message: ack by succeeding, nack by failing, dead-letter at once by `Job.unrecoverable`. */
export const ProcessMessage = Job.make("process-message", {
  payload: Message,
  queue: "messages",
  maxAttempts: 3,
  backoff: Schedule.exponential("1 second"),
  uniqueKey: (message) => `message:${message.id}`,
  handler: (message) =>
    Effect.gen(function*() {
      const { attempt } = yield* Job.JobContext
      switch (message.type) {
        case "order.created":
          return yield* Effect.logInfo(`Order created: ${JSON.stringify(message.payload)}`)
        case "email.requested":
          return yield* Effect.logInfo(`Email sent: ${JSON.stringify(message.payload)}`)
        case "inventory.sync":
          // The inventory service is down on the first attempt: the message is retried.
          if (attempt === 1) {
            return yield* Effect.fail(
              new Error("the inventory service did not answer (deliberately, on the first attempt, to show a retry)")
            )
          }
          return yield* Effect.logInfo(`Inventory synced: ${JSON.stringify(message.payload)}`)
        default:
          // One sample message has an unknown type, on purpose.
          return yield* Job.unrecoverable(`unknown message type "${message.type}" (deliberate, to show a dead letter)`)
      }
    })
})

/** Publishing is enqueueing; a message id already waiting is not published twice. */
export const publish = (message: Message) => JobClient.enqueue(ProcessMessage, message)

/** Dead letters: discarded messages, with why. */
export const deadLetters = Effect.flatMap(JobClient.JobClient, (client) =>
  Effect.map(
    client.list({ name: ProcessMessage.name, state: "discarded" }),
    (jobs) => jobs.map((job) => ({ message: job.payload as Message, reason: job.errors.at(-1)?.message ?? "" }))
  ))

/** The processor: four messages at a time. */
export const DurableMessageProcessor = JobRunner.layer({ jobs: [ProcessMessage], queues: { messages: 4 } })

export const SampleMessages = Layer.effectDiscard(Effect.gen(function*() {
  const stamp = Date.now()
  yield* publish({ id: `${stamp}-1`, type: "order.created", payload: { orderId: 1 } })
  yield* publish({ id: `${stamp}-2`, type: "inventory.sync", payload: { sku: "keyboard" } })
  yield* publish({ id: `${stamp}-3`, type: "fax.requested", payload: {} })
  yield* Effect.logInfo("Published 3 messages to the durable queue")
}))

if (isMain(import.meta)) {
  Host.run(
    Layer.mergeAll(DurableMessageProcessor, SampleMessages).pipe(
      Layer.provideMerge(Database.jobClient),
      Layer.provide(Database.layer)
    )
  )
}
