/**
 * `effect-workers jobs list|show|retry|cancel|delete`: the jobs, one or
 * many, and the actions on them.
 */
import { Command, Options, ValidationError } from "@effect/cli"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Option, Schema } from "effect"
import { JobInfo } from "../../Job.js"
import { type Action, JobClient } from "../../JobClient.js"
import { type InvalidJobState, JobNotFound } from "../../JobError.js"
import { confirm } from "./confirm.js"
import * as Connection from "./connection.js"
import { messageOf, PartlyDone, UsageError } from "./errors.js"
import * as Cli from "./options.js"
import * as Output from "./output.js"

const encodeJob = Schema.encode(JobInfo)

const showTime = Option.match({ onNone: () => "-", onSome: Output.time })

const list = Command.make(
  "list",
  {
    ...Cli.connection,
    ...Cli.filter,
    limit: Cli.integer("limit", 1, 1000).pipe(
      Options.withDefault(50),
      Options.withDescription("At most this many jobs, newest first: 1 to 1000.")
    ),
    before: Cli.before,
    json: Cli.json
  },
  ({ before, databaseUrl, json, limit, schema, ...filter }) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const jobs = yield* client.list({
        ...Cli.toFilter(filter),
        limit,
        before: Option.getOrUndefined(before)
      })
      if (json) return yield* Output.printJson(yield* Effect.forEach(jobs, (job) => encodeJob(job)))
      yield* Output.printLines(
        jobs.length === 0 ? ["No jobs match."] : [
          ...Output.table(
            ["ID", "NAME", "QUEUE", "STATE", "ATTEMPT", "RUN AT", "INSERTED"],
            jobs.map((job) => [
              job.id,
              job.name,
              job.queue,
              job.state,
              `${job.attempt}/${job.maxAttempts}`,
              Output.time(job.runAt),
              Output.time(job.insertedAt)
            ])
          ),
          ...(jobs.length === limit ? ["", `More may follow: --before ${jobs[jobs.length - 1].id}`] : [])
        ]
      )
    }).pipe(Effect.provide(Connection.client({ databaseUrl, schema })))
).pipe(Command.withDescription("List jobs, newest first, by queue, state, name or search."))

const json = (value: unknown) => JSON.stringify(value, null, 2) ?? "-"

const show = Command.make(
  "show",
  { ...Cli.connection, id: Cli.jobId, json: Cli.json },
  ({ id, json: asJson, ...connection }) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const found = yield* client.get(id)
      if (Option.isNone(found)) return yield* new JobNotFound({ id })
      const job = found.value
      if (asJson) return yield* Output.printJson(yield* encodeJob(job))
      yield* Output.printLines([
        ...Output.fields([
          ["id", job.id],
          ["name", job.name],
          ["queue", job.queue],
          ["state", job.state],
          ["priority", String(job.priority)],
          ["attempt", `${job.attempt} of ${job.maxAttempts}`],
          ["run at", Output.time(job.runAt)],
          ["inserted", Output.time(job.insertedAt)],
          ["attempted", showTime(job.attemptedAt)],
          ["finalized", showTime(job.finalizedAt)],
          ["locked by", Option.getOrElse(job.lockedBy, () => "-")],
          ["unique key", Option.getOrElse(job.uniqueKey, () => "-")],
          [
            "recurring",
            Option.match(job.recurringId, {
              onNone: () => "-",
              onSome: (recurring) => `${recurring} (tick ${showTime(job.recurringTick)})`
            })
          ],
          ["trace", Option.getOrElse(job.traceId, () => "-")]
        ]),
        "payload:",
        ...json(job.payload).split("\n").map((line) => `  ${line}`),
        ...(job.progress === undefined ? [] : ["progress:", ...json(job.progress).split("\n").map((l) => `  ${l}`)]),
        ...(job.result === undefined ? [] : ["result:", ...json(job.result).split("\n").map((l) => `  ${l}`)]),
        ...(job.errors.length === 0 ? [] : [
          "errors:",
          ...job.errors.map((error) => `  attempt ${error.attempt} at ${Output.time(error.at)}: ${error.message}`)
        ])
      ])
    }).pipe(Effect.provide(Connection.client(connection)))
).pipe(Command.withDescription("Show one job: its state, attempts, payload, result and errors."))

const verbs: Record<Action, { readonly verb: string; readonly past: string; readonly description: string }> = {
  retry: {
    verb: "Retry",
    past: "retried",
    description: "Make discarded, cancelled, retryable or scheduled jobs available now (with one more attempt " +
      "if theirs were spent)"
  },
  cancel: {
    verb: "Cancel",
    past: "cancelled",
    description: "Cancel waiting or running jobs (a running one is interrupted by its runner)"
  },
  delete: {
    verb: "Delete",
    past: "deleted",
    description: "Delete jobs that are not running (cancel a running one first)"
  }
}

/** What an action did to one job. */
type Outcome =
  | { readonly id: string; readonly ok: true; readonly state: string }
  | { readonly id: string; readonly ok: false; readonly error: JobNotFound | InvalidJobState }

const act = (action: Action) => {
  const { description, past, verb } = verbs[action]
  return Command.make(
    action,
    { ...Cli.connection, ...Cli.filter, ids: Cli.jobIds, yes: Cli.yes, json: Cli.json },
    ({ databaseUrl, ids, json, schema, yes, ...parsed }) =>
      Effect.gen(function*() {
        const filter = Cli.toFilter(parsed)
        const filtered = Object.keys(filter).length > 0
        if (ids.length > 0 && filtered) {
          return yield* new UsageError({
            message: `${action}: give job ids or filter options (--queue, --state, --name, --search), not both`
          })
        }
        if (ids.length === 0 && !filtered) {
          return yield* new UsageError({
            message: `${action}: give job ids, or at least one filter option (--queue, --state, --name, --search)`
          })
        }
        const client = yield* JobClient
        if (filtered) {
          const described = Output.describeFilter(filter)
          const count = yield* client.countMatching(filter, action)
          if (count === 0) {
            return yield* json
              ? Output.printJson({ action, filter, count: 0 })
              : Output.printLines([`No job matching ${described} can be ${past}: nothing done.`])
          }
          yield* confirm(`${verb} ${count} job(s) matching ${described}?`, `${action} ${count} job(s)`, yes)
          const done = yield* action === "retry"
            ? client.retryAll(filter)
            : action === "cancel"
            ? client.cancelAll(filter)
            : client.deleteAll(filter)
          return yield* json
            ? Output.printJson({ action, filter, count: done })
            : Output.printLines([`${past[0].toUpperCase()}${past.slice(1)} ${done} job(s) matching ${described}.`])
        }
        const unique = [...new Set(ids)]
        yield* confirm(`${verb} job(s) ${unique.join(", ")}?`, `${action} ${unique.length} job(s)`, yes)
        const results = yield* Effect.forEach(unique, (id): Effect.Effect<Outcome, SqlError> =>
          Effect.either(
            action === "retry"
              ? Effect.map(client.retry(id), (job) => job.state)
              : action === "cancel"
              ? Effect.map(client.cancel(id), (job) => job.state)
              : Effect.as(client.delete(id), "deleted")
          ).pipe(
            // A lost connection is no answer about the job: the whole command fails with it.
            Effect.flatMap(Either.match({
              onLeft: (error): Effect.Effect<Outcome, SqlError> =>
                error._tag === "SqlError" ? Effect.fail(error) : Effect.succeed({ id, ok: false, error }),
              onRight: (state): Effect.Effect<Outcome, SqlError> => Effect.succeed({ id, ok: true, state })
            }))
          ))
        const failed = results.filter((result) => !result.ok).length
        if (json) {
          yield* Output.printJson({
            action,
            jobs: results.map((result) =>
              result.ok
                ? { id: result.id, ok: true, state: result.state }
                : { id: result.id, ok: false, error: { _tag: result.error._tag, message: result.error.message } }
            )
          })
        } else {
          yield* Output.printLines(
            results.flatMap((result) =>
              result.ok
                ? [`Job ${result.id} ${past}${action === "delete" ? "" : `: now ${result.state}`}.`]
                : []
            )
          )
          for (const result of results) {
            if (!result.ok) yield* Effect.sync(() => process.stderr.write(`Error: ${messageOf(result.error)}\n`))
          }
        }
        if (failed > 0) return yield* new PartlyDone({ action: past, failed, total: results.length })
      }).pipe(Effect.provide(Connection.client({ databaseUrl, schema })))
  ).pipe(
    Command.withDescription(
      `${description}: the jobs with the ids given, or all those the filter options cover. Asks for ` +
        "confirmation unless --yes."
    )
  )
}

const parent = Command.make(
  "jobs",
  {},
  (): Effect.Effect<never, ValidationError.ValidationError> =>
    Effect.fail(ValidationError.helpRequested(jobs.descriptor))
)

/** `jobs` and its subcommands. */
export const jobs = parent.pipe(
  Command.withDescription("List and show jobs; retry, cancel or delete them by id or by filter."),
  Command.withSubcommands([list, show, act("retry"), act("cancel"), act("delete")])
)
