/**
 * `effect-workers status`: queues with their jobs counted by state, the
 * oldest waiting job of each, paused queues, and the runner processes.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { type JobState, JobState as JobStates } from "../../Job.js"
import { JobClient } from "../../JobClient.js"
import * as Migrations from "../../Migrations.js"
import * as Connection from "./connection.js"
import * as Cli from "./options.js"
import * as Output from "./output.js"

const states: ReadonlyArray<JobState> = JobStates.literals

export const command = Command.make(
  "status",
  { ...Cli.connection, json: Cli.json },
  ({ json, ...connection }) =>
    Effect.gen(function*() {
      const client = yield* JobClient
      const { version } = yield* Migrations.status({ schema: connection.schema })
      const [queues, counts, waiting, runners] = yield* Effect.all([
        client.queues,
        client.counts,
        client.oldestWaiting,
        client.runners
      ])
      const report = queues.map((queue) => {
        const oldest = waiting.find((w) => w.queue === queue.name)
        return {
          name: queue.name,
          paused: queue.paused,
          counts: Object.fromEntries(
            states.map((state) => [state, counts.find((c) => c.queue === queue.name && c.state === state)?.count ?? 0])
          ) as Record<JobState, number>,
          oldestWaiting: oldest === undefined
            ? null
            : { id: oldest.id, name: oldest.name, dueAt: oldest.dueAt.toISOString(), waitMillis: oldest.waitMillis }
        }
      })
      if (json) {
        return yield* Output.printJson({
          schema: connection.schema,
          version,
          queues: report,
          runners: runners.map((runner) => ({
            ...runner,
            startedAt: runner.startedAt.toISOString(),
            heartbeatAt: runner.heartbeatAt.toISOString()
          }))
        })
      }
      const alive = runners.filter((runner) => runner.alive).length
      const paused = report.filter((queue) => queue.paused).map((queue) => queue.name)
      yield* Output.printLines([
        `Schema "${connection.schema}" at version ${version}.`,
        "",
        ...(report.length === 0
          ? ["No queues: no job was ever enqueued."]
          : Output.table(
            ["QUEUE", "PAUSED", ...states.map((state) => state.toUpperCase()), "OLDEST WAITING"],
            report.map((queue) => [
              queue.name,
              queue.paused ? "yes" : "no",
              ...states.map((state) => String(queue.counts[state])),
              queue.oldestWaiting === null
                ? "-"
                : `job ${queue.oldestWaiting.id} (${queue.oldestWaiting.name}), ${
                  Output.age(queue.oldestWaiting.waitMillis)
                }`
            ])
          )),
        ...(paused.length === 0 ? [] : ["", `Paused: ${paused.join(", ")}.`]),
        "",
        `Runners: ${runners.length} registered, ${alive} alive.`,
        ...(runners.length === 0 ? [] : Output.table(
          ["ID", "HOST", "PID", "QUEUES", "STARTED", "HEARTBEAT", "ALIVE"],
          runners.map((runner) => [
            runner.id,
            runner.host,
            String(runner.pid),
            runner.queues.join(","),
            Output.time(runner.startedAt),
            Output.time(runner.heartbeatAt),
            runner.alive ? "yes" : "no"
          ])
        ))
      ])
    }).pipe(Effect.provide(Connection.client(connection)))
).pipe(
  Command.withDescription(
    "Show each queue with its jobs counted by state, its oldest waiting job and whether it is paused, and the " +
      "runner processes with their heartbeats."
  )
)
