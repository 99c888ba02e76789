/**
 * MessageQueueProcessorService: consumes messages from an in-memory queue,
 * four at a time. A message is acknowledged once handled; one whose handling
 * fails is retried twice, then moved to the dead-letter queue with the reason.
 *
 *   node --import tsx examples/message-queue.ts
 */
import { Cause, Chunk, Context, Data, Effect, Layer, Queue, Ref, Schedule } from "effect"
import { Host, Worker } from "effect-workers"
import { isMain } from "./support/main.js"

export interface Message {
  readonly id: string
  readonly type: string
  readonly payload: unknown
}

export interface DeadLetter {
  readonly message: Message
  readonly reason: string
}

export class MessageRejected extends Data.TaggedError("MessageRejected")<{ readonly message: string }> {}

/**
 * The queue: messages to consume, acknowledgements, and dead letters.
 */
export class MessageQueue extends Context.Tag("examples/MessageQueue")<MessageQueue, {
  readonly publish: (message: Message) => Effect.Effect<void>
  /** Where the processor takes messages from. */
  readonly messages: Queue.Dequeue<Message>
  readonly acknowledge: (message: Message) => Effect.Effect<void>
  readonly deadLetter: (message: Message, reason: string) => Effect.Effect<void>
  /** Ids of the acknowledged messages, in order. */
  readonly acknowledged: Effect.Effect<ReadonlyArray<string>>
  readonly deadLetters: Queue.Dequeue<DeadLetter>
}>() {
  static readonly InMemory = Layer.effect(
    MessageQueue,
    Effect.gen(function*() {
      // Bounded: a producer faster than the processor waits instead of filling the memory.
      const messages = yield* Queue.bounded<Message>(1_000)
      const deadLetters = yield* Queue.unbounded<DeadLetter>()
      const acknowledged = yield* Ref.make(Chunk.empty<string>())
      return {
        publish: (message) => Queue.offer(messages, message),
        messages,
        acknowledge: (message) => Ref.update(acknowledged, Chunk.append(message.id)),
        deadLetter: (message, reason) =>
          Queue.offer(deadLetters, { message, reason }).pipe(
            Effect.zipRight(Effect.logWarning(`Message ${message.id} moved to the dead-letter queue: ${reason}`))
          ),
        acknowledged: Effect.map(Ref.get(acknowledged), Chunk.toReadonlyArray),
        deadLetters
      }
    })
  )
}

/** Handles one message by its type. */
export class MessageHandler extends Context.Tag("examples/MessageHandler")<MessageHandler, {
  readonly handle: (message: Message) => Effect.Effect<void, MessageRejected>
}>() {
  static readonly Default = Layer.succeed(MessageHandler, {
    handle: (message) => {
      switch (message.type) {
        case "order.created":
          return Effect.logInfo(`Order created: ${JSON.stringify(message.payload)}`)
        case "email.requested":
          return Effect.logInfo(`Email sent: ${JSON.stringify(message.payload)}`)
        default:
          // The sample messages include one of an unknown type now and then, on purpose.
          return Effect.fail(
            new MessageRejected({
              message: `unknown message type "${message.type}" (deliberate, to show retries and the dead-letter queue)`
            })
          )
      }
    }
  })
}

const reasonOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  return failure instanceof Error ? failure.message : String(failure)
}

/**
 * The consumer. The queue comes from the `MessageQueue` service, so the
 * worker is defined once that service is built.
 */
export const MessageQueueProcessorService = Layer.unwrapEffect(
  Effect.map(MessageQueue, (queue) =>
    Worker.consumer("message-queue-processor", {
      source: queue.messages,
      concurrency: 4,
      handler: (message: Message) =>
        Effect.flatMap(MessageHandler, (handler) => handler.handle(message)).pipe(
          Effect.zipRight(queue.acknowledge(message)),
          Effect.annotateLogs({ messageId: message.id, messageType: message.type })
        ),
      retry: Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      deadLetter: (message, cause) => queue.deadLetter(message, reasonOf(cause))
    }))
)

/** Publishes a few sample messages every 10 seconds, an unknown type among them now and then. */
export const SampleMessages = Layer.unwrapEffect(
  Effect.map(Effect.zip(MessageQueue, Ref.make(0)), ([queue, published]) =>
    Worker.make(
      "sample-messages",
      Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(published, (k) => k + 1)
        yield* queue.publish({ id: `${n}-a`, type: "order.created", payload: { orderId: n } })
        yield* queue.publish({ id: `${n}-b`, type: "email.requested", payload: { to: `user${n}@example.com` } })
        if (n % 3 === 1) yield* queue.publish({ id: `${n}-c`, type: "invoice.unknown", payload: {} })
      }),
      { schedule: Schedule.spaced("10 seconds") }
    ))
)

if (isMain(import.meta)) {
  Host.run(
    Layer.mergeAll(MessageQueueProcessorService, SampleMessages).pipe(
      Layer.provide(MessageHandler.Default),
      Layer.provide(MessageQueue.InMemory)
    )
  )
}
