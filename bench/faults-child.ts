/**
 * A job runner process of the faults suite:
 * `node --import tsx bench/faults-child.ts <databaseUrl> <schema>`.
 *
 * Runs `JobRunner.layer` with its default settings (concurrency 10, lease
 * 30 s, ...) under `Host.run`, for one job whose handler sleeps its payload's
 * `millis`, on the tables of `schema` (migrated by the suite). Prints
 * `runner ready <id>` once it runs. The suite tags its connections through
 * `application_name` in the URL, kills it with SIGKILL, cuts its connections,
 * and stops it with SIGTERM.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Host from "../src/Host.js"
import * as Job from "../src/Job.js"
import * as JobClient from "../src/JobClient.js"
import * as JobRunner from "../src/JobRunner.js"
import { jobName, Payload, readyLine } from "./faults-config.js"

const [url, schema] = process.argv.slice(2)
if (url === undefined || schema === undefined) throw new Error("usage: faults-child.ts <databaseUrl> <schema>")

const Sleep = Job.make(jobName, {
  payload: Payload,
  handler: ({ millis }) => Effect.sleep(millis)
})

const ready = Layer.effectDiscard(Effect.gen(function*() {
  const lifecycle = yield* Host.Lifecycle
  const runner = yield* JobRunner.JobRunner
  yield* lifecycle.onStarted(Effect.sync(() => process.stdout.write(`${readyLine}${runner.id}\n`)))
}))

Host.run(
  ready.pipe(
    Layer.provideMerge(JobRunner.layer({ jobs: [Sleep] })),
    Layer.provideMerge(JobClient.layer({ schema, migrate: false })),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url) }))
  )
)
