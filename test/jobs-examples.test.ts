import { HttpClient, HttpClientResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { JobClient, Recurring, Testing } from "effect-workers"
import * as DurableMessageQueue from "../examples/durable-message-queue.js"
import * as HangfireJobs from "../examples/hangfire-jobs.js"
import * as QuartzScheduling from "../examples/quartz-scheduling.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

/** Polls the job until it is in `state`. */
const awaitState = (id: string, state: string) =>
  eventually(
    Effect.flatMap(JobClient.JobClient, (client) => Effect.map(client.get(id), Option.getOrThrow)),
    (job) => job.state === state,
    `job ${id} to be ${state}`
  )

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("job examples", (it) => {
  it.scoped("Hangfire: the controller enqueues the email and answers its id; the email is retried once, then sent", () =>
    Effect.gen(function*() {
      yield* Layer.build(Layer.mergeAll(HangfireJobs.HangfireServer, HangfireJobs.JobsRoutes))
      const { jobId } = yield* HttpClient.post("/api/jobs/send-email").pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Struct({ jobId: Schema.String })))
      )
      const sent = yield* awaitState(jobId, "completed")
      expect(sent.name).toBe("send-notification-email")
      expect(sent.attempt).toBe(2)
      expect(sent.errors.map((error) => error.message)).toEqual([
        "MailServerBusy: the mail server is busy (deliberately, on each email's first attempt, to show a retry)"
      ])
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("Hangfire: a delayed job waits as scheduled until its time", () =>
    Effect.gen(function*() {
      const client = yield* JobClient.JobClient
      const before = Date.now()
      const id = yield* HangfireJobs.scheduleDelayedJob("1 hour")
      const job = Option.getOrThrow(yield* client.get(id))
      expect(job.state).toBe("scheduled")
      expect(job.payload).toEqual({ orderId: 123 })
      expect(job.runAt.getTime() - before).toBeGreaterThanOrEqual(3_600_000 - 5_000)
    }))

  it.effect("durable message queue: acknowledged, retried, and dead-lettered messages; no duplicate publish", () =>
    Effect.gen(function*() {
      const first = yield* DurableMessageQueue.publish({ id: "m1", type: "order.created", payload: { orderId: 1 } })
      const again = yield* DurableMessageQueue.publish({ id: "m1", type: "order.created", payload: { orderId: 1 } })
      expect(again).toEqual({ id: first.id, inserted: false })
      yield* DurableMessageQueue.publish({ id: "m2", type: "inventory.sync", payload: { sku: "keyboard" } })
      yield* DurableMessageQueue.publish({ id: "m3", type: "fax.requested", payload: {} })
      const result = yield* Testing.drainQueue({ jobs: [DurableMessageQueue.ProcessMessage] })
      expect([result.completed, result.discarded]).toEqual([2, 1])
      const synced = result.jobs.find((job) => (job.payload as { id: string }).id === "m2")!
      expect([synced.state, synced.attempt]).toEqual(["completed", 2])
      expect(yield* DurableMessageQueue.deadLetters).toEqual([{
        message: { id: "m3", type: "fax.requested", payload: {} },
        reason: `Unrecoverable: unknown message type "fax.requested" (deliberate, to show a dead letter)`
      }])
    }))

  it.scoped("Hangfire: AddOrUpdate(\"daily-report\", ..., Cron.Daily(2)) stores one definition, updated in place", () =>
    Effect.gen(function*() {
      const recurring = Context.get(yield* Layer.build(Recurring.layer({ fire: false })), Recurring.Recurring)
      const first = yield* HangfireJobs.scheduleRecurringJob.pipe(Effect.provideService(Recurring.Recurring, recurring))
      const again = yield* HangfireJobs.scheduleRecurringJob.pipe(Effect.provideService(Recurring.Recurring, recurring))
      expect([first.id, first.cron, first.source]).toEqual(["daily-report", Option.some("0 2 * * *"), "api"])
      const next = Option.getOrThrow(again.nextRunAt)
      expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([2, 0])
      expect(again.nextRunAt).toEqual(first.nextRunAt)
      expect((yield* recurring.list).filter((info) => info.id === "daily-report")).toHaveLength(1)
      yield* recurring.remove("daily-report")
    }))

  it.scoped("Quartz: ProcessOrders runs at once and every 5 minutes; the daily report is due at 02:00 and runs when triggered", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(QuartzScheduling.QuartzScheduler)
      const recurring = Context.get(context, Recurring.Recurring)
      const orders = yield* eventually(
        Effect.map(recurring.get("process-orders"), Option.getOrThrow),
        (info) => Option.isSome(info.lastJobState) && info.lastJobState.value === "completed",
        "the first ProcessOrders job to complete"
      )
      expect(orders.everyMillis).toEqual(Option.some(300_000))
      expect(Option.getOrThrow(orders.nextRunAt).getTime() - Option.getOrThrow(orders.lastRunAt).getTime()).toBe(
        300_000
      )
      const report = Option.getOrThrow(yield* recurring.get("send-daily-report"))
      expect([report.cron, report.timeZone]).toEqual([Option.some("0 2 * * *"), Option.some("UTC")])
      const next = Option.getOrThrow(report.nextRunAt)
      expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds()]).toEqual([2, 0, 0])
      expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000)
      const { id } = yield* recurring.trigger("send-daily-report")
      const ran = yield* awaitState(id, "completed")
      expect(ran.name).toBe("send-daily-report")
      expect(ran.recurringId).toEqual(Option.some("send-daily-report"))
    }))
})
