/**
 * The `effect-workers` command line, run as a real child process against the
 * test file's own schemas: every command, its exit codes, its `--json`
 * output, confirmations, and a dashboard served then stopped by SIGTERM.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, ExecutionStrategy, Exit, Layer, Option, Schema, Scope } from "effect"
import { Job, JobClient, JobRunner, Migrations, Recurring } from "effect-workers"
import { type CliResult, runCli, spawnAtTerminal, spawnCli } from "./support/cli.js"
import * as TestDatabase from "./support/database.js"
import { eventually } from "./support/eventually.js"

/**
 * Each test starts the CLI several times, and a loaded machine takes seconds (tens, at worst) to start
 * each under tsx: the test file's own limit is generous, past vitest's default for this project.
 */
const testTimeout = 600_000

/** The CLI's options for the test file's schema, and its database in the environment. */
const target = Effect.map(TestDatabase.TestDatabase, (db) => ({
  args: ["--schema", db.schema],
  env: { DATABASE_URL: db.url }
}))

/** Runs the CLI on the test file's schema. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.flatMap(target, (t) => runCli([...args, ...t.args], { env: { ...t.env, ...env } }))

/** The outcome in one value, so that a failed expectation shows what the CLI printed. */
const outcome = (result: CliResult) => ({ code: result.code, stderr: result.stderr })

/** Expects exit 0 and parses stdout as one JSON document. */
const parsed = (result: CliResult): any => {
  expect(outcome(result)).toMatchObject({ code: 0 })
  return JSON.parse(result.stdout)
}

/** Expects a usage error (exit 2) whose message says all of `parts`. */
const usageError = (result: CliResult, ...parts: ReadonlyArray<string>) => {
  expect(outcome(result)).toMatchObject({ code: 2 })
  for (const part of parts) expect(result.stderr).toContain(part)
  expect(result.stdout).toBe("")
}

const Email = Job.make("send-email", {
  payload: Schema.Struct({ to: Schema.String }),
  queue: "cli-email",
  handler: () => Effect.void
})

const Report = Job.make("report", {
  payload: Schema.Struct({ kind: Schema.String }),
  queue: "cli-reports",
  handler: () => Effect.void
})

/** Lets the running exports finish: until then, what runs stays running. */
const exportsDone = Effect.runSync(Deferred.make<void>())

const Export = Job.make("export", {
  payload: Schema.Struct({ tenant: Schema.String }),
  queue: "cli-flow",
  partitionKey: ({ tenant }) => tenant,
  handler: () => Deferred.await(exportsDone)
})

layer(TestDatabase.layer, { excludeTestServices: true })("effect-workers migrate", (it) => {
  it.effect(
    "migrate --check exits 1 on a fresh schema; migrate applies every migration; --check then exits 0",
    () =>
      Effect.gen(function*() {
        const { schema } = yield* TestDatabase.TestDatabase
        const behind = yield* cli(["migrate", "--check", "--json"])
        expect(outcome(behind)).toMatchObject({ code: 1 })
        expect(behind.stderr).toContain(`Schema "${schema}" is behind: at version 0`)
        expect(JSON.parse(behind.stdout)).toEqual({
          schema,
          version: 0,
          latestVersion: Migrations.latestVersion,
          current: false,
          pending: Migrations.migrations.map(({ name, version }) => ({ version, name }))
        })
        const text = yield* cli(["migrate", "--check"])
        expect(text.code).toBe(1)
        expect(text.stdout).toContain(`pending: 1 ${Migrations.migrations[0].name}`)

        const applied = parsed(yield* cli(["migrate", "--json"]))
        expect(applied).toEqual({
          schema,
          version: Migrations.latestVersion,
          applied: Migrations.migrations.map(({ name, version }) => ({ version, name }))
        })
        const again = yield* cli(["migrate"])
        expect(outcome(again)).toMatchObject({ code: 0 })
        expect(again.stdout).toContain(`is up to date (version ${Migrations.latestVersion}); nothing to apply`)

        const current = yield* cli(["migrate", "--check"])
        expect(outcome(current)).toMatchObject({ code: 0 })
        expect(current.stdout).toContain(`Schema "${schema}" is up to date (version ${Migrations.latestVersion})`)
        expect(parsed(yield* cli(["migrate", "--check", "--json"]))).toMatchObject({ current: true, pending: [] })
      }),
    { timeout: testTimeout }
  )
})

/** The client on the test file's second schema, migrated by it. */
const ClientLive = Layer.unwrapEffect(
  Effect.map(TestDatabase.TestDatabase, (db) => JobClient.layer({ schema: db.schema }))
)

/** A job runner in this process for `jobs`, in a scope of its own: closing the scope stops it. */
const startRunner = (jobs: ReadonlyArray<Job.Any>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const context = yield* Layer.buildWithScope(JobRunner.layer({ jobs, pollInterval: "200 millis" }), scope)
    return { scope, runner: Context.get(context, JobRunner.JobRunner) }
  })

const stateOf = (id: string) =>
  Effect.flatMap(JobClient.JobClient, (client) => Effect.map(client.get(id), Option.map((job) => job.state)))

layer(Layer.provideMerge(ClientLive, TestDatabase.layer), { excludeTestServices: true })("effect-workers", (it) => {
  it.effect(
    "--help on every command describes it and exits 0; an unknown command exits 2",
    () =>
      Effect.gen(function*() {
        const commands = [
          [[], "Operate effect-workers' job tables"],
          [["migrate"], "Apply the job tables' pending migrations"],
          [["status"], "Show each queue"],
          [["jobs"], "List and show jobs"],
          [["jobs", "list"], "List jobs, newest first"],
          [["jobs", "show"], "Show one job"],
          [["jobs", "retry"], "Make discarded, cancelled, retryable or scheduled jobs available now"],
          [["jobs", "cancel"], "Cancel waiting or running jobs"],
          [["jobs", "delete"], "Delete jobs that are not running"],
          [["recurring"], "List recurring definitions"],
          [["recurring", "list"], "List the recurring definitions"],
          [["recurring", "trigger"], "Enqueue a recurring definition's job now"],
          [["recurring", "pause"], "Stop a recurring definition firing"],
          [["recurring", "resume"], "Fire a paused recurring definition again"],
          [["dashboard"], "Serve the web dashboard"]
        ] as const
        const results = yield* Effect.forEach(commands, ([args]) => runCli([...args, "--help"]), { concurrency: 3 })
        results.forEach((result, i) => {
          const [args, description] = commands[i]
          expect(outcome(result), args.join(" ")).toEqual({ code: 0, stderr: "" })
          expect(result.stdout, args.join(" ")).toContain(description)
        })
        expect(results[4].stdout).toContain("--state STATE")
        expect(results[14].stdout).toContain("--token-env VARIABLE")
        const unknown = yield* runCli(["frobnicate"])
        expect(unknown.code).toBe(2)
        expect(unknown.stderr).toContain("'migrate', 'status', 'jobs', 'recurring', 'dashboard'")
      }),
    { timeout: testTimeout }
  )

  it.scoped(
    "status shows queues with counts by state, the oldest waiting job, paused queues and live runners",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const [oldest] = yield* client.enqueueMany(Email, [{ to: "a@example.com" }, { to: "b@example.com" }])
        yield* client.enqueue(Email, { to: "later@example.com" }, { delay: "1 hour" })
        const cancelled = yield* client.enqueue(Email, { to: "c@example.com" })
        yield* client.cancel(cancelled.id)
        yield* client.pause("cli-email")
        const Idle = Job.make("idle", { payload: Schema.Struct({}), queue: "cli-idle", handler: () => Effect.void })
        const { runner, scope } = yield* startRunner([Idle])

        const status = parsed(yield* cli(["status", "--json"]))
        const { schema } = yield* TestDatabase.TestDatabase
        expect(status.schema).toBe(schema)
        expect(status.version).toBe(Migrations.latestVersion)
        const email = status.queues.find((queue: { name: string }) => queue.name === "cli-email")
        expect(email).toMatchObject({
          paused: true,
          counts: { available: 2, scheduled: 1, cancelled: 1, running: 0, completed: 0, discarded: 0, retryable: 0 },
          oldestWaiting: { id: oldest.id, name: "send-email" }
        })
        expect(email.oldestWaiting.waitMillis).toBeGreaterThanOrEqual(0)
        expect(new Date(email.oldestWaiting.dueAt).getTime()).not.toBeNaN()
        expect(status.runners.find((r: { id: string }) => r.id === runner.id)).toMatchObject({
          pid: process.pid,
          queues: ["cli-idle"],
          alive: true
        })

        const text = yield* cli(["status"])
        expect(outcome(text)).toMatchObject({ code: 0 })
        expect(text.stdout).toMatch(/QUEUE\s+PAUSED\s+SCHEDULED\s+AVAILABLE\s+RUNNING/)
        expect(text.stdout).toMatch(
          new RegExp(`cli-email\\s+yes\\s+1\\s+2\\s+0\\s+0\\s+0\\s+0\\s+1\\s+job ${oldest.id} \\(send-email\\)`)
        )
        expect(text.stdout).toContain("Paused: cli-email.")
        expect(text.stdout).toContain(runner.id)
        yield* Scope.close(scope, Exit.void)
        yield* client.resume("cli-email")
        yield* client.deleteAll({ queue: "cli-email" })
      }),
    { timeout: testTimeout }
  )

  it.scoped(
    "status shows each queue's flow-control limits, its busiest keys and the jobs its limits hold back, " +
      "in the table and in --json",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        yield* client.setLimits("cli-flow", {
          globalConcurrency: 2,
          keyConcurrency: 1,
          keyRateLimit: { limit: 10, period: "1 minute" }
        })
        // Three exports of one tenant and one of another: one of each runs, and the global limit is then reached.
        yield* client.enqueueMany(Export, [{ tenant: "acme" }, { tenant: "acme" }, { tenant: "acme" }, {
          tenant: "globex"
        }])
        yield* client.enqueue(Email, { to: "a@example.com" })
        const { scope } = yield* startRunner([Export])
        yield* eventually(client.flow("cli-flow"), (flow) => flow.running === 2, "two exports to run")

        const status = parsed(yield* cli(["status", "--json"]))
        const queue = (name: string) => status.queues.find((q: { name: string }) => q.name === name)
        expect(queue("cli-flow")).toMatchObject({
          limits: {
            globalConcurrency: 2,
            keyConcurrency: 1,
            rateLimit: null,
            keyRateLimit: { limit: 10, periodMillis: 60_000 },
            fair: false,
            source: "api"
          },
          flow: {
            running: 2,
            waiting: 2,
            started: 0,
            heldByGlobalConcurrency: 2,
            heldByRateLimit: 0,
            heldByKeyLimits: 2,
            keys: [
              { key: "acme", running: 1, waiting: 2, started: 1, held: true },
              { key: "globex", running: 1, waiting: 0, started: 1, held: true }
            ]
          }
        })
        // A queue without limits: none shown, and no flow.
        expect(queue("cli-email")).toMatchObject({
          limits: {
            globalConcurrency: null,
            keyConcurrency: null,
            rateLimit: null,
            keyRateLimit: null,
            fair: false,
            source: null
          },
          flow: null
        })

        const text = yield* cli(["status"])
        expect(outcome(text)).toMatchObject({ code: 0 })
        expect(text.stdout).toMatch(/OLDEST WAITING\s+LIMITS/)
        expect(text.stdout).toMatch(/cli-flow .*job \d+ \(export\), \S+\s+global 2, key 1, key rate 10\/1m \(api\)/)
        expect(text.stdout).toMatch(/cli-email .*job \d+ \(send-email\), \S+\s+-$/m)
        expect(text.stdout).toMatch(
          /QUEUE\s+RUNNING\s+WAITING\s+STARTED\s+HELD BY GLOBAL\s+HELD BY RATE\s+HELD BY KEYS/
        )
        expect(text.stdout).toMatch(/^cli-flow\s+2\s+2\s+-\s+2\s+-\s+2$/m)
        expect(text.stdout).toMatch(/^cli-flow\s+acme\s+1\s+2\s+1\s+yes$/m)
        expect(text.stdout).toMatch(/^cli-flow\s+globex\s+1\s+0\s+1\s+yes$/m)

        yield* Deferred.succeed(exportsDone, undefined)
        yield* eventually(
          client.counts,
          (counts) => counts.some((c) => c.queue === "cli-flow" && c.state === "completed" && c.count === 4),
          "the four exports to complete"
        )
        yield* Scope.close(scope, Exit.void)
        yield* client.resetLimits("cli-flow")
        yield* client.deleteAll({ queue: "cli-flow" })
        yield* client.deleteAll({ queue: "cli-email" })
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "jobs list filters by queue, state and name with a limit; --json gives each job as JobInfo encodes it",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const emails = yield* client.enqueueMany(Email, [1, 2, 3].map((n) => ({ to: `${n}@example.com` })), {
          queue: "cli-list"
        })
        const report = yield* client.enqueue(Report, { kind: "daily" }, { queue: "cli-list", delay: "1 hour" })

        const all = parsed(yield* cli(["jobs", "list", "--queue", "cli-list", "--json"]))
        expect(all.map((job: { id: string }) => job.id)).toEqual([report.id, ...emails.map((e) => e.id).reverse()])
        const info = yield* Effect.map(client.get(emails[0].id), Option.getOrThrow)
        expect(all[3]).toEqual(Schema.encodeSync(Job.JobInfo)(info))

        const scheduled = parsed(yield* cli(["jobs", "list", "--queue", "cli-list", "--state", "scheduled", "--json"]))
        expect(scheduled.map((job: { id: string }) => job.id)).toEqual([report.id])
        const named = parsed(
          yield* cli(["jobs", "list", "--name", "send-email", "--queue", "cli-list", "--limit", "2", "--json"])
        )
        expect(named.map((job: { id: string }) => job.id)).toEqual([emails[2].id, emails[1].id])
        const searched = parsed(yield* cli(["jobs", "list", "--queue", "cli-list", "--search", "2@example", "--json"]))
        expect(searched.map((job: { id: string }) => job.id)).toEqual([emails[1].id])

        const text = yield* cli(["jobs", "list", "--queue", "cli-list", "--limit", "2"])
        expect(outcome(text)).toMatchObject({ code: 0 })
        const lines = text.stdout.trim().split("\n")
        expect(lines[0]).toMatch(/^ID\s+NAME\s+QUEUE\s+STATE\s+ATTEMPT\s+RUN AT\s+INSERTED$/)
        expect(lines[1]).toMatch(new RegExp(`^${report.id}\\s+report\\s+cli-list\\s+scheduled\\s+0/`))
        expect(lines[2]).toMatch(new RegExp(`^${emails[2].id}\\s+send-email\\s+cli-list\\s+available`))
        expect(lines.at(-1)).toBe(`More may follow: --before ${emails[2].id}`)
        const none = yield* cli(["jobs", "list", "--queue", "cli-none"])
        expect(none.stdout.trim()).toBe("No jobs match.")
        yield* client.deleteAll({ queue: "cli-list" })
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "jobs show prints one job; an unknown id exits 1; a bad id, state, limit, search or schema exits 2, named",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Email, { to: "show@example.com" }, { queue: "cli-show" })
        const job = parsed(yield* cli(["jobs", "show", id, "--json"]))
        expect(job).toMatchObject({ id, name: "send-email", queue: "cli-show", state: "available" })
        expect(job.payload).toEqual({ to: "show@example.com" })
        const text = yield* cli(["jobs", "show", id])
        expect(outcome(text)).toMatchObject({ code: 0 })
        expect(text.stdout).toMatch(new RegExp(`^id:\\s+${id}$`, "m"))
        expect(text.stdout).toMatch(/^state:\s+available$/m)
        expect(text.stdout).toContain("\"to\": \"show@example.com\"")

        const missing = yield* cli(["jobs", "show", "987654321"])
        expect(outcome(missing)).toEqual({ code: 1, stderr: "Error: No job with id 987654321\n" })
        const results = yield* Effect.all([
          cli(["jobs", "show", "12abc"]),
          cli(["jobs", "list", "--state", "finished"]),
          cli(["jobs", "list", "--limit", "5000"]),
          runCli(["status", "--schema", "Bad-Name"], { env: { DATABASE_URL: "postgres://127.0.0.1/x" } }),
          cli(["jobs", "delete", "--search", " ", "--yes"]),
          cli(["jobs", "list", "--before", "last"])
        ], { concurrency: 2 })
        usageError(results[0], "ID \"12abc\" is not a job id", "digits, from 1 to 9223372036854775807")
        usageError(
          results[1],
          "--state \"finished\" is not a job state",
          "scheduled, available, running, retryable, completed, discarded, cancelled"
        )
        usageError(results[2], "--limit \"5000\"", "a whole number from 1 to 1000")
        usageError(
          results[3],
          "--schema \"Bad-Name\" is not a schema name",
          "lowercase letters, digits and underscores"
        )
        usageError(results[4], "--search \" \" is blank")
        usageError(results[5], "--before \"last\" is not a job id")
        yield* client.delete(id)
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "jobs retry, cancel and delete by id with --yes act on each job and report it; a missing one exits 1",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const [a, b] = yield* client.enqueueMany(Email, [{ to: "a@example.com" }, { to: "b@example.com" }], {
          queue: "cli-act"
        })
        const cancelled = parsed(yield* cli(["jobs", "cancel", a.id, b.id, "--yes", "--json"]))
        expect(cancelled).toEqual({
          action: "cancel",
          jobs: [{ id: a.id, ok: true, state: "cancelled" }, { id: b.id, ok: true, state: "cancelled" }]
        })
        expect(yield* stateOf(b.id)).toEqual(Option.some("cancelled"))

        const retried = yield* cli(["jobs", "retry", a.id, "-y"])
        expect(outcome(retried)).toEqual({ code: 0, stderr: "" })
        expect(retried.stdout.trim()).toBe(`Job ${a.id} retried: now available.`)
        expect(yield* stateOf(a.id)).toEqual(Option.some("available"))

        // One job deleted, one missing, one in a state the action does not apply to: exit 1, each reported.
        const partly = yield* cli(["jobs", "delete", b.id, "987654321", "--yes"])
        expect(partly.code).toBe(1)
        expect(partly.stdout.trim()).toBe(`Job ${b.id} deleted.`)
        expect(partly.stderr).toContain("Error: No job with id 987654321")
        expect(partly.stderr).toContain("Error: 1 of 2 job(s) could not be deleted")
        expect(yield* stateOf(b.id)).toEqual(Option.none())
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE ${
          sql(client.schema)
        }.jobs SET state = 'completed', finalized_at = now() WHERE id = ${a.id}::bigint`
        const wrongState = yield* cli(["jobs", "retry", a.id, "--yes", "--json"])
        expect(wrongState.code).toBe(1)
        expect(JSON.parse(wrongState.stdout).jobs).toEqual([{
          id: a.id,
          ok: false,
          error: { _tag: "InvalidJobState", message: `Cannot retry job ${a.id}: it is completed` }
        }])
        yield* client.deleteAll({ queue: "cli-act" })
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "jobs actions by filter act with --yes on the jobs the filter covers and report how many",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const waiting = yield* client.enqueueMany(Email, [1, 2, 3].map((n) => ({ to: `${n}@example.com` })), {
          queue: "cli-bulk"
        })
        const other = yield* client.enqueue(Email, { to: "other@example.com" }, { queue: "cli-bulk-other" })
        const cancelled = parsed(yield* cli(["jobs", "cancel", "--queue", "cli-bulk", "--yes", "--json"]))
        expect(cancelled).toEqual({ action: "cancel", filter: { queue: "cli-bulk" }, count: 3 })
        expect(yield* stateOf(waiting[2].id)).toEqual(Option.some("cancelled"))
        expect(yield* stateOf(other.id)).toEqual(Option.some("available"))

        const retried = yield* cli(["jobs", "retry", "--queue", "cli-bulk", "--search", "2@", "--yes"])
        expect(outcome(retried)).toEqual({ code: 0, stderr: "" })
        expect(retried.stdout.trim()).toBe("Retried 1 job(s) matching queue=\"cli-bulk\" search=\"2@\".")
        expect(yield* stateOf(waiting[1].id)).toEqual(Option.some("available"))

        const nothing = yield* cli(["jobs", "retry", "--queue", "cli-bulk", "--state", "completed", "--yes"])
        expect(outcome(nothing)).toEqual({ code: 0, stderr: "" })
        expect(nothing.stdout).toContain("No job matching queue=\"cli-bulk\" state=\"completed\" can be retried")

        const deleted = parsed(
          yield* cli(["jobs", "delete", "--queue", "cli-bulk", "--state", "cancelled", "-y", "--json"])
        )
        expect(deleted.count).toBe(2)
        expect(yield* client.countMatching({ queue: "cli-bulk" })).toBe(1)

        const [both, neither] = yield* Effect.all([
          cli(["jobs", "delete", waiting[1].id, "--queue", "cli-bulk", "--yes"]),
          cli(["jobs", "delete", "--yes"])
        ], { concurrency: 2 })
        expect(both.code).toBe(2)
        expect(both.stderr).toContain("give job ids or filter options (--queue, --state, --name, --search), not both")
        expect(neither.code).toBe(2)
        expect(neither.stderr).toContain("give job ids, or at least one filter option")
        expect(yield* client.countMatching({ queue: "cli-bulk" })).toBe(1)
        yield* client.deleteAll({ queue: "cli-bulk" })
        yield* client.deleteAll({ queue: "cli-bulk-other" })
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "without --yes and without a terminal on stdin, an action is refused with exit 2 and changes nothing",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Email, { to: "keep@example.com" }, { queue: "cli-refuse" })
        const [byId, byFilter] = yield* Effect.all([
          cli(["jobs", "delete", id]),
          cli(["jobs", "cancel", "--queue", "cli-refuse"])
        ], { concurrency: 2 })
        usageError(byId, "Refusing to delete 1 job(s) without confirmation: stdin is not a terminal", "Pass --yes")
        usageError(byFilter, "Refusing to cancel 1 job(s) without confirmation", "Pass --yes")
        expect(yield* stateOf(id)).toEqual(Option.some("available"))
        yield* client.delete(id)
      }),
    { timeout: testTimeout }
  )

  it.scoped(
    "at a terminal, the confirmation prompt deletes on yes and changes nothing on no (exit 1)",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        const { id } = yield* client.enqueue(Email, { to: "prompt@example.com" }, { queue: "cli-prompt" })
        const t = yield* target
        const answer = (key: string) =>
          Effect.gen(function*() {
            const child = yield* spawnAtTerminal(["jobs", "delete", id, ...t.args], t.env)
            yield* child.waitForOutput(`Delete job(s) ${id}?`)
            child.process.stdin!.write(key)
            return { exit: yield* child.exit, output: yield* child.output }
          })
        const no = yield* answer("n")
        expect(no.exit.code, no.output).toBe(1)
        expect(no.output).toContain("Nothing done: delete 1 job(s) was not confirmed")
        expect(yield* stateOf(id)).toEqual(Option.some("available"))
        const yes = yield* answer("y")
        expect(yes.exit.code, yes.output).toBe(0)
        expect(yes.output).toContain(`Job ${id} deleted.`)
        expect(yield* stateOf(id)).toEqual(Option.none())
      }),
    { timeout: testTimeout }
  )

  it.scoped(
    "recurring list, trigger, pause and resume manage the stored definitions; an unknown name exits 1",
    () =>
      Effect.gen(function*() {
        const definition = Recurring.make("cli-daily", {
          job: Report,
          payload: { kind: "daily" },
          cron: Recurring.daily(3),
          timeZone: "Europe/Berlin"
        })
        yield* Layer.buildWithScope(
          Recurring.layer({ definitions: [definition], missing: "keep", fire: false }),
          yield* Effect.scope
        )
        const listed = parsed(yield* cli(["recurring", "list", "--json"]))
        expect(listed.find((info: { id: string }) => info.id === "cli-daily")).toMatchObject({
          jobName: "report",
          queue: "cli-reports",
          cron: "0 3 * * *",
          timeZone: "Europe/Berlin",
          paused: false
        })
        const text = yield* cli(["recurring", "list"])
        expect(text.stdout).toMatch(/cli-daily\s+report\s+cli-reports\s+cron "0 3 \* \* \*" Europe\/Berlin/)

        const triggered = parsed(yield* cli(["recurring", "trigger", "cli-daily", "--json"]))
        expect(triggered).toMatchObject({ name: "cli-daily", inserted: true })
        const client = yield* JobClient.JobClient
        const job = yield* Effect.map(client.get(triggered.jobId), Option.getOrThrow)
        expect([job.name, job.payload, Option.getOrNull(job.recurringId)]).toEqual([
          "report",
          { kind: "daily" },
          "cli-daily"
        ])

        const paused = parsed(yield* cli(["recurring", "pause", "cli-daily", "--json"]))
        expect([paused.paused, paused.nextRunAt]).toEqual([true, null])
        const resumed = yield* cli(["recurring", "resume", "cli-daily"])
        expect(outcome(resumed)).toEqual({ code: 0, stderr: "" })
        expect(resumed.stdout).toMatch(/^Resumed "cli-daily": next run \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\.$/m)

        const [unknown, blank] = yield* Effect.all([
          cli(["recurring", "trigger", "no-such-definition"]),
          cli(["recurring", "pause", " "])
        ], { concurrency: 2 })
        expect(outcome(unknown)).toEqual({
          code: 1,
          stderr: "Error: No recurring definition with id \"no-such-definition\"\n"
        })
        usageError(blank, "NAME \" \" is not a recurring definition's id")
        yield* client.delete(triggered.jobId)
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "a database that does not answer is one line on stderr and exit 3, without the password",
    () =>
      Effect.gen(function*() {
        const result = yield* runCli(["status"], {
          env: { DATABASE_URL: "postgres://operator:s3cr3t-pw@127.0.0.1:1/jobs" }
        })
        expect(result.code).toBe(3)
        expect(result.stdout).toBe("")
        expect(result.stderr.trim().split("\n")).toEqual([
          "Error: Cannot connect to PostgreSQL at 127.0.0.1:1 (database \"jobs\", user \"operator\"): the connection " +
          "was refused: is the server running, and listening on this host and port? (connect ECONNREFUSED 127.0.0.1:1)"
        ])
        expect(result.stderr).not.toContain("s3cr3t-pw")
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "no database, or a URL that is not PostgreSQL's, is a usage error naming the option; the password stays hidden",
    () =>
      Effect.gen(function*() {
        const [missing, wrong, flag] = yield* Effect.all([
          runCli(["status"]),
          runCli(["jobs", "list"], { env: { DATABASE_URL: "mysql://root:hunter2-pw@db/app" } }),
          runCli(["status", "--database-url", "not a url"])
        ], { concurrency: 3 })
        usageError(missing, "No database given: set DATABASE_URL or pass --database-url")
        usageError(wrong, "--database-url (or DATABASE_URL) \"mysql://root:***@db/app\" is not a PostgreSQL URL")
        expect(wrong.stderr).not.toContain("hunter2-pw")
        usageError(flag, "\"not a url\" is not a PostgreSQL URL", "postgres://user:password@host:port/database")
      }),
    { timeout: testTimeout }
  )

  it.scoped(
    "dashboard serves the page and the API against the database, then stops on SIGTERM with exit 0",
    () =>
      Effect.gen(function*() {
        const client = yield* JobClient.JobClient
        yield* client.enqueue(Email, { to: "dash@example.com" }, { queue: "cli-dash" })
        const t = yield* target
        const token = "cli-dashboard-token-0123456789"
        const served = yield* spawnCli([
          "dashboard",
          "--port",
          "0",
          "--read-only",
          "--token-env",
          "CLI_TEST_TOKEN",
          ...t.args
        ], {
          ...t.env,
          CLI_TEST_TOKEN: token
        })
        yield* served.waitForOutput(/Dashboard listening on http:\/\/127\.0\.0\.1:\d+/)
        const base = (yield* served.output).match(/Dashboard listening on (http:\/\/127\.0\.0\.1:\d+)/)![1]
        const get = (path: string, headers: Record<string, string> = {}) =>
          Effect.promise(async () => {
            const response = await fetch(`${base}${path}`, { headers })
            return { status: response.status, body: await response.text() }
          })
        expect((yield* get("/healthz")).status).toBe(200)
        expect((yield* get("/api/queues")).status).toBe(401)
        const queues = yield* get("/api/queues", { authorization: `Bearer ${token}` })
        expect(queues.status).toBe(200)
        expect(JSON.parse(queues.body).find((q: { name: string }) => q.name === "cli-dash")).toMatchObject({
          counts: { available: 1 }
        })
        const page = yield* get("/", { authorization: `Bearer ${token}` })
        expect([page.status, page.body.includes("<html")]).toEqual([200, true])
        const action = yield* Effect.promise(() =>
          fetch(`${base}/api/queues/cli-dash/pause`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "x-effect-workers": "1" }
          }).then((response) => response.status)
        )
        expect(action).toBe(403)

        yield* served.kill("SIGTERM")
        const exit = yield* served.exit
        expect(exit, yield* served.output).toEqual({ code: 0, signal: null })
        yield* client.deleteAll({ queue: "cli-dash" })
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "dashboard options are checked: a public host without a token, a missing token variable, a bad timeout",
    () =>
      Effect.gen(function*() {
        const [publicHost, noVariable, timeout, port] = yield* Effect.all([
          cli(["dashboard", "--host", "0.0.0.0"]),
          cli(["dashboard", "--token-env", "CLI_TEST_UNSET_VARIABLE"]),
          cli(["dashboard", "--statement-timeout", "soon"]),
          cli(["dashboard", "--port", "70000"])
        ], { concurrency: 2 })
        usageError(publicHost, "--host \"0.0.0.0\" would expose the dashboard beyond this machine without a token")
        usageError(
          noVariable,
          "--token-env CLI_TEST_UNSET_VARIABLE: the environment variable CLI_TEST_UNSET_VARIABLE is not set"
        )
        usageError(timeout, "--statement-timeout must be a positive, finite duration", "got \"soon\"")
        usageError(port, "--port \"70000\" is not allowed: expected a whole number from 0 to 65535")
      }),
    { timeout: testTimeout }
  )

  it.effect(
    "the status of a schema that was never migrated says to run migrate, with exit 1",
    () =>
      Effect.gen(function*() {
        const result = yield* runCli(["status", "--schema", "cli_never_migrated"], {
          env: { DATABASE_URL: (yield* TestDatabase.TestDatabase).url }
        })
        expect(result.code).toBe(1)
        expect(result.stderr).toContain("the job tables are at version 0")
        expect(result.stderr).toContain("effect-workers migrate")
        expect(result.stderr.trim().split("\n")).toHaveLength(1)
      }),
    { timeout: testTimeout }
  )
})
