import type { HttpServerRequest } from "@effect/platform"
import { Clock, Effect, Option } from "effect"
import { timingSafeEqual } from "node:crypto"

/** What a request may do, and who it is for the audit log. */
export type Access =
  | { readonly _tag: "Allowed"; readonly readOnly: boolean; readonly user: string }
  | { readonly _tag: "Refused"; readonly status: 401 | 403 | 429 | 500; readonly message: string }

/** The request as the `authorize` hook sees it. */
export interface AuthorizeRequest {
  readonly method: string
  /** The path and query, under the dashboard's base path. */
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The peer's address as the socket gives it; behind a proxy, the proxy's. */
  readonly remoteAddress: string | undefined
}

/** What the `authorize` hook decides. */
export type Authorization =
  | { readonly access: "full" | "read-only"; readonly user: string }
  | { readonly access: "refused"; readonly reason?: string | undefined }

export type Mode =
  | { readonly _tag: "Loopback" }
  | { readonly _tag: "Token"; readonly token: string }
  | {
    readonly _tag: "Authorize"
    readonly authorize: (request: AuthorizeRequest) => Effect.Effect<Authorization, unknown>
  }

const equalSecrets = (given: string, expected: string) => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The token the request carries, from `Authorization: Bearer …` or HTTP Basic. */
export const presentedToken = (authorization: string | undefined): string | undefined => {
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

/** Whether an address the socket reports is this machine's loopback (IPv4, IPv6, IPv4-mapped). */
export const isLoopbackAddress = (address: string | undefined) => {
  if (address === undefined) return false
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address
  return v4.startsWith("127.") || address === "::1"
}

const loopbackNames = new Set(["127.0.0.1", "localhost", "[::1]"])

/** The host name a request was sent to, without its port. */
const hostName = (host: string | undefined) => {
  if (host === undefined) return undefined
  const bracket = host.startsWith("[") ? host.indexOf("]") : -1
  return (bracket >= 0 ? host.slice(0, bracket + 1) : host.split(":")[0]).toLowerCase()
}

/** Headers a proxy adds: a request that carries one did not come from this machine's own user. */
const forwardingHeaders = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via"]

/**
 * Why a request without a token is refused, if it is: only a client on this
 * machine, talking to it directly, by a loopback name. The address is the
 * socket's, which a client cannot choose; the name guards against DNS
 * rebinding (a site that points its own name at 127.0.0.1); the forwarding
 * headers reveal a proxy that would make everyone it serves look local.
 */
export const loopbackRefusal = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const address = Option.getOrUndefined(request.remoteAddress)
  if (!isLoopbackAddress(address)) {
    return `without a token, the dashboard answers only clients on this machine (loopback), ` +
      `not ${address ?? "an unknown address"}: set a token or an authorize hook to serve others`
  }
  const forwarded = forwardingHeaders.find((header) => request.headers[header] !== undefined)
  if (forwarded !== undefined) {
    return `without a token, the dashboard refuses requests through a proxy (it sent ${forwarded}): ` +
      `set a token or an authorize hook to serve it behind one`
  }
  const name = hostName(request.headers["host"])
  if (name === undefined || !loopbackNames.has(name)) {
    return `without a token, the dashboard answers only requests to 127.0.0.1, [::1] or localhost ` +
      `(this one was sent to ${request.headers["host"] ?? "no host"})`
  }
  return undefined
}

const originHost = (origin: string) => {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}

/**
 * Why a request from another site is refused, if it is. Every request is
 * checked, reads too: a CORS layer of the application's could otherwise let
 * a page elsewhere read the jobs. A top-level navigation to the page itself
 * is let through (a link to the dashboard still opens it); the linking site
 * cannot read what it opens.
 */
export const crossSiteRefusal = (
  request: HttpServerRequest.HttpServerRequest,
  isPage: boolean
): string | undefined => {
  const site = request.headers["sec-fetch-site"]
  const navigation = isPage && request.method === "GET" && request.headers["sec-fetch-mode"] === "navigate"
  if (site !== undefined && site !== "same-origin" && site !== "none" && !navigation) {
    return `requests from other sites are refused (Sec-Fetch-Site: ${site})`
  }
  const origin = request.headers["origin"]
  if (origin !== undefined && !navigation && originHost(origin) !== request.headers["host"]) {
    return `requests from other sites are refused (Origin: ${origin})`
  }
  return undefined
}

/**
 * Counts refused credentials per client address: past `limit` in a
 * `windowMillis`, that address is answered 429 without a check until the
 * window ends, so a token cannot be guessed at network speed.
 */
export const failureLimiter = (limit: number, windowMillis: number) => {
  const failures = new Map<string, { count: number; since: number }>()
  const entry = (address: string, now: number) => {
    const found = failures.get(address)
    if (found === undefined || now - found.since >= windowMillis) return undefined
    return found
  }
  return {
    /** Seconds until the address may try again, if it is over its limit. */
    blocked: (address: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const found = entry(address, now)
        return found !== undefined && found.count >= limit
          ? Math.max(1, Math.ceil((found.since + windowMillis - now) / 1000))
          : undefined
      }),
    record: (address: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        // Bounded: an attacker with many addresses fills the map, not the memory.
        if (failures.size >= 10_000) {
          for (const [key, value] of failures) if (now - value.since >= windowMillis) failures.delete(key)
          if (failures.size >= 10_000) failures.clear()
        }
        const found = entry(address, now)
        if (found === undefined) failures.set(address, { count: 1, since: now })
        else found.count++
      })
  }
}

const headersOf = (request: HttpServerRequest.HttpServerRequest): Record<string, string | undefined> => {
  const out: Record<string, string | undefined> = {}
  for (const [key, value] of Object.entries(request.headers)) out[key] = value
  return out
}

/** Decides what a request may do under `mode`. */
export const decide = (mode: Mode, request: HttpServerRequest.HttpServerRequest): Effect.Effect<Access> => {
  switch (mode._tag) {
    case "Loopback": {
      const refused = loopbackRefusal(request)
      return Effect.succeed(
        refused === undefined
          ? {
            _tag: "Allowed",
            readOnly: false,
            user: `local client (${Option.getOrElse(request.remoteAddress, () => "loopback").replace(/^::ffff:/, "")})`
          }
          : { _tag: "Refused", status: 403, message: refused }
      )
    }
    case "Token": {
      const token = presentedToken(request.headers["authorization"])
      return Effect.succeed(
        token !== undefined && equalSecrets(token, mode.token)
          ? { _tag: "Allowed", readOnly: false, user: "token holder" }
          : {
            _tag: "Refused",
            status: 401,
            message: "this dashboard needs its token (HTTP Basic password, or Bearer)"
          }
      )
    }
    case "Authorize":
      return mode.authorize({
        method: request.method,
        url: request.url,
        headers: headersOf(request),
        remoteAddress: Option.getOrUndefined(request.remoteAddress)
      }).pipe(
        Effect.map((decision): Access =>
          decision.access === "refused"
            ? { _tag: "Refused", status: 403, message: decision.reason ?? "the application refused this request" }
            : { _tag: "Allowed", readOnly: decision.access === "read-only", user: decision.user }
        ),
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logError("Dashboard: the authorize hook failed; the request is refused", cause),
            { _tag: "Refused", status: 500, message: "the dashboard's authorize hook failed" } as const
          )
        )
      )
  }
}
