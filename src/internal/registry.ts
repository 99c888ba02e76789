import {
  Cause,
  ConfigError,
  Context,
  Deferred,
  Effect,
  Exit,
  type Fiber,
  FiberId,
  type FiberRefs,
  Option,
  Runtime,
  RuntimeFlags,
  Scope
} from "effect"
import { InvalidWorkerOptions, type WorkerFailed } from "../WorkerError.js"
import { type WorkerState, WorkerStatus } from "../WorkerStatus.js"
import { type IterationScope, iterationScopeService, withIterationScope } from "./iterationScope.js"
import { SharedTimer } from "./timer.js"

/** What a worker definition gives the registry: how to start and stop it. */
export interface Managed {
  readonly name: string
  readonly kind: WorkerStatus["kind"]
  readonly status: StatusCell
  /** Starts the worker; called once, on the registry's timer fiber or a host fiber. */
  start(): void
  /** Stops scheduling and interrupts running iterations without waiting. */
  stopFork(): void
  /** Completes when every iteration of the worker has ended. */
  awaitStopped(): Effect.Effect<void>
}

/** The mutable status of one worker; snapshots are taken on read. */
export class StatusCell {
  state: WorkerState = "starting"
  lastStartedAt: number | undefined = undefined
  lastEndedAt: number | undefined = undefined
  lastError: string | undefined = undefined
  iterations = 0
  failures = 0
  skipped = 0
  nextRunAt: number | undefined = undefined

  constructor(readonly name: string, readonly kind: WorkerStatus["kind"], private readonly registry: Registry) {}

  set(state: WorkerState): void {
    this.state = state
    this.registry.notify()
  }

  snapshot(): WorkerStatus {
    const opt = (n: number | undefined) => n === undefined ? Option.none() : Option.some(new Date(n))
    return new WorkerStatus({
      name: this.name,
      kind: this.kind,
      state: this.state,
      lastStartedAt: opt(this.lastStartedAt),
      lastEndedAt: opt(this.lastEndedAt),
      lastError: Option.fromNullable(this.lastError),
      iterations: this.iterations,
      failures: this.failures,
      skipped: this.skipped,
      nextRunAt: opt(this.nextRunAt)
    })
  }
}

interface Watcher {
  readonly name: string
  readonly predicate: (status: WorkerStatus) => boolean
  readonly deferred: Deferred.Deferred<WorkerStatus>
}

/**
 * The registry behind `WorkerRegistry`: status of every worker, the shared
 * timer, and the start/stop protocol the host drives.
 */
export class Registry {
  readonly timer = new SharedTimer()
  readonly workers = new Map<string, Managed>()
  readonly failure: Deferred.Deferred<WorkerFailed> = Deferred.unsafeMake(FiberId.none)
  private readonly watchers = new Set<Watcher>()
  private readonly deregistered = new WeakSet<Managed>()
  private readonly sharedValues = new Map<string, unknown>()
  private started = false
  /** The row this process's workers are reported under in the job tables, while a `JobClient` reports them. */
  reportedAs: string | undefined = undefined

  constructor(readonly startImmediately: boolean) {}

  register(worker: Managed): Effect.Effect<void, InvalidWorkerOptions> {
    return Effect.suspend(() => {
      const existing = this.workers.get(worker.name)
      if (existing !== undefined && !this.deregistered.has(existing)) {
        return Effect.fail(
          new InvalidWorkerOptions({
            worker: worker.name,
            option: "name",
            reason: "is already used by another worker; give each worker a unique name"
          })
        )
      }
      this.workers.delete(worker.name)
      this.workers.set(worker.name, worker)
      this.notify()
      if (this.startImmediately || this.started) worker.start()
      return Effect.void
    })
  }

  /**
   * Stops a worker (its layer's finalizer). Its last status stays readable
   * until a worker with the same name registers again.
   */
  deregister(worker: Managed): Effect.Effect<void> {
    return Effect.suspend(() => {
      worker.stopFork()
      return worker.awaitStopped()
    }).pipe(Effect.ensuring(Effect.sync(() => {
      this.deregistered.add(worker)
      this.notify()
    })))
  }

  startAll(): Effect.Effect<void> {
    return Effect.sync(() => {
      this.started = true
      for (const worker of this.workers.values()) {
        if (!this.deregistered.has(worker)) worker.start()
      }
    })
  }

  /** Stops the workers, in reverse order of registration or all at once. */
  stopAll(concurrently: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      const workers = [...this.workers.values()].reverse()
      if (concurrently) {
        for (const worker of workers) worker.stopFork()
        return Effect.forEach(workers, (worker) => worker.awaitStopped(), { discard: true, concurrency: "unbounded" })
      }
      return Effect.forEach(workers, (worker) =>
        Effect.suspend(() => {
          worker.stopFork()
          return worker.awaitStopped()
        }), { discard: true })
    })
  }

  /** Names of workers with an iteration (or a retry wait) still in flight. */
  unstopped(): Array<string> {
    const names: Array<string> = []
    for (const worker of this.workers.values()) {
      if (worker.status.state === "running" || worker.status.state === "backingOff") names.push(worker.name)
    }
    return names
  }

  snapshot(): Array<WorkerStatus> {
    return [...this.workers.values()].map((worker) => worker.status.snapshot())
  }

  awaitStatus(name: string, predicate: (status: WorkerStatus) => boolean): Effect.Effect<WorkerStatus> {
    return Effect.suspend(() => {
      const current = this.workers.get(name)?.status.snapshot()
      if (current !== undefined && predicate(current)) return Effect.succeed(current)
      const watcher: Watcher = { name, predicate, deferred: Deferred.unsafeMake(FiberId.none) }
      this.watchers.add(watcher)
      return Deferred.await(watcher.deferred).pipe(Effect.ensuring(Effect.sync(() => this.watchers.delete(watcher))))
    })
  }

  notify(): void {
    if (this.watchers.size === 0) return
    for (const watcher of this.watchers) {
      const status = this.workers.get(watcher.name)?.status.snapshot()
      if (status !== undefined && watcher.predicate(status)) {
        this.watchers.delete(watcher)
        Deferred.unsafeDone(watcher.deferred, Exit.succeed(status))
      }
    }
  }

  /** A value shared by the workers of this registry under `key`, made on first use. */
  shared<A>(key: string, make: () => A): A {
    if (!this.sharedValues.has(key)) this.sharedValues.set(key, make())
    return this.sharedValues.get(key) as A
  }

  /** What runs beside the workers (job runners, recurring schedulers), by kind. */
  private readonly services = new Map<string, number>()

  /** Counts a `kind` of service, such as `"job runner"`, for as long as the scope is open. */
  addService(kind: string): Effect.Effect<void, never, Scope.Scope> {
    const add = (n: number) => Effect.sync(() => this.services.set(kind, (this.services.get(kind) ?? 0) + n))
    return Effect.acquireRelease(add(1), () => add(-1))
  }

  /** What runs, counted: `"8 workers, 1 job runner and 1 recurring scheduler"`. */
  describe(): string {
    const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`
    const services = [...this.services].filter(([, n]) => n > 0).sort(([a], [b]) => a < b ? -1 : 1).map((
      [kind, n]
    ) => count(n, kind))
    const workers = [...this.workers.values()].filter((worker) => !this.deregistered.has(worker)).length
    const parts = workers > 0 || services.length === 0 ? [count(workers, "worker"), ...services] : services
    return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`
  }

  signalFailure(error: WorkerFailed): void {
    Deferred.unsafeDone(this.failure, Exit.succeed(error))
  }
}

/** Told when a fiber forked by a {@link FiberTracker} ends. */
export interface ExitObserver {
  onExit(exit: Exit.Exit<unknown, unknown>, started: number | undefined): void
}

/**
 * Fibers a worker has running, forked with the runtime captured when its
 * layer was built (so iterations see the layer's services and the test clock).
 */
export class FiberTracker {
  // An array, not a Set: it rarely holds more than one fiber, and an empty Set costs 150 bytes per worker.
  private readonly fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
  private idle: Deferred.Deferred<void> | undefined = undefined

  private readonly runtime: Runtime.Runtime<never>

  private readonly updateRefs: ((refs: FiberRefs.FiberRefs, id: FiberId.Runtime) => FiberRefs.FiberRefs) | undefined

  constructor(runtime: Runtime.Runtime<never>, scope: IterationScope | undefined) {
    this.runtime = iterationRuntime(runtime)
    this.updateRefs = scope === undefined ? undefined : withIterationScope(scope)
  }

  get size(): number {
    return this.fibers.length
  }

  /**
   * Forks `effect`; when it ends, `owner.onExit` runs first, with `started`,
   * and may fork more work here.
   */
  fork(effect: Effect.Effect<unknown, unknown>, owner?: ExitObserver, started?: number): void {
    const fiber = Runtime.runFork(this.runtime)(
      effect,
      this.updateRefs === undefined ? undefined : { updateRefs: this.updateRefs }
    )
    // Most iterations of a cheap task end within the fork: nothing to track then.
    const done = fiber.unsafePoll()
    if (done !== null) {
      if (owner !== undefined) owner.onExit(done, started)
      return
    }
    this.fibers.push(fiber)
    fiber.addObserver((exit) => {
      if (owner !== undefined) owner.onExit(exit, started)
      const index = this.fibers.indexOf(fiber)
      if (index >= 0) this.fibers.splice(index, 1)
      if (this.fibers.length === 0 && this.idle !== undefined) {
        Deferred.unsafeDone(this.idle, Exit.void)
        this.idle = undefined
      }
    })
  }

  interruptAll(): void {
    for (const fiber of [...this.fibers]) fiber.unsafeInterruptAsFork(FiberId.none)
  }

  awaitEmpty(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.fibers.length === 0) return Effect.void
      this.idle ??= Deferred.unsafeMake(FiberId.none)
      return Deferred.await(this.idle)
    })
  }
}

const iterationRuntimes = new WeakMap<Runtime.Runtime<never>, Runtime.Runtime<never>>()

/**
 * Iterations run with the runtime captured where the worker's layer was built
 * (shared by the workers built together), with interruption enabled (a host
 * builds layers in an uninterruptible region) and the iteration `Scope`.
 * Effect's own fiber metrics (`effect_fiber_*`) are off for iteration fibers:
 * their five updates per fiber cost 13% of a cheap iteration, and the workers'
 * metrics already count iterations.
 */
const iterationRuntime = (runtime: Runtime.Runtime<never>): Runtime.Runtime<never> => {
  let shared = iterationRuntimes.get(runtime)
  if (shared === undefined) {
    shared = Runtime.make({
      context: Context.add(runtime.context, Scope.Scope, iterationScopeService),
      runtimeFlags: RuntimeFlags.disable(
        RuntimeFlags.enable(runtime.runtimeFlags, RuntimeFlags.Interruption),
        RuntimeFlags.RuntimeMetrics
      ),
      fiberRefs: runtime.fiberRefs
    })
    iterationRuntimes.set(runtime, shared)
  }
  return shared
}

/** The name and message of a failure's value, when it has them: an `Error`, or a tagged value. */
const nameAndMessage = (value: unknown): readonly [string, string] | undefined => {
  if (value instanceof Error) return [value.name, value.message]
  if (typeof value === "object" && value !== null && "_tag" in value) {
    const message = "message" in value ? value.message : undefined
    return [String(value._tag), message === undefined ? "" : String(message)]
  }
  return undefined
}

/** Pretty text of a failure for logs and the status registry. */
export const causeText = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  // A ConfigError's message leaves out the path of the value; its text has both.
  if (ConfigError.isConfigError(squashed)) return String(squashed)
  const described = nameAndMessage(squashed)
  if (described === undefined) return String(squashed)
  const [name, message] = described
  return message === "" ? name : `${name}: ${message}`
}

/**
 * What a log line carries of a failure: a defect (a throw, a die) keeps its
 * whole cause, stack traces included; an expected, typed failure becomes a
 * cause of one line, its tag and message, since its stack (frames inside
 * Effect's fiber runtime) says nothing the message does not. Loggers still
 * show it as the line's cause (`cause` in JSON).
 */
export const loggedCause = (cause: Cause.Cause<unknown>): Cause.Cause<unknown> => {
  if (Cause.isDie(cause) || Cause.isInterruptedOnly(cause)) return cause
  const squashed = Cause.squash(cause)
  const [name, message] = ConfigError.isConfigError(squashed)
    ? ["ConfigError", String(squashed)]
    : nameAndMessage(squashed) ?? ["Error", String(squashed)]
  const error = new Error(message)
  error.name = name
  // Cause.pretty prints the first line of the stack, then its frames: none.
  error.stack = `${name}: ${message}`
  return Cause.fail(error)
}
