/**
 * The runner's own connections (its claim pool and its listener): how the
 * listener reconnects, and that they are made with the `PgClient`'s settings.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import {
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Fiber,
  Layer,
  Option,
  Redacted,
  Schema,
  Scope,
  TestClock,
  TestContext,
  TestServices
} from "effect"
import { Job, JobClient, JobRunner } from "effect-workers"
import net from "node:net"
import { listen } from "../src/internal/jobs/listener.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"
import { captureLogs } from "./support/logs.js"

const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

const Work = Job.make("work", { payload: Schema.Struct({ n: Schema.Number }), handler: () => Effect.void })

const awaitCompleted = (id: string) =>
  Effect.flatMap(JobClient.JobClient, (client) =>
    eventually(
      client.get(id),
      (job) => Option.isSome(job) && job.value.state === "completed",
      `job ${id} to complete`
    ))

const count = (lines: ReadonlyArray<string>, text: string) => lines.filter((line) => line.includes(text)).length

/** Backends of `applicationName` whose last statement starts with `prefix`. */
const sessions = (applicationName: string, prefix: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ pid: number; port: number | null }>`
      SELECT pid, client_port AS port FROM pg_stat_activity
      WHERE application_name = ${applicationName} AND starts_with(query, ${prefix})`)

/** Polls `check` every 20 ms of real time, for at most 15 s: for tests on the TestClock. */
const pollLive = (check: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 15_000
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
    }
  })

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("job connections", (it) => {
  it.scoped(
    "the listener's backoff starts again from its first step after each connection that listened",
    () =>
      Effect.gen(function*() {
        const logs = yield* captureLogs
        const sql = yield* SqlClient.SqlClient
        const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        yield* Layer.buildWithScope(JobRunner.layer({ jobs: [Work] }), scope)
        const killed = new Set<number>()
        for (let loss = 1; loss <= 8; loss++) {
          // A terminated backend lingers a moment in pg_stat_activity: wait for the new one.
          const [listener] = yield* eventually(
            sessions(TestDatabase.applicationName(), "LISTEN"),
            (rows) => rows.some((row) => !killed.has(row.pid)),
            "the listener's connection"
          ).pipe(Effect.map((rows) => rows.filter((row) => !killed.has(row.pid))))
          killed.add(listener.pid)
          yield* sql`SELECT pg_terminate_backend(${listener.pid})`
          yield* eventually(
            logs,
            (lines) => count(lines, "listening again after a lost connection") === loss,
            `the listener to listen again after loss ${loss}`
          )
        }
        yield* Scope.close(scope, Exit.void)
        const reconnects = (yield* logs).filter((line) => line.includes("connecting again"))
        expect(reconnects).toHaveLength(8)
        for (const line of reconnects) {
          expect(line).toMatch(/^Job listener: .+; connecting again in 100 ms$/)
        }
      }),
    { timeout: 180_000 }
  )

  it.scoped(
    "the claim pool and the listener connect with every setting of the PgClient: a stream to a host name that does not resolve",
    () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const server = new URL(TestDatabase.serverUrl())
        const host = server.hostname.replace(/^\[(.*)\]$/, "$1")
        const port = server.port === "" ? 5432 : Number(server.port)
        // Each socket made, and the local port of each that connected, to find it in pg_stat_activity.
        let sockets = 0
        const ports = new Set<number>()
        const stream = () => {
          sockets++
          const socket = new net.Socket()
          const connect = socket.connect.bind(socket)
          socket.connect = (() => connect(port, host)) as typeof socket.connect
          socket.once("connect", () => ports.add(socket.localPort!))
          return socket
        }
        // Distinct from the test database's connections, and still this file's for the leak check.
        const applicationName = `${TestDatabase.applicationName()} stream`
        const StreamClient = PgClient.layer({
          host: "effect-workers-unreachable.invalid",
          port,
          database: decodeURIComponent(server.pathname.slice(1)),
          username: decodeURIComponent(server.username),
          password: server.password === "" ? undefined : Redacted.make(decodeURIComponent(server.password)),
          applicationName,
          stream
        })
        const Stack = JobRunner.layer({ jobs: [Work], pollInterval: "1 hour" }).pipe(
          Layer.provideMerge(JobClient.layer({ schema: db.schema, migrate: false })),
          Layer.provideMerge(StreamClient)
        )
        yield* Effect.gen(function*() {
          const client = yield* JobClient.JobClient
          const [listener] = yield* eventually(
            sessions(applicationName, "LISTEN"),
            (rows) => rows.length > 0,
            "the listener's connection"
          )
          yield* awaitCompleted((yield* client.enqueue(Work, { n: 1 })).id)
          // The last claim found fewer jobs than it asked for, and the next poll is an hour
          // away: only the notification of this job can start it.
          yield* awaitCompleted((yield* client.enqueue(Work, { n: 2 })).id)
          // The host name does not resolve, so every connection (the PgClient's, the claim pool's
          // and the listener's) came through the stream.
          const all = yield* sessions(applicationName, "")
          expect(all.map((session) => session.pid)).toContain(listener.pid)
          for (const session of all) expect(ports).toContain(session.port)
          expect(sockets).toBeGreaterThanOrEqual(3)
        }).pipe(Effect.provide(Stack))
      }),
    { timeout: 180_000 }
  )

  // The suite runs without test services: this test brings its own TestClock.
  it.scoped("connecting again waits 100 ms, doubled after each attempt that did not listen, at most 5 s", () =>
    Effect.gen(function*() {
      // A server that hangs up on every connection: each attempt fails at once.
      const server = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer((socket) => socket.destroy())
          server.listen(0, "127.0.0.1", () => {
            resume(Effect.succeed(server))
          })
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const { port } = server.address() as net.AddressInfo
      const logs = yield* captureLogs
      const fiber = yield* Effect.forkScoped(
        listen({ host: "127.0.0.1", port, username: "nobody" }, "unused", () => {}, () => {})
      )
      const expected = [100, 200, 400, 800, 1600, 3200, 5000, 5000]
      for (let attempt = 1; attempt <= expected.length; attempt++) {
        // Connecting is real I/O; only the waits between attempts follow the TestClock. Moving
        // it by more than the wait would also end the next waits begun while it moves.
        yield* pollLive(
          Effect.zipWith(logs, TestClock.sleeps(), (lines, sleeps) => lines.length >= attempt && sleeps.length === 1),
          `attempt ${attempt} to fail and wait`
        )
        yield* TestClock.adjust(Duration.millis(expected[attempt - 1]))
      }
      yield* Fiber.interrupt(fiber)
      const delays = (yield* logs).slice(0, expected.length).map((line) => Number(/in (\d+) ms$/.exec(line)?.[1]))
      expect(delays).toEqual(expected)
    }).pipe(Effect.provide(TestContext.TestContext)))
})
