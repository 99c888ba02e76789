-- Each runner's concurrency per queue, for the dashboard.
-- {{schema}} is replaced by the configured schema, quoted.

ALTER TABLE {{schema}}.runners ADD COLUMN concurrency jsonb NOT NULL DEFAULT '{}';
