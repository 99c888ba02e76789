/** What the faults suite runs, shared by its parent and its runner processes. */
import { Schema } from "effect"

/** The one job of the suite: its handler sleeps `millis`. */
export const jobName = "sleep"
export const Payload = Schema.Struct({ n: Schema.Number, millis: Schema.Number })
export type Payload = typeof Payload.Type

/** A runner process prints this, then its runner id, once it runs. */
export const readyLine = "runner ready "

/**
 * The `application_name` of a runner's connections: the suite finds a
 * runner's sessions in `pg_stat_activity` by it.
 */
export const applicationName = (tag: string): string => `effect-workers-bench-faults ${tag}`
