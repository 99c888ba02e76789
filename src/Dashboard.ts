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
import {
  HttpLayerRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse,
  OpenApi
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  ManagedRuntime,
  Option,
  Predicate,
  Redacted,
  Schema,
  type Scope
} from "effect"
import { readFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import * as Access from "./internal/dashboard/access.js"
import * as Api from "./internal/dashboard/api.js"
import * as Handlers from "./internal/dashboard/handlers.js"
import type { JobClient } from "./JobClient.js"
import * as Metrics from "./Metrics.js"

export {
  /**
   * The dashboard's JSON API, for clients (`HttpApiClient.make(DashboardApi)`).
   *
   * @since 0.1.0
   * @category api
   */
  DashboardApi
} from "./internal/dashboard/api.js"

export type {
  /**
   * What the `authorize` hook decides: `full` or `read-only` access for a
   * named user (the name goes into the audit log), or `refused` (403).
   *
   * @since 0.1.0
   * @category models
   */
  Authorization,
  /**
   * The request as the `authorize` hook sees it.
   *
   * @since 0.1.0
   * @category models
   */
  AuthorizeRequest
} from "./internal/dashboard/access.js"

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
   * Needed by every request but `/healthz` (and the status of `/readyz`):
   * HTTP Basic with any user name and the token as password (what a browser
   * prompts for), or `Authorization: Bearer <token>`. At least 16
   * characters, not blank: generate one (`openssl rand -base64 24`).
   */
  readonly token?: Redacted.Redacted<string> | string | undefined
  /**
   * The application's own authorization, instead of a token: called for
   * every request but `/healthz`, it returns `{ access: "full" | "read-only",
   * user }` or `{ access: "refused", reason? }` (403). A hook that fails or
   * throws refuses the request (500) and is logged.
   */
  readonly authorize?:
    | ((
      request: Access.AuthorizeRequest
    ) => Access.Authorization | PromiseLike<Access.Authorization> | Effect.Effect<Access.Authorization, unknown, R>)
    | undefined
  /**
   * Without a token or `authorize`, `routes` needs this set to `true`: the
   * dashboard then answers only clients on this machine, connected directly
   * (loopback address, a loopback `Host`, no proxy headers). `layer` on a
   * loopback host implies it.
   */
  readonly loopbackOnly?: boolean | undefined
  /** Refuse every action (403); the pages and the API still read. Default `false`. */
  readonly readOnly?: boolean | undefined
  /**
   * Where the page, its assets and its API are served, for example
   * `"/admin/jobs"`. Default `"/"`.
   */
  readonly basePath?: string | undefined
  /** The most jobs one bulk action may touch; a larger one is refused whole. Default 1,000. */
  readonly bulkLimit?: number | undefined
  /** Longest a dashboard query may run (PostgreSQL `statement_timeout`). Default 5 seconds. */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /**
   * How many dashboard queries may run at once, on connections of the
   * application's pool; the rest wait their turn. Default 2.
   */
  readonly connections?: number | undefined
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
  /** Default `127.0.0.1`. Any other address needs a `token` or `authorize`. */
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

/** Largest request body: the API's bodies are a filter or nothing. */
const maxBodyBytes = 64 * 1024

/** Refused credentials from one address in a minute before it is answered 429 until the minute ends. */
const failuresPerMinute = 10

const asset = (name: string) => readFileSync(new URL(`./internal/dashboard/assets/${name}`, import.meta.url), "utf8")

/**
 * What the page loads from `assets/`: its stylesheet and its ES modules,
 * served as they are (no build step; the browser resolves their relative
 * imports under the same base path). A file left out of this list is not served.
 */
const assetFiles = [
  "app.css",
  "app.js",
  "api.js",
  "dom.js",
  "format.js",
  "live.js",
  "ui.js",
  "pages/job.js",
  "pages/jobs.js",
  "pages/overview.js",
  "pages/processes.js",
  "pages/queues.js",
  "pages/recurring.js"
]

const assetContentType = (name: string) =>
  name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8"

const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** On every answer, the page's and the API's, refusals and errors too. */
const commonHeaders = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer"
}

const pageHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-frame-options": "DENY"
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { ...commonHeaders, ...headers } })

const refused = (status: number, tag: string, message: string, headers: Record<string, string> = {}) =>
  json({ _tag: tag, message }, status, headers)

const refusedResponse = (access: Extract<Access.Access, { _tag: "Refused" }>) =>
  access.status === 401
    ? refused(401, "Unauthorized", access.message, { "www-authenticate": "Basic realm=\"effect-workers\"" })
    : refused(access.status, access.status === 500 ? "AuthorizeFailed" : "Forbidden", access.message)

interface Config<R> {
  /** The hook is wrapped once the services it may need are at hand. */
  readonly mode: Access.Mode | "authorize"
  readonly settings: Handlers.Settings
  readonly checks: ReadonlyArray<ReadinessCheck<R>>
  /** `""` for the root, else `/like/this`. */
  readonly basePath: string
}

const invalid = (option: string, reason: string) => Either.left(new InvalidDashboardOptions({ option, reason }))

/** PostgreSQL's `statement_timeout` is an integer of milliseconds: a larger one fails every query. */
const maxStatementTimeoutMillis = 2 ** 31 - 1

/** At least this many characters in a token: 16 random base64 characters are 96 bits, beyond guessing online. */
const minTokenLength = 16

/** The token as a string, or why it is too weak (a blank or short one is also what an unset variable gives). */
const tokenOf = (value: unknown): Either.Either<string | undefined, InvalidDashboardOptions> => {
  if (value === undefined) return Either.right(undefined)
  const token: unknown = Redacted.isRedacted(value) ? Redacted.value(value) : value
  if (typeof token !== "string") {
    return invalid("token", `must be a string or a Redacted string, got ${typeof token} (is its variable set?)`)
  }
  const length = [...token].length
  if (token.trim() === "") {
    return invalid("token", `must not be blank, got ${length} whitespace character(s) (is its variable set?)`)
  }
  if (length < minTokenLength || new Set(token).size < 6) {
    return invalid(
      "token",
      `must be at least ${minTokenLength} characters with at least 6 different ones, got ${length} character(s): ` +
        `a short token can be guessed; generate one, for example with \`openssl rand -base64 24\``
    )
  }
  return Either.right(token)
}

const isAuthorization = (value: unknown): value is Access.Authorization =>
  Predicate.isRecord(value) &&
  ((value.access === "refused" && (value.reason === undefined || typeof value.reason === "string")) ||
    ((value.access === "full" || value.access === "read-only") && typeof value.user === "string" &&
      value.user !== ""))

/** The user's hook, whatever it returns (a value, a promise, an effect), as one effect. */
const authorizeEffect = <R>(
  hook: NonNullable<Options<R>["authorize"]>,
  context: Context.Context<R>
) =>
(request: Access.AuthorizeRequest): Effect.Effect<Access.Authorization, unknown> =>
  Effect.suspend(() => {
    const result = hook(request)
    const effect: Effect.Effect<unknown, unknown, R> = Effect.isEffect(result)
      ? result
      : Predicate.isPromiseLike(result)
      ? Effect.tryPromise(() => Promise.resolve(result))
      : Effect.succeed(result)
    return Effect.flatMap(Effect.provide(effect, context), (decision) =>
      isAuthorization(decision) ? Effect.succeed(decision) : Effect.fail(
        new Error(
          `authorize returned ${JSON.stringify(decision)}: expected { access: "full" | "read-only", user } ` +
            `or { access: "refused" }`
        )
      ))
  })

const validate = <R>(
  options: Options<R>,
  loopbackImplied: boolean
): Either.Either<Config<R>, InvalidDashboardOptions> =>
  Either.gen(function*() {
    if (!Predicate.isRecord(options)) {
      return yield* invalid("options", `must be an object, got ${options === null ? "null" : typeof options}`)
    }
    // Values may come from JavaScript or JSON: checked as unknown.
    const raw = options as Record<string, unknown>
    const token = yield* tokenOf(options.token)
    if (options.authorize !== undefined && typeof options.authorize !== "function") {
      return yield* invalid("authorize", `must be a function, got ${typeof options.authorize}`)
    }
    if (token !== undefined && options.authorize !== undefined) {
      return yield* invalid("authorize", "cannot be given with a token: use one or the other")
    }
    for (const key of ["loopbackOnly", "readOnly"] as const) {
      if (raw[key] !== undefined && typeof raw[key] !== "boolean") {
        return yield* invalid(key, `must be true or false, got ${JSON.stringify(raw[key])}`)
      }
    }
    if (token === undefined && options.authorize === undefined && options.loopbackOnly !== true && !loopbackImplied) {
      return yield* invalid(
        "token",
        "is needed, or an authorize hook: without either, set loopbackOnly: true to serve only clients on this " +
          "machine (anyone who can reach the server's port could otherwise read and change every job)"
      )
    }
    const base = raw.basePath ?? "/"
    if (typeof base !== "string" || !/^(\/[A-Za-z0-9._~-]+)*\/?$/.test(base) || base.includes("//")) {
      return yield* invalid(
        "basePath",
        `must be a path like "/admin/jobs" (letters, digits, "._~-" between slashes), got ${JSON.stringify(base)}`
      )
    }
    const bulkLimit = raw.bulkLimit ?? 1000
    if (typeof bulkLimit !== "number" || !Number.isSafeInteger(bulkLimit) || bulkLimit < 1) {
      return yield* invalid("bulkLimit", `must be a positive integer, got ${JSON.stringify(bulkLimit)}`)
    }
    const connections = raw.connections ?? 2
    if (typeof connections !== "number" || !Number.isSafeInteger(connections) || connections < 1 || connections > 100) {
      return yield* invalid("connections", `must be an integer from 1 to 100, got ${JSON.stringify(connections)}`)
    }
    const timeout = raw.statementTimeout ?? "5 seconds"
    const statementTimeout = Duration.decodeUnknown(timeout)
    if (
      Option.isNone(statementTimeout) || (typeof timeout === "number" && !(timeout > 0)) ||
      !Duration.greaterThan(statementTimeout.value, Duration.zero) || !Duration.isFinite(statementTimeout.value) ||
      Duration.toMillis(statementTimeout.value) > maxStatementTimeoutMillis
    ) {
      return yield* invalid(
        "statementTimeout",
        `must be a positive, finite duration of at most ${maxStatementTimeoutMillis} milliseconds (about 24 ` +
          `days), such as "5 seconds", got ${JSON.stringify(timeout)}`
      )
    }
    if (options.checks !== undefined && !Array.isArray(options.checks)) {
      return yield* invalid("checks", `must be an array of { name, check }, got ${typeof options.checks}`)
    }
    return {
      mode: token !== undefined
        ? { _tag: "Token", token } as const
        : options.authorize !== undefined
        ? "authorize" as const
        : { _tag: "Loopback" } as const,
      settings: {
        protected: token !== undefined || options.authorize !== undefined,
        readOnly: raw.readOnly === true,
        bulkLimit,
        statementTimeout: statementTimeout.value,
        connections
      },
      checks: options.checks ?? [],
      basePath: base.replace(/\/$/, "")
    }
  })

/** The page, its assets and the API, at paths under the base (which the caller strips). */
const innerRoutes = (config: Pick<Config<unknown>, "settings" | "basePath">) => {
  const base = config.basePath
  const index = asset("index.html")
    .replace("<head>", `<head>\n    <meta name="effect-workers-base" content="${base}">`)
    .replaceAll("\"/assets/", `"${base}/assets/`)
  const page = (body: string, contentType: string) =>
    Effect.succeed(HttpServerResponse.text(body, { contentType, headers: pageHeaders }))
  const openApi = OpenApi.fromApi(Api.DashboardApi)
  const Pages = HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/", page(index, "text/html; charset=utf-8")),
    ...assetFiles.map((name) =>
      HttpLayerRouter.route("GET", `/assets/${name}`, page(asset(name), assetContentType(name)))
    ),
    HttpLayerRouter.route("GET", "/api/openapi.json", page(JSON.stringify(openApi), "application/json"))
  ])
  const ApiRoutes = HttpLayerRouter.addHttpApi(Api.DashboardApi).pipe(Layer.provide(Handlers.handlers(config.settings)))
  return Layer.mergeAll(Pages, ApiRoutes).pipe(Layer.provide(NodeHttpServer.layerContext))
}

const isAction = (method: string) => method !== "GET" && method !== "HEAD" && method !== "OPTIONS"

/**
 * The whole dashboard as one HTTP app, for requests whose URL no longer has
 * the base path: the access checks, then health, readiness, metrics, or the
 * page and the API.
 */
type App = Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  HttpServerRequest.HttpServerRequest | Scope.Scope
>

const makeApp = <R>(config: Config<R>, options: Options<R>): Effect.Effect<App, never, JobClient | R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<JobClient | R>()
    const scope = yield* Effect.scope
    const mode: Access.Mode = config.mode === "authorize"
      ? { _tag: "Authorize", authorize: authorizeEffect(options.authorize!, context as Context.Context<R>) }
      : config.mode
    const router = yield* HttpLayerRouter.make
    // A router of its own: two dashboards (a read-only one and a full one) do not collide.
    yield* (Layer.buildWithScope(
      Layer.provide(innerRoutes(config), Layer.succeed(HttpLayerRouter.HttpRouter, router)),
      scope
    ) as Effect.Effect<unknown, never, JobClient>)
    const inner = router.asHttpEffect()
    // One computation at a time, reused for a second: a probe per replica per second costs one round of checks.
    const ready = yield* Effect.cachedWithTTL(
      Effect.provide(Handlers.readiness(config.checks), context),
      "1 second"
    )
    const limiter = Access.failureLimiter(failuresPerMinute, 60_000)
    const { settings } = config

    const answer = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = request.url.split("?")[0]
      if (path === "/healthz") return json({ status: "ok" })
      const address = Option.getOrElse(request.remoteAddress, () => "unknown")
      const wait = yield* limiter.blocked(address)
      if (wait !== undefined) {
        return refused(429, "TooManyRequests", `too many refused credentials from ${address}: try again in ${wait} s`, {
          "retry-after": String(wait)
        })
      }
      const crossSite = Access.crossSiteRefusal(request, path === "/")
      const access: Access.Access = crossSite !== undefined
        ? { _tag: "Refused", status: 403, message: crossSite }
        : yield* Access.decide(mode, request)
      if (path === "/readyz") {
        // A probe without credentials learns ready or not, nothing of what the checks found.
        if (access._tag === "Refused" && (mode._tag === "Loopback" || crossSite !== undefined)) {
          return refusedResponse(access)
        }
        const checks = yield* ready
        const ok = checks.every((check) => check.ok)
        const status = ok ? "ready" : "unready"
        return json(access._tag === "Allowed" ? { status, checks } : { status }, ok ? 200 : 503)
      }
      if (access._tag === "Refused") {
        if (access.status === 401) yield* limiter.record(address)
        return refusedResponse(access)
      }
      const length = Number(request.headers["content-length"] ?? 0)
      if (length > maxBodyBytes) {
        return refused(413, "PayloadTooLarge", `a request body may have at most ${maxBodyBytes} bytes, not ${length}`)
      }
      if (isAction(request.method)) {
        if (settings.readOnly || access.readOnly) {
          return refused(
            403,
            "Forbidden",
            settings.readOnly ? "the dashboard is read-only" : `${access.user} may only read`
          )
        }
        if (request.headers["x-effect-workers"] !== "1") {
          return refused(403, "Forbidden", "actions need the header x-effect-workers: 1")
        }
      }
      if (path === "/metrics") {
        return HttpServerResponse.text(yield* Metrics.prometheusText, {
          contentType: Metrics.prometheusContentType,
          headers: commonHeaders
        })
      }
      const response = yield* inner.pipe(
        HttpServerRequest.withMaxBodySize(Option.some(maxBodyBytes)),
        Effect.locally(Handlers.currentViewer, { user: access.user, readOnly: access.readOnly }),
        Effect.catchIf(
          (error): error is HttpServerError.RouteNotFound =>
            HttpServerError.isServerError(error) &&
            (error as { _tag: string })._tag === "RouteNotFound",
          () => Effect.succeed(refused(404, "NotFound", `no such page or endpoint: ${path}`))
        )
      )
      return HttpServerResponse.setHeaders(response, commonHeaders)
    })
    return answer.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : tooLarge(cause) ?
          Effect.succeed(
            refused(413, "PayloadTooLarge", `a request body may have at most ${maxBodyBytes} bytes`)
          ) :
          Effect.as(
            Effect.logError("Dashboard: a request failed unexpectedly", cause),
            refused(500, "InternalError", "the dashboard failed to answer; the error is in its log")
          )
      )
    ) as App
  })

/** A body without a length that ran past the limit while it was read. */
const tooLarge = (cause: Cause.Cause<unknown>) =>
  [...Cause.defects(cause), ...Cause.failures(cause)].some((error) =>
    HttpServerError.isServerError(error) && String((error as { cause?: unknown }).cause).includes("maxBytes")
  )

/** Strips the base path from the request's URL, or says it is not the dashboard's. */
const underBase = (basePath: string, url: string): string | undefined => {
  if (basePath === "") return url
  if (!url.startsWith(basePath)) return undefined
  const rest = url.slice(basePath.length)
  return rest === "" ? "/" : rest.startsWith("/") ? rest : rest.startsWith("?") ? `/${rest}` : undefined
}

/**
 * The dashboard's routes, for an `HttpLayerRouter` server of yours: the page
 * at the base path (default `/`), the API under `<base>/api`, and
 * `<base>/healthz`, `<base>/readyz`, `<base>/metrics`.
 *
 * Needs a `token`, an `authorize` hook, or `loopbackOnly: true`. Needs
 * `JobClient`; shows recurring definitions when `Recurring` is provided,
 * hosted workers when `WorkerRegistry` is, and checks the runner's heartbeat
 * in `/readyz` when `JobRunner` is.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = <R = never>(
  options: Options<R> = {}
): Layer.Layer<never, InvalidDashboardOptions, HttpLayerRouter.HttpRouter | JobClient | Exclude<R, Scope.Scope>> =>
  routesWith(options, false)

const routesWith = <R>(
  options: Options<R>,
  loopbackImplied: boolean
): Layer.Layer<never, InvalidDashboardOptions, HttpLayerRouter.HttpRouter | JobClient | Exclude<R, Scope.Scope>> => {
  const config = validate(options, loopbackImplied)
  if (Either.isLeft(config)) return Layer.fail(config.left)
  return HttpLayerRouter.use((router) =>
    Effect.gen(function*() {
      const app = yield* makeApp(config.right, options)
      const base = config.right.basePath
      if (base === "") {
        yield* router.add("*", "/*", app)
      } else {
        // The router strips the prefix from the URL the app sees.
        const under = router.prefixed(base)
        yield* under.add("*", "/", app)
        yield* under.add("*", "/*", app)
      }
    })
  ) as Layer.Layer<never, never, HttpLayerRouter.HttpRouter | JobClient | Exclude<R, Scope.Scope>>
}

const loopback = (host: string) => host === "127.0.0.1" || host === "::1" || host === "localhost"

/**
 * The dashboard on a server of its own, at `host`:`port` (default
 * 127.0.0.1:3000). Logs its address when it listens. Fails with
 * `InvalidDashboardOptions` for a non-loopback `host` without a `token` or
 * `authorize`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(options: ServerOptions<R> = {}) => {
  const host = options.host ?? "127.0.0.1"
  const port = options.port ?? 3000
  const check = typeof host !== "string"
    ? Effect.fail(new InvalidDashboardOptions({ option: "host", reason: `must be a string, got ${typeof host}` }))
    : !loopback(host) && options.token === undefined && options.authorize === undefined
    ? Effect.fail(
      new InvalidDashboardOptions({
        option: "host",
        reason: `"${host}" would expose the dashboard beyond this machine without a token: set "token" ` +
          `(or "authorize"), or bind to 127.0.0.1`
      })
    )
    : !Number.isInteger(port) || port < 0 || port > 65535
    ? Effect.fail(new InvalidDashboardOptions({ option: "port", reason: `must be a port number, got ${port}` }))
    // The other options are checked before the port is bound, so a wrong one never logs a listening line.
    : Either.match(validate(options, loopback(host)), { onLeft: Effect.fail, onRight: () => Effect.void })
  return Layer.unwrapEffect(Effect.as(
    check,
    // Pages refresh every few seconds: a log line per request would drown the application's own.
    HttpLayerRouter.serve(routesWith(options, loopback(host)), { disableLogger: true, disableListenLog: true }).pipe(
      // The listening line says what listens: an application may serve more than the dashboard.
      Layer.merge(
        Layer.effectDiscard(HttpServer.addressFormattedWith((url) => Effect.logInfo(`Dashboard listening on ${url}`)))
      ),
      Layer.provide(NodeHttpServer.layer(createServer, { port, host }))
    )
  ))
}

/**
 * A Node request handler, `(request, response, next?) => void`, for
 * `http.createServer` or Express's `app.use`. A request outside the base
 * path goes to `next` when there is one (Express), else gets a 404. Express
 * may mount it under a path (`app.use("/admin/jobs", handler)`) when that
 * path is the `basePath`. The options are those of `routes`.
 *
 * @since 0.1.0
 * @category models
 */
export type NodeHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  next?: (error?: unknown) => void
) => void

/**
 * The dashboard as a Node request handler, for an application whose server
 * is Node's `http` or Express, inside Effect: the handler lives as long as
 * the scope. See `toNodeHandler` for an application outside Effect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nodeHandler = <R = never>(
  options: Options<R> = {}
): Effect.Effect<NodeHandler, InvalidDashboardOptions, JobClient | Scope.Scope | R> =>
  Effect.gen(function*() {
    const config = validate(options, false)
    if (Either.isLeft(config)) return yield* config.left
    const app = yield* makeApp(config.right, options)
    const handle = yield* NodeHttpServer.makeHandler(app)
    const base = config.right.basePath
    return ((request, response, next) => {
      // Express strips its mount path from `url` and keeps the whole in `originalUrl`.
      const url = (request as { originalUrl?: string }).originalUrl ?? request.url ?? "/"
      const inner = underBase(base, url)
      if (inner === undefined) {
        if (next !== undefined) return next()
        response.writeHead(404, { "content-type": "text/plain", ...commonHeaders }).end("Not Found")
        return
      }
      request.url = inner
      handle(request, response)
    }) satisfies NodeHandler as NodeHandler
  })

/**
 * The dashboard as a Node request handler for an application outside
 * Effect: `layer` provides what the dashboard needs (`JobClient`, and
 * optionally `Recurring`, `WorkerRegistry`, `JobRunner`). `ready` settles
 * when it is built (and rejects with `InvalidDashboardOptions` or the layer's
 * error); requests that come earlier wait for it. `dispose` releases it.
 *
 * ```ts
 * const dashboard = Dashboard.toNodeHandler(AppLayer, { basePath: "/admin/jobs", token })
 * await dashboard.ready
 * app.use(dashboard.handler) // Express; or http.createServer(dashboard.handler)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const toNodeHandler = <E, R>(
  layer: Layer.Layer<JobClient | R, E>,
  options: Options<R> = {}
): {
  readonly handler: NodeHandler
  readonly ready: Promise<void>
  readonly dispose: () => Promise<void>
} => {
  const Handler = Context.GenericTag<NodeHandler>("effect-workers/Dashboard/NodeHandler")
  const runtime = ManagedRuntime.make(Layer.scoped(Handler, nodeHandler(options)).pipe(Layer.provide(layer)))
  const built = runtime.runPromise(Handler)
  // Handled here: a caller that never awaits `ready` must not get an unhandled rejection.
  built.catch(() => {})
  return {
    ready: built.then(() => undefined),
    handler: (request, response, next) => {
      built.then((handle) => handle(request, response, next), (error) => {
        if (next !== undefined) return next(error)
        response.writeHead(503, { "content-type": "application/json", ...commonHeaders })
          .end(JSON.stringify({ _tag: "DashboardUnavailable", message: String(error?.message ?? error) }))
      })
    },
    dispose: () => runtime.dispose()
  }
}
