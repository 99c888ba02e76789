/**
 * A host running several of the examples on one database, as `npm start`
 * does. It uses the server at `DATABASE_URL` when set, otherwise an embedded
 * PostgreSQL kept under `.data/` (see ./support/database.ts). Ctrl-C stops it
 * gracefully: workers stop, the graceful-shutdown example writes its
 * checkpoint, the embedded server stops, and the process exits with 0.
 *
 *   npm start
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, ConfigProvider, Effect, Layer } from "effect"
import { Dashboard, Host, JobRunner, Recurring } from "effect-workers"
import * as path from "node:path"
import * as DatabaseCleanup from "./database-cleanup.js"
import * as DurableMessageQueue from "./durable-message-queue.js"
import * as GracefulShutdown from "./graceful-shutdown.js"
import * as HangfireJobs from "./hangfire-jobs.js"
import * as HealthCheck from "./health-check.js"
import * as MessageQueue from "./message-queue.js"
import * as OrderProcessing from "./order-processing.js"
import * as QuartzScheduling from "./quartz-scheduling.js"
import * as ResilientBackground from "./resilient-background.js"
import { SimpleBackgroundService } from "./simple-background.js"
import * as Database from "./support/database.js"
import { dataDir, isMain } from "./support/main.js"

const day = 86_400_000

/**
 * Gives the examples something to do at once: orders to process (one of them
 * invalid), old logs, expired sessions and old temporary files to clean up.
 */
const seed = (tempDir: string) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const fs = yield* FileSystem.FileSystem
    yield* OrderProcessing.migrate
    yield* DatabaseCleanup.migrate
    yield* OrderProcessing.placeOrder("keyboard", 2)
    yield* OrderProcessing.placeOrder("monitor", 0)
    yield* OrderProcessing.placeOrder("mouse", 1)
    const now = Date.now()
    yield* sql`INSERT INTO logs ${
      sql.insert([
        { message: "an old log line", created_at: new Date(now - 45 * day) },
        { message: "a recent log line", created_at: new Date(now) }
      ])
    }`
    const sessionId = `demo-${now}`
    yield* sql`INSERT INTO sessions ${
      sql.insert([
        { id: `${sessionId}-expired`, user_name: "ada", expires_at: new Date(now - day) },
        { id: `${sessionId}-live`, user_name: "grace", expires_at: new Date(now + day) }
      ])
    }`
    yield* fs.makeDirectory(tempDir, { recursive: true })
    const oldFile = path.join(tempDir, `upload-${now}.tmp`)
    yield* fs.writeFileString(oldFile, "left over from an upload")
    yield* fs.utimes(oldFile, new Date(now - 2 * day), new Date(now - 2 * day))
    yield* Effect.logInfo(
      "Demo data seeded: 3 orders (one with quantity 0, to be rejected), 2 log lines, 2 sessions, 1 old temporary file"
    )
  }))

/**
 * The demo's defaults, used where the environment sets nothing: the cleanup
 * starts after a few seconds instead of 5 minutes, and works in the data directory.
 */
const demoConfig = (dir: string) =>
  Layer.setConfigProvider(
    ConfigProvider.fromEnv().pipe(
      ConfigProvider.orElse(() =>
        ConfigProvider.fromJson({
          DATABASE_CLEANUP: { INITIAL_DELAY: "5 seconds", TEMP_DIR: path.join(dir, "temp") }
        })
      )
    )
  )

/** One job runner for the durable jobs of the examples. */
const Jobs = JobRunner.layer({
  jobs: [
    HangfireJobs.SendNotificationEmail,
    HangfireJobs.ProcessOrder,
    HangfireJobs.GenerateDailyReport,
    DurableMessageQueue.ProcessMessage
  ],
  queues: { messages: 4 }
}).pipe(Layer.provide(HangfireJobs.Mailer.Flaky))

/**
 * The dashboard at http://127.0.0.1:3000 (or `PORT`), with `/healthz`,
 * `/readyz` and `/metrics`; its readiness covers the demo's job runner and
 * the health-check example's latest check.
 */
const Operations = Layer.unwrapEffect(
  Effect.map(
    Config.port("PORT").pipe(Config.withDefault(3000)),
    (port) =>
      Dashboard.layer({ port, checks: [HealthCheck.readiness] }).pipe(
        Layer.provideMerge(Jobs),
        Layer.provide(Recurring.layer({ fire: false }))
      )
  )
)

/** Every worker and job runner of the demo, with what they need. */
export const Demo = Layer.unwrapEffect(
  Effect.map(dataDir, (dir) =>
    Layer.mergeAll(
      SimpleBackgroundService,
      OrderProcessing.OrderProcessingService,
      HealthCheck.HealthCheckService,
      DatabaseCleanup.DatabaseCleanupService,
      ResilientBackground.ResilientBackgroundService,
      GracefulShutdown.GracefulShutdownService,
      MessageQueue.MessageQueueProcessorService,
      MessageQueue.SampleMessages,
      Operations,
      // The Quartz example's scheduler fires every recurring definition, the Hangfire one's too.
      HangfireJobs.EnqueueAtStart.pipe(Layer.provide(Recurring.layer({ fire: false }))),
      QuartzScheduling.QuartzScheduler,
      DurableMessageQueue.SampleMessages
    ).pipe(
      // Built before the workers, so that their first runs find work.
      Layer.provide(seed(path.join(dir, "temp"))),
      Layer.provide([
        OrderProcessing.OrderProcessor.Default,
        ResilientBackground.FlakyTask.Default,
        MessageQueue.MessageHandler.Default,
        MessageQueue.MessageQueue.InMemory
      ]),
      Layer.provide(Layer.provideMerge(Database.jobClient, Database.layer)),
      Layer.provide(NodeContext.layer),
      Layer.provide(demoConfig(dir))
    ))
)

if (isMain(import.meta)) Host.run(Demo, { gracePeriod: "10 seconds" })
