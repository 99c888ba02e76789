/**
 * The runner's own connections (its claim pool and its listener): they are
 * made with the `PgClient`'s settings.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { Job, JobClient, JobRunner } from "effect-workers"
import net from "node:net"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

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

/** Backends of `applicationName` whose last statement starts with `prefix`. */
const sessions = (applicationName: string, prefix: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ pid: number; port: number | null }>`
      SELECT pid, client_port AS port FROM pg_stat_activity
      WHERE application_name = ${applicationName} AND starts_with(query, ${prefix})`)

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("job connections", (it) => {
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
    { timeout: 60_000 }
  )
})
