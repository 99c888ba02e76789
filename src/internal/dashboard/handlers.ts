import { HttpApiBuilder } from "@effect/platform"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Either, FiberRef, Layer, Option, Schema } from "effect"
import { hostname } from "node:os"
import { JobInfo, JobState } from "../../Job.js"
import { JobClient } from "../../JobClient.js"
import { InvalidJobState, InvalidQueueOptions, JobNotFound, RecurringNotFound } from "../../JobError.js"
import { JobRunner } from "../../JobRunner.js"
import { Recurring } from "../../Recurring.js"
import { RegistryInternal, WorkerRegistry } from "../../WorkerRegistry.js"
import * as Hosts from "../jobs/hosts.js"
import * as Limits from "../jobs/limits.js"
import * as Statements from "../jobs/statements.js"
import * as Store from "../jobs/store.js"
import * as Api from "./api.js"

export interface Settings {
  /** Whether the dashboard is protected by a token or an authorize hook (not loopback alone). */
  readonly protected: boolean
  readonly readOnly: boolean
  readonly bulkLimit: number
  readonly statementTimeout: Duration.Duration
  readonly connections: number
}

/** Who the current request is for, and whether it may only read: set by the access check of each request. */
export const currentViewer = FiberRef.unsafeMake<{ readonly user: string; readonly readOnly: boolean }>({
  user: "unknown",
  readOnly: true
})

/**
 * The dashboard's own share of the database: at most `connections` of its
 * queries at once (the rest wait here, not in the application's pool, which
 * heartbeats, enqueues and outcomes need), each in a transaction with a
 * `statement_timeout`, so one operator's search over millions of rows
 * cannot starve the application.
 */
const gate = (store: Store.Store, settings: Settings) => {
  const semaphore = Effect.unsafeMakeSemaphore(settings.connections)
  const millis = Math.max(1, Math.round(Duration.toMillis(settings.statementTimeout)))
  const setTimeout = store.sql.unsafe(`SET LOCAL statement_timeout = ${millis}`)
  return <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    semaphore.withPermits(1)(store.sql.withTransaction(Effect.zipRight(setTimeout, effect))).pipe(
      Effect.catchIf(
        (error): error is SqlError => (error as { _tag?: unknown })._tag === "SqlError",
        (error) => Effect.fail(unavailable(error, millis))
      )
    ) as unknown as Effect.Effect<A, Exclude<E, SqlError> | Api.DatabaseUnavailable, R>
}

const sqlState = (error: SqlError) => (error.cause as { code?: unknown } | undefined)?.code

const unavailable = (error: SqlError, timeoutMillis: number) =>
  new Api.DatabaseUnavailable({
    message: sqlState(error) === "57014"
      ? `the query ran past the dashboard's statement timeout (${timeoutMillis} ms): narrow the filter`
      : `the database could not answer: ${error.message}`
  })

/** A unique key that a live job holds again turns a retry into a conflict, not a bad state. */
const uniqueConflict = <E>(error: E): Effect.Effect<never, E | Api.Conflict> =>
  error instanceof InvalidJobState && error.reason !== undefined
    ? Effect.fail(new Api.Conflict({ message: error.message }))
    : Effect.fail(error)

const invalidQueue = <A, E, R>(effect: Effect.Effect<A, E | InvalidQueueOptions, R>) =>
  Effect.catchIf(
    effect,
    (error): error is InvalidQueueOptions => error instanceof InvalidQueueOptions,
    (error) => Effect.fail(new Api.InvalidQueue({ queue: error.queue, message: error.message }))
  )

const notFound = (id: string) => new Api.JobNotFound({ id, message: new JobNotFound({ id }).message })

/** Re-raises the job client's errors with their message in the body. */
const withMessages = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    effect,
    (error) => {
      const tag = (error as { _tag?: unknown })._tag
      return tag === "JobNotFound" || tag === "InvalidJobState" || tag === "RecurringNotFound"
    },
    (error) => {
      const e = error as unknown as { _tag: string; id: string; action?: string; state?: string; message: string }
      return Effect.fail(
        e._tag === "JobNotFound"
          ? notFound(e.id)
          : e._tag === "RecurringNotFound"
          ? new Api.RecurringNotFound({ id: e.id, message: e.message })
          : new Api.InvalidJobState({ id: e.id, action: e.action ?? "", state: e.state ?? "", message: e.message })
      )
    }
  ) as Effect.Effect<
    A,
    Exclude<E, { readonly _tag: "JobNotFound" | "InvalidJobState" | "RecurringNotFound" }> | Mapped<E>,
    R
  >

type Mapped<E> = E extends { readonly _tag: "JobNotFound" } ? Api.JobNotFound
  : E extends { readonly _tag: "InvalidJobState" } ? Api.InvalidJobState
  : E extends { readonly _tag: "RecurringNotFound" } ? Api.RecurringNotFound
  : never

const describeFilter = (filter: Store.Filter) =>
  Object.entries(filter).filter(([, value]) => value !== undefined && value !== "").map(([key, value]) =>
    `${key}=${JSON.stringify(value)}`
  ).join(" ") || "(none)"

/** One line per action: who, what, on what, and how many jobs it touched. */
const audit = (action: string, target: string, count: number) =>
  Effect.flatMap(
    FiberRef.get(currentViewer),
    ({ user }) =>
      Effect.logInfo(`Dashboard: ${user} did ${action} on ${target}: ${count} job(s)`).pipe(
        Effect.annotateLogs({ "dashboard.user": user, "dashboard.action": action, "dashboard.target": target })
      )
  )

const states: ReadonlyArray<JobState> = JobState.literals

const encodesAsJobInfo = Schema.encodeEither(JobInfo)

export const handlers = (settings: Settings) => {
  const Jobs = HttpApiBuilder.group(Api.DashboardApi, "jobs", (handlers) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const store = client[Store.StoreInternal]
      const { sql } = store
      const db = gate(store, settings)
      return handlers
        .handle("overview", () =>
          db(Effect.gen(function*() {
            const counts = yield* client.counts
            const throughput = yield* Statements.throughput(store)
            return { counts, throughput }
          })))
        .handle("queues", () =>
          db(Effect.gen(function*() {
            const queues = yield* client.queues
            const counts = yield* client.counts
            const waits = yield* client.oldestWaiting
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
              oldestWaitMillis: waits.find((w) => w.queue === queue.name)?.waitMillis ?? null,
              concurrency: slots.find((s) => s.queue === queue.name)?.slots ?? 0
            }))
          })))
        .handle("pauseQueue", ({ path }) =>
          Effect.tap(invalidQueue(db(client.pause(path.name))), () =>
            audit("pause", `queue ${JSON.stringify(path.name)}`, 0)))
        .handle("resumeQueue", ({ path }) =>
          Effect.tap(invalidQueue(db(client.resume(path.name))), () =>
            audit("resume", `queue ${JSON.stringify(path.name)}`, 0)))
        .handle("jobs", ({ urlParams }) =>
          db(Effect.gen(function*() {
            const limit = Math.max(1, Math.min(500, Math.floor(urlParams.limit ?? 50)))
            const conditions = [
              ...Store.filterConditions(store, urlParams),
              urlParams.before === undefined || !Store.isJobId(urlParams.before)
                ? undefined
                : sql`id < ${urlParams.before}::bigint`
            ].filter((c) =>
              c !== undefined
            )
            const rows = yield* sql<Store.InfoRow>`SELECT ${sql.literal(Store.infoColumns)} FROM ${store.jobs}
              ${conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`}
              ORDER BY jobs.id DESC LIMIT ${limit + 1}`
            // A row the page cannot show (a timestamp of 'infinity', errors of another shape) is left out and
            // named, not allowed to turn the whole list into an error.
            const jobs: Array<JobInfo> = []
            const malformed: Array<string> = []
            for (const row of rows.slice(0, limit)) {
              const info = Either.try(() =>
                Store.toInfo(row)
              ).pipe(
                Either.flatMap((job) =>
                  Either.map(encodesAsJobInfo(job), () => job)
                )
              )
              if (Either.isRight(info)) jobs.push(info.right)
              else malformed.push(row.id)
            }
            if (malformed.length > 0) {
              yield* Effect.logWarning(`Dashboard: job(s) ${malformed.join(", ")} cannot be shown: malformed rows`)
            }
            return { jobs, next: rows.length > limit ? rows[limit - 1].id : null, malformed }
          })))
        .handle("job", ({ path }) =>
          Effect.flatMap(
            db(client.get(path.id)),
            Option.match({ onNone: () => Effect.fail(notFound(path.id)), onSome: Effect.succeed })
          ))
        .handle("retry", ({ path }) =>
          withMessages(db(client.retry(path.id).pipe(Effect.catchAll(uniqueConflict)))).pipe(
            Effect.tap(() => audit("retry", `job ${path.id}`, 1))
          ))
        .handle("runNow", ({ path }) =>
          withMessages(db(client.retry(path.id).pipe(Effect.catchAll(uniqueConflict)))).pipe(
            Effect.tap(() =>
              audit("run now", `job ${path.id}`, 1)
            )
          ))
        .handle("cancel", ({ path }) =>
          withMessages(db(client.cancel(path.id))).pipe(Effect.tap(() =>
            audit("cancel", `job ${path.id}`, 1)
          )))
        .handle("delete", ({ path }) =>
          withMessages(db(client.delete(path.id))).pipe(Effect.tap(() =>
            audit("delete", `job ${path.id}`, 1)
          )))
        .handle("bulk", ({ payload }) =>
          Store.filterConditions(store, payload.filter).length === 0
            ? Effect.fail(
              new Api.InvalidFilter({ message: "a bulk action needs a filter (queue, state, name or search)" })
            )
            : db(bulk(store, payload.action, payload.filter, settings.bulkLimit, payload.dryRun ?? false)).pipe(
              Effect.tap((result) =>
                payload.dryRun === true
                  ? Effect.void
                  : audit(`bulk ${payload.action}`, `jobs matching ${describeFilter(payload.filter)}`, result.count)
              )
            ))
    }))

  const RecurringGroup = HttpApiBuilder.group(Api.DashboardApi, "recurring", (handlers) =>
    Effect.gen(function*() {
      const recurring = yield* Effect.serviceOption(Recurring)
      const client = yield* JobClient
      const db = gate(client[Store.StoreInternal], settings)
      const missing = (id: string) =>
        Effect.fail(new Api.RecurringNotFound({ id, message: new RecurringNotFound({ id }).message }))
      return handlers
        .handle("list", () => Option.isSome(recurring) ? db(recurring.value.list) : Effect.succeed([]))
        .handle("trigger", ({ path }) =>
          Option.isNone(recurring) ? missing(path.id) : withMessages(db(recurring.value.trigger(path.id))).pipe(
            Effect.tap(() =>
              audit("trigger", `recurring ${JSON.stringify(path.id)}`, 1)
            ),
            Effect.map(({ id }) => ({ jobId: id }))
          ))
        .handle("pause", ({ path }) =>
          Option.isNone(recurring)
            ? missing(path.id)
            : withMessages(db(recurring.value.pause(path.id))).pipe(
              Effect.tap(() => audit("pause", `recurring ${JSON.stringify(path.id)}`, 0))
            ))
        .handle("resume", ({ path }) =>
          Option.isNone(recurring)
            ? missing(path.id)
            : withMessages(db(recurring.value.resume(path.id))).pipe(
              Effect.tap(() => audit("resume", `recurring ${JSON.stringify(path.id)}`, 0))
            ))
    }))

  const Processes = HttpApiBuilder.group(Api.DashboardApi, "processes", (handlers) =>
    Effect.gen(function*() {
      const registry = yield* Effect.serviceOption(WorkerRegistry)
      const client = yield* JobClient
      const store = client[Store.StoreInternal]
      const db = gate(store, settings)
      return handlers
        .handle("workers", () =>
          Effect.gen(function*() {
            // This process's own workers from its registry (current to the moment), every other process's from its
            // last report; a process without a database to report to shows its own alone.
            const local = Option.isSome(registry) ? registry.value[RegistryInternal] : undefined
            const self = local?.reportedAs ?? `${hostname()}:${process.pid}`
            const own = (local?.snapshot() ?? []).map((status) => ({
              ...status,
              process: self,
              host: hostname(),
              pid: process.pid,
              local: true
            }))
            // Without the database the page still shows this process's workers.
            const reported = yield* db(Hosts.read(store)).pipe(Effect.orElseSucceed(() => []))
            return [
              ...own,
              ...reported.filter((row) => row.process !== self).flatMap((row) =>
                row.workers.map((status) => ({
                  ...status,
                  process: row.process,
                  host: row.host,
                  pid: row.pid,
                  local: false
                }))
              )
            ]
          }))
        .handle("runners", () =>
          db(store.sql<
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
        .handle("session", () =>
          Effect.map(FiberRef.get(currentViewer), (viewer) => ({
            readOnly: settings.readOnly || viewer.readOnly,
            protected: settings.protected,
            user: viewer.user,
            bulkLimit: settings.bulkLimit
          })))
    }))

  const Flow = HttpApiBuilder.group(Api.DashboardApi, "flow", (handlers) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const store = client[Store.StoreInternal]
      const db = gate(store, settings)
      return handlers.handle("flow", () =>
        db(Effect.gen(function*() {
          const queues = yield* client.queues
          return yield* Effect.forEach(
            queues.filter((queue) => Limits.isLimited(queue.limits)),
            (queue) => Statements.flow(store, queue.name, Api.flowKeys)
          )
        })))
    }))

  return Layer.mergeAll(Jobs, RecurringGroup, Processes, Flow)
}

/**
 * Applies an action to the jobs the filter covers that it applies to, and
 * returns how many; refuses when that is more than `limit` (counted in the
 * same transaction, so nothing is half done). A dry run only counts, up to
 * `limit + 1`.
 */
const bulk = (
  store: Store.Store,
  action: "retry" | "cancel" | "delete",
  filter: Store.Filter,
  limit: number,
  dryRun: boolean
) =>
  Effect.gen(function*() {
    const { sql } = store
    const matching = sql.and(Store.filterConditions(store, filter))
    const applies = Statements.appliesTo(store, action)
    const [{ covered }] = yield* sql<{ covered: number }>`
      SELECT count(*)::int AS covered FROM (
        SELECT 1 FROM ${store.jobs} WHERE ${matching} AND ${applies} LIMIT ${limit + 1}
      ) AS matched`
    if (dryRun) return { count: Number(covered), limit }
    if (Number(covered) > limit) {
      return yield* new Api.BulkLimitExceeded({
        message: `this ${action} would touch more than ${limit} jobs (the dashboard's bulkLimit): ` +
          `narrow the filter, or raise bulkLimit`
      })
    }
    // Each action applies its own states again, under its row locks.
    const count = yield* (action === "retry"
      ? Statements.retryJobs(store, matching, "count")
      : action === "cancel"
      ? Statements.cancelJobs(store, matching, "count")
      : Statements.deleteJobs(store, matching, "count"))
    return { count, limit }
  })

/** What `/readyz` found: one entry per check. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface ReadinessCheck<R> {
  readonly name: string
  readonly check: Effect.Effect<unknown, unknown, R>
}

/**
 * What `/readyz` checks: the database answers, this process's job runner (if
 * any) renewed its heartbeat within its lease, and no hosted worker stopped
 * by failure.
 */
export const readiness = <R>(extra: ReadonlyArray<ReadinessCheck<R>>) =>
  Effect.gen(function*() {
    const client = yield* JobClient
    const { sql } = client[Store.StoreInternal]
    const runner = yield* Effect.serviceOption(JobRunner)
    const registry = yield* Effect.serviceOption(WorkerRegistry)
    const checks: Array<Check> = []
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
