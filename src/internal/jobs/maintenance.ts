/**
 * Maintenance of the job tables, on one process at a time: rescuing the jobs
 * of runners that stopped, forgetting those runners, pruning finished jobs.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Ref } from "effect"
import type * as Job from "../../Job.js"
import * as Outcomes from "./outcomes.js"
import * as Statements from "./statements.js"
import type { Store } from "./store.js"

/** Jobs rescued per statement: a rescue holds their rows until it commits. */
const rescueBatch = 1_000

/** How often the counts are recounted from the jobs table (and on a runner's first pass). */
const recountMillis = 60 * 60_000

export interface MaintenanceConfig {
  /** The runner that maintains: its own jobs are never rescued by itself. */
  readonly id: string
  readonly store: Store
  readonly jobs: ReadonlyMap<string, Job.Any>
  readonly leaseMillis: number
  readonly retentionMillis: number
  /** When this runner last recounted the job counts. */
  readonly recounted: Ref.Ref<number>
}

/**
 * Rescues a batch of jobs of runners that stopped (their heartbeat expired or
 * a lease ran out), forgets dead runners and prunes finished jobs, unless
 * another process holds the maintenance lock. Folds the count deltas into
 * the counts; once an hour, and on a runner's first pass, recounts them from
 * the jobs table. Returns how many jobs it rescued.
 */
export const maintain = (config: MaintenanceConfig): Effect.Effect<number, SqlError> => {
  const { store } = config
  return store.sql.withTransaction(Effect.gen(function*() {
    if (!(yield* Statements.maintenanceLock(store))) return 0
    const rows = yield* Statements.stranded(store, rescueBatch, config.id)
    if (rows.length > 0) {
      const now = yield* Clock.currentTimeMillis
      const outcomes = yield* Effect.forEach(
        rows,
        (row) => Outcomes.rescued(row, row.lockedBy, config.jobs.get(row.name), now)
      )
      yield* Statements.settle(store, undefined, outcomes)
      for (const outcome of outcomes) {
        if (outcome.kind === "discarded") yield* Effect.logError(Outcomes.discardedLine(outcome))
      }
      const ahead = outcomes.filter((o) => o.refund === 1).length
      yield* Effect.logWarning(
        `Job runner: rescued ${rows.length} job(s) of runners that stopped` +
          (ahead > 0 ? ` (${ahead} claimed ahead, given back without spending an attempt)` : "")
      )
    }
    yield* Statements.forgetRunners(store, config.leaseMillis)
    yield* Statements.prune(store, config.retentionMillis)
    yield* Statements.pruneKeyWindows(store)
    yield* Statements.rollUpCounts(store)
    return rows.length
  })).pipe(Effect.tap(() => recountIfDue(config)))
}

/**
 * Recounts the job counts if this runner has not for an hour, in a
 * transaction of its own, so that the scan never holds back the rescue
 * committed before it.
 */
const recountIfDue = (config: MaintenanceConfig): Effect.Effect<void, SqlError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (now - (yield* Ref.get(config.recounted)) < recountMillis) return
    const done = yield* config.store.sql.withTransaction(Effect.gen(function*() {
      if (!(yield* Statements.maintenanceLock(config.store))) return false
      yield* Statements.recount(config.store)
      return true
    }))
    if (done) yield* Ref.set(config.recounted, now)
  })
