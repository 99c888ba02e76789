-- Runner liveness, and claims made ahead of free slots.
-- {{schema}} is replaced by the configured schema, quoted.

-- A runner is alive until expires_at, which each heartbeat moves on: the jobs of a runner past it are rescued
-- without waiting for their leases.
ALTER TABLE {{schema}}.runners ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now();

-- claimed_ahead: claimed for a slot that was not free yet, so the job may not have started; a rescue gives its
-- attempt back. rescues: how often the job was rescued from a runner that stopped.
ALTER TABLE {{schema}}.jobs
  ADD COLUMN claimed_ahead boolean NOT NULL DEFAULT false,
  ADD COLUMN rescues integer NOT NULL DEFAULT 0;
