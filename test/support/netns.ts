/**
 * A client on another host, without a second machine: a network namespace
 * made for the test, joined to this one by a veth pair. The host side of the
 * pair gets `hostAddress` (a server under test binds there, and nowhere else
 * off loopback), the namespace side `clientAddress`. The namespace has no
 * other link and no default route, so what a client in it sends can only
 * reach the host side of the pair. Needs root (or CAP_NET_ADMIN), as in CI.
 */
import { Effect, type Scope } from "effect"
import { execFile, execFileSync } from "node:child_process"

/** Link-local addresses: never routed off the link, so never anybody else's host. */
export const hostAddress = "169.254.213.1"
export const clientAddress = "169.254.213.2"

let made = 0

const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

export interface Namespace {
  /**
   * Sends one HTTP request from inside the namespace (a Node process run
   * there) and returns its status, headers and body.
   */
  readonly request: (
    url: string,
    options?: { readonly method?: string; readonly headers?: Record<string, string>; readonly body?: string }
  ) => Effect.Effect<{ readonly status: number; readonly headers: Record<string, string>; readonly text: string }>
}

const clientScript = `
const [url, init] = JSON.parse(process.argv[1])
const http = require("node:http")
const request = http.request(url, init, (response) => {
  let text = ""
  response.setEncoding("utf8")
  response.on("data", (chunk) => (text += chunk))
  response.on("end", () => process.stdout.write(JSON.stringify({ status: response.statusCode, headers: response.headers, text })))
})
request.on("error", (error) => { process.stderr.write(String(error)); process.exit(1) })
if (init.body !== undefined) request.write(init.body)
request.end()
`

/** A namespace and veth pair for the rest of the scope; both are deleted when it closes. */
export const make: Effect.Effect<Namespace, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const n = `${process.pid % 100000}${made++}`
    const name = `ew-test-${n}`
    const hostSide = `ewh${n}`.slice(0, 15)
    const clientSide = `ewc${n}`.slice(0, 15)
    try {
      ip("netns", "add", name)
      ip("link", "add", hostSide, "type", "veth", "peer", "name", clientSide)
      ip("link", "set", clientSide, "netns", name)
      ip("addr", "add", `${hostAddress}/30`, "dev", hostSide)
      ip("link", "set", hostSide, "up")
      ip("netns", "exec", name, "ip", "addr", "add", `${clientAddress}/30`, "dev", clientSide)
      ip("netns", "exec", name, "ip", "link", "set", clientSide, "up")
      ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    } catch (error) {
      throw new Error(
        `cannot make a network namespace (run the tests as root, as CI does): ${
          (error as { stderr?: Buffer }).stderr?.toString() ?? String(error)
        }`
      )
    }
    return { name, hostSide }
  }),
  ({ hostSide, name }) =>
    Effect.sync(() => {
      // Deleting the namespace deletes its end of the pair, and with it the host's end.
      try {
        ip("netns", "del", name)
      } catch {
        // Already gone.
      }
      try {
        ip("link", "del", hostSide)
      } catch {
        // Went with the namespace.
      }
    })
).pipe(Effect.map(({ name }) => ({
  request: (url, options = {}) =>
    Effect.async((resume) => {
      const child = execFile(
        "ip",
        ["netns", "exec", name, process.execPath, "-e", clientScript, JSON.stringify([url, options])],
        { timeout: 20_000 },
        (error, stdout, stderr) => {
          if (error) resume(Effect.die(new Error(`request from the namespace failed: ${stderr || error.message}`)))
          else resume(Effect.succeed(JSON.parse(stdout)))
        }
      )
      return Effect.sync(() => child.kill())
    })
})))
