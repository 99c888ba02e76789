-- Counts of jobs per queue and state, per-minute completions and failed attempts, and the hosted workers each
-- process reports: what the dashboard and JobClient.counts read instead of scanning the jobs table.
-- {{schema}} is replaced by the configured schema, quoted.

-- Statement-level triggers on updates and deletes of jobs append what each statement changed to the delta tables
-- (append-only, so concurrent runners never wait on one counter row); the library's one INSERT of jobs counts its
-- new rows itself, which costs far less than a transition table of every new row. Maintenance folds the deltas
-- into job_counts and job_minutes. A read sums both, so counts are exact at any moment.
CREATE TABLE {{schema}}.job_counts (
  queue text NOT NULL,
  state text NOT NULL,
  count bigint NOT NULL,
  PRIMARY KEY (queue, state)
);

CREATE TABLE {{schema}}.job_count_deltas (
  queue text NOT NULL,
  state text NOT NULL,
  delta bigint NOT NULL
);

-- Per minute (of the changing transaction's time): jobs that completed, and attempts that failed (errors added).
CREATE TABLE {{schema}}.job_minutes (
  minute timestamptz PRIMARY KEY,
  completed bigint NOT NULL,
  failed bigint NOT NULL
);

CREATE TABLE {{schema}}.job_minute_deltas (
  minute timestamptz NOT NULL,
  completed bigint NOT NULL,
  failed bigint NOT NULL
);

CREATE FUNCTION {{schema}}.jobs_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Heartbeats renew the leases of running jobs without changing a state: they write nothing.
  INSERT INTO {{schema}}.job_count_deltas (queue, state, delta)
  SELECT queue, state, sum(delta) FROM (
    SELECT queue, state, 1 AS delta FROM new_jobs
    UNION ALL
    SELECT queue, state, -1 FROM old_jobs
  ) AS changes
  GROUP BY queue, state HAVING sum(delta) <> 0;
  INSERT INTO {{schema}}.job_minute_deltas (minute, completed, failed)
  SELECT date_trunc('minute', now()), completed, failed FROM (
    SELECT count(*) FILTER (WHERE n.state = 'completed') AS completed,
      coalesce(sum(greatest(
        CASE WHEN jsonb_typeof(n.errors) = 'array' THEN jsonb_array_length(n.errors) ELSE 0 END
          - CASE WHEN jsonb_typeof(o.errors) = 'array' THEN jsonb_array_length(o.errors) ELSE 0 END,
        0)), 0) AS failed
    FROM new_jobs AS n JOIN old_jobs AS o ON o.id = n.id
    WHERE n.state <> o.state
  ) AS minute
  WHERE completed > 0 OR failed > 0;
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}.jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {{schema}}.job_count_deltas (queue, state, delta)
  SELECT queue, state, -count(*) FROM old_jobs GROUP BY queue, state;
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}.jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {{schema}}.job_counts;
  DELETE FROM {{schema}}.job_count_deltas;
  RETURN NULL;
END
$$;

-- Each CREATE TRIGGER locks jobs against writes until this migration commits, so the counts below start exact.
CREATE TRIGGER jobs_count_updated AFTER UPDATE ON {{schema}}.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT
  EXECUTE FUNCTION {{schema}}.jobs_count_updated();
CREATE TRIGGER jobs_count_deleted AFTER DELETE ON {{schema}}.jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.jobs_count_deleted();
CREATE TRIGGER jobs_count_truncated AFTER TRUNCATE ON {{schema}}.jobs
  FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.jobs_count_truncated();

INSERT INTO {{schema}}.job_counts (queue, state, count)
SELECT queue, state, count(*) FROM {{schema}}.jobs GROUP BY queue, state;

INSERT INTO {{schema}}.job_minutes (minute, completed, failed)
SELECT minute, sum(completed), sum(failed) FROM (
  SELECT date_trunc('minute', finalized_at) AS minute, count(*) AS completed, 0 AS failed FROM {{schema}}.jobs
  WHERE state = 'completed' AND finalized_at >= date_trunc('minute', now()) - interval '59 minutes'
  GROUP BY 1
  UNION ALL
  SELECT date_trunc('minute', (e->>'at')::timestamptz), 0, count(*)
  FROM {{schema}}.jobs, jsonb_array_elements(errors) AS e
  WHERE jsonb_typeof(errors) = 'array' AND errors <> '[]'
    AND (state = 'retryable' OR attempted_at >= now() - interval '1 hour')
    AND (e->>'at')::timestamptz >= date_trunc('minute', now()) - interval '59 minutes'
  GROUP BY 1
) AS minutes
GROUP BY minute;

-- The job list's state filter, newest first, for the states that are rare next to completed jobs (completed
-- and running are served by the primary key and jobs_running). A job enters it once, at enqueue, and again
-- only if it fails or is cancelled.
CREATE INDEX jobs_listing ON {{schema}}.jobs (state, id)
  WHERE state IN ('scheduled', 'available', 'retryable', 'discarded', 'cancelled');

-- Hosted workers, reported by every process that runs them with a JobClient: one row per process, its
-- workers' statuses as JSON. A row past expires_at belongs to a process that stopped; it is pruned later.
CREATE TABLE {{schema}}.worker_hosts (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  workers jsonb NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  reported_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
