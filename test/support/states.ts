/**
 * Changes of a job's state made with SQL, as tests stage them (a finished
 * job, a claim by a runner that died), counted in the job counts as every
 * statement of the library that changes a state counts itself.
 */
import { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { Effect } from "effect"
import * as TestDatabase from "./database.js"

/** Sets `set` (for example sql`state = 'completed'`) on job `id`, and counts its change of state (and completion). */
export const setByHand = (id: string, set: Fragment) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase.TestDatabase
    const table = sql`${sql(schema)}.jobs`
    yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ queue: string; was: string; state: string }>`
        WITH old AS (SELECT id, state AS was FROM ${table} WHERE id = ${id}::bigint FOR UPDATE)
        UPDATE ${table} AS j SET ${set} FROM old WHERE j.id = old.id RETURNING j.queue, old.was, j.state`
      for (const row of rows) {
        if (row.was === row.state) continue
        yield* sql`INSERT INTO ${sql(schema)}.job_count_deltas (queue, state, delta)
          VALUES (${row.queue}, ${row.was}, -1), (${row.queue}, ${row.state}, 1)`
        if (row.state === "completed") {
          yield* sql`INSERT INTO ${sql(schema)}.job_minute_deltas (minute, completed, failed)
            VALUES (date_trunc('minute', now()), 1, 0)`
        }
      }
    }))
  })
