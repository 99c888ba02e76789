/**
 * `effect-workers migrate [--check]`: applies the job tables' pending
 * migrations, or only checks that there are none.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Migrations from "../../Migrations.js"
import * as Connection from "./connection.js"
import { SchemaNotCurrent } from "./errors.js"
import * as Cli from "./options.js"
import * as Output from "./output.js"

const check = Options.boolean("check").pipe(
  Options.withDescription(
    "Change nothing: exit 0 when the schema is at this version, 1 when it is behind (or newer), and list " +
      "the pending migrations."
  )
)

const describe = (migration: Migrations.Migration) => ({ version: migration.version, name: migration.name })

export const command = Command.make(
  "migrate",
  { ...Cli.connection, check, json: Cli.json },
  ({ check, json, ...connection }) =>
    Effect.gen(function*() {
      if (check) {
        const status = yield* Migrations.status({ schema: connection.schema })
        const current = status.version === status.latestVersion
        yield* json
          ? Output.printJson({
            schema: status.schema,
            version: status.version,
            latestVersion: status.latestVersion,
            current,
            pending: status.pending.map(describe)
          })
          : Output.printLines([
            current
              ? `Schema "${status.schema}" is up to date (version ${status.version}).`
              : `Schema "${status.schema}" is at version ${status.version}; this version of effect-workers needs ` +
                `${status.latestVersion}.`,
            ...status.pending.map((migration) => `  pending: ${migration.version} ${migration.name}`)
          ])
        if (!current) return yield* new SchemaNotCurrent(status)
        return
      }
      const applied = yield* Migrations.run({ schema: connection.schema })
      const { version } = yield* Migrations.status({ schema: connection.schema })
      yield* json
        ? Output.printJson({ schema: connection.schema, version, applied: applied.map(describe) })
        : Output.printLines(
          applied.length === 0
            ? [`Schema "${connection.schema}" is up to date (version ${version}); nothing to apply.`]
            : [
              `Applied ${applied.length} migration(s) to schema "${connection.schema}" ` +
              `(${applied.map((migration) => `${migration.version} ${migration.name}`).join(", ")}): ` +
              `now at version ${version}.`
            ]
        )
    }).pipe(Effect.provide(Connection.database(connection)))
).pipe(
  Command.withDescription(
    "Apply the job tables' pending migrations (safe to run from several processes at once), or check them " +
      "with --check. Run it in a deploy pipeline before new versions start."
  )
)
