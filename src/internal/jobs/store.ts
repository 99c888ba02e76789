import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Schema } from "effect"
import { AttemptError, JobInfo, type JobState } from "../../Job.js"
import { quoteIdentifier } from "../../Migrations.js"

/** Where the `JobClient` service keeps its `Store`, for the runner, the recurring jobs and the dashboard. */
export const StoreInternal: unique symbol = Symbol.for("effect-workers/JobClient/store")

/** The job tables of one schema, on one `SqlClient`. */
export class Store {
  readonly channel: string
  /** The schema as a quoted identifier, for statements written as text. */
  readonly quoted: string
  constructor(readonly sql: SqlClient.SqlClient, readonly schema: string) {
    this.channel = `effect_workers:${schema}`
    this.quoted = quoteIdentifier(schema)
  }

  get jobs() {
    return this.sql`${this.sql(this.schema)}.jobs`
  }
  get queues() {
    return this.sql`${this.sql(this.schema)}.queues`
  }
  get runners() {
    return this.sql`${this.sql(this.schema)}.runners`
  }
  get recurring() {
    return this.sql`${this.sql(this.schema)}.recurring`
  }
}

/** Columns of a `JobInfo`, as selected. */
export const infoColumns = `id::text AS id, name, queue, state, payload, priority, attempt,
  max_attempts AS "maxAttempts", run_at AS "runAt", inserted_at AS "insertedAt", attempted_at AS "attemptedAt",
  finalized_at AS "finalizedAt", locked_by AS "lockedBy", unique_key AS "uniqueKey",
  NULLIF(partition_key, '') AS "partitionKey", errors, progress, result,
  trace_id AS "traceId", recurring_id AS "recurringId", recurring_tick AS "recurringTick"`

export interface InfoRow {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly state: JobState
  readonly payload: unknown
  readonly priority: number
  readonly attempt: number
  readonly maxAttempts: number
  readonly runAt: Date
  readonly insertedAt: Date
  readonly attemptedAt: Date | null
  readonly finalizedAt: Date | null
  readonly lockedBy: string | null
  readonly uniqueKey: string | null
  readonly partitionKey: string | null
  readonly errors: ReadonlyArray<unknown>
  readonly progress: unknown
  readonly result: unknown
  readonly traceId: string | null
  readonly recurringId: string | null
  readonly recurringTick: Date | null
}

const decodeErrors = Schema.decodeUnknownSync(Schema.Array(AttemptError))

export const toInfo = (row: InfoRow): JobInfo =>
  new JobInfo({
    id: row.id,
    name: row.name,
    queue: row.queue,
    state: row.state,
    payload: row.payload,
    priority: row.priority,
    attempt: row.attempt,
    maxAttempts: row.maxAttempts,
    runAt: row.runAt,
    insertedAt: row.insertedAt,
    attemptedAt: Option.fromNullable(row.attemptedAt),
    finalizedAt: Option.fromNullable(row.finalizedAt),
    lockedBy: Option.fromNullable(row.lockedBy),
    uniqueKey: Option.fromNullable(row.uniqueKey),
    partitionKey: Option.fromNullable(row.partitionKey),
    errors: decodeErrors(row.errors),
    progress: row.progress ?? undefined,
    result: row.result ?? undefined,
    traceId: Option.fromNullable(row.traceId),
    recurringId: Option.fromNullable(row.recurringId),
    recurringTick: Option.fromNullable(row.recurringTick)
  })

export const liveStatesSql = "('scheduled', 'available', 'running', 'retryable')"

export const get = (store: Store, id: string): Effect.Effect<Option.Option<JobInfo>, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<InfoRow>`SELECT ${sql.literal(infoColumns)} FROM ${store.jobs} WHERE id = ${id}::bigint`,
    (rows) => Option.map(Option.fromNullable(rows[0]), toInfo)
  )
}

/** Whether `id` can be a job's id: digits that fit a bigint. */
export const isJobId = (id: string) => /^[0-9]{1,19}$/.test(id) && BigInt(id) <= 9223372036854775807n

/** Which jobs a list or a bulk action covers; `search` is a job id or text found in the payload. */
export interface Filter {
  readonly queue?: string | undefined
  readonly state?: JobState | undefined
  readonly name?: string | undefined
  readonly search?: string | undefined
}

/** SQL conditions for `filter`, to be joined with AND. */
export const filterConditions = (store: Store, filter: Filter) => {
  const { sql } = store
  const search = filter.search?.trim()
  const pattern = search === undefined ? "" : `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
  return [
    filter.queue === undefined ? undefined : sql`queue = ${filter.queue}`,
    filter.state === undefined ? undefined : sql`state = ${filter.state}`,
    filter.name === undefined ? undefined : sql`name = ${filter.name}`,
    search === undefined || search === ""
      ? undefined
      : isJobId(search)
      ? sql`(id = ${search}::bigint OR payload::text ILIKE ${pattern})`
      : sql`payload::text ILIKE ${pattern}`
  ].filter((condition) => condition !== undefined)
}
