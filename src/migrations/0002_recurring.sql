-- Recurring definitions, and the tick each recurring job stands for.
-- {{schema}} is replaced by the configured schema, quoted.

CREATE TABLE {{schema}}.recurring (
  id text PRIMARY KEY,
  job_name text NOT NULL,
  queue text NOT NULL,
  priority integer NOT NULL,
  max_attempts integer NOT NULL,
  payload jsonb NOT NULL,
  cron text,
  time_zone text,
  every_ms bigint CHECK (every_ms > 0),
  -- The start as given; anchor_at is the first tick of an interval, the start or when it was defined.
  starts_at timestamptz,
  anchor_at timestamptz,
  ends_at timestamptz,
  misfire text NOT NULL CHECK (misfire IN ('skip', 'runOnce', 'backfill')),
  backfill integer NOT NULL DEFAULT 0,
  paused boolean NOT NULL DEFAULT false,
  -- Where it was last defined: 'code' (a layer's definitions) or 'api'; and the paused flag it last gave.
  source text NOT NULL CHECK (source IN ('code', 'api')),
  defined_paused boolean,
  next_run_at timestamptz,
  last_run_at timestamptz,
  last_job_id bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((cron IS NULL) <> (every_ms IS NULL))
);

-- What is due next.
CREATE INDEX recurring_due ON {{schema}}.recurring (next_run_at) WHERE NOT paused;

ALTER TABLE {{schema}}.jobs ADD COLUMN recurring_id text, ADD COLUMN recurring_tick timestamptz;

-- One job per tick of a definition, kept after the job finishes (manual triggers have no unique key).
CREATE UNIQUE INDEX jobs_recurring_ticks ON {{schema}}.jobs (recurring_id, recurring_tick)
  WHERE recurring_id IS NOT NULL AND unique_key IS NOT NULL;
