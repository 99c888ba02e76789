// #region imports
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { Dashboard, Host, Job, JobClient, JobRunner, Recurring } from "effect-workers"
import { createServer } from "node:http"
// #endregion

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
// Under /admin/jobs on your own HttpLayerRouter server, beside your own routes (your "/" too).
const Home = HttpLayerRouter.add("GET", "/", HttpServerResponse.text("my app"))

export const MyServer = HttpLayerRouter.serve(
  Layer.mergeAll(
    Home,
    Dashboard.routes({ basePath: "/admin/jobs", token: Redacted.make(process.env.DASHBOARD_TOKEN!) })
  )
).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
)
// #endregion

// #region authorize
// Behind the application's own sessions: operators act, support staff only read, everyone else is refused.
const sessions = new Map<string, { readonly email: string; readonly role: "operator" | "support" }>()

export const Admin = Dashboard.routes({
  basePath: "/admin/jobs",
  authorize: (request) => {
    const id = /(?:^|;\s*)session=([^;]+)/.exec(request.headers.cookie ?? "")?.[1]
    const session = id === undefined ? undefined : sessions.get(id)
    if (session === undefined) return { access: "refused", reason: "sign in first" }
    return { access: session.role === "operator" ? "full" : "read-only", user: session.email }
  }
})
// #endregion
