import { SqlError } from "@effect/sql/SqlError"
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  FiberRef,
  HashSet,
  identity,
  MetricLabel,
  Option,
  PubSub,
  Ref,
  Schema,
  type Scope
} from "effect"
import type * as Job from "../../Job.js"
import { JobContext } from "../../Job.js"
import * as Metrics from "../../Metrics.js"
import { loggedCause } from "../registry.js"
import { ShutdownDeadline } from "../shutdown.js"
import { contextOf, handlerOf } from "./execution.js"
import { isFairOnly } from "./limits.js"
import { maintain } from "./maintenance.js"
import * as Outcomes from "./outcomes.js"
import type { Claimed, Outcome } from "./outcomes.js"
import { type Hook, hookOf, type QueueConfig, QueueRunner } from "./queue.js"
import { Forks, makeSlot, type Slot, withJob } from "./slots.js"
import * as Statements from "./statements.js"
import type { Store } from "./store.js"
import { OutcomeWriter } from "./writer.js"

export type { Claimed } from "./outcomes.js"
export type { QueueConfig } from "./queue.js"

/** What a runner publishes as jobs run. */
export type JobEvent =
  | { readonly _tag: "Started"; readonly job: Claimed }
  | { readonly _tag: "Succeeded"; readonly job: Claimed; readonly durationMillis: number }
  | { readonly _tag: "Failed"; readonly job: Claimed; readonly error: string; readonly retryAt: Date }
  | { readonly _tag: "Snoozed"; readonly job: Claimed; readonly until: Date }
  | { readonly _tag: "Discarded"; readonly job: Claimed; readonly error: string }
  | { readonly _tag: "Cancelled"; readonly job: Claimed }
  | { readonly _tag: "Released"; readonly job: Claimed }

export interface RunnerConfig {
  readonly id: string
  readonly store: Store
  readonly jobs: ReadonlyMap<string, Job.Any>
  readonly queues: ReadonlyArray<QueueConfig>
  /** Jobs claimed ahead of free slots, per queue. */
  readonly prefetch: number
  readonly pollIntervalMillis: number
  readonly leaseMillis: number
  readonly retentionMillis: number
  readonly drainMillis: number
  readonly tracing: boolean
  /** The runner's own connections, for claims. */
  readonly pool: import("pg").Pool
}

/** Events kept for a subscriber that lags behind. */
export const eventsCapacity = 4_096

/** The job runner of one process: claims, runs, records, renews leases, rescues. */
export class Runner {
  /** Bounded: a subscriber more than {@link eventsCapacity} events behind loses the oldest. */
  readonly events = Effect.runSync(PubSub.sliding<JobEvent>(eventsCapacity))
  private readonly queues = new Map<string, QueueRunner>()
  /** Jobs claimed and not yet written, by id: the claim's attempt, and the slot running it once started. */
  private readonly held = new Map<string, { readonly attempt: number; slot: Slot | undefined }>()
  private readonly slots = new Set<Slot>()
  private readonly writer: OutcomeWriter
  /** How long a runner counts as alive after a heartbeat, and how often it beats. */
  readonly aliveMillis: number
  readonly heartbeatMillis: number

  constructor(readonly config: RunnerConfig) {
    let capacity = 0
    for (const queue of config.queues) {
      const runner = new QueueRunner(queue, config.prefetch, config.jobs)
      this.queues.set(queue.name, runner)
      capacity += queue.concurrency + config.prefetch
    }
    // A runner beats six times a lease and is dead after half a lease without one (three beats missed): with the
    // default 30 s lease, its jobs are claimable again at most 15 s after its last beat, plus a rescue pass.
    this.aliveMillis = Math.max(300, Math.floor(config.leaseMillis / 2))
    this.heartbeatMillis = Math.max(100, Math.floor(config.leaseMillis / 6))
    this.writer = new OutcomeWriter({
      store: config.store,
      runner: config.id,
      maxUnwritten: 4 * capacity,
      // Long enough for a large batch, short enough to try again well within a lease.
      timeoutMillis: Math.max(5_000, Math.floor(config.leaseMillis / 3)),
      // A slot freed in a queue with limits may let any runner claim: they are told.
      wake: (batch) => {
        let queues: Set<string> | undefined
        for (const outcome of batch) {
          if (this.queues.get(outcome.job.queue)?.limited === true) (queues ??= new Set()).add(outcome.job.queue)
        }
        return queues === undefined ? [] : [...queues]
      },
      written: (batch) => {
        // Their jobs are no longer this runner's.
        for (const outcome of batch) {
          if (this.held.get(outcome.job.id)?.attempt === outcome.job.attempt) this.held.delete(outcome.job.id)
        }
      }
    })
  }

  get sql() {
    return this.config.store.sql
  }

  private get registration() {
    return {
      id: this.config.id,
      queues: [...this.queues.keys()],
      concurrency: Object.fromEntries(this.config.queues.map((queue) => [queue.name, queue.concurrency])),
      aliveMillis: this.aliveMillis
    }
  }

  // ---- claiming -------------------------------------------------------------------------------

  /**
   * Claims up to `limit` due jobs of `queue` and hands them to its slots, at
   * once: claimed jobs are never dropped by an interruption in between. Runs
   * as a named prepared statement on the runner's own connections, so that it
   * is planned once per connection rather than on every claim.
   */
  private claim(
    queue: QueueRunner,
    limit: number
  ): Effect.Effect<{ readonly claimed: number; readonly more: boolean; readonly wakeMs: number | null }, SqlError> {
    const store = this.config.store
    const values = [this.config.id, this.config.leaseMillis, queue.config.name, queue.names, limit, queue.idle]
    const pool = this.config.pool
    const limited = queue.limited
    const fair = queue.fairOnly
    return Effect.uninterruptible(
      Effect.tryPromise({
        try: async () => {
          if (limited) return Statements.claimLimited(pool, store, values, fair)
          const result = await Statements.onPool<Claimed & Record<string, unknown>>(pool, {
            name: `effect-workers-claim:${store.schema}`,
            text: Statements.claimText(store),
            values
          })
          return { rows: result.rows, limits: undefined, more: false, wakeMs: null }
        },
        catch: (cause) => new SqlError({ cause, message: "Failed to claim jobs" })
      }).pipe(Effect.map((result) => {
        if (limited) {
          queue.limited = result.limits !== undefined
          queue.rateLimited = result.limits !== undefined && result.limits.rateLimit !== null
          queue.fairOnly = result.limits !== undefined && isFairOnly(result.limits)
        }
        for (const job of result.rows) {
          // Claimed again after a rescue while an old run of it still goes on here: that run is stale.
          const old = this.held.get(job.id)
          if (old?.slot !== undefined) this.abandon(old.slot, job.id, "lost")
          this.held.set(job.id, { attempt: job.attempt, slot: undefined })
        }
        queue.push(result.rows)
        return { claimed: result.rows.length, more: result.more, wakeMs: result.wakeMs }
      }))
    )
  }

  private fetcher(queue: QueueRunner): Effect.Effect<never> {
    const self = this
    return Effect.gen(function*() {
      let failures = 0
      while (true) {
        if (!queue.wantsClaim()) {
          yield* queue.sleep(self.config.pollIntervalMillis)
          continue
        }
        if (self.writer.full(queue)) {
          // Woken by the writer once enough are written.
          yield* queue.sleep(self.config.pollIntervalMillis)
          continue
        }
        queue.adapt()
        // Under a rate limit a claim is a start: nothing is claimed ahead of a free slot.
        const room = queue.rateLimited ? queue.freeSlots() : queue.room()
        if (room === 0) {
          yield* queue.sleep(self.config.pollIntervalMillis)
          continue
        }
        const takenBefore = queue.taken
        const claimed = yield* Effect.either(self.claim(queue, room))
        if (queue.limited) queue.claimed(queue.taken - takenBefore)
        if (claimed._tag === "Left") {
          failures++
          yield* Effect.logWarning(
            `Job runner: claiming from queue "${queue.config.name}" failed (${
              Statements.errorText(claimed.left)
            }); trying again`
          )
          // Backs off, but a notification (a reconnected listener) wakes it early.
          yield* queue.sleep(Math.min(100 * 2 ** failures, self.config.pollIntervalMillis, 10_000))
          continue
        }
        failures = 0
        const { more, wakeMs } = claimed.right
        queue.drained = claimed.right.claimed < room && !more
        // A spent rate window is looked at again when it frees a start; a limit reached, when a slot frees anywhere
        // (the runner that frees it notifies), or at the next poll.
        if (queue.drained) {
          yield* queue.sleep(
            wakeMs === null
              ? self.config.pollIntervalMillis
              : Math.min(Math.max(1, Math.ceil(wakeMs)), self.config.pollIntervalMillis)
          )
        }
      }
    }).pipe(Effect.annotateLogs("queue", queue.config.name))
  }

  // ---- running --------------------------------------------------------------------------------

  /** Runs a worker for `slot` until its queue stops, a new one after a worker whose run was cancelled. */
  private keeper(queue: QueueRunner, slot: Slot): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      while (true) {
        const forks = new Forks()
        slot.forks = forks
        const worker = Effect.withFiberRuntime<void>((fiber) => {
          forks.owner = fiber
          return self.slotLoop(queue, slot)
        })
        slot.worker = yield* Effect.fork(Effect.supervised(worker, forks))
        const exit = yield* Fiber.await(slot.worker)
        slot.worker = undefined
        if (Exit.isSuccess(exit)) return
        if (!Cause.isInterruptedOnly(exit.cause)) {
          yield* Effect.logError("Job runner: a slot failed; starting it again", exit.cause)
          yield* Effect.sleep("1 second")
        }
      }
    })
  }

  /**
   * Takes the queue's jobs one after another and runs them. Uninterruptible
   * but where it waits, records a start and runs a handler, so that what it
   * does for a job is never cut short; a mask per job instead cost a tenth of
   * the throughput.
   */
  private slotLoop(queue: QueueRunner, slot: Slot): Effect.Effect<void> {
    const self = this
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const shared = Context.unsafeMake<never>(new Map((yield* FiberRef.get(FiberRef.currentContext)).unsafeMap))
        slot.forks.shared = shared
        yield* FiberRef.set(FiberRef.currentContext, shared)
        while (true) {
          // A job already waiting is taken without an effect: a tenth of the CPU per job.
          const job = queue.pending.length > 0 ? queue.takeNow() : yield* restore(queue.take())
          if (job === undefined) return
          const held = self.held.get(job.id)
          if (held === undefined || held.attempt !== job.attempt) {
            queue.done() // cancelled or lost meanwhile
            continue
          }
          // A job rescued before, claimed ahead, may be one that kills its process: its start is recorded first,
          // so that the next rescue counts its attempt.
          if (job.claimedAhead && job.rescues > 0) {
            const mine = yield* Effect.either(restore(Statements.markStarted(self.config.store, self.config.id, job)))
              .pipe(
                // Interrupted meanwhile (shutdown): the job goes back.
                Effect.onInterrupt(() =>
                  Effect.sync(() => {
                    if (self.held.get(job.id) === held) self.writer.add(Outcomes.released(job))
                    queue.done()
                  })
                )
              )
            if (mine._tag === "Left" || !mine.right) {
              // Not recorded: the job is given back (or, no longer this runner's, dropped) rather than run unrecorded.
              if (mine._tag === "Left" && self.held.get(job.id) === held) {
                self.held.delete(job.id)
                self.writer.add(Outcomes.released(job))
              } else if (self.held.get(job.id) === held) self.held.delete(job.id)
              queue.done()
              continue
            }
          }
          yield* self.runOne(queue, slot, job, held, restore, shared)
          if (!queue.drained && queue.wantsClaim()) queue.wake()
        }
      })
    )
  }

  /**
   * Runs `job` with a `JobContext` of its own; fibers its handler forks end
   * with the run. Interrupted for shutdown, it gives the job back; for a
   * cancel, it records it. Either way the worker then ends.
   */
  private runOne(
    queue: QueueRunner,
    slot: Slot,
    job: Claimed,
    held: { slot: Slot | undefined },
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    shared: Context.Context<never>
  ): Effect.Effect<void> {
    slot.current = job
    slot.abandoned = undefined
    held.slot = slot
    queue.running.modify(1)
    return Effect.flatMap(Effect.exit(restore(this.run(job, queue, shared))), (exit) => {
      const ended = (): Effect.Effect<void> => {
        slot.current = undefined
        queue.running.modify(-1)
        queue.done()
        const reason = slot.abandoned
        if (reason !== undefined) {
          if (this.held.get(job.id) === held) this.held.delete(job.id)
          if (reason === "cancelled") {
            this.record(job, "cancelled")
            this.publish({ _tag: "Cancelled", job })
          }
        } else if (Exit.isFailure(exit)) {
          // The slot was interrupted (shutdown): the job goes back without spending its attempt.
          this.writer.add(Outcomes.released(job))
          this.publish({ _tag: "Released", job })
        } else {
          this.settled(exit.value)
          this.writer.add(exit.value)
        }
        // Interrupted, the worker ends: a slot's keeper replaces a worker whose run was cancelled.
        return Exit.isFailure(exit) ? Effect.interrupt : Effect.void
      }
      // The run's context ends with it.
      shared.unsafeMap.delete(JobContext.key)
      return slot.worker === undefined || slot.forks.started.size === 0
        ? ended()
        : Effect.flatMap(slot.forks.endRun(slot.worker), ended)
    })
  }

  /** The run of `job`: its handler and the outcome, never failing. */
  private run(job: Claimed, queue: QueueRunner, shared: Context.Context<never>): Effect.Effect<Outcome> {
    const definition = this.config.jobs.get(job.name)!
    const started = Date.now()
    queue.wait.update(Math.max(0, started - job.runAt.getTime()) / 1000)
    this.publish({ _tag: "Started", job })
    const decoded = Schema.decodeUnknownEither(definition.payload)(job.payload)
    if (decoded._tag === "Left") {
      const outcome = Outcomes.undecodable(job, decoded.left, started)
      return Effect.as(Effect.logError(Outcomes.discardedLine(outcome)), outcome)
    }
    const context = contextOf(job, this.config.store, this.config.id)
    const handler = handlerOf(job, definition, decoded.right, this.config.tracing)
    const ended = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<Outcome> => {
      const now = Date.now()
      queue.duration.update((now - started) / 1000)
      if (Exit.isSuccess(exit)) {
        this.publish({ _tag: "Succeeded", job, durationMillis: now - started })
        const outcome = Outcomes.ofSuccess(job, definition, exit.value)
        return outcome.warning === undefined
          ? Effect.succeed(outcome)
          : Effect.as(Effect.logWarning(outcome.warning), outcome)
      }
      return Outcomes.ofRun(job, definition, exit, now).pipe(
        // A defect in working out the outcome (a backoff that throws) is a failed attempt.
        Effect.catchAllCause((cause) => Effect.succeed(Outcomes.broken(job, cause, Date.now()))),
        // An expected failure is one line, its tag and message; a defect keeps its stack trace.
        Effect.tap((outcome) =>
          outcome.kind === "failed"
            ? Effect.logWarning(
              `Job "${job.name}" ${job.id} failed (attempt ${job.attempt} of ${job.maxAttempts}); retrying after its backoff`,
              loggedCause(exit.cause)
            )
            : outcome.kind === "discarded"
            ? Cause.isDie(exit.cause)
              ? Effect.logError(Outcomes.discardedLine(outcome), exit.cause)
              : Effect.logError(Outcomes.discardedLine(outcome))
            : Effect.void
        )
      )
    }
    // Set in place in the context the worker's runs share, and removed when the run ends; a fiber the run forks
    // gets a copy (see `Forks`). Setting the fiber's context for each run instead cost a quarter of the CPU per job
    // (50,000 no-op jobs: 2.7 s of CPU instead of 2.1 s).
    shared.unsafeMap.set(JobContext.key, context)
    return Effect.flatMap(Effect.exit(handler), ended)
  }

  /** Records the metrics and events of a run's outcome. */
  private settled(outcome: Outcome): void {
    const { job } = outcome
    switch (outcome.kind) {
      case "completed":
        return this.record(job, "completed")
      case "snoozed":
        this.record(job, "snoozed")
        return this.publish({ _tag: "Snoozed", job, until: new Date(Date.now() + (outcome.delayMillis ?? 0)) })
      case "failed":
        this.record(job, "failed")
        return this.publish({
          _tag: "Failed",
          job,
          error: outcome.text,
          retryAt: new Date(Date.now() + (outcome.delayMillis ?? 0))
        })
      case "discarded":
        this.record(job, "discarded")
        return this.publish({ _tag: "Discarded", job, error: outcome.text })
      default:
        return
    }
  }

  private readonly runHooks = new Map<string, Hook>()

  private record(job: Claimed, outcome: string): void {
    const key = `${job.queue}\u0000${job.name}\u0000${outcome}`
    let hook = this.runHooks.get(key)
    if (hook === undefined) {
      hook = hookOf(Metrics.keys.jobRuns, [
        MetricLabel.make("queue", job.queue),
        MetricLabel.make("job", job.name),
        MetricLabel.make("outcome", outcome)
      ])
      this.runHooks.set(key, hook)
    }
    hook.update(1)
  }

  private publish(event: JobEvent): void {
    // Full (a subscriber lags): publishing slides out the oldest event, which `unsafeOffer` would not.
    if (!this.events.unsafeOffer(event)) Effect.runSync(PubSub.publish(this.events, event))
  }

  // ---- heartbeats, cancellation, maintenance --------------------------------------------------

  /**
   * Records the runner's heartbeat and renews the leases of every job it
   * holds; a job it no longer holds (cancelled, rescued) is dropped. Neither
   * waits for row locks, so a flush or a user's transaction cannot hold them up.
   */
  private heartbeat(): Effect.Effect<void, SqlError> {
    return Effect.gen(this, function*() {
      const store = this.config.store
      yield* Statements.register(store, this.registration)
      yield* this.renewLeases()
      // After the renewals, and never in their way.
      yield* this.refreshLimits(true).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`Job runner: reading the queues' limits failed (${Statements.errorText(error)})`)
        )
      )
    })
  }

  /** Renews the leases of the jobs the runner holds; drops those it no longer holds. */
  private renewLeases(): Effect.Effect<void, SqlError> {
    return Effect.gen(this, function*() {
      const store = this.config.store
      // Only jobs held before the statement starts are judged: a claim committed meanwhile is not in its snapshot.
      const snapshot = [...this.held].map(([id, held]) => ({ id, attempt: held.attempt }))
      if (snapshot.length === 0) return
      const rows = yield* Statements.renew(
        store,
        this.config.id,
        snapshot.map((held) => held.id),
        this.config.leaseMillis
      )
      const mine = new Set(rows.map((row) => `${row.id}:${row.attempt}`))
      let unwritten: Set<string> | undefined
      for (const { attempt, id } of snapshot) {
        const held = this.held.get(id)
        if (mine.has(`${id}:${attempt}`) || held === undefined || held.attempt !== attempt) continue
        // Written meanwhile, by an outcome in flight: not lost.
        unwritten ??= this.writer.unwritten()
        if (unwritten.has(`${id}:${attempt}`)) continue
        this.held.delete(id)
        if (held.slot !== undefined) this.abandon(held.slot, id, "lost")
      }
    })
  }

  /**
   * Stores the limits the options give (only where none are stored, with
   * `unset`), and learns which queues have limits now.
   */
  private refreshLimits(unset: boolean): Effect.Effect<void, SqlError> {
    return Effect.gen(this, function*() {
      const store = this.config.store
      const code = this.config.queues.flatMap((queue) =>
        queue.limits === undefined ? [] : [[queue.name, queue.limits] as const]
      )
      yield* Statements.storeCodeLimits(store, code, unset)
      const limited = yield* Statements.limitedQueues(store, [...this.queues.keys()])
      for (const [name, queue] of this.queues) {
        if (limited.has(name) && !queue.limited) {
          queue.limited = true
          queue.drained = false
          queue.wake()
        } else if (!limited.has(name)) queue.limited = false
      }
    })
  }

  /** Interrupts a slot's run of job `id` that is no longer this runner's; it writes nothing for it. */
  private abandon(slot: Slot, id: string, reason: "cancelled" | "lost"): void {
    // The slot may have finished that run and started another since.
    if (slot.current?.id !== id || slot.worker === undefined || slot.abandoned !== undefined) return
    slot.abandoned = reason
    slot.worker.unsafeInterruptAsFork(FiberId.none)
  }

  /** Cancels job `id` here: its run is interrupted, or, claimed but not started, it is dropped. */
  cancel(id: string): void {
    const held = this.held.get(id)
    if (held === undefined) return
    if (held.slot === undefined) this.held.delete(id)
    else this.abandon(held.slot, id, "cancelled")
  }

  onNotification(payload: string): void {
    if (payload.startsWith("j:")) {
      const queue = this.queues.get(payload.slice(2))
      if (queue !== undefined) {
        queue.drained = false
        queue.wake()
      }
    } else if (payload.startsWith("c:")) this.cancel(payload.slice(2))
    else if (payload.startsWith("l:")) {
      // Its limits changed: the next claim takes the queue's lock and reads them.
      const queue = this.queues.get(payload.slice(2))
      if (queue !== undefined) {
        queue.limited = true
        queue.drained = false
        queue.wake()
      }
    }
  }

  wakeAll(): void {
    for (const queue of this.queues.values()) {
      queue.drained = false
      queue.wake()
    }
  }

  // ---- life cycle -----------------------------------------------------------------------------

  /** Starts the runner's fibers in the current scope; stopping them drains and releases. */
  start(listen: Effect.Effect<never>): Effect.Effect<void, SqlError, Scope.Scope> {
    const self = this
    return Effect.gen(function*() {
      yield* Statements.register(self.config.store, self.registration)
      yield* self.refreshLimits(false)
      const every = (millis: number, what: string, effect: Effect.Effect<unknown, SqlError>) =>
        Effect.forkScoped(
          Effect.interruptible(
            effect.pipe(
              // A pass that hangs (a cut-off connection) must not stop the next ones.
              Effect.timeoutFail({
                duration: Math.max(millis, 1_000) * 2,
                onTimeout: () => new SqlError({ message: `${what} did not finish in time` })
              }),
              Effect.catchAll((error) =>
                Effect.logWarning(`Job runner: ${what} failed (${Statements.errorText(error)}); trying again`)
              ),
              Effect.zipRight(Effect.sleep(Duration.millis(millis))),
              Effect.forever
            )
          )
        )
      const loggers = yield* FiberRef.get(FiberRef.currentLoggers)
      const slotLoggers = HashSet.map(loggers, withJob)
      // Fibers end in the reverse order: the fetchers first, then `stop` drains and interrupts the slots, then
      // heartbeats and writes stop.
      yield* Effect.forkScoped(Effect.interruptible(self.writer.run()))
      yield* every(self.heartbeatMillis, "the heartbeat", self.heartbeat())
      for (const queue of self.queues.values()) {
        for (let i = 0; i < queue.config.concurrency; i++) {
          const slot = makeSlot()
          self.slots.add(slot)
          slot.fiber = yield* Effect.forkScoped(
            Effect.interruptible(Effect.locally(self.keeper(queue, slot), FiberRef.currentLoggers, slotLoggers))
          )
        }
      }
      yield* Effect.addFinalizer(() => self.stop())
      // A starting runner rescues at once: in a crash loop, no runner may live long enough for a later pass.
      const recounted = yield* Ref.make(Number.NEGATIVE_INFINITY)
      yield* every(self.heartbeatMillis, "maintenance", maintain({ ...self.config, recounted }))
      yield* Effect.forkScoped(listen)
      for (const queue of self.queues.values()) yield* Effect.forkScoped(Effect.interruptible(self.fetcher(queue)))
    })
  }

  /**
   * Stops claiming, gives back claimed jobs not started, lets running jobs
   * finish within the drain time (and within the host's grace, leaving time
   * to give the rest back), interrupts and gives back the rest, writes every
   * outcome, and deregisters.
   */
  private stop(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      const giveBackPending = () => {
        for (const queue of self.queues.values()) {
          for (const job of queue.pending.splice(0)) self.writer.add(Outcomes.released(job))
        }
      }
      giveBackPending()
      const now = yield* Clock.currentTimeMillis
      const deadline = Option.flatMapNullable(yield* Effect.serviceOption(ShutdownDeadline), (d) => d.get())
      // What is left of the host's grace, less time to interrupt, give back, write and deregister: a third,
      // 0.5-2 s. A quarter with 0.2 s at least was too little for a 1.5 s grace on a machine at load 8:
      // those steps and the host's other finalizers took over 0.4 s there.
      const left = Option.map(deadline, (at) => Math.max(0, at - now))
      const drainMillis = Option.match(left, {
        onNone: () => self.config.drainMillis,
        onSome: (left) => Math.min(self.config.drainMillis, left - Math.min(2_000, Math.max(500, left / 3)))
      })
      const busy = () => [...self.queues.values()].some((queue) => queue.busy > 0)
      const idle = Effect.forEach([...self.queues.values()], (queue) => queue.untilIdle(), { discard: true })
      if (drainMillis > 0) yield* Effect.timeoutOption(Effect.interruptible(idle), drainMillis)
      if (busy()) {
        yield* Effect.logWarning("Job runner: jobs still running after the drain time are interrupted and released")
      }
      yield* Effect.forEach(
        self.slots,
        (slot) => slot.fiber === undefined ? Effect.void : Fiber.interrupt(slot.fiber),
        {
          discard: true,
          concurrency: "unbounded"
        }
      )
      // A job handed to a slot as it was interrupted went back to its queue.
      giveBackPending()
      const writeBy = Option.match(deadline, { onNone: () => Infinity, onSome: (at) => at - 100 })
      const unwritten = yield* self.writer.drain(writeBy)
      if (unwritten > 0) {
        yield* Effect.logError(
          `Job runner: ${unwritten} job outcome(s) could not be written at shutdown; their jobs will be rescued`
        )
      }
      yield* PubSub.shutdown(self.events)
      // Deregistering is a courtesy (other runners forget a dead runner anyway): it gets what is left of the grace.
      const deregisterBy = Option.match(deadline, { onNone: () => Infinity, onSome: (at) => at - 50 })
      const deregisterMillis = Math.max(0, deregisterBy - (yield* Clock.currentTimeMillis))
      yield* Statements.deregister(self.config.store, self.config.id).pipe(
        deregisterMillis === Infinity ? identity : Effect.timeout(deregisterMillis),
        Effect.ignore
      )
    }).pipe(Effect.annotateLogs("runner", this.config.id))
  }
}
