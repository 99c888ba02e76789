import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import { Dashboard, Host, Job, JobClient, JobRunner, Recurring } from "../../src/index.js"

const SendEmail = Job.make("send-email", {
  payload: Schema.Struct({ to: Schema.String }),
  handler: ({ to }) => Effect.log(`mailing ${to}`)
})

// #region serve
// On a server of its own at http://127.0.0.1:3000, next to the job runner it reports on.
const Operations = Dashboard.layer({ port: 3000 }).pipe(
  Layer.provideMerge(JobRunner.layer({ jobs: [SendEmail] })),
  // Shows the recurring definitions; `fire: false` when another layer fires them.
  Layer.provide(Recurring.layer({ fire: false }))
)

Host.run(
  Operations.pipe(
    Layer.provideMerge(JobClient.layer()),
    Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
  )
)
// #endregion

// #region routes
// Its routes on your own HttpLayerRouter server, next to your routes.
const Hello = HttpLayerRouter.add("GET", "/hello", HttpServerResponse.text("hello"))

export const MyServer = HttpLayerRouter.serve(
  Layer.mergeAll(Hello, Dashboard.routes({ readOnly: true, loopbackOnly: true }))
).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: 8080, host: "127.0.0.1" }))
)
// #endregion
