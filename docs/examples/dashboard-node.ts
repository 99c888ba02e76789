// #region imports
import { PgClient } from "@effect/sql-pg"
import { Layer, Redacted } from "effect"
import { Dashboard, JobClient } from "effect-workers"
import express from "express"
import { createServer } from "node:http"
// #endregion

const Jobs = JobClient.layer().pipe(Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) })))

// #region node-http
// In a plain Node server: the handler answers under its base path, 404 elsewhere.
const dashboard = Dashboard.toNodeHandler(Jobs, { basePath: "/jobs", token: process.env.DASHBOARD_TOKEN })
await dashboard.ready // rejects with InvalidDashboardOptions, or the layer's error
createServer(dashboard.handler).listen(3000)
// #endregion

// #region express
// In Express: requests outside the base path go on to the app's next handler.
const app = express()
app.get("/", (_request, response) => {
  response.send("my app")
})
app.use(dashboard.handler) // or app.use("/jobs", dashboard.handler): the path must be the basePath
const server = app.listen(8080)

// On shutdown: stop serving, then release the dashboard's resources.
process.once("SIGTERM", () => server.close(() => void dashboard.dispose()))
// #endregion
