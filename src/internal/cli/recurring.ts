/**
 * `effect-workers recurring list|trigger|pause|resume`: the stored recurring
 * definitions, managed without firing any tick from this process.
 */
import { Command, ValidationError } from "@effect/cli"
import { Effect, Layer, Option, Schema } from "effect"
import * as Recurring from "../../Recurring.js"
import { formatMillis } from "../options.js"
import * as Connection from "./connection.js"
import * as Cli from "./options.js"
import * as Output from "./output.js"

const encodeInfo = Schema.encode(Recurring.RecurringInfo)

/** The definitions' service on the schema; `fire: false`, so this process fires no tick. */
const service = (connection: Connection.Connection) =>
  Recurring.layer({ fire: false }).pipe(Layer.provideMerge(Connection.client(connection)))

const schedule = (info: Recurring.RecurringInfo) =>
  Option.match(info.cron, {
    onSome: (cron) => `cron "${cron}" ${Option.getOrElse(info.timeZone, () => "UTC")}`,
    onNone: () => Option.match(info.everyMillis, { onNone: () => "-", onSome: (ms) => `every ${formatMillis(ms)}` })
  })

const showTime = Option.match({ onNone: () => "-", onSome: Output.time })

const list = Command.make(
  "list",
  { ...Cli.connection, json: Cli.json },
  ({ json, ...connection }) =>
    Effect.gen(function*() {
      const recurring = yield* Recurring.Recurring
      const definitions = yield* recurring.list
      if (json) return yield* Output.printJson(yield* Effect.forEach(definitions, (info) => encodeInfo(info)))
      yield* Output.printLines(
        definitions.length === 0 ? ["No recurring definitions."] : Output.table(
          ["NAME", "JOB", "QUEUE", "SCHEDULE", "NEXT RUN", "LAST RUN", "LAST JOB", "PAUSED"],
          definitions.map((info) => [
            info.id,
            info.jobName,
            info.queue,
            schedule(info),
            showTime(info.nextRunAt),
            showTime(info.lastRunAt),
            Option.match(info.lastJobId, {
              onNone: () => "-",
              onSome: (id) => `${id} (${Option.getOrElse(info.lastJobState, () => "gone")})`
            }),
            info.paused ? "yes" : Option.isSome(info.error) ? "set aside" : "no"
          ])
        )
      )
    }).pipe(Effect.provide(service(connection)))
).pipe(Command.withDescription("List the recurring definitions with their schedule, next and last run."))

const trigger = Command.make(
  "trigger",
  { ...Cli.connection, name: Cli.recurringId, json: Cli.json },
  ({ json, name, ...connection }) =>
    Effect.gen(function*() {
      const recurring = yield* Recurring.Recurring
      const enqueued = yield* recurring.trigger(name)
      yield* json
        ? Output.printJson({ name, jobId: enqueued.id, inserted: enqueued.inserted })
        : Output.printLines([
          enqueued.inserted
            ? `Triggered "${name}": job ${enqueued.id} enqueued.`
            : `Triggered "${name}": job ${enqueued.id}, which holds the same unique key, is still waiting.`
        ])
    }).pipe(Effect.provide(service(connection)))
).pipe(Command.withDescription("Enqueue a recurring definition's job now; its schedule is unchanged."))

const toggle = (action: "pause" | "resume") =>
  Command.make(
    action,
    { ...Cli.connection, name: Cli.recurringId, json: Cli.json },
    ({ json, name, ...connection }) =>
      Effect.gen(function*() {
        const recurring = yield* Recurring.Recurring
        const info = yield* recurring[action](name)
        yield* json ? Output.printJson(yield* encodeInfo(info)) : Output.printLines([
          action === "pause"
            ? `Paused "${name}": it fires nothing until resumed.`
            : `Resumed "${name}": next run ${showTime(info.nextRunAt)}.`
        ])
      }).pipe(Effect.provide(service(connection)))
  ).pipe(
    Command.withDescription(
      action === "pause"
        ? "Stop a recurring definition firing, in every process, until resumed."
        : "Fire a paused recurring definition again from its next tick; the ticks missed meanwhile are not fired."
    )
  )

const parent = Command.make(
  "recurring",
  {},
  (): Effect.Effect<never, ValidationError.ValidationError> =>
    Effect.fail(ValidationError.helpRequested(recurringCommand.descriptor))
)

/** `recurring` and its subcommands. */
export const recurringCommand = parent.pipe(
  Command.withDescription("List recurring definitions; trigger, pause or resume one."),
  Command.withSubcommands([list, trigger, toggle("pause"), toggle("resume")])
)
