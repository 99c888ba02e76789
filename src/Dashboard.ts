/**
 * The operator's view: a web dashboard over the jobs, queues, recurring
 * definitions, hosted workers and runner processes, with actions (retry,
 * cancel, delete, run now, pause, trigger), a typed JSON API (`HttpApi`) with
 * an OpenAPI document at `/api/openapi.json`, health checks (`/healthz`,
 * `/readyz`) and metrics in the Prometheus text format (`/metrics`).
 *
 * ```ts
 * // Its own server, on 127.0.0.1:3000.
 * const Ops = Dashboard.layer({ port: 3000 })
 *
 * // Or its routes, on a server of yours built with HttpLayerRouter.
 * const Routes = Layer.mergeAll(MyRoutes, Dashboard.routes({ token: Redacted.make(process.env.TOKEN!) }))
 * ```
 *
 * Security: it binds to 127.0.0.1 unless told otherwise, and refuses any
 * other address without a `token`. With a token, every request but the
 * health checks needs it (HTTP Basic with the token as password, or
 * `Authorization: Bearer <token>`). `readOnly` refuses every action. Actions
 * are POSTs that need the `x-effect-workers: 1` header and are refused when
 * they come from another site. The page renders every value as text, under a
 * strict Content-Security-Policy.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpLayerRouter, HttpServerRequest, HttpServerResponse, OpenApi } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import * as Api from "./internal/dashboard/api.js"
import * as Store from "./internal/jobs/store.js"
import { JobState } from "./Job.js"
import { JobClient } from "./JobClient.js"
import { JobNotFound, RecurringNotFound } from "./JobError.js"
import { JobRunner } from "./JobRunner.js"
import * as Metrics from "./Metrics.js"
import { Recurring } from "./Recurring.js"
import { WorkerRegistry } from "./WorkerRegistry.js"

export {
  /**
   * The dashboard's JSON API, for clients (`HttpApiClient.make(DashboardApi)`).
   *
   * @since 0.1.0
   * @category api
   */
  DashboardApi
} from "./internal/dashboard/api.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /**
   * More readiness checks for `/readyz`, like ASP.NET's health checks: a
   * check that succeeds is ready (its value, if a string, is shown as the
   * detail); one that fails is not (its error's message is shown).
   */
  readonly checks?: ReadonlyArray<ReadinessCheck<R>> | undefined
  /**
   * Needed by every request but `/healthz` and `/readyz` when set: HTTP Basic
   * with any user name and the token as password (what a browser prompts
   * for), or `Authorization: Bearer <token>`.
   */
  readonly token?: Redacted.Redacted<string> | string | undefined
  /** Refuse every action (403); the pages and the API still read. Default `false`. */
  readonly readOnly?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadinessCheck<R = never> {
  readonly name: string
  readonly check: Effect.Effect<unknown, unknown, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions<R = never> extends Options<R> {
  /** Default 3000. */
  readonly port?: number | undefined
  /** Default `127.0.0.1`. Any other address needs a `token`. */
  readonly host?: string | undefined
}

/**
 * Options that would expose the dashboard unprotected, or that cannot work.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDashboardOptions extends Schema.TaggedError<InvalidDashboardOptions>()(
  "InvalidDashboardOptions",
  { option: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `Dashboard: option "${this.option}" ${this.reason}`
  }
}

const asset = (name: string) => readFileSync(new URL(`./internal/dashboard/assets/${name}`, import.meta.url), "utf8")

const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store"
}

const equalSecrets = (given: string, expected: string) => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The token the request carries, from `Authorization: Bearer …` or HTTP Basic. */
const presentedToken = (authorization: string | undefined): string | undefined => {
  if (authorization === undefined) return undefined
  const [scheme, value] = authorization.split(" ", 2)
  if (value === undefined) return undefined
  if (scheme.toLowerCase() === "bearer") return value.trim()
  if (scheme.toLowerCase() === "basic") {
    const decoded = Buffer.from(value.trim(), "base64").toString("utf8")
    const colon = decoded.indexOf(":")
    return colon < 0 ? undefined : decoded.slice(colon + 1)
  }
  return undefined
}

interface Settings {
  readonly token: string | undefined
  readonly readOnly: boolean
}

const originHost = (origin: string) => {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}

const loopbackNames = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

/** The host name a request was sent to, without its port. */
const hostName = (host: string | undefined) => {
  if (host === undefined) return undefined
  const bracket = host.startsWith("[") ? host.indexOf("]") : -1
  return bracket >= 0 ? host.slice(0, bracket + 1) : host.split(":")[0]
}

/** Why a request is refused, if it is. */
const refusal = (
  settings: Settings,
  request: HttpServerRequest.HttpServerRequest,
  action: boolean
): Api.Unauthorized | Api.Forbidden | undefined => {
  if (settings.token !== undefined) {
    const token = presentedToken(request.headers["authorization"])
    if (token === undefined || !equalSecrets(token, settings.token)) {
      return new Api.Unauthorized({ message: "this dashboard needs its token (HTTP Basic password, or Bearer)" })
    }
  } else {
    // Without a token, only requests sent to a loopback name: a site that points its own name at 127.0.0.1
    // (DNS rebinding) would otherwise be "same origin".
    const name = hostName(request.headers["host"])
    if (name === undefined || !loopbackNames.has(name.toLowerCase())) {
      return new Api.Forbidden({
        message: `without a token, the dashboard answers only requests to 127.0.0.1 or localhost ` +
          `(this one was sent to ${request.headers["host"] ?? "no host"}); set a token to serve it under another name`
      })
    }
  }
  if (!action) return undefined
  if (settings.readOnly) return new Api.Forbidden({ message: "the dashboard is read-only" })
  const site = request.headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return new Api.Forbidden({ message: `cross-site requests are refused (Sec-Fetch-Site: ${site})` })
  }
  const origin = request.headers["origin"]
  const host = request.headers["host"]
  if (origin !== undefined && origin !== "null" && host !== undefined && originHost(origin) !== host) {
    return new Api.Forbidden({ message: `cross-site requests are refused (Origin: ${origin})` })
  }
  if (request.headers["x-effect-workers"] !== "1") {
    return new Api.Forbidden({ message: "actions need the header x-effect-workers: 1" })
  }
  return undefined
}

const refusedResponse = (error: Api.Unauthorized | Api.Forbidden) =>
  HttpServerResponse.unsafeJson({ _tag: error._tag, message: error.message }, {
    status: error._tag === "Unauthorized" ? 401 : 403,
    headers: error._tag === "Unauthorized" ? { "www-authenticate": "Basic realm=\"effect-workers\"" } : {}
  })

const unavailable = (error: SqlError) => new Api.DatabaseUnavailable({ message: error.message })

const dbTime = Effect.mapError(unavailable)

const states: ReadonlyArray<JobState> = JobState.literals

const handlers = (settings: Settings) => {
  const Guard = Layer.succeed(
    Api.Guard,
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const refused = refusal(settings, request, request.method !== "GET" && request.method !== "HEAD")
      if (refused !== undefined) return yield* refused
    })
  )

  const Jobs = HttpApiBuilder.group(Api.DashboardApi, "jobs", (handlers) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const sql = yield* SqlClient.SqlClient
      const store = client[Store.StoreInternal]
      return handlers
        .handle("overview", () =>
          dbTime(Effect.gen(function*() {
            const counts = yield* client.counts
            const throughput = yield* sql<{ at: Date; completed: number; failed: number }>`
              WITH minutes AS (
                SELECT generate_series(date_trunc('minute', now()) - interval '59 minutes',
                  date_trunc('minute', now()), interval '1 minute') AS at
              ), completed AS (
                SELECT date_trunc('minute', finalized_at) AS at, count(*)::int AS n FROM ${store.jobs}
                WHERE state = 'completed' AND finalized_at >= date_trunc('minute', now()) - interval '59 minutes'
                GROUP BY 1
              ), failed AS (
                SELECT date_trunc('minute', (e->>'at')::timestamptz) AS at, count(*)::int AS n
                FROM ${store.jobs}, jsonb_array_elements(errors) AS e
                WHERE errors <> '[]' AND (state = 'retryable' OR attempted_at >= now() - interval '1 hour')
                  AND (e->>'at')::timestamptz >= date_trunc('minute', now()) - interval '59 minutes'
                GROUP BY 1
              )
              SELECT m.at, COALESCE(c.n, 0) AS completed, COALESCE(f.n, 0) AS failed
              FROM minutes m LEFT JOIN completed c ON c.at = m.at LEFT JOIN failed f ON f.at = m.at
              ORDER BY m.at`
            return { counts, throughput }
          })))
        .handle("queues", () =>
          dbTime(Effect.gen(function*() {
            const queues = yield* client.queues
            const counts = yield* client.counts
            const waits = yield* sql<{ queue: string; wait: number }>`
              SELECT queue, (extract(epoch FROM now() - min(run_at)) * 1000)::float8 AS wait FROM ${store.jobs}
              WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= now() GROUP BY queue`
            const slots = yield* sql<{ queue: string; slots: number }>`
              SELECT c.key AS queue, sum(c.value::int)::int AS slots
              FROM ${store.runners} r, jsonb_each_text(r.concurrency) AS c
              WHERE r.heartbeat_at > now() - interval '2 minutes' GROUP BY c.key`
            return queues.map((queue) => ({
              name: queue.name,
              paused: queue.paused,
              counts: Object.fromEntries(
                states.map((state) => [
                  state,
                  counts.find((c) => c.queue === queue.name && c.state === state)?.count ?? 0
                ])
              ),
              oldestWaitMillis: waits.find((w) => w.queue === queue.name)?.wait ?? null,
              concurrency: slots.find((s) => s.queue === queue.name)?.slots ?? 0
            }))
          })))
        .handle("pauseQueue", ({ path }) => dbTime(client.pause(path.name)))
        .handle("resumeQueue", ({ path }) => dbTime(client.resume(path.name)))
        .handle("jobs", ({ urlParams }) =>
          dbTime(Effect.gen(function*() {
            const limit = Math.max(1, Math.min(500, Math.floor(urlParams.limit ?? 50)))
            const jobs = yield* client.list({ ...urlParams, limit: limit + 1 })
            return {
              jobs: jobs.slice(0, limit),
              next: jobs.length > limit ? jobs[limit - 1].id : null
            }
          })))
        .handle("job", ({ path }) =>
          Effect.flatMap(
            dbTime(client.get(path.id)),
            Option.match({
              onNone: () => Effect.fail(new JobNotFound({ id: path.id })),
              onSome: Effect.succeed
            })
          ))
        .handle("retry", ({ path }) => Effect.catchTag(client.retry(path.id), "SqlError", (e) => unavailable(e)))
        .handle("runNow", ({ path }) => Effect.catchTag(client.retry(path.id), "SqlError", (e) => unavailable(e)))
        .handle("cancel", ({ path }) => Effect.catchTag(client.cancel(path.id), "SqlError", (e) => unavailable(e)))
        .handle("delete", ({ path }) => Effect.catchTag(client.delete(path.id), "SqlError", (e) => unavailable(e)))
        .handle("bulk", ({ payload }) =>
          Store.filterConditions(store, payload.filter).length === 0
            ? Effect.fail(
              new Api.InvalidFilter({ message: "a bulk action needs a filter (queue, state, name or search)" })
            )
            : dbTime(bulk(store, payload.action, payload.filter)))
    }))

  const RecurringGroup = HttpApiBuilder.group(Api.DashboardApi, "recurring", (handlers) =>
    Effect.gen(function*() {
      const recurring = yield* Effect.serviceOption(Recurring)
      const notFound = (id: string) => Effect.fail(new RecurringNotFound({ id }))
      return handlers
        .handle("list", () => Option.isSome(recurring) ? dbTime(recurring.value.list) : Effect.succeed([]))
        .handle("trigger", ({ path }) =>
          Option.isNone(recurring) ? notFound(path.id) : recurring.value.trigger(path.id).pipe(
            Effect.map(({ id }) => ({ jobId: id })),
            Effect.catchTag("SqlError", (e) =>
              unavailable(e))
          ))
        .handle("pause", ({ path }) =>
          Option.isNone(recurring)
            ? notFound(path.id)
            : Effect.catchTag(recurring.value.pause(path.id), "SqlError", (e) =>
              unavailable(e)))
        .handle("resume", ({ path }) =>
          Option.isNone(recurring)
            ? notFound(path.id)
            : Effect.catchTag(recurring.value.resume(path.id), "SqlError", (e) => unavailable(e)))
    }))

  const Processes = HttpApiBuilder.group(Api.DashboardApi, "processes", (handlers) =>
    Effect.gen(function*() {
      const registry = yield* Effect.serviceOption(WorkerRegistry)
      const client = yield* JobClient
      const sql = yield* SqlClient.SqlClient
      const store = client[Store.StoreInternal]
      return handlers
        .handle("workers", () => Option.isSome(registry) ? registry.value.all : Effect.succeed([]))
        .handle("runners", () =>
          dbTime(sql<
            {
              id: string
              host: string
              pid: number
              queues: Array<string>
              startedAt: Date
              heartbeatAt: Date
              alive: boolean
            }
          >`SELECT id, host, pid, queues, started_at AS "startedAt", heartbeat_at AS "heartbeatAt",
              heartbeat_at > now() - interval '1 minute' AS alive
            FROM ${store.runners} ORDER BY started_at`))
        .handle(
          "session",
          () => Effect.succeed({ readOnly: settings.readOnly, protected: settings.token !== undefined })
        )
    }))

  return Layer.mergeAll(Jobs, RecurringGroup, Processes, Guard)
}

/** Applies an action to every job the filter covers that it applies to; returns how many. */
const bulk = (store: Store.Store, action: "retry" | "cancel" | "delete", filter: Store.Filter) => {
  const { sql } = store
  const matching = sql.and(Store.filterConditions(store, filter))
  const statement = action === "retry"
    ? sql`
      WITH retried AS (
        UPDATE ${store.jobs} SET state = 'available', run_at = now(), finalized_at = NULL,
          max_attempts = GREATEST(max_attempts, attempt + 1)
        WHERE ${matching} AND state IN ('discarded', 'cancelled', 'retryable', 'scheduled')
          -- A finished job whose unique key a live job holds again stays as it is.
          AND NOT (unique_key IS NOT NULL AND state IN ('discarded', 'cancelled') AND EXISTS (
            SELECT 1 FROM ${store.jobs} AS live WHERE live.unique_key = jobs.unique_key
              AND live.state IN ${sql.literal(Store.liveStatesSql)}))
        RETURNING queue
      ), notified AS (
        SELECT pg_notify(${store.channel}, 'j:' || queue) FROM (SELECT DISTINCT queue FROM retried) AS q
      )
      SELECT (SELECT count(*) FROM retried)::int AS count, (SELECT count(*) FROM notified) AS n`
    : action === "cancel"
    ? sql`
      WITH old AS (
        SELECT id AS old_id, state AS previous FROM ${store.jobs}
        WHERE ${matching} AND state IN ${sql.literal(Store.liveStatesSql)} FOR UPDATE
      ), cancelled AS (
        UPDATE ${store.jobs} SET state = 'cancelled', finalized_at = now(), lease_expires_at = NULL
        FROM old WHERE id = old_id RETURNING id, previous
      ), notified AS (
        SELECT pg_notify(${store.channel}, 'c:' || id) FROM cancelled WHERE previous = 'running'
      )
      SELECT (SELECT count(*) FROM cancelled)::int AS count, (SELECT count(*) FROM notified) AS n`
    : sql`
      WITH deleted AS (DELETE FROM ${store.jobs} WHERE ${matching} AND state <> 'running' RETURNING id)
      SELECT count(*)::int AS count FROM deleted`
  return Effect.map(statement, (rows) => ({ count: Number((rows[0] as { count: number }).count) }))
}

/**
 * What `/readyz` checks: the database answers, this process's job runner (if
 * any) renewed its heartbeat within its lease, and no hosted worker stopped
 * by failure.
 */
const readiness = <R>(extra: ReadonlyArray<ReadinessCheck<R>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const client = yield* JobClient
    const runner = yield* Effect.serviceOption(JobRunner)
    const registry = yield* Effect.serviceOption(WorkerRegistry)
    const checks: Array<{ name: string; ok: boolean; detail: string }> = []
    const database = yield* sql`SELECT 1`.pipe(Effect.timeout("2 seconds"), Effect.either)
    checks.push({
      name: "database",
      ok: database._tag === "Right",
      detail: database._tag === "Right" ? "reachable" : `unreachable: ${database.left.message}`
    })
    if (Option.isSome(runner) && database._tag === "Right") {
      const rows = yield* sql<{ age: number | null }>`
      SELECT (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS age
      FROM ${sql(client.schema)}.runners WHERE id = ${runner.value.id}`.pipe(Effect.orElseSucceed(() => []))
      const age = rows[0]?.age ?? null
      const lease = Duration.toMillis(runner.value.lease)
      checks.push({
        name: "runner",
        ok: age !== null && age < lease,
        detail: age === null ? "not registered" : `heartbeat ${Math.round(age)} ms ago (lease ${lease} ms)`
      })
    }
    if (Option.isSome(registry)) {
      const failed = (yield* registry.value.all).filter((status) => status.state === "failed")
      checks.push({
        name: "workers",
        ok: failed.length === 0,
        detail: failed.length === 0 ? "none failed" : `stopped by failure: ${failed.map((s) => s.name).join(", ")}`
      })
    }
    for (const { check, name } of extra) {
      const result = yield* Effect.either(Effect.timeout(check, "5 seconds"))
      checks.push({
        name,
        ok: result._tag === "Right",
        detail: result._tag === "Right"
          ? (typeof result.right === "string" ? result.right : "ok")
          : result.left instanceof Error
          ? result.left.message
          : String(result.left)
      })
    }
    return checks
  })

const json = (body: unknown, status = 200) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store" } })

/**
 * The dashboard's routes, for an `HttpLayerRouter` server of yours: the page
 * at `/`, the API under `/api`, and `/healthz`, `/readyz`, `/metrics`.
 *
 * Needs `JobClient` and `SqlClient`; shows recurring definitions when
 * `Recurring` is provided, hosted workers when `WorkerRegistry` is, and checks
 * the runner's heartbeat in `/readyz` when `JobRunner` is.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = <R = never>(options: Options<R> = {}) => {
  const token = tokenOf(options)
  if (token instanceof InvalidDashboardOptions) return Layer.fail(token)
  const settings: Settings = { token, readOnly: options.readOnly ?? false }
  const page = (body: string, contentType: string) => (request: HttpServerRequest.HttpServerRequest) => {
    const refused = refusal(settings, request, false)
    return Effect.succeed(
      refused !== undefined
        ? refusedResponse(refused)
        : HttpServerResponse.text(body, { contentType, headers: securityHeaders })
    )
  }
  const index = asset("index.html")
  const openApi = OpenApi.fromApi(Api.DashboardApi)
  const Pages = HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/", page(index, "text/html; charset=utf-8")),
    HttpLayerRouter.route("GET", "/assets/app.js", page(asset("app.js"), "text/javascript; charset=utf-8")),
    HttpLayerRouter.route("GET", "/assets/app.css", page(asset("app.css"), "text/css; charset=utf-8")),
    HttpLayerRouter.route("GET", "/api/openapi.json", page(JSON.stringify(openApi), "application/json")),
    HttpLayerRouter.route("GET", "/healthz", Effect.succeed(json({ status: "ok" }))),
    HttpLayerRouter.route(
      "GET",
      "/readyz",
      Effect.map(readiness(options.checks ?? []), (checks) => {
        const ready = checks.every((check) => check.ok)
        return json({ status: ready ? "ready" : "unready", checks }, ready ? 200 : 503)
      })
    ),
    HttpLayerRouter.route("GET", "/metrics", (request) => {
      const refused = refusal(settings, request, false)
      return refused !== undefined ? Effect.succeed(refusedResponse(refused)) : Effect.map(
        Metrics.prometheusText,
        (text) => HttpServerResponse.text(text, { contentType: Metrics.prometheusContentType })
      )
    })
  ])
  const Api_ = HttpLayerRouter.addHttpApi(Api.DashboardApi).pipe(
    Layer.provide(handlers(settings))
  )
  return Layer.mergeAll(Pages, Api_)
}

/** The token as a string; one that is given but empty or short (an unset variable) is an error, not no token. */
const tokenOf = (options: Options<any>): string | undefined | InvalidDashboardOptions => {
  if (options.token === undefined) return undefined
  const token: unknown = typeof options.token === "string" ? options.token : Redacted.value(options.token)
  return typeof token === "string" && token.length >= 8 ? token : new InvalidDashboardOptions({
    option: "token",
    reason: `must be a string of at least 8 characters, got ${
      typeof token === "string" ? `${token.length} character(s)` : String(token)
    } (is its environment variable set?)`
  })
}

const loopback = (host: string) => host === "127.0.0.1" || host === "::1" || host === "localhost"

/**
 * The dashboard on a server of its own, at `host`:`port` (default
 * 127.0.0.1:3000). Logs its address when it listens. Fails with
 * `InvalidDashboardOptions` for a non-loopback `host` without a `token`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(options: ServerOptions<R> = {}) => {
  const host = options.host ?? "127.0.0.1"
  const port = options.port ?? 3000
  const token = tokenOf(options)
  const check = token instanceof InvalidDashboardOptions
    ? Effect.fail(token)
    : !loopback(host) && token === undefined
    ? Effect.fail(
      new InvalidDashboardOptions({
        option: "host",
        reason: `"${host}" would expose the dashboard beyond this machine without a token: set "token", ` +
          `or bind to 127.0.0.1`
      })
    )
    : !Number.isInteger(port) || port < 0 || port > 65535
    ? Effect.fail(new InvalidDashboardOptions({ option: "port", reason: `must be a port number, got ${port}` }))
    : Effect.void
  return Layer.unwrapEffect(Effect.as(
    check,
    // Pages refresh every few seconds: a log line per request would drown the application's own.
    HttpLayerRouter.serve(routes(options), { disableLogger: true }).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port, host }))
    )
  ))
}
