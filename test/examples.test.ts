import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import {
  ConfigError,
  ConfigProvider,
  Context,
  Deferred,
  Effect,
  Exit,
  HashMap,
  Layer,
  Option,
  Queue,
  Ref,
  Scope,
  TestContext
} from "effect"
import { Testing } from "effect-workers"
import * as net from "node:net"
import * as path from "node:path"
import * as DatabaseCleanup from "../examples/database-cleanup.js"
import * as GracefulShutdown from "../examples/graceful-shutdown.js"
import * as HealthCheck from "../examples/health-check.js"
import * as MessageQueue from "../examples/message-queue.js"
import * as OrderProcessing from "../examples/order-processing.js"
import * as ResilientBackground from "../examples/resilient-background.js"
import { SimpleBackgroundService } from "../examples/simple-background.js"
import * as Postgres from "../src/internal/dev/embedded.js"
import * as Children from "./support/children.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"

const root = path.resolve(import.meta.dirname, "..")

/** A TCP port nothing listens on right now. */
const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})
const hour = 3_600_000
const day = 24 * hour

describe("SimpleBackgroundService", () => {
  it.scoped("logs its work at start and then every 30 seconds", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      const registry = yield* Testing.start(SimpleBackgroundService)
      yield* registry.awaitStatus("simple-background", (s) => s.iterations === 1)
      yield* Testing.advance("29 seconds")
      expect((yield* registry.get("simple-background")).pipe(Option.map((s) => s.iterations))).toEqual(Option.some(1))
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("simple-background", (s) => s.iterations === 2)
      expect(yield* logs).toEqual([
        "Background work #1 executing at 1970-01-01T00:00:00.000Z",
        "Background work #2 executing at 1970-01-01T00:00:30.000Z"
      ])
    }))
})

describe("ResilientBackgroundService", () => {
  /** A task that fails its first `failures` attempts, counting them. */
  const scripted = (failures: number) =>
    Effect.map(Ref.make(0), (attempts) => ({
      attempts,
      layer: Layer.succeed(ResilientBackground.FlakyTask, {
        run: Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (n) =>
          n <= failures
            ? Effect.fail(new ResilientBackground.TransientFailure({ message: `attempt ${n} failed` }))
            : Effect.void)
      })
    }))

  it.scoped("retries a failed run 5 seconds later until it succeeds", () =>
    Effect.gen(function*() {
      yield* captureLogs
      const task = yield* scripted(2)
      const registry = yield* Testing.start(
        ResilientBackground.ResilientBackgroundService.pipe(Layer.provide(task.layer))
      )
      yield* registry.awaitStatus("resilient-background", (s) => s.failures === 1 && s.state === "backingOff")
      yield* Testing.advance("4 seconds")
      expect(yield* Ref.get(task.attempts)).toBe(1)
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("resilient-background", (s) => s.failures === 2)
      yield* Testing.advance("5 seconds")
      const status = yield* registry.awaitStatus("resilient-background", (s) => s.iterations === 1)
      expect(yield* Ref.get(task.attempts)).toBe(3)
      expect(status.failures).toBe(2)
      expect(status.state).toBe("idle")
    }))

  it.scoped("gives up after 3 retries and runs again 5 minutes later", () =>
    Effect.gen(function*() {
      yield* captureLogs
      const task = yield* scripted(Number.POSITIVE_INFINITY)
      const registry = yield* Testing.start(
        ResilientBackground.ResilientBackgroundService.pipe(Layer.provide(task.layer))
      )
      for (let retry = 1; retry <= 3; retry++) {
        yield* registry.awaitStatus("resilient-background", (s) => s.failures === retry && s.state === "backingOff")
        yield* Testing.advance("5 seconds")
      }
      const spent = yield* registry.awaitStatus("resilient-background", (s) => s.iterations === 1)
      expect(yield* Ref.get(task.attempts)).toBe(4)
      expect(spent.failures).toBe(4)
      expect(spent.lastError).toEqual(Option.some("TransientFailure: attempt 4 failed"))
      expect(spent.nextRunAt).toEqual(Option.some(new Date(15_000 + 5 * 60_000)))
      yield* Testing.advance("5 minutes")
      yield* registry.awaitStatus("resilient-background", (s) => s.failures === 5)
      expect(yield* Ref.get(task.attempts)).toBe(5)
    }))
})

describe("GracefulShutdownService", () => {
  it.scoped("on stop, runs the stopping hook, interrupts the batch and writes the steps it finished", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      const fs = yield* FileSystem.FileSystem
      const checkpoint = path.join(yield* fs.makeTempDirectoryScoped(), "checkpoint.log")
      const lines = Effect.map(fs.readFileString(checkpoint), (text) => text.trim().split("\n"))
      const batch1 = [1, 2, 3, 4, 5].map((step) => `batch 1 step ${step}`)

      const host = yield* Testing.startHost(GracefulShutdown.make(checkpoint).pipe(Layer.provide(NodeContext.layer)))
      yield* Testing.advance("5 seconds")
      yield* host.registry.awaitStatus("graceful-shutdown", (s) => s.iterations === 1)
      expect(yield* lines).toEqual(batch1)

      // The next batch starts 30 s after the first ended; stop it after two of its steps.
      yield* Testing.advance("32.5 seconds")
      yield* host.registry.awaitStatus("graceful-shutdown", (s) => s.state === "running")
      const exit = yield* host.stop
      expect(exit).toEqual(Exit.void)
      expect(yield* lines).toEqual([...batch1, "batch 2 step 1", "batch 2 step 2"])
      const shutdown = (yield* logs).filter((line) =>
        [
          "Application stopping signal received",
          "Background work cancelled, shutting down gracefully",
          "Cleanup complete"
        ]
          .includes(line)
      )
      expect(shutdown).toEqual([
        "Application stopping signal received",
        "Background work cancelled, shutting down gracefully",
        "Cleanup complete"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("MessageQueueProcessorService", () => {
  it.scoped("acknowledges handled messages, retries failed ones, and dead-letters what still fails", () =>
    Effect.gen(function*() {
      yield* captureLogs
      const attempts = yield* Ref.make(HashMap.empty<string, number>())
      // The real handler, except that "flaky" fails its first attempt.
      const handler = Layer.effect(
        MessageQueue.MessageHandler,
        Effect.map(MessageQueue.MessageHandler, (real) => ({
          handle: (message: MessageQueue.Message) =>
            Ref.modify(attempts, (map) => {
              const n = Option.getOrElse(HashMap.get(map, message.id), () => 0) + 1
              return [n, HashMap.set(map, message.id, n)]
            }).pipe(
              Effect.flatMap((n) =>
                message.id === "flaky" && n === 1
                  ? Effect.fail(new MessageQueue.MessageRejected({ message: "the mail server is busy" }))
                  : real.handle(message)
              )
            )
        }))
      ).pipe(Layer.provide(MessageQueue.MessageHandler.Default))
      const queue = Context.get(yield* Layer.build(MessageQueue.MessageQueue.InMemory), MessageQueue.MessageQueue)
      const registry = yield* Testing.start(
        MessageQueue.MessageQueueProcessorService.pipe(
          Layer.provide(handler),
          Layer.provide(Layer.succeed(MessageQueue.MessageQueue, queue))
        )
      )

      yield* queue.publish({ id: "order", type: "order.created", payload: { orderId: 1 } })
      yield* queue.publish({ id: "flaky", type: "email.requested", payload: { to: "ada@example.com" } })
      yield* queue.publish({ id: "poison", type: "invoice.unknown", payload: {} })
      yield* registry.awaitStatus("message-queue-processor", (s) => s.iterations === 1)
      // Retries come after 200 ms, then 400 ms more.
      yield* Testing.advance("200 millis")
      yield* registry.awaitStatus("message-queue-processor", (s) => s.iterations === 2)
      yield* Testing.advance("400 millis")
      const dead = yield* Queue.take(queue.deadLetters)

      expect(dead.message.id).toBe("poison")
      expect(dead.reason).toBe(
        `unknown message type "invoice.unknown" (deliberate, to show retries and the dead-letter queue)`
      )
      expect(yield* queue.acknowledged).toEqual(["order", "flaky"])
      expect(HashMap.toEntries(yield* Ref.get(attempts)).sort()).toEqual([["flaky", 2], ["order", 1], ["poison", 3]])
      expect(yield* Queue.size(queue.deadLetters)).toBe(0)
    }))
})

layer(TestDatabase.layer, { excludeTestServices: true })("examples on PostgreSQL", (it) => {
  describe("OrderProcessingService", () => {
    const statuses = (ids: ReadonlyArray<number>) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{ readonly id: number; readonly status: string; readonly error: string | null }>`
          SELECT id, status, error FROM pending_orders WHERE id IN ${sql.in(ids)} ORDER BY id`
      )

    const fresh = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* OrderProcessing.migrate
      yield* sql`TRUNCATE pending_orders`
    })

    it.scoped("processes the pending orders and marks the one that fails as failed", () =>
      Effect.gen(function*() {
        yield* captureLogs
        yield* fresh
        const ids = [
          yield* OrderProcessing.placeOrder("keyboard", 2),
          yield* OrderProcessing.placeOrder("monitor", 0),
          yield* OrderProcessing.placeOrder("mouse", 1)
        ]
        const registry = yield* Testing.start(
          OrderProcessing.OrderProcessingService.pipe(Layer.provide(OrderProcessing.OrderProcessor.Default))
        )
        yield* registry.awaitStatus("order-processing", (s) => s.iterations === 1)
        expect(yield* statuses(ids)).toEqual([
          { id: ids[0], status: "processed", error: null },
          { id: ids[1], status: "failed", error: "quantity must be positive (got 0)" },
          { id: ids[2], status: "processed", error: null }
        ])
      }))

    it.scoped("returns the orders of an interrupted iteration to pending when its scope closes", () =>
      Effect.gen(function*() {
        yield* captureLogs
        yield* fresh
        const ids = [
          yield* OrderProcessing.placeOrder("keyboard", 1),
          yield* OrderProcessing.placeOrder("slow", 1),
          yield* OrderProcessing.placeOrder("mouse", 1)
        ]
        const blocked = yield* Deferred.make<void>()
        const processor = Layer.succeed(OrderProcessing.OrderProcessor, {
          process: (order) =>
            order.product === "slow" ? Effect.zipRight(Deferred.succeed(blocked, void 0), Effect.never) : Effect.void
        })
        const workers = yield* Scope.make()
        yield* Testing.start(OrderProcessing.OrderProcessingService.pipe(Layer.provide(processor))).pipe(
          Scope.extend(workers)
        )
        yield* Deferred.await(blocked)
        expect((yield* statuses(ids)).map((row) => row.status)).toEqual(["processed", "processing", "processing"])
        yield* Scope.close(workers, Exit.void)
        expect((yield* statuses(ids)).map((row) => row.status)).toEqual(["processed", "pending", "pending"])
      }))
  })

  describe("HealthCheckService", () => {
    it.scoped("records a check at start and then one every minute", () =>
      Effect.gen(function*() {
        yield* captureLogs
        const sql = yield* SqlClient.SqlClient
        yield* HealthCheck.migrate
        yield* sql`TRUNCATE health_checks`
        const checks = sql<
          { readonly checkedAt: Date; readonly heap: number; readonly cpu: number; readonly status: string }
        >`
          SELECT checked_at AS "checkedAt", heap_used_bytes::float8 AS heap, cpu_percent AS cpu, status
          FROM health_checks ORDER BY id`

        const registry = yield* Testing.start(HealthCheck.HealthCheckService)
        yield* registry.awaitStatus("health-check", (s) => s.iterations === 1)
        const [first] = yield* checks
        expect(first.checkedAt).toEqual(new Date(0))
        expect(first.heap).toBeGreaterThan(0)
        expect(first.cpu).toBeGreaterThanOrEqual(0)
        expect(first.status).toBe("Healthy")

        yield* Testing.advance("59 seconds")
        const waiting = yield* registry.awaitStatus("health-check", (s) => s.state === "idle")
        expect(waiting.iterations).toBe(1)
        expect(waiting.nextRunAt).toEqual(Option.some(new Date(60_000)))
        yield* Testing.advance("1 second")
        yield* registry.awaitStatus("health-check", (s) => s.iterations === 2)
        expect((yield* checks).map((check) => check.checkedAt)).toEqual([new Date(0), new Date(60_000)])
      }).pipe(Effect.provide(TestContext.TestContext)))
  })

  describe("DatabaseCleanupService", () => {
    const options = (values: Record<string, string>) =>
      Effect.withConfigProvider(ConfigProvider.fromJson({ DATABASE_CLEANUP: values }))

    it.scoped("deletes old logs, expired sessions and old temporary files, and logs the counts", () =>
      Effect.gen(function*() {
        const logs = yield* captureLogs
        const sql = yield* SqlClient.SqlClient
        const fs = yield* FileSystem.FileSystem
        yield* DatabaseCleanup.migrate
        yield* sql`TRUNCATE logs, sessions`
        const now = Date.now()
        yield* sql`INSERT INTO logs ${
          sql.insert([
            { message: "old", created_at: new Date(now - 31 * day) },
            { message: "kept", created_at: new Date(now - 29 * day) }
          ])
        }`
        yield* sql`INSERT INTO sessions ${
          sql.insert([
            { id: "expired", user_name: "ada", expires_at: new Date(now - 60_000) },
            { id: "live", user_name: "grace", expires_at: new Date(now + hour) }
          ])
        }`
        const tempDir = yield* fs.makeTempDirectoryScoped()
        for (const name of ["old.tmp", "new.tmp"]) yield* fs.writeFileString(path.join(tempDir, name), name)
        yield* fs.makeDirectory(path.join(tempDir, "subdirectory"))
        const past = new Date(now - 25 * hour)
        yield* fs.utimes(path.join(tempDir, "old.tmp"), past, past)
        yield* fs.utimes(path.join(tempDir, "subdirectory"), past, past)

        const registry = yield* Testing.start(DatabaseCleanup.DatabaseCleanupService).pipe(
          options({ INITIAL_DELAY: "0 seconds", TEMP_DIR: tempDir })
        )
        yield* registry.awaitStatus("database-cleanup", (s) => s.iterations === 1)

        expect(yield* sql`SELECT message FROM logs`).toEqual([{ message: "kept" }])
        expect(yield* sql`SELECT id FROM sessions`).toEqual([{ id: "live" }])
        expect((yield* fs.readDirectory(tempDir)).sort()).toEqual(["new.tmp", "subdirectory"])
        expect((yield* logs).filter((line) => line.startsWith("Database cleanup completed"))).toEqual([
          expect.stringMatching(/Deleted: 1 logs, 1 sessions, 1 files$/)
        ])
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("fails to start with a ConfigError naming a bad option", () =>
      Effect.gen(function*() {
        const start = (values: Record<string, string>) =>
          Testing.start(DatabaseCleanup.DatabaseCleanupService).pipe(Effect.scoped, options(values), Effect.flip)

        const notANumber = yield* start({ LOG_RETENTION_DAYS: "thirty" })
        expect(ConfigError.isConfigError(notANumber)).toBe(true)
        expect(String(notANumber)).toBe(
          `(Invalid data at DATABASE_CLEANUP.LOG_RETENTION_DAYS: "Expected an integer value but received "thirty"")`
        )
        expect(String(yield* start({ TEMP_FILE_RETENTION_HOURS: "-1" }))).toBe(
          `(Invalid data at DATABASE_CLEANUP.TEMP_FILE_RETENTION_HOURS: "must be a whole number of 0 or more")`
        )
        expect(String(yield* start({ INTERVAL: "hourly" }))).toBe(
          `(Invalid data at DATABASE_CLEANUP.INTERVAL: "Expected a duration but received "hourly"")`
        )
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("running the examples as programs", () => {
    // Started the way `npm start` and the examples' instructions start them.
    const node = (script: string, env: NodeJS.ProcessEnv) =>
      Children.spawn(process.execPath, ["--import", "tsx", script], { cwd: root, env })

    const interrupt = (child: Children.Child) => Effect.zipRight(child.kill("SIGINT"), child.exit)

    it.scoped("each example starts its host and exits with 0 on SIGINT", () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const fs = yield* FileSystem.FileSystem
        const dataDir = yield* fs.makeTempDirectoryScoped()
        const apiPort = yield* freePort
        const examples = [
          "simple-background",
          "order-processing",
          "health-check",
          "database-cleanup",
          "resilient-background",
          "graceful-shutdown",
          "message-queue",
          "hangfire-jobs",
          "durable-message-queue",
          "quartz-scheduling"
        ]
        yield* Effect.forEach(examples, (name) =>
          Effect.gen(function*() {
            const child = yield* node(`examples/${name}.ts`, {
              ...process.env,
              DATABASE_URL: db.url,
              EXAMPLES_DATA_DIR: dataDir,
              JOBS_SCHEMA: db.schema,
              JOBS_API_PORT: String(apiPort)
            })
            // A deadline, not a timing: ten processes compiling TypeScript at once on a small machine take a while.
            yield* child.waitForOutput("Host started", { timeout: "60 seconds" })
            expect({ name, exit: yield* interrupt(child) }).toEqual({ name, exit: { code: 0, signal: null } })
            expect(yield* child.output).toContain("Host stopped")
          }), { concurrency: 4, discard: true })
      }).pipe(Effect.provide(NodeContext.layer)), 180_000)

    it.scoped("the demo (npm start) runs the examples and stops gracefully on Ctrl-C", () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const sql = yield* SqlClient.SqlClient
        const fs = yield* FileSystem.FileSystem
        yield* sql`DROP TABLE IF EXISTS pending_orders, logs, sessions, health_checks`
        const dataDir = yield* fs.makeTempDirectoryScoped()
        const port = yield* freePort

        const demo = yield* node("examples/demo.ts", {
          ...process.env,
          DATABASE_URL: db.url,
          EXAMPLES_DATA_DIR: dataDir,
          JOBS_SCHEMA: db.schema,
          DATABASE_CLEANUP_INITIAL_DELAY: "0 seconds",
          PORT: String(port),
          JOBS_API_PORT: String(yield* freePort)
        })
        // The dashboard, with the health checks and metrics, at the address it prints.
        yield* demo.waitForOutput(`Dashboard listening on http://127.0.0.1:${port}`)
        const get = (path: string) =>
          Effect.promise(async () => {
            const response = await fetch(`http://127.0.0.1:${port}${path}`)
            return { status: response.status, text: await response.text() }
          })
        expect(yield* get("/healthz")).toEqual({ status: 200, text: JSON.stringify({ status: "ok" }) })
        const page = yield* get("/")
        expect([page.status, page.text.includes("effect-workers")]).toEqual([200, true])
        yield* eventually(get("/readyz"), (ready) => ready.status === 200, "the demo to be ready")
        expect((yield* get("/metrics")).text).toContain("effect_workers_")
        yield* demo.waitForOutput("Processed 3 order(s), 1 failed")
        yield* demo.waitForOutput("Deleted: 1 logs, 1 sessions, 1 files")
        yield* demo.waitForOutput("Message 1-c moved to the dead-letter queue")
        yield* demo.waitForOutput("Batch 1 done")
        yield* demo.waitForOutput("Notification email sent to customer@example.com")
        yield* demo.waitForOutput("Inventory synced")
        expect(yield* interrupt(demo)).toEqual({ code: 0, signal: null })

        const output = yield* demo.output
        // What runs is counted; deliberate failures say so, in one line each, with no stack frames.
        expect(output).toMatch(/Host started with \d+ workers, 2 job runners and 1 recurring scheduler/)
        expect(output).toContain(
          `MessageRejected: unknown message type "invoice.unknown" (deliberate, to show retries and the dead-letter queue)`
        )
        expect(output).not.toMatch(/^\s+at /m)
        expect(output).toContain("Application stopping signal received")
        expect(output).toContain("Cleanup complete")
        expect(output).toContain("Host stopped")
        const orders = yield* sql<{ readonly product: string; readonly status: string }>`
          SELECT product, status FROM pending_orders ORDER BY id`
        expect(orders).toEqual([
          { product: "keyboard", status: "processed" },
          { product: "monitor", status: "failed" },
          { product: "mouse", status: "processed" }
        ])
        expect(yield* fs.readFileString(path.join(dataDir, "graceful-shutdown.log"))).toContain("batch 1 step 5")
      }).pipe(Effect.provide(NodeContext.layer)), 180_000)

    it.scoped(
      "the demo starts and stops its own embedded PostgreSQL without DATABASE_URL",
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const dataDir = yield* fs.makeTempDirectoryScoped()
          // PostgreSQL runs as its own user (when we are root), which must be able to reach its data directory.
          yield* fs.chmod(dataDir, 0o755)
          const serverDir = path.join(dataDir, "postgres")
          // Should the demo die before it stops its server, the server must not outlive the test.
          yield* Effect.addFinalizer(() => Postgres.stop(serverDir))
          const { DATABASE_URL: _, ...env } = process.env
          const demo = yield* Children.spawn(process.execPath, ["--import", "tsx", "examples/demo.ts"], {
            cwd: root,
            env: {
              ...env,
              EXAMPLES_DATA_DIR: dataDir,
              EMBEDDED_POSTGRES_PORT: String(yield* Postgres.freePort),
              PORT: String(yield* freePort),
              JOBS_API_PORT: String(yield* freePort)
            }
          })
          yield* demo.waitForOutput("Processed 3 order(s), 1 failed", { timeout: "60 seconds" })
          expect(yield* interrupt(demo)).toEqual({ code: 0, signal: null })
          expect(yield* demo.output).toContain("Embedded PostgreSQL stopped")
          expect(yield* fs.exists(path.join(serverDir, "PG_VERSION"))).toBe(true)
          expect(yield* fs.exists(path.join(serverDir, "postmaster.pid"))).toBe(false)
        }).pipe(Effect.provide(NodeContext.layer)),
      90_000
    )
  })
})
