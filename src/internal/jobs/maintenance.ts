/**
 * Maintenance of the job tables, on one process at a time: rescuing the jobs
 * of runners that stopped, forgetting those runners, pruning finished jobs.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect } from "effect"
import type * as Job from "../../Job.js"
import * as Outcomes from "./outcomes.js"
import * as Statements from "./statements.js"
import type { Store } from "./store.js"

/** Jobs rescued per statement: a rescue holds their rows until it commits. */
const rescueBatch = 1_000

export interface MaintenanceConfig {
  /** The runner that maintains: its own jobs are never rescued by itself. */
  readonly id: string
  readonly store: Store
  readonly jobs: ReadonlyMap<string, Job.Any>
  readonly leaseMillis: number
  readonly retentionMillis: number
}

/**
 * Rescues a batch of jobs of runners that stopped (their heartbeat expired or
 * a lease ran out), forgets dead runners and prunes finished jobs, unless
 * another process holds the maintenance lock. Returns how many jobs it rescued.
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
  }))
}
