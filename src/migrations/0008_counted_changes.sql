-- The statements that change a job's state count their own rows in job_count_deltas and job_minute_deltas, as
-- the INSERT of jobs already did: the update trigger's transition tables copied every changed row, payload
-- included, and cost about 30% of the database's time per job. Deletes and truncates keep their triggers.
-- {{schema}} is replaced by the configured schema, quoted.
DROP TRIGGER jobs_count_updated ON {{schema}}.jobs;
DROP FUNCTION {{schema}}.jobs_count_updated();
