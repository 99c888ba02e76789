-- Durable jobs: the jobs table, the runners that claim them, and per-queue settings.
-- {{schema}} is replaced by the configured schema, quoted.

CREATE TABLE {{schema}}.jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  queue text NOT NULL,
  payload jsonb NOT NULL,
  state text NOT NULL CHECK (state IN ('scheduled', 'available', 'running', 'retryable', 'completed', 'discarded', 'cancelled')),
  priority integer NOT NULL DEFAULT 0,
  attempt integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL CHECK (max_attempts > 0),
  run_at timestamptz NOT NULL DEFAULT now(),
  inserted_at timestamptz NOT NULL DEFAULT now(),
  attempted_at timestamptz,
  finalized_at timestamptz,
  locked_by text,
  lease_expires_at timestamptz,
  unique_key text,
  errors jsonb NOT NULL DEFAULT '[]',
  progress jsonb,
  result jsonb,
  trace_id text,
  span_id text
);

-- What a runner claims: waiting jobs of a queue, in priority, due time and insertion order.
CREATE INDEX jobs_claimable ON {{schema}}.jobs (queue, priority, run_at, id)
  WHERE state IN ('scheduled', 'available', 'retryable');

-- Leases to rescue.
CREATE INDEX jobs_leases ON {{schema}}.jobs (lease_expires_at) WHERE state = 'running';

-- At most one live job per unique key; finished jobs free the key.
CREATE UNIQUE INDEX jobs_unique_key ON {{schema}}.jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');

-- Pruning and listing of finished jobs.
CREATE INDEX jobs_finalized ON {{schema}}.jobs (finalized_at) WHERE finalized_at IS NOT NULL;

CREATE TABLE {{schema}}.runners (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  queues text[] NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {{schema}}.queues (
  name text PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
