/**
 * The statements of the job tables, named by what they do. Those that keep
 * jobs alive (heartbeats, renewals, rescue) skip rows other transactions
 * hold (`SKIP LOCKED`), so that a user's transaction on a job's row or an
 * outcome write never holds them up.
 */
import type { Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import { hostname } from "node:os"
import type pg from "pg"
import type { Claimed, Outcome } from "./outcomes.js"
import { infoColumns, type InfoRow, liveStatesSql, type Store } from "./store.js"

/** A database failure in one line: the driver's message is not among its enumerable fields. */
export const errorText = (error: SqlError): string => {
  const cause = error.cause
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message
}

/** A failure caused by the values sent (SQLSTATE class 22), not by the connection or the server. */
export const isDataError = (error: SqlError): boolean => {
  const code = (error.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" && code.startsWith("22")
}

const claimedColumns = (alias: string) =>
  `${alias}.id::text AS id, ${alias}.name, ${alias}.queue, ${alias}.payload, ${alias}.attempt,
  ${alias}.max_attempts AS "maxAttempts", ${alias}.run_at AS "runAt", ${alias}.inserted_at AS "insertedAt",
  ${alias}.trace_id AS "traceId", ${alias}.span_id AS "spanId", ${alias}.recurring_id AS "recurringId",
  ${alias}.recurring_tick AS "recurringTick", ${alias}.claimed_ahead AS "claimedAhead", ${alias}.rescues`

/**
 * The claim, as text for a named prepared statement: up to `$5` due jobs of
 * queue `$3` with names `$4`, for runner `$1` with a lease of `$2` ms. The
 * first `$6` go to free slots at once; the others are claimed ahead, and a
 * rescue gives their attempt back.
 */
export const claimText = (store: Store): string => `
  UPDATE ${store.quoted}.jobs AS j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),
    locked_by = $1, lease_expires_at = now() + $2 * interval '1 millisecond', claimed_ahead = c.n > $6
  FROM (
    SELECT id, row_number() OVER (ORDER BY priority, run_at, id) AS n FROM (
      SELECT id, priority, run_at FROM ${store.quoted}.jobs
      WHERE queue = $3 AND state IN ('scheduled', 'available', 'retryable') AND run_at <= now()
        AND name = ANY($4::text[])
        AND NOT EXISTS (SELECT 1 FROM ${store.quoted}.queues WHERE name = $3 AND paused)
      ORDER BY priority, run_at, id
      LIMIT $5
      FOR UPDATE SKIP LOCKED
    ) AS due
  ) AS c
  WHERE j.id = c.id
  RETURNING ${claimedColumns("j")}`

export interface NewJob {
  readonly name: string
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  /** Absolute time, or `undefined` with `delayMillis`. */
  readonly runAt: Date | undefined
  readonly delayMillis: number
  readonly traceId: string | null
  readonly spanId: string | null
}

/**
 * The one INSERT of jobs, to be named `inserted` in a `WITH`. It inserts the
 * rows of `source`, which has the columns name, queue, payload, priority,
 * max_attempts, run_at, unique_key, trace_id, span_id, recurring_id,
 * recurring_tick and ord, in `ord` order: `scheduled` when `run_at` is in
 * the future, else `available`. A unique key held by a live job, or a
 * recurring tick that has its job already, inserts nothing for that row.
 */
export const insertJobs = (
  store: Store,
  source: Statement.Fragment,
  rows: "enqueued" | "recurring"
): Statement.Fragment => {
  const { sql } = store
  // Enqueued rows have no recurring tick, so only their unique key can conflict: one index to check instead of
  // every unique index, as a conflict target of none would.
  const conflict = rows === "enqueued"
    ? sql`(unique_key) WHERE unique_key IS NOT NULL AND state IN ${sql.literal(liveStatesSql)}`
    : sql``
  return sql`
    INSERT INTO ${store.jobs} (name, queue, payload, state, priority, max_attempts, run_at, unique_key, trace_id,
      span_id, recurring_id, recurring_tick)
    SELECT s.name, s.queue, s.payload, CASE WHEN s.run_at > now() THEN 'scheduled' ELSE 'available' END,
      s.priority, s.max_attempts, s.run_at, s.unique_key, s.trace_id, s.span_id, s.recurring_id, s.recurring_tick
    FROM ${source} AS s
    ORDER BY s.ord
    ON CONFLICT ${conflict} DO NOTHING
    RETURNING id, queue, unique_key, recurring_id, recurring_tick, run_at`
}

/** Wakes runners of the queues of the jobs `inserted` that are due now (on commit), for a `WITH` after {@link insertJobs}. */
export const notifyInserted = (store: Store): Statement.Fragment =>
  store.sql`SELECT pg_notify(${store.channel}, 'j:' || queue)
    FROM (SELECT DISTINCT queue FROM inserted WHERE run_at <= now()) AS due`

/** The trace ids of the current span, stored on new jobs so that their runs link to it. */
export const currentTrace = Effect.map(Effect.option(Effect.currentSpan), (span) => ({
  traceId: Option.isSome(span) ? span.value.traceId : null,
  spanId: Option.isSome(span) ? span.value.spanId : null
}))

/**
 * Inserts jobs of one definition in one statement, waking runners of the
 * queue (on commit) when any is due now. A unique key held by a live job
 * inserts nothing for that payload. Returns the new rows' ids and keys.
 */
export const insert = (
  store: Store,
  job: NewJob,
  payloads: ReadonlyArray<string>,
  keys: ReadonlyArray<string | null>
): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly uniqueKey: string | null }>, SqlError> => {
  const { sql } = store
  // The payloads go as one JSON array: cheaper to send and parse than an array of jsonb values.
  const payloadArray = `[${payloads.join(",")}]`
  const elements = sql`jsonb_array_elements(${payloadArray}::jsonb) WITH ORDINALITY AS e(value, ord)`
  const source = sql`(
    SELECT ${job.name}::text AS name, ${job.queue}::text AS queue, e.value AS payload, ${job.priority}::int AS priority,
      ${job.maxAttempts}::int AS max_attempts, due.at AS run_at, ${
    keys.every((key) => key === null) ? sql`NULL::text` : sql`k.key`
  } AS unique_key,
      ${job.traceId}::text AS trace_id, ${job.spanId}::text AS span_id, NULL::text AS recurring_id,
      NULL::timestamptz AS recurring_tick, e.ord
    FROM due, ${
    keys.every((key) => key === null)
      ? elements
      : sql`${elements} JOIN unnest(${keys}::text[]) WITH ORDINALITY AS k(key, ord) ON k.ord = e.ord`
  })`
  return sql<{ readonly id: string; readonly uniqueKey: string | null }>`
    WITH due AS (
      SELECT COALESCE(${job.runAt ?? null}::timestamptz, now() + ${job.delayMillis} * interval '1 millisecond') AS at
    ), inserted AS (${insertJobs(store, source, "enqueued")}), notified AS (
      -- One queue and one due time: one notification, without going through the rows.
      SELECT pg_notify(${store.channel}, ${`j:${job.queue}`}) FROM due
      WHERE due.at <= now() AND EXISTS (SELECT 1 FROM inserted)
    )
    -- Ids grow in insertion order, which is the payloads' order.
    SELECT id::text AS id, unique_key AS "uniqueKey" FROM inserted, (SELECT count(*) FROM notified) AS n ORDER BY inserted.id`
}

/** Ids of the live jobs holding these unique keys. */
export const liveByKeys = (store: Store, keys: ReadonlyArray<string>) => {
  const { sql } = store
  return sql<{ readonly id: string; readonly uniqueKey: string }>`
    SELECT id::text AS id, unique_key AS "uniqueKey" FROM ${store.jobs}
    WHERE unique_key = ANY(${keys}::text[]) AND state IN ${sql.literal(liveStatesSql)}`
}

/** Connections of a runner's pool that no longer wait for the disk at commit. */
const tuned = new WeakSet<pg.PoolClient>()

/**
 * Runs a query on a connection of the runner's pool. A claim does not wait
 * for its commit to reach the disk: if the server crashes right after, the
 * claim is lost and its job runs again, which at-least-once delivery allows.
 * It saves a flush per claim. Set on each connection before its first query.
 */
export const onPool = async <A extends pg.QueryResultRow>(pool: pg.Pool, query: pg.QueryConfig) => {
  const client = await pool.connect()
  // pg-pool takes its own 'error' listener off a client while it is checked out: without one of ours, a
  // FATAL message between two queries (pg_terminate_backend, a server restart) would crash the process.
  let failure: Error | undefined
  const onError = (error: Error) => {
    failure = error
  }
  client.on("error", onError)
  try {
    if (!tuned.has(client)) {
      await client.query("SET synchronous_commit = off")
      tuned.add(client)
    }
    return await client.query<A>(query)
  } catch (error) {
    failure ??= error instanceof Error ? error : new Error(String(error))
    throw error
  } finally {
    client.off("error", onError)
    // A connection that failed is dropped rather than reused.
    client.release(failure)
  }
}

/** Registers runner `id`, or records its heartbeat: it counts as alive for `aliveMillis` more. */
export const register = (
  store: Store,
  runner: {
    readonly id: string
    readonly queues: ReadonlyArray<string>
    readonly concurrency: Readonly<Record<string, number>>
    readonly aliveMillis: number
  }
): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`
    INSERT INTO ${store.runners} (id, host, pid, queues, concurrency, expires_at) VALUES (
      ${runner.id}, ${hostname()}, ${process.pid}, ${runner.queues}::text[], ${
    JSON.stringify(runner.concurrency)
  }::jsonb,
      now() + ${runner.aliveMillis} * interval '1 millisecond'
    ) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at`)
}

export const deregister = (store: Store, id: string): Effect.Effect<void, SqlError> =>
  Effect.asVoid(store.sql`DELETE FROM ${store.runners} WHERE id = ${id}`)

/**
 * Renews the leases of the jobs `held` that runner `runner` still holds,
 * skipping rows another transaction has locked, and returns those it still
 * holds (renewed or not).
 */
export const renew = (
  store: Store,
  runner: string,
  held: ReadonlyArray<string>,
  leaseMillis: number
): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly attempt: number }>, SqlError> => {
  const { sql } = store
  return sql<{ readonly id: string; readonly attempt: number }>`
    WITH mine AS (
      SELECT id, attempt FROM ${store.jobs}
      WHERE id = ANY(${held}::bigint[]) AND locked_by = ${runner} AND state = 'running'
    ), renewed AS (
      UPDATE ${store.jobs} SET lease_expires_at = now() + ${leaseMillis} * interval '1 millisecond'
      WHERE id IN (SELECT id FROM ${store.jobs} WHERE id IN (SELECT id FROM mine) ORDER BY id FOR UPDATE SKIP LOCKED)
      RETURNING id
    )
    SELECT id::text AS id, attempt FROM mine, (SELECT count(*) FROM renewed) AS n`
}

/** Marks a job claimed ahead as started, before its handler runs; false when the job is no longer `runner`'s. */
export const markStarted = (store: Store, runner: string, job: Claimed): Effect.Effect<boolean, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql`UPDATE ${store.jobs} SET claimed_ahead = false
      WHERE id = ${job.id}::bigint AND attempt = ${job.attempt} AND locked_by = ${runner} AND state = 'running'
      RETURNING id`,
    (rows) => rows.length > 0
  )
}

export const storeProgress = (
  store: Store,
  runner: string,
  job: Claimed,
  value: unknown
): Effect.Effect<void, SqlError> =>
  Effect.asVoid(
    store.sql`UPDATE ${store.jobs} SET progress = ${JSON.stringify(value ?? null)}::jsonb
      WHERE id = ${job.id}::bigint AND attempt = ${job.attempt} AND locked_by = ${runner}`
  )

/**
 * Writes plain completions of runner `runner`'s claims (no result) in one
 * statement. It waits for rows other transactions hold, as no lease-critical
 * statement does: it may take long only when a user's transaction holds a
 * job's row, and then the writer gives up on it in time and tries again.
 *
 * A running job is told by its lease (set by the claim, cleared by every
 * change of state from `running`) rather than by `state = 'running'`: with
 * that condition the planner read the running jobs through their partial
 * index, from statistics taken when few jobs ran, and joined them to the
 * batch in a nested loop: 40-68 ms per batch of 300-500 instead of about
 * 10 ms, 50,000 no-op jobs in 7-9 s instead of 2-3 s.
 */
export const complete = (
  store: Store,
  runner: string,
  batch: ReadonlyArray<Outcome>
): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`
    UPDATE ${store.jobs} AS j SET state = 'completed', finalized_at = now(), lease_expires_at = NULL,
      claimed_ahead = false
    FROM unnest(${batch.map((o) => o.job.id)}::bigint[], ${batch.map((o) => o.job.attempt)}::int[]) AS c(id, attempt)
    WHERE j.id = c.id AND j.attempt = c.attempt AND j.locked_by = ${runner} AND j.lease_expires_at IS NOT NULL`)
}

/**
 * Writes outcomes of any kind in one statement, waking runners of the queues
 * with jobs due again. With `runner`, only that runner's claims are written;
 * without it (a rescue, whose transaction holds the rows), any runner's.
 * Rescued outcomes count a rescue.
 */
export const settle = (
  store: Store,
  runner: string | undefined,
  batch: ReadonlyArray<Outcome>
): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`
    WITH written AS (
      UPDATE ${store.jobs} AS j SET
        state = o.state,
        run_at = CASE WHEN o.delay_ms IS NULL THEN j.run_at ELSE now() + o.delay_ms * interval '1 millisecond' END,
        finalized_at = CASE WHEN o.state IN ('completed', 'discarded') THEN now() ELSE NULL END,
        attempt = j.attempt - o.refund,
        lease_expires_at = NULL,
        claimed_ahead = false,
        rescues = j.rescues + o.rescued,
        errors = CASE WHEN o.error IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(o.error) END,
        result = COALESCE(o.result, j.result)
      FROM unnest(
        ${batch.map((o) => o.job.id)}::bigint[], ${batch.map((o) => o.job.attempt)}::int[],
        ${batch.map((o) => o.state)}::text[], ${batch.map((o) => o.delayMillis)}::float8[],
        ${batch.map((o) => o.refund)}::int[], ${batch.map((o) => o.error)}::jsonb[],
        ${batch.map((o) => o.result)}::jsonb[], ${batch.map((o) => o.rescued ? 1 : 0)}::int[]
      ) AS o(id, attempt, state, delay_ms, refund, error, result, rescued)
      WHERE j.id = o.id AND j.attempt = o.attempt AND j.state = 'running'
        AND (${runner ?? null}::text IS NULL OR j.locked_by = ${runner ?? null})
      RETURNING j.queue, j.state
    )
    SELECT pg_notify(${store.channel}, 'j:' || queue)
    FROM (SELECT DISTINCT queue FROM written WHERE state = 'available') AS released`)
}

/** A running job to rescue, with the runner that held it. */
export interface Stranded extends Claimed {
  readonly lockedBy: string | null
}

/**
 * Locks up to `limit` running jobs whose runner stopped: its heartbeat
 * expired or its row is gone, or the job's lease ran out.
 */
export const stranded = (store: Store, limit: number): Effect.Effect<ReadonlyArray<Stranded>, SqlError> => {
  const { sql } = store
  return sql<Stranded>`
    SELECT ${sql.literal(claimedColumns("j"))}, j.locked_by AS "lockedBy" FROM ${store.jobs} AS j
    WHERE j.state = 'running' AND (
      j.lease_expires_at < now()
      OR NOT EXISTS (SELECT 1 FROM ${store.runners} AS r WHERE r.id = j.locked_by AND r.expires_at > now())
    )
    ORDER BY j.id
    LIMIT ${limit}
    FOR UPDATE OF j SKIP LOCKED`
}

/** Takes the maintenance lock of the schema for the current transaction, if no other process holds it. */
export const maintenanceLock = (store: Store): Effect.Effect<boolean, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<{ readonly locked: boolean }>`
      SELECT pg_try_advisory_xact_lock(hashtext(${`effect_workers.maintenance:${store.schema}`})) AS locked`,
    (rows) => rows[0].locked
  )
}

/** Forgets runners dead for longer than `millis`. */
export const forgetRunners = (store: Store, millis: number): Effect.Effect<void, SqlError> =>
  Effect.asVoid(store.sql`DELETE FROM ${store.runners} WHERE expires_at < now() - ${millis} * interval '1 millisecond'`)

/** Deletes up to 10,000 jobs finished longer than `millis` ago. */
export const prune = (store: Store, millis: number): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`DELETE FROM ${store.jobs} WHERE id IN (
    SELECT id FROM ${store.jobs}
    WHERE finalized_at < now() - ${millis} * interval '1 millisecond'
    LIMIT 10000)`)
}

// ---- actions on jobs (the client's, the dashboard's) ----------------------------------------

/** What an action returns: the changed jobs, or only how many there were (a bulk action). */
type Returning = "info" | "count"

type ActionResult<R extends Returning> = R extends "info" ? ReadonlyArray<InfoRow> : number

const finish = <R extends Returning>(
  returning: R,
  rows: Effect.Effect<ReadonlyArray<InfoRow & { readonly count?: number }>, SqlError>
): Effect.Effect<ActionResult<R>, SqlError> =>
  Effect.map(rows, (rows) => (returning === "info" ? rows : Number(rows[0]?.count ?? 0)) as ActionResult<R>)

/** The states a job can be retried from. */
export const retryableStatesSql = "('discarded', 'cancelled', 'retryable', 'scheduled')"

/**
 * Cancels the live jobs `where` selects: a running one's runner is told to
 * interrupt its run.
 */
export const cancelJobs = <R extends Returning>(
  store: Store,
  where: Statement.Fragment,
  returning: R
): Effect.Effect<ActionResult<R>, SqlError> => {
  const { sql } = store
  return finish(
    returning,
    sql<InfoRow>`
      WITH old AS (
        SELECT id AS old_id, state AS previous FROM ${store.jobs}
        WHERE ${where} AND state IN ${sql.literal(liveStatesSql)} FOR UPDATE
      ), cancelled AS (
        UPDATE ${store.jobs} SET state = 'cancelled', finalized_at = now(), lease_expires_at = NULL
        FROM old WHERE id = old_id RETURNING ${sql.literal(infoColumns)}, previous
      ), notified AS (
        SELECT pg_notify(${store.channel}, 'c:' || id) FROM cancelled WHERE previous = 'running'
      )
      ${
      returning === "info"
        ? sql`SELECT * FROM cancelled, (SELECT count(*) FROM notified) AS n`
        : sql`SELECT (SELECT count(*) FROM cancelled)::int AS count, (SELECT count(*) FROM notified) AS n`
    }`
  )
}

/**
 * Makes the jobs `where` selects available now, with an attempt more if
 * they had spent them all. A finished job whose unique key a live job holds
 * again stays as it is.
 */
export const retryJobs = <R extends Returning>(
  store: Store,
  where: Statement.Fragment,
  returning: R
): Effect.Effect<ActionResult<R>, SqlError> => {
  const { sql } = store
  return finish(
    returning,
    sql<InfoRow>`
      WITH retried AS (
        UPDATE ${store.jobs} SET state = 'available', run_at = now(), finalized_at = NULL,
          max_attempts = GREATEST(max_attempts, attempt + 1)
        WHERE ${where} AND state IN ${sql.literal(retryableStatesSql)}
          AND NOT (unique_key IS NOT NULL AND state IN ('discarded', 'cancelled') AND EXISTS (
            SELECT 1 FROM ${store.jobs} AS live WHERE live.unique_key = jobs.unique_key
              AND live.state IN ${sql.literal(liveStatesSql)}))
        RETURNING ${sql.literal(infoColumns)}
      ), notified AS (
        SELECT pg_notify(${store.channel}, 'j:' || queue) FROM (SELECT DISTINCT queue FROM retried) AS q
      )
      ${
      returning === "info"
        ? sql`SELECT * FROM retried, (SELECT count(*) FROM notified) AS n`
        : sql`SELECT (SELECT count(*) FROM retried)::int AS count, (SELECT count(*) FROM notified) AS n`
    }`
  )
}

/** Deletes the jobs `where` selects, but not running ones. */
export const deleteJobs = <R extends Returning>(
  store: Store,
  where: Statement.Fragment,
  returning: R
): Effect.Effect<ActionResult<R>, SqlError> => {
  const { sql } = store
  return finish(
    returning,
    sql<InfoRow>`
      WITH deleted AS (
        DELETE FROM ${store.jobs} WHERE ${where} AND state <> 'running' RETURNING ${sql.literal(infoColumns)}
      )
      ${returning === "info" ? sql`SELECT * FROM deleted` : sql`SELECT count(*)::int AS count FROM deleted`}`
  )
}

/** The live job other than `id` that holds unique key `key`, if any. */
export const uniqueKeyHolder = (
  store: Store,
  id: string,
  key: string
): Effect.Effect<Option.Option<string>, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<{ readonly id: string }>`SELECT id::text AS id FROM ${store.jobs}
      WHERE unique_key = ${key} AND state IN ${sql.literal(liveStatesSql)} AND id <> ${id}::bigint LIMIT 1`,
    (rows) => Option.fromNullable(rows[0]?.id)
  )
}

/** The jobs among those `where` selects that `action` applies to, as its statement above decides. */
const appliesTo = (store: Store, action: "retry" | "cancel" | "delete"): Statement.Fragment => {
  const { sql } = store
  return action === "retry"
    ? sql`state IN ${sql.literal(retryableStatesSql)}
      AND NOT (unique_key IS NOT NULL AND state IN ('discarded', 'cancelled') AND EXISTS (
        SELECT 1 FROM ${store.jobs} AS live WHERE live.unique_key = jobs.unique_key
          AND live.state IN ${sql.literal(liveStatesSql)}))`
    : action === "cancel"
    ? sql`state IN ${sql.literal(liveStatesSql)}`
    : sql`state <> 'running'`
}

/** How many jobs `where` selects; with `action`, only those it applies to. */
export const countJobs = (
  store: Store,
  where: Statement.Fragment,
  action?: "retry" | "cancel" | "delete"
): Effect.Effect<number, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<{ readonly count: string }>`SELECT count(*) AS count FROM ${store.jobs}
      WHERE ${where}${action === undefined ? sql`` : sql` AND ${appliesTo(store, action)}`}`,
    (rows) => Number(rows[0].count)
  )
}

/** Per queue, the due job no runner has taken for the longest, through the index of claimable jobs. */
export const oldestWaiting = (store: Store): Effect.Effect<
  ReadonlyArray<{
    readonly queue: string
    readonly id: string
    readonly name: string
    readonly dueAt: Date
    readonly waitMillis: number
  }>,
  SqlError
> => {
  const { sql } = store
  return sql`
    SELECT DISTINCT ON (queue) queue, id::text AS id, name, run_at AS "dueAt",
      (extract(epoch FROM now() - run_at) * 1000)::float8 AS "waitMillis"
    FROM ${store.jobs}
    WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= now()
    ORDER BY queue, run_at, id`
}

/** The registered runners, oldest first; alive while their heartbeat has not expired. */
export const runners = (store: Store): Effect.Effect<
  ReadonlyArray<{
    readonly id: string
    readonly host: string
    readonly pid: number
    readonly queues: ReadonlyArray<string>
    readonly concurrency: Readonly<Record<string, number>>
    readonly startedAt: Date
    readonly heartbeatAt: Date
    readonly alive: boolean
  }>,
  SqlError
> => {
  const { sql } = store
  return sql`
    SELECT id, host, pid, queues, concurrency, started_at AS "startedAt", heartbeat_at AS "heartbeatAt",
      expires_at > now() AS alive
    FROM ${store.runners} ORDER BY started_at, id`
}
