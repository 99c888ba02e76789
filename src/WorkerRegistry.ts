/**
 * The status registry: every worker registers here; health checks, the
 * dashboard and tests read it.
 *
 * @since 0.1.0
 */
import { Context, Deferred, Effect, Layer, Option, type Scope } from "effect"
import { Registry } from "./internal/registry.js"
import type { WorkerFailed } from "./WorkerError.js"
import type { WorkerStatus } from "./WorkerStatus.js"

/** @internal */
export const RegistryInternal: unique symbol = Symbol.for("effect-workers/WorkerRegistry/internal")

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkerRegistryService {
  /** A snapshot of every registered worker, in registration order. */
  readonly all: Effect.Effect<ReadonlyArray<WorkerStatus>>
  /** A snapshot of one worker. */
  readonly get: (name: string) => Effect.Effect<Option.Option<WorkerStatus>>
  /**
   * Waits until the named worker's status satisfies `predicate` and returns
   * that status; returns at once when it already does.
   */
  readonly awaitStatus: (name: string, predicate: (status: WorkerStatus) => boolean) => Effect.Effect<WorkerStatus>
  /** Completes with the first failure of a worker whose policy is `"stopHost"`. */
  readonly failure: Effect.Effect<WorkerFailed>
  /** @internal */
  readonly [RegistryInternal]: Registry
}

/**
 * The status registry service. Worker layers require it; `Host.launch` and
 * `Host.run` provide it, and {@link layer} provides it to programs without a host.
 *
 * @since 0.1.0
 * @category tags
 */
export class WorkerRegistry extends Context.Tag("effect-workers/WorkerRegistry")<
  WorkerRegistry,
  WorkerRegistryService
>() {}

/** @internal */
export const make = (
  startImmediately: boolean
): Effect.Effect<WorkerRegistryService, never, import("effect").Scope.Scope> =>
  Effect.gen(function*() {
    const registry = new Registry(startImmediately)
    yield* Effect.forkScoped(Effect.interruptible(registry.timer.run))
    return {
      all: Effect.sync(() => registry.snapshot()),
      get: (name: string) => Effect.sync(() => Option.fromNullable(registry.workers.get(name)?.status.snapshot())),
      awaitStatus: (name, predicate) => registry.awaitStatus(name, predicate),
      failure: Deferred.await(registry.failure),
      [RegistryInternal]: registry
    }
  })

/**
 * A registry whose workers start as soon as their layer is built, for
 * programs that run workers without `Host` (for example inside an existing
 * server's layer graph). A worker with the `"stopHost"` policy then only
 * completes {@link WorkerRegistryService.failure}; the program decides what to do.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<WorkerRegistry> = Layer.scoped(WorkerRegistry, make(true))

/**
 * Counts a service that runs beside the workers (`"job runner"`, `"recurring
 * scheduler"`) in the registry of the host building it, if there is one, for
 * as long as the scope is open: the host's start line names what runs.
 *
 * @internal
 */
export const addService = (kind: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(
    Effect.serviceOption(WorkerRegistry),
    Option.match({ onNone: () => Effect.void, onSome: (registry) => registry[RegistryInternal].addService(kind) })
  )
