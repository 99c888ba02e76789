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
import pg from "pg"
import type { JobState } from "../../Job.js"
import type { QueueFlow, RunnerInfo } from "../../JobClient.js"
import { fromRow, isKeyed, type Limits, limitsColumns, type LimitsRow, none, toParams } from "./limits.js"
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
  ${alias}.recurring_tick AS "recurringTick", ${alias}.claimed_ahead AS "claimedAhead", ${alias}.rescues,
  ${alias}.partition_key AS "partitionKey"`

/**
 * A `WITH` item that counts, in the job counts, the changes of state of the
 * rows of `changed`: a query with columns `queue`, `was` (the state before)
 * and `state` (after). The statements that change states count their own
 * rows: a trigger's transition tables copy every changed row, payload
 * included, and cost about 30% of the database's time per job (50,000 no-op
 * jobs: claims 1,046 ms and completions 813 ms with the trigger, 748 ms and
 * 598 ms counted by the statements).
 */
const countChangesText = (store: Store, changed: string): string => `
  counted AS (
    INSERT INTO ${store.quoted}.job_count_deltas (queue, state, delta)
    SELECT queue, state, sum(delta) FROM (
      SELECT queue, was AS state, -1 AS delta FROM ${changed} AS old
      UNION ALL
      SELECT queue, state, 1 FROM ${changed} AS new
    ) AS changes
    GROUP BY queue, state HAVING sum(delta) <> 0
  )`

/**
 * A `WITH` item that adds to the current minute's figures the jobs of
 * `finished` (columns `state` and `failed`) that completed, and those whose
 * attempt failed.
 */
const countMinuteText = (store: Store, finished: string): string => `
  minute AS (
    INSERT INTO ${store.quoted}.job_minute_deltas (minute, completed, failed)
    SELECT date_trunc('minute', now()), count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE failed)
    FROM ${finished} AS f
    HAVING count(*) FILTER (WHERE state = 'completed' OR failed) > 0
  )`

/**
 * The claim, as text for a named prepared statement: up to `$5` due jobs of
 * queue `$3` with names `$4`, for runner `$1` with a lease of `$2` ms. The
 * first `$6` go to free slots at once; the others are claimed ahead, and a
 * rescue gives their attempt back. It claims nothing from a paused queue, nor
 * from one with limits: those are claimed by {@link limitedClaimText}, under
 * the queue's lock.
 */
export const claimText = (store: Store): string => `
  WITH claimed AS (
    UPDATE ${store.quoted}.jobs AS j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),
      locked_by = $1, lease_expires_at = now() + $2 * interval '1 millisecond', claimed_ahead = c.n > $6
    FROM (
      SELECT id, was, row_number() OVER (ORDER BY priority, run_at, id) AS n FROM (
        SELECT id, state AS was, priority, run_at FROM ${store.quoted}.jobs
        WHERE queue = $3 AND state IN ('scheduled', 'available', 'retryable') AND run_at <= now()
          AND name = ANY($4::text[])
          AND NOT EXISTS (SELECT 1 FROM ${store.quoted}.queues WHERE name = $3 AND (paused OR limited))
        ORDER BY priority, run_at, id
        LIMIT $5
        FOR UPDATE SKIP LOCKED
      ) AS due
    ) AS c
    WHERE j.id = c.id
    RETURNING ${claimedColumns("j")}, c.was
  ),${countChangesText(store, "(SELECT queue, was, 'running' AS state FROM claimed)")}
  SELECT * FROM claimed`

const waiting = "state IN ('scheduled', 'available', 'retryable')"

/**
 * The claim of a queue with limits, as text for a named prepared statement,
 * with the parameters of {@link claimText}. It runs in a transaction that
 * holds the queue's row lock ({@link lockQueueText}), taken by a statement
 * before it: claims of the queue are one at a time over every runner, and
 * this statement's snapshot, taken after the lock, sees every claim committed
 * before. So the running jobs it counts and the starts in the rate window are
 * exact; jobs finishing meanwhile only make it claim fewer.
 *
 * It claims at most the room asked for, the global concurrency left, and the
 * starts the rate window has left. `keyed`, it visits the keys with due jobs
 * in turn from the key after the last one the previous claim visited (a
 * cursor kept on the queue, wrapping round), at most one key per job it may
 * claim, and takes from each key its share of the claim (an even share and one
 * more), within the key's concurrency and rate limits; the jobs chosen are
 * ordered by priority, then by round (each visited key's first job, then
 * each one's second...), then by the key's turn. Otherwise it claims in the
 * order of the unlimited claim.
 *
 * Besides the claimed rows (`id` NULL when there are none) each row has
 * `more`: whether a short claim that claimed something left claimable jobs
 * (keys it did not visit, or keys cut to their share; one that claimed
 * nothing waits for a slot to free), and `wakeMs`: when the rate window
 * allows a start again, if it is spent.
 */
export const limitedClaimText = (store: Store, keyed: boolean, ownLock = false): string => {
  const jobs = `${store.quoted}.jobs`
  const ms = "* interval '1 millisecond'"
  const windowCount = (starts: string, counts: string, period: string) =>
    `(SELECT coalesce(sum(s.c), 0)::int FROM unnest(${starts}, ${counts}) AS s(at, c) WHERE s.at > q.t - ${period} ${ms})`
  // The starts of a window still in it at `now`, in the order kept.
  const trimmed = (starts: string, counts: string, period: string, column: "at" | "c", now = "q.t") =>
    `ARRAY(SELECT s.${column} FROM unnest(${starts}, ${counts}) WITH ORDINALITY AS s(at, c, o)
      WHERE s.at > ${now} - ${period} ${ms} ORDER BY s.o)`
  const nextKey = (after: string) =>
    `(SELECT partition_key FROM ${jobs} WHERE queue = $3 AND ${waiting} AND partition_key <> '' AND run_at <= now()${after}
      ORDER BY partition_key LIMIT 1)`
  // The first due jobs of the queue in order, up to the room asked for: where jobs without a key are looked for.
  const head = `(SELECT id, priority, run_at, partition_key FROM ${jobs}
      WHERE queue = $3 AND ${waiting} AND run_at <= now() AND name = ANY($4::text[])
      ORDER BY priority, run_at, id LIMIT $5)`
  const keys = keyed
    ? `
    after(k, i) AS (
      SELECT ${nextKey(" AND partition_key > (SELECT cursor FROM q)")}, 1 WHERE (SELECT b FROM budget) > 0
      UNION ALL
      SELECT ${nextKey(" AND partition_key > a.k")}, a.i + 1
      FROM after AS a WHERE a.k IS NOT NULL AND a.i < (SELECT v FROM budget)
    ),
    before(k, i) AS (
      SELECT ${nextKey("")}, 1
      WHERE (SELECT v FROM budget) > (SELECT count(*) FROM after WHERE k IS NOT NULL)
      UNION ALL
      SELECT ${nextKey(" AND partition_key > p.k")}, p.i + 1
      FROM before AS p WHERE p.k IS NOT NULL
        AND ((SELECT cursor FROM q) IS NULL OR p.k < (SELECT cursor FROM q))
        AND p.i < (SELECT v FROM budget) - (SELECT count(*) FROM after WHERE k IS NOT NULL)
    ),
    keys AS MATERIALIZED (
      SELECT '' AS k, 0 AS ord WHERE (SELECT b FROM budget) > 0 AND EXISTS (SELECT 1 FROM ${head} AS h WHERE h.partition_key = '')
      UNION ALL
      SELECT k, i AS ord FROM after WHERE k IS NOT NULL
      UNION ALL
      SELECT k, i + (SELECT count(*) FROM after WHERE k IS NOT NULL) FROM before
      WHERE k IS NOT NULL AND ((SELECT cursor FROM q) IS NULL OR k <= (SELECT cursor FROM q))
    ),
    share AS MATERIALIZED (
      SELECT 1 + ceil((SELECT b FROM budget)::float8 / greatest(1, (SELECT count(*) FROM keys)))::int AS s
    ),
    picked AS MATERIALIZED (
      SELECT p.id, p.priority, p.rn, keys.k, keys.ord FROM keys CROSS JOIN LATERAL (
        SELECT x.id, x.priority, row_number() OVER (ORDER BY x.priority, x.run_at, x.id) AS rn FROM (
          SELECT id, priority, run_at FROM ${jobs}
          WHERE queue = $3 AND partition_key = keys.k AND partition_key <> '' AND ${waiting} AND run_at <= now()
            AND name = ANY($4::text[])
          ORDER BY priority, run_at, id
          LIMIT (SELECT greatest(0, least(share.s,
            CASE WHEN q.kc IS NULL THEN share.s ELSE q.kc - (
              SELECT count(*)::int FROM ${jobs} AS r
              WHERE r.queue = $3 AND r.partition_key = keys.k AND r.state = 'running') END,
            CASE WHEN q.krl IS NULL THEN share.s ELSE q.krl - (
              SELECT coalesce(sum(s.c), 0)::int FROM ${store.quoted}.queue_keys AS qk, unnest(qk.starts, qk.counts) AS s(at, c)
              WHERE qk.queue = $3 AND qk.key = keys.k AND s.at > q.t - q.krp ${ms}) END))
            FROM q, share)
        ) AS x
      ) AS p
      WHERE keys.k <> ''
      UNION ALL
      -- Jobs without a key: one group, without per-key limits, found among the first due jobs of the queue.
      SELECT u.id, u.priority, u.rn, '', 0 FROM (
        SELECT h.id, h.priority, row_number() OVER (ORDER BY h.priority, h.run_at, h.id) AS rn
        FROM ${head} AS h WHERE h.partition_key = '' AND EXISTS (SELECT 1 FROM keys WHERE k = '')
      ) AS u
      WHERE u.rn <= (SELECT s FROM share)
    ),
    chosen AS (
      SELECT id, row_number() OVER (ORDER BY priority, rn, ord) AS n FROM picked
      ORDER BY priority, rn, ord LIMIT (SELECT b FROM budget)
    ),
    c AS (
      SELECT j.id, j.state AS was, chosen.n FROM ${jobs} AS j JOIN chosen ON chosen.id = j.id
      WHERE j.${waiting} FOR UPDATE OF j SKIP LOCKED
    ),`
    : `
    -- The due jobs are read up to the room asked for and locked up to the budget: with the budget (unknown when
    -- the statement is planned) as the scan's limit, the planner expected a tenth of the table and joined the
    -- update by a hash of all of it: 18-24 ms per claim of 510 instead of 8-17.
    c AS (
      SELECT j.id, j.state AS was, d.n FROM (
        SELECT id, row_number() OVER (ORDER BY priority, run_at, id) AS n FROM (
          SELECT id, priority, run_at FROM ${jobs}
          WHERE queue = $3 AND ${waiting} AND run_at <= now() AND name = ANY($4::text[])
          ORDER BY priority, run_at, id
          LIMIT $5
        ) AS due
      ) AS d JOIN ${jobs} AS j ON j.id = d.id
      WHERE d.n <= (SELECT b FROM budget) AND j.${waiting}
      FOR UPDATE OF j SKIP LOCKED
    ),`
  const keyWindows = keyed
    ? `,
    key_windows AS (
      INSERT INTO ${store.quoted}.queue_keys AS qk (queue, key, starts, counts, last_start_at)
      SELECT $3, n.k, ARRAY[q.t], ARRAY[n.n], q.t
      FROM (SELECT "partitionKey" AS k, count(*)::int AS n FROM claimed GROUP BY 1) AS n, q
      WHERE q.krl IS NOT NULL AND n.k <> ''
      ON CONFLICT (queue, key) DO UPDATE SET
        starts = ${trimmed("qk.starts", "qk.counts", "(SELECT krp FROM q)", "at", "EXCLUDED.last_start_at")}
          || EXCLUDED.last_start_at,
        counts = ${trimmed("qk.starts", "qk.counts", "(SELECT krp FROM q)", "c", "EXCLUDED.last_start_at")}
          || EXCLUDED.counts,
        last_start_at = EXCLUDED.last_start_at
      RETURNING 1
    )`
    : ""
  return `
  WITH RECURSIVE q AS MATERIALIZED (
    SELECT global_concurrency AS g, key_concurrency AS kc, rate_limit AS rl, rate_period_ms AS rp,
      key_rate_limit AS krl, key_rate_period_ms AS krp, key_cursor AS cursor, rate_starts, rate_counts,
      clock_timestamp() AS t, ${
    ownLock
      ? `paused OR NOT limited OR NOT coalesce(fair, false) OR global_concurrency IS NOT NULL
        OR key_concurrency IS NOT NULL OR rate_limit IS NOT NULL OR key_rate_limit IS NOT NULL`
      : "false"
  } AS locked
    FROM ${store.quoted}.queues WHERE name = $3${ownLock ? " FOR UPDATE" : ""}
  ),
  allowed AS MATERIALIZED (
    SELECT
      CASE WHEN q.g IS NULL THEN $5::int ELSE q.g - (
        SELECT count(*)::int FROM (SELECT 1 FROM ${jobs} WHERE queue = $3 AND state = 'running' LIMIT q.g) AS r) END AS g,
      CASE WHEN q.rl IS NULL THEN $5::int ELSE q.rl - ${windowCount("q.rate_starts", "q.rate_counts", "q.rp")} END AS r
    FROM q
  ),
  budget AS MATERIALIZED (
    -- v: keys to visit. With a key concurrency, each visited key can give that many: fewer keys, fewer probes
    -- (a claim of 510 jobs over 1,000 keys at 5 per key visits 102 keys instead of 510).
    SELECT b, CASE WHEN kc IS NULL THEN b ELSE ceil(b::float8 / kc)::int END AS v
    FROM (SELECT CASE WHEN q.locked THEN 0 ELSE greatest(0, least($5::int, allowed.g, allowed.r)) END AS b FROM allowed, q) AS a, q
  ),
  ${keys}
  claimed AS (
    UPDATE ${jobs} AS j SET state = 'running', attempt = j.attempt + 1, attempted_at = q.t, locked_by = $1,
      lease_expires_at = q.t + $2 ${ms}, claimed_ahead = c.n > $6
    FROM c, q
    WHERE j.id = c.id
    RETURNING ${claimedColumns("j")}, c.was
  ),${countChangesText(store, "(SELECT queue, was, 'running' AS state FROM claimed)")},
  queue_state AS (
    UPDATE ${store.quoted}.queues AS qq SET
      rate_starts = CASE WHEN q.rl IS NULL OR NOT EXISTS (SELECT 1 FROM claimed) THEN qq.rate_starts
        ELSE ${trimmed("qq.rate_starts", "qq.rate_counts", "q.rp", "at")} || q.t END,
      rate_counts = CASE WHEN q.rl IS NULL OR NOT EXISTS (SELECT 1 FROM claimed) THEN qq.rate_counts
        ELSE ${trimmed("qq.rate_starts", "qq.rate_counts", "q.rp", "c")} || (SELECT count(*)::int FROM claimed) END,
      key_cursor = ${
    keyed ? "COALESCE((SELECT k FROM keys ORDER BY ord DESC LIMIT 1), qq.key_cursor)" : "qq.key_cursor"
  }
    FROM q
    WHERE qq.name = $3 AND (q.rl IS NOT NULL AND EXISTS (SELECT 1 FROM claimed)${
    keyed ? " OR EXISTS (SELECT 1 FROM keys)" : ""
  })
    RETURNING 1
  )${keyWindows},
  meta AS (
    SELECT ${
    keyed
      ? `(SELECT count(*) FROM claimed) BETWEEN 1 AND $5 - 1 AND (SELECT b FROM budget) = $5 AND (
          (SELECT count(*) FROM keys) >= (SELECT v FROM budget)
          OR EXISTS (SELECT 1 FROM picked GROUP BY k HAVING count(*) >= (SELECT s FROM share)))`
      : "false"
  } AS more, q.locked,
      CASE WHEN q.rl IS NOT NULL AND allowed.r - (SELECT count(*) FROM claimed) <= 0 THEN greatest(0, 1000 * extract(
        epoch FROM coalesce((SELECT min(s.at) FROM unnest(q.rate_starts) AS s(at) WHERE s.at > q.t - q.rp ${ms}), q.t)
          + q.rp ${ms} - clock_timestamp()))::float8 END AS "wakeMs"
    FROM q, allowed, (SELECT count(*) FROM queue_state) AS u${keyed ? ", (SELECT count(*) FROM key_windows) AS w" : ""}
  )
  SELECT claimed.*, meta.more, meta."wakeMs", meta.locked FROM meta LEFT JOIN claimed ON true`
}

/**
 * Locks queue `$1`'s row for the claim transaction, and reads whether it is
 * paused and its limits.
 */
export const lockQueueText = (store: Store): string =>
  `SELECT paused, limited, ${limitsColumns} FROM ${store.quoted}.queues WHERE name = $1 FOR UPDATE`

/**
 * Begins the claim transaction of queue `name` and locks its row (see
 * {@link lockQueueText}), in one round trip: three statements sent as one
 * query, the queue's name as a literal.
 *
 * The claim's plan is generic, planned once per connection: a custom plan
 * of the keyed claim took 2-5 ms to plan on every claim (the planner never
 * switched to the generic plan by itself), for the same plan shape.
 */
const beginClaimText = (store: Store, name: string): string =>
  `BEGIN; SET LOCAL plan_cache_mode = force_generic_plan;
  ${lockQueueText(store).replace("$1", pg.escapeLiteral(name))}`

/** What a claim of a queue with limits found. */
export interface LimitedClaim {
  readonly rows: ReadonlyArray<Claimed>
  /** The queue's limits; `undefined` when it has none (any more). */
  readonly limits: Limits | undefined
  readonly more: boolean
  readonly wakeMs: number | null
}

/** A keyed claim's rows: the claimed jobs (`id` NULL when there are none) and what the claim found. */
type LimitedRow = Claimed & {
  readonly more: boolean
  readonly wakeMs: number | null
  readonly locked: boolean
} & Record<string, unknown>

const fromLimitedRows = (rows: ReadonlyArray<LimitedRow>, limits: Limits): LimitedClaim => {
  const first = rows[0]
  return {
    rows: rows.filter((r) => r.id !== null),
    limits,
    more: first?.more ?? false,
    wakeMs: first?.wakeMs ?? null
  }
}

const fairOnly: Limits = { ...none, fair: true }

/**
 * Claims from a queue that has (or had) limits, in a transaction holding its
 * row lock. A queue found without limits is claimed as the unlimited claim
 * does, and `limits` is `undefined`.
 *
 * `fair`: the queue had only `fair` at the last claim. Nothing is counted
 * then, so the claim needs no snapshot taken after the lock: one statement
 * locks the row itself (the lock returns the row's latest version, and holds
 * claims of the queue one at a time) and claims, in one round trip instead
 * of three. It claims nothing if the row then shows another limit, or a
 * pause, and the claim is made again in the transaction. In a busy runner
 * (the flow bench, 100 keys) the round trips of the transaction took 2-7 ms
 * each; 19 claims of 510 jobs took 583-610 ms this way, 603-673 ms in it.
 */
export const claimLimited = async (
  pool: pg.Pool,
  store: Store,
  values: ReadonlyArray<unknown>,
  fair = false
): Promise<LimitedClaim> =>
  withPoolClient(pool, async (client) => {
    if (fair) {
      const claimed = await client.query<LimitedRow>({
        name: `effect-workers-claim-fair:${store.schema}`,
        text: limitedClaimText(store, true, true),
        values: values as Array<unknown>
      })
      const first = claimed.rows[0]
      if (first !== undefined && !first.locked) return fromLimitedRows(claimed.rows, fairOnly)
    }
    try {
      const begun = await client.query(beginClaimText(store, String(values[2])))
      const lock = (begun as unknown as ReadonlyArray<pg.QueryResult>)[2] as pg.QueryResult<
        LimitsRow & { readonly paused: boolean; readonly limited: boolean }
      >
      const row = lock.rows[0]
      let result: LimitedClaim
      if (row === undefined || !row.limited) {
        const claimed = await client.query<Claimed & Record<string, unknown>>({
          name: `effect-workers-claim:${store.schema}`,
          text: claimText(store),
          values: values as Array<unknown>
        })
        result = { rows: claimed.rows, limits: undefined, more: false, wakeMs: null }
      } else {
        const limits = fromRow(row)
        if (row.paused) {
          result = { rows: [], limits, more: false, wakeMs: null }
        } else {
          const keyed = isKeyed(limits)
          const claimed = await client.query<LimitedRow>({
            name: `effect-workers-claim-${keyed ? "keyed" : "limited"}:${store.schema}`,
            text: limitedClaimText(store, keyed),
            values: values as Array<unknown>
          })
          result = fromLimitedRows(claimed.rows, limits)
        }
      }
      await client.query("COMMIT")
      return result
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {})
      throw error
    }
  })

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
 * max_attempts, run_at, unique_key, partition_key ('' for none), trace_id,
 * span_id, recurring_id, recurring_tick and ord, in `ord` order: `scheduled`
 * when `run_at` is in the future, else `available`. A unique key held by a
 * live job, or a recurring tick that has its job already, inserts nothing
 * for that row.
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
    INSERT INTO ${store.jobs} (name, queue, payload, state, priority, max_attempts, run_at, unique_key, partition_key,
      trace_id, span_id, recurring_id, recurring_tick)
    SELECT s.name, s.queue, s.payload, CASE WHEN s.run_at > now() THEN 'scheduled' ELSE 'available' END,
      s.priority, s.max_attempts, s.run_at, s.unique_key, s.partition_key, s.trace_id, s.span_id, s.recurring_id,
      s.recurring_tick
    FROM ${source} AS s
    ORDER BY s.ord
    ON CONFLICT ${conflict} DO NOTHING
    RETURNING id, queue, state, unique_key, recurring_id, recurring_tick, run_at`
}

/**
 * Counts the jobs `inserted` ({@link insertJobs}) in the job counts, for a
 * `WITH` after it (it runs whether read or not). Inserts are counted here
 * rather than by a trigger on the jobs table: a statement trigger's
 * transition table copies every new row, payload included, which cost a
 * quarter of the bulk enqueue rate (50,000 jobs: 602 ms against 452 ms).
 */
export const countInserted = (store: Store): Statement.Fragment =>
  store.sql`counted AS (
    INSERT INTO ${store.sql(store.schema)}.job_count_deltas (queue, state, delta)
    SELECT queue, state, count(*) FROM inserted GROUP BY queue, state
  )`

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
  keys: ReadonlyArray<string | null>,
  partitionKeys: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly uniqueKey: string | null }>, SqlError> => {
  const { sql } = store
  // The payloads go as one JSON array: cheaper to send and parse than an array of jsonb values.
  const payloadArray = `[${payloads.join(",")}]`
  const elements = sql`jsonb_array_elements(${payloadArray}::jsonb) WITH ORDINALITY AS e(value, ord)`
  const source = sql`(
    SELECT ${job.name}::text AS name, ${job.queue}::text AS queue, e.value AS payload, ${job.priority}::int AS priority,
      ${job.maxAttempts}::int AS max_attempts, due.at AS run_at, ${
    keys.every((key) => key === null) ? sql`NULL::text` : sql`k.key`
  } AS unique_key, ${
    partitionKeys.every((key) => key === "") ? sql`''::text` : sql`(${partitionKeys}::text[])[e.ord::int]`
  } AS partition_key,
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
    ), inserted AS (${insertJobs(store, source, "enqueued")}), ${countInserted(store)}, notified AS (
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
export const onPool = <A extends pg.QueryResultRow>(pool: pg.Pool, query: pg.QueryConfig) =>
  withPoolClient(pool, (client) => client.query<A>(query))

/** Runs `f` on a connection of the runner's pool (see {@link onPool}); one that failed is dropped, not reused. */
export const withPoolClient = async <A>(pool: pg.Pool, f: (client: pg.PoolClient) => Promise<A>): Promise<A> => {
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
    return await f(client)
  } catch (error) {
    failure ??= error instanceof Error ? error : new Error(String(error))
    throw error
  } finally {
    client.off("error", onError)
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
 * The batch is found through the primary key alone (`id = ANY`), each
 * job's attempt looked up in a JSON object, so that no plan depends on
 * statistics. Joined to the batch as a table, the planner chose by the
 * jobs' statistics: a hash join over a scan of the whole table (12-14 ms per
 * batch of 500 with 50,000 jobs), a nested loop over the running jobs when
 * statistics said few ran (40-68 ms), and the primary key only a third of
 * the time; through the key it is 4-7 ms.
 */
export const complete = (
  store: Store,
  runner: string,
  batch: ReadonlyArray<Outcome>
): Effect.Effect<void, SqlError> => {
  const { sql } = store
  const attempts = JSON.stringify(Object.fromEntries(batch.map((o) => [o.job.id, o.job.attempt])))
  return Effect.asVoid(sql`
    WITH done AS (
      UPDATE ${store.jobs} AS j SET state = 'completed', finalized_at = now(), lease_expires_at = NULL,
        claimed_ahead = false
      WHERE j.id = ANY(${batch.map((o) => o.job.id)}::bigint[])
        AND j.attempt = (${attempts}::jsonb ->> j.id::text)::int
        AND j.locked_by = ${runner} AND j.lease_expires_at IS NOT NULL
      RETURNING j.queue, 'running' AS was, 'completed' AS state, false AS failed
    ),${sql.literal(countChangesText(store, "done"))},${sql.literal(countMinuteText(store, "done"))}
    SELECT 1`)
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
  // The outcomes as one JSON object by job id, each row looking up its own, so that the batch is read through the
  // primary key alone, whatever the statistics (see `complete`). A field left out is SQL NULL.
  const outcomes = `{${
    batch.map((o) =>
      `${JSON.stringify(o.job.id)}:{"a":${o.job.attempt},"s":${JSON.stringify(o.state)},"r":${o.refund},"q":${
        o.rescued ? 1 : 0
      }${o.delayMillis === null ? "" : `,"d":${o.delayMillis}`}${o.error === null ? "" : `,"e":${o.error}`}${
        o.result === null ? "" : `,"x":${o.result}`
      }}`
    ).join(",")
  }}`
  const mine = sql`((SELECT m FROM batch) -> j.id::text)`
  return Effect.asVoid(sql`
    WITH batch AS (SELECT ${outcomes}::jsonb AS m),
    written AS (
      UPDATE ${store.jobs} AS j SET
        (state, run_at, finalized_at, attempt, rescues, errors, result) = (
          SELECT o ->> 's',
            CASE WHEN o ? 'd' THEN now() + (o ->> 'd')::float8 * interval '1 millisecond' ELSE j.run_at END,
            CASE WHEN o ->> 's' IN ('completed', 'discarded') THEN now() ELSE NULL END,
            j.attempt - (o ->> 'r')::int,
            j.rescues + (o ->> 'q')::int,
            CASE WHEN o ? 'e' THEN j.errors || jsonb_build_array(o -> 'e') ELSE j.errors END,
            COALESCE(o -> 'x', j.result)
          FROM (SELECT ${mine} AS o) AS b
        ),
        lease_expires_at = NULL,
        claimed_ahead = false
      WHERE j.id = ANY(${batch.map((o) => o.job.id)}::bigint[]) AND j.attempt = (${mine} ->> 'a')::int
        AND j.state = 'running' AND (${runner ?? null}::text IS NULL OR j.locked_by = ${runner ?? null})
      RETURNING j.queue, 'running' AS was, j.state, ${mine} ? 'e' AS failed
    ),${sql.literal(countChangesText(store, "written"))},${sql.literal(countMinuteText(store, "written"))}
    SELECT pg_notify(${store.channel}, 'j:' || queue)
    FROM (SELECT DISTINCT queue FROM written WHERE state = 'available') AS released`)
}

/** A running job to rescue, with the runner that held it. */
export interface Stranded extends Claimed {
  readonly lockedBy: string | null
}

/**
 * Locks up to `limit` running jobs whose runner stopped: its heartbeat
 * expired or its row is gone, or the job's lease ran out. Never the jobs of
 * `self`, the runner asking: it is alive, and its heartbeat drops the jobs
 * it lost (a late heartbeat on a starved process made it rescue, and run
 * again, a job it had claimed itself).
 */
export const stranded = (
  store: Store,
  limit: number,
  self: string
): Effect.Effect<ReadonlyArray<Stranded>, SqlError> => {
  const { sql } = store
  return sql<Stranded>`
    SELECT ${sql.literal(claimedColumns("j"))}, j.locked_by AS "lockedBy" FROM ${store.jobs} AS j
    WHERE j.state = 'running' AND j.locked_by IS DISTINCT FROM ${self} AND (
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

// ---- flow control ---------------------------------------------------------------------------

/** The limit columns to set, from checked limits. */
const limitValues = (store: Store, limits: Limits) => {
  const { sql } = store
  const [g, kc, rl, rp, krl, krp, fair] = toParams(limits)
  return sql`${g}::int, ${kc}::int, ${rl}::int, ${rp}::int, ${krl}::int, ${krp}::int, ${fair}::boolean`
}

/**
 * Sets queue `queue`'s limits, as given through the client (`api`: kept until
 * {@link resetLimits}), and tells runners at once (on commit).
 */
export const setLimits = (store: Store, queue: string, limits: Limits): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`
    WITH changed AS (
      INSERT INTO ${store.queues} (name, global_concurrency, key_concurrency, rate_limit, rate_period_ms,
        key_rate_limit, key_rate_period_ms, fair, limits_source, limits_updated_at, updated_at)
      VALUES (${queue}, ${limitValues(store, limits)}, 'api', now(), now())
      ON CONFLICT (name) DO UPDATE SET global_concurrency = EXCLUDED.global_concurrency,
        key_concurrency = EXCLUDED.key_concurrency, rate_limit = EXCLUDED.rate_limit,
        rate_period_ms = EXCLUDED.rate_period_ms, key_rate_limit = EXCLUDED.key_rate_limit,
        key_rate_period_ms = EXCLUDED.key_rate_period_ms, fair = EXCLUDED.fair, limits_source = 'api',
        limits_updated_at = now(), updated_at = now()
      RETURNING name
    )
    SELECT pg_notify(${store.channel}, ${`l:${queue}`}) FROM changed`)
}

/**
 * Gives queue `queue`'s limits back to the runners' options: none until a
 * runner whose options give limits for it stores them (at its next heartbeat).
 */
export const resetLimits = (store: Store, queue: string): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`
    WITH changed AS (
      UPDATE ${store.queues} SET global_concurrency = NULL, key_concurrency = NULL, rate_limit = NULL,
        rate_period_ms = NULL, key_rate_limit = NULL, key_rate_period_ms = NULL, fair = false, limits_source = NULL,
        limits_updated_at = now(), updated_at = now()
      WHERE name = ${queue}
      RETURNING name
    )
    SELECT pg_notify(${store.channel}, ${`l:${queue}`}) FROM changed`)
}

/**
 * Stores the limits a runner's options give its queues, unless they were set
 * through the client; `unset` stores them only where no limits are stored
 * (a heartbeat's, after a reset). Runners of a queue whose limits changed are told.
 */
export const storeCodeLimits = (
  store: Store,
  limits: ReadonlyArray<readonly [string, Limits]>,
  unset: boolean
): Effect.Effect<void, SqlError> => {
  const { sql } = store
  if (limits.length === 0) return Effect.void
  const column = <A>(f: (limits: Limits) => A) => limits.map(([, l]) => f(l))
  return Effect.asVoid(sql`
    WITH given AS (
      SELECT * FROM unnest(${limits.map(([name]) => name)}::text[], ${column((l) => l.globalConcurrency)}::int[],
        ${column((l) => l.keyConcurrency)}::int[], ${column((l) => l.rateLimit?.limit ?? null)}::int[],
        ${column((l) => l.rateLimit?.periodMillis ?? null)}::int[], ${
    column((l) => l.keyRateLimit?.limit ?? null)
  }::int[],
        ${column((l) => l.keyRateLimit?.periodMillis ?? null)}::int[], ${column((l) => l.fair)}::boolean[])
        AS g(name, g, kc, rl, rp, krl, krp, fair)
    ), changed AS (
      INSERT INTO ${store.queues} AS q (name, global_concurrency, key_concurrency, rate_limit, rate_period_ms,
        key_rate_limit, key_rate_period_ms, fair, limits_source, limits_updated_at, updated_at)
      SELECT name, g, kc, rl, rp, krl, krp, fair, 'code', now(), now() FROM given
      ON CONFLICT (name) DO UPDATE SET global_concurrency = EXCLUDED.global_concurrency,
        key_concurrency = EXCLUDED.key_concurrency, rate_limit = EXCLUDED.rate_limit,
        rate_period_ms = EXCLUDED.rate_period_ms, key_rate_limit = EXCLUDED.key_rate_limit,
        key_rate_period_ms = EXCLUDED.key_rate_period_ms, fair = EXCLUDED.fair, limits_source = 'code',
        limits_updated_at = now(), updated_at = now()
      WHERE ${unset ? sql`q.limits_source IS NULL` : sql`q.limits_source IS DISTINCT FROM 'api'`}
        AND (q.limits_source IS NULL OR (q.global_concurrency, q.key_concurrency, q.rate_limit, q.rate_period_ms,
          q.key_rate_limit, q.key_rate_period_ms, q.fair) IS DISTINCT FROM (EXCLUDED.global_concurrency,
          EXCLUDED.key_concurrency, EXCLUDED.rate_limit, EXCLUDED.rate_period_ms, EXCLUDED.key_rate_limit,
          EXCLUDED.key_rate_period_ms, EXCLUDED.fair))
      RETURNING name
    )
    SELECT pg_notify(${store.channel}, 'l:' || name) FROM changed`)
}

/** Which of `queues` have limits now. */
export const limitedQueues = (store: Store, queues: ReadonlyArray<string>): Effect.Effect<Set<string>, SqlError> => {
  const { sql } = store
  return Effect.map(
    sql<{ readonly name: string }>`SELECT name FROM ${store.queues} WHERE name = ANY(${queues}::text[]) AND limited`,
    (rows) => new Set(rows.map((row) => row.name))
  )
}

/** Wakes the runners of `queues`: a slot of a queue with limits came free. */
export const notifyQueues = (store: Store, queues: ReadonlyArray<string>): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`SELECT pg_notify(${store.channel}, 'j:' || q) FROM unnest(${queues}::text[]) AS q`)
}

/** Forgets per-key rate windows whose last start is older than their queue's window (or whose queue has none). */
export const pruneKeyWindows = (store: Store): Effect.Effect<void, SqlError> => {
  const { sql } = store
  return Effect.asVoid(sql`DELETE FROM ${sql(store.schema)}.queue_keys AS k WHERE NOT EXISTS (
    SELECT 1 FROM ${store.queues} AS q WHERE q.name = k.queue AND q.key_rate_period_ms IS NOT NULL
      AND k.last_start_at > now() - q.key_rate_period_ms * interval '1 millisecond')`)
}

/** A queue's limits, what runs in it, and what waits because of a limit; the `top` busiest keys. */
export const flow = (store: Store, queue: string, top: number): Effect.Effect<QueueFlow, SqlError> => {
  const { sql } = store
  return Effect.gen(function*() {
    const [settings] = yield* sql<
      LimitsRow & {
        readonly paused: boolean
        readonly source: "code" | "api" | null
        readonly started: number
      }
    >`
      SELECT paused, ${sql.literal(limitsColumns)}, limits_source AS source,
        (SELECT coalesce(sum(s.c), 0)::int FROM unnest(rate_starts, rate_counts) AS s(at, c)
          WHERE s.at > clock_timestamp() - rate_period_ms * interval '1 millisecond') AS started
      FROM ${store.queues} WHERE name = ${queue}`
    const limits = settings === undefined ? none : fromRow(settings)
    const keys = yield* sql<
      { readonly key: string; readonly running: number; readonly waiting: number; readonly started: number }
    >`
      WITH running AS (
        SELECT partition_key AS key, count(*)::int AS n FROM ${store.jobs} WHERE queue = ${queue} AND state = 'running'
        GROUP BY 1
      ), due AS (
        SELECT partition_key AS key, count(*)::int AS n FROM ${store.jobs}
        WHERE queue = ${queue} AND state IN ('scheduled', 'available', 'retryable') AND run_at <= now()
        GROUP BY 1
      )
      SELECT coalesce(r.key, d.key) AS key, coalesce(r.n, 0) AS running, coalesce(d.n, 0) AS waiting,
        coalesce((SELECT sum(s.c)::int FROM ${
      sql(store.schema)
    }.queue_keys AS qk, unnest(qk.starts, qk.counts) AS s(at, c)
          WHERE qk.queue = ${queue} AND qk.key = coalesce(r.key, d.key)
            AND s.at > clock_timestamp() - ${
      limits.keyRateLimit?.periodMillis ?? 0
    } * interval '1 millisecond'), 0) AS started
      FROM running AS r FULL JOIN due AS d ON d.key = r.key`
    const keyHeld = (k: { readonly key: string; readonly running: number; readonly started: number }) =>
      k.key !== "" && (
        (limits.keyConcurrency !== null && k.running >= limits.keyConcurrency) ||
        (limits.keyRateLimit !== null && k.started >= limits.keyRateLimit.limit)
      )
    let running = 0
    let waiting = 0
    let heldByKeyLimits = 0
    for (const k of keys) {
      running += k.running
      waiting += k.waiting
      if (keyHeld(k)) heldByKeyLimits += k.waiting
    }
    const started = limits.rateLimit === null ? 0 : settings?.started ?? 0
    const busiest = [...keys].sort((a, b) => b.running - a.running || b.waiting - a.waiting || (a.key < b.key ? -1 : 1))
      .slice(0, top)
      .map((k) => ({ ...k, started: limits.keyRateLimit === null ? 0 : k.started, held: keyHeld(k) }))
    return {
      queue,
      paused: settings?.paused ?? false,
      limits: { ...limits, source: settings?.source ?? null },
      running,
      waiting,
      started,
      heldByGlobalConcurrency: limits.globalConcurrency !== null && running >= limits.globalConcurrency ? waiting : 0,
      heldByRateLimit: limits.rateLimit !== null && started >= limits.rateLimit.limit ? waiting : 0,
      heldByKeyLimits,
      keys: busiest
    }
  })
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
 * The jobs an action applies to: the condition its statement below adds to
 * `where`, and what a count of the jobs it would touch uses.
 */
export const appliesTo = (store: Store, action: "retry" | "cancel" | "delete"): Statement.Fragment => {
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
        WHERE ${where} AND ${appliesTo(store, "cancel")} FOR UPDATE
      ), cancelled AS (
        UPDATE ${store.jobs} SET state = 'cancelled', finalized_at = now(), lease_expires_at = NULL
        FROM old WHERE id = old_id RETURNING ${sql.literal(infoColumns)}, previous
      ),${sql.literal(countChangesText(store, "(SELECT queue, previous AS was, state FROM cancelled)"))},
      notified AS (
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
      WITH old AS (
        SELECT id AS old_id, state AS previous FROM ${store.jobs}
        WHERE ${where} AND ${appliesTo(store, "retry")} FOR UPDATE
      ), retried AS (
        UPDATE ${store.jobs} SET state = 'available', run_at = now(), finalized_at = NULL,
          max_attempts = GREATEST(max_attempts, attempt + 1)
        FROM old WHERE id = old_id
        RETURNING ${sql.literal(infoColumns)}, previous
      ),${sql.literal(countChangesText(store, "(SELECT queue, previous AS was, state FROM retried)"))},
      notified AS (
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
        DELETE FROM ${store.jobs} WHERE ${where} AND ${appliesTo(store, "delete")} RETURNING ${sql.literal(infoColumns)}
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

/** The registered runners, oldest first; alive while their heartbeat has not expired. */
export const runners = (store: Store): Effect.Effect<ReadonlyArray<RunnerInfo>, SqlError> => {
  const { sql } = store
  return sql`
    SELECT id, host, pid, queues, concurrency, started_at AS "startedAt", heartbeat_at AS "heartbeatAt",
      expires_at > now() AS alive
    FROM ${store.runners} ORDER BY started_at, id`
}

// ---- counts ---------------------------------------------------------------------------------

/**
 * Jobs per queue and state (none listed at 0), from the counts that the
 * statements changing jobs and the jobs table's delete triggers keep: the
 * rolled-up counts plus the deltas not yet rolled up, read in one snapshot,
 * so equal to a `GROUP BY` over the table without reading it.
 */
export const counts = (
  store: Store
): Effect.Effect<
  ReadonlyArray<{ readonly queue: string; readonly state: JobState; readonly count: number }>,
  SqlError
> => {
  const { sql } = store
  const schema = sql(store.schema)
  return Effect.map(
    sql<{ readonly queue: string; readonly state: JobState; readonly count: string }>`
      SELECT queue, state, sum(n) AS count FROM (
        SELECT queue, state, count AS n FROM ${schema}.job_counts
        UNION ALL
        SELECT queue, state, delta FROM ${schema}.job_count_deltas
      ) AS t
      GROUP BY queue, state HAVING sum(n) <> 0 ORDER BY queue, state`,
    (rows) => rows.map((row) => ({ queue: row.queue, state: row.state, count: Number(row.count) }))
  )
}

/** Per minute of the last hour, oldest first: jobs completed and attempts failed, from the per-minute counts. */
export const throughput = (
  store: Store
): Effect.Effect<
  ReadonlyArray<{ readonly at: Date; readonly completed: number; readonly failed: number }>,
  SqlError
> => {
  const { sql } = store
  const schema = sql(store.schema)
  return Effect.map(
    sql<{ readonly at: Date; readonly completed: string; readonly failed: string }>`
      WITH minutes AS (
        SELECT generate_series(date_trunc('minute', now()) - interval '59 minutes',
          date_trunc('minute', now()), interval '1 minute') AS at
      ), counted AS (
        SELECT minute, sum(completed) AS completed, sum(failed) AS failed FROM (
          SELECT minute, completed, failed FROM ${schema}.job_minutes
          UNION ALL
          SELECT minute, completed, failed FROM ${schema}.job_minute_deltas
        ) AS t
        WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
        GROUP BY minute
      )
      SELECT m.at, COALESCE(c.completed, 0) AS completed, COALESCE(c.failed, 0) AS failed
      FROM minutes m LEFT JOIN counted c ON c.minute = m.at
      ORDER BY m.at`,
    (rows) => rows.map((row) => ({ at: row.at, completed: Number(row.completed), failed: Number(row.failed) }))
  )
}

/**
 * Folds the deltas appended since into the counts, and forgets
 * minutes older than two hours. The deltas this transaction's snapshot sees
 * are deleted and added in one statement; deltas written meanwhile stay for
 * the next pass, and readers see either the deltas or their sum, never both.
 */
export const rollUpCounts = (store: Store): Effect.Effect<void, SqlError> => {
  const { sql } = store
  const schema = sql(store.schema)
  return Effect.all([
    sql`
      WITH moved AS (DELETE FROM ${schema}.job_count_deltas RETURNING queue, state, delta)
      INSERT INTO ${schema}.job_counts AS c (queue, state, count)
      SELECT queue, state, sum(delta) FROM moved GROUP BY queue, state
      ON CONFLICT (queue, state) DO UPDATE SET count = c.count + EXCLUDED.count`,
    sql`DELETE FROM ${schema}.job_counts WHERE count = 0`,
    sql`
      WITH moved AS (DELETE FROM ${schema}.job_minute_deltas RETURNING minute, completed, failed)
      INSERT INTO ${schema}.job_minutes AS m (minute, completed, failed)
      SELECT minute, sum(completed), sum(failed) FROM moved GROUP BY minute
      ON CONFLICT (minute) DO UPDATE SET completed = m.completed + EXCLUDED.completed,
        failed = m.failed + EXCLUDED.failed`,
    sql`DELETE FROM ${schema}.job_minutes WHERE minute < now() - interval '2 hours'`
  ], { discard: true })
}

/**
 * Sets the counts to a `GROUP BY` over the jobs table and drops the deltas,
 * in one statement, so one snapshot: the deltas it sees are those of the
 * changes it counts. Maintenance runs it now and then, to set right the
 * changes of state made outside effect-workers, which no statement counts.
 */
export const recount = (store: Store): Effect.Effect<void, SqlError> => {
  const { sql } = store
  const schema = sql(store.schema)
  return Effect.asVoid(sql`
    WITH moved AS (DELETE FROM ${schema}.job_count_deltas RETURNING 1),
    fresh AS (SELECT queue, state, count(*) AS count FROM ${store.jobs} GROUP BY queue, state),
    upserted AS (
      INSERT INTO ${schema}.job_counts AS c (queue, state, count) SELECT queue, state, count FROM fresh
      ON CONFLICT (queue, state) DO UPDATE SET count = EXCLUDED.count
      RETURNING 1
    )
    DELETE FROM ${schema}.job_counts AS c
    WHERE NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.queue = c.queue AND f.state = c.state)`)
}

/**
 * Per queue with due jobs, the one that has waited longest (earliest due,
 * then first enqueued). Through the index of claimable jobs, by skipping from
 * one (queue, priority) to the next and reading each one's earliest job: a
 * read per pair, however many jobs wait.
 */
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
    WITH RECURSIVE pairs AS (
      (SELECT queue, priority FROM ${store.jobs} WHERE ${sql.literal(waiting)} ORDER BY queue, priority LIMIT 1)
      UNION ALL
      SELECT next.queue, next.priority FROM pairs AS p, LATERAL (
        SELECT queue, priority FROM ${store.jobs}
        WHERE ${sql.literal(waiting)} AND (queue, priority) > (p.queue, p.priority)
        ORDER BY queue, priority LIMIT 1
      ) AS next
    )
    SELECT DISTINCT ON (p.queue) p.queue, first.id::text AS id, first.name, first.run_at AS "dueAt",
      (extract(epoch FROM now() - first.run_at) * 1000)::float8 AS "waitMillis"
    FROM pairs AS p, LATERAL (
      SELECT id, name, run_at FROM ${store.jobs}
      WHERE ${sql.literal(waiting)} AND queue = p.queue AND priority = p.priority AND run_at <= now()
      ORDER BY run_at, id LIMIT 1
    ) AS first
    ORDER BY p.queue, first.run_at, first.id`
}
