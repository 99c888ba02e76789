/**
 * `effect-workers status`: queues with their jobs counted by state, the
 * oldest waiting job of each, paused queues, flow-control limits and what
 * they hold back, and the runner processes.
 */
import { Command } from "@effect/cli"
import { Duration, Effect } from "effect"
import { type JobState, JobState as JobStates } from "../../Job.js"
import { JobClient, type QueueLimitsInfo } from "../../JobClient.js"
import * as Migrations from "../../Migrations.js"
import * as Limits from "../jobs/limits.js"
import * as Connection from "./connection.js"
import * as Cli from "./options.js"
import * as Output from "./output.js"

const states: ReadonlyArray<JobState> = JobStates.literals

/** Busiest partition keys shown per queue with limits (as on the dashboard's queues page). */
const flowKeys = 5

const rate = (r: { readonly limit: number; readonly periodMillis: number }) =>
  `${r.limit}/${Duration.format(Duration.millis(r.periodMillis))}`

/** `global 20, key 1, rate 100/1m, fair (api)`, or `-` without limits. */
const describeLimits = (limits: QueueLimitsInfo) => {
  const parts = [
    limits.globalConcurrency === null ? undefined : `global ${limits.globalConcurrency}`,
    limits.keyConcurrency === null ? undefined : `key ${limits.keyConcurrency}`,
    limits.rateLimit === null ? undefined : `rate ${rate(limits.rateLimit)}`,
    limits.keyRateLimit === null ? undefined : `key rate ${rate(limits.keyRateLimit)}`,
    limits.fair ? "fair" : undefined
  ].filter((part) => part !== undefined)
  return parts.length === 0 ? "-" : `${parts.join(", ")}${limits.source === null ? "" : ` (${limits.source})`}`
}

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
      const flows = yield* Effect.forEach(
        queues.filter((queue) => Limits.isLimited(queue.limits)),
        (queue) => client.flow(queue.name, { keys: flowKeys })
      )
      const report = queues.map((queue) => {
        const oldest = waiting.find((w) => w.queue === queue.name)
        const flow = flows.find((f) => f.queue === queue.name)
        return {
          name: queue.name,
          paused: queue.paused,
          counts: Object.fromEntries(
            states.map((state) => [state, counts.find((c) => c.queue === queue.name && c.state === state)?.count ?? 0])
          ) as Record<JobState, number>,
          oldestWaiting: oldest === undefined
            ? null
            : { id: oldest.id, name: oldest.name, dueAt: oldest.dueAt.toISOString(), waitMillis: oldest.waitMillis },
          limits: queue.limits,
          flow: flow === undefined ? null : {
            running: flow.running,
            waiting: flow.waiting,
            started: flow.started,
            heldByGlobalConcurrency: flow.heldByGlobalConcurrency,
            heldByRateLimit: flow.heldByRateLimit,
            heldByKeyLimits: flow.heldByKeyLimits,
            keys: flow.keys
          }
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
            ["QUEUE", "PAUSED", ...states.map((state) => state.toUpperCase()), "OLDEST WAITING", "LIMITS"],
            report.map((queue) => [
              queue.name,
              queue.paused ? "yes" : "no",
              ...states.map((state) => String(queue.counts[state])),
              queue.oldestWaiting === null
                ? "-"
                : `job ${queue.oldestWaiting.id} (${queue.oldestWaiting.name}), ${
                  Output.age(queue.oldestWaiting.waitMillis)
                }`,
              describeLimits(queue.limits)
            ])
          )),
        ...(flows.length === 0 ? [] : [
          "",
          "Flow control (over every runner; HELD: due jobs each limit holds back now):",
          ...Output.table(
            ["QUEUE", "RUNNING", "WAITING", "STARTED", "HELD BY GLOBAL", "HELD BY RATE", "HELD BY KEYS"],
            flows.map((flow) => [
              flow.queue,
              String(flow.running),
              String(flow.waiting),
              flow.limits.rateLimit === null ? "-" : String(flow.started),
              flow.limits.globalConcurrency === null ? "-" : String(flow.heldByGlobalConcurrency),
              flow.limits.rateLimit === null ? "-" : String(flow.heldByRateLimit),
              Limits.isKeyed(flow.limits) ? String(flow.heldByKeyLimits) : "-"
            ])
          ),
          ...(flows.every((flow) => flow.keys.length === 0) ? [] : [
            "",
            `Busiest partition keys (at most ${flowKeys} per queue, most running first):`,
            ...Output.table(
              ["QUEUE", "KEY", "RUNNING", "WAITING", "STARTED", "HELD"],
              flows.flatMap((flow) =>
                flow.keys.map((key) => [
                  flow.queue,
                  key.key === "" ? "(no key)" : key.key,
                  String(key.running),
                  String(key.waiting),
                  flow.limits.keyRateLimit === null ? "-" : String(key.started),
                  key.held ? "yes" : "no"
                ])
              )
            )
          ])
        ]),
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
    "Show each queue with its jobs counted by state, its oldest waiting job, whether it is paused, its flow-control " +
      "limits and the jobs they hold back, and the runner processes with their heartbeats."
  )
)
