// #region imports
import { Effect, Mailbox, Queue, Schedule, Stream } from "effect"
import { Worker } from "effect-workers"
// #endregion

interface Email {
  readonly to: string
  readonly subject: string
}

const send = (email: Email) => Effect.log(`sending "${email.subject}" to ${email.to}`)

// #region queue
// The `MessageQueueProcessorService` pattern: up to 4 emails at once; an email
// whose handler fails is retried 3 times, 1 second apart, then dead-lettered.
export const EmailSender = (queue: Queue.Queue<Email>) =>
  Worker.consumer("email-sender", {
    source: queue,
    handler: send,
    concurrency: 4,
    retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(3))),
    deadLetter: (email, cause) => Effect.logError(`giving up on the email to ${email.to}`, cause)
  })
// #endregion

// #region mailbox
// A `Mailbox` source: the worker ends (`stopped`) once the mailbox is done and
// every taken item has been handled.
export const ImportRows = (mailbox: Mailbox.ReadonlyMailbox<string>) =>
  Worker.consumer("import-rows", {
    source: mailbox,
    handler: (row) => Effect.log(`importing ${row}`)
  })
// #endregion

// #region stream
// A `Stream` source cannot take items back: items that were pulled but not
// finished at shutdown go to `onUnfinished`.
export const Ticks = (stream: Stream.Stream<number>, save: (n: number) => Effect.Effect<void>) =>
  Worker.consumer("ticks", {
    source: stream,
    handler: (n) => Effect.log(`tick ${n}`),
    onUnfinished: save
  })
// #endregion
