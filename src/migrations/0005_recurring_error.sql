-- Why a recurring definition was set aside: its ticks cannot be fired (a time outside the dates PostgreSQL
-- holds, a schedule that cannot be read). It fires nothing until it is stored again or resumed.
-- {{schema}} is replaced by the configured schema, quoted.
ALTER TABLE {{schema}}.recurring ADD COLUMN error text;
