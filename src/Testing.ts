/**
 * Helpers for testing your own workers: run them under `TestClock`, observe
 * their status, and start a host inside a test and stop it, without sleeps.
 *
 * @since 0.1.0
 */
import type { Duration, Option } from "effect"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, type Scope, TestClock } from "effect"
import * as Host from "./Host.js"
import * as WorkerRegistryModule from "./WorkerRegistry.js"
import { WorkerRegistry } from "./WorkerRegistry.js"
import type { WorkerStatus } from "./WorkerStatus.js"

/**
 * Builds `workers` with a registry that starts them at once, in the current
 * scope; stopping happens when the scope closes. Use it inside `it.scoped`
 * (with `TestClock`) and read the registry to see what happened.
 *
 * @since 0.1.0
 * @category testing
 */
export const start = <E, R>(
  workers: Layer.Layer<never, E, R>
): Effect.Effect<WorkerRegistry["Type"], E, Scope.Scope | Exclude<R, WorkerRegistry>> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.provideMerge(workers, WorkerRegistryModule.layer))
    return Context.get(context, WorkerRegistry)
  }) as never

/**
 * Waits until the worker's status satisfies `predicate`.
 *
 * @since 0.1.0
 * @category testing
 */
export const awaitStatus = (
  name: string,
  predicate: (status: WorkerStatus) => boolean
): Effect.Effect<WorkerStatus, never, WorkerRegistry> =>
  Effect.flatMap(WorkerRegistry, (registry) => registry.awaitStatus(name, predicate))

/**
 * Waits until the worker has finished at least `n` iterations (or items).
 *
 * @since 0.1.0
 * @category testing
 */
export const awaitIterations = (name: string, n: number): Effect.Effect<WorkerStatus, never, WorkerRegistry> =>
  awaitStatus(name, (status) => status.iterations >= n)

/**
 * Moves the `TestClock` forward by `duration`, then lets the iterations that
 * became due run until none is left runnable.
 *
 * @since 0.1.0
 * @category testing
 */
export const advance = (duration: Duration.DurationInput): Effect.Effect<void> =>
  TestClock.adjust(duration).pipe(Effect.zipRight(settle))

/**
 * Yields until forked iterations have had the chance to run to their next
 * wait (a sleep, a deferred, or the next tick).
 *
 * @since 0.1.0
 * @category testing
 */
export const settle: Effect.Effect<void> = Effect.repeatN(Effect.yieldNow(), 63)

/**
 * A host started inside a test: its registry, a way to stop it, and its exit.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestHost<E> {
  readonly registry: WorkerRegistry["Type"]
  /** Stops the host as a signal would, and returns how it ended. */
  readonly stop: Effect.Effect<Exit.Exit<void, E | Host.HostError>>
  /** Waits for the host to end by itself (`Lifecycle.stop`, a `"stopHost"` failure). */
  readonly await: Effect.Effect<Exit.Exit<void, E | Host.HostError>>
}

/**
 * Starts `layer` with {@link Host.launch} on a fiber of the current scope and
 * returns once its workers have started. The host is stopped when the scope
 * closes, if it is still running.
 *
 * @since 0.1.0
 * @category testing
 */
export const startHost = <E, R>(
  layer: Layer.Layer<never, E, R>,
  options?: Host.HostOptions
): Effect.Effect<TestHost<E>, E | Host.HostError, Scope.Scope | Exclude<R, WorkerRegistry | Host.Lifecycle>> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<WorkerRegistry["Type"]>()
    const probe = Layer.effectDiscard(Effect.gen(function*() {
      const registry = yield* WorkerRegistry
      const lifecycle = yield* Host.Lifecycle
      yield* lifecycle.onStarted(Effect.asVoid(Deferred.succeed(ready, registry)))
    }))
    const fiber = yield* Effect.forkScoped(Host.launch(Layer.merge(layer, probe), options))
    const registry = yield* Effect.raceFirst(
      Deferred.await(ready),
      Effect.flatMap(Fiber.join(fiber), () => Effect.never)
    )
    return {
      registry,
      stop: Effect.flatMap(Fiber.interrupt(fiber), (exit) => Effect.succeed(normalize(exit))),
      await: Effect.map(Fiber.await(fiber), normalize)
    }
  }) as never

// Stopping the host by interruption is a clean stop, as a signal is for `Host.run`.
const normalize = <E>(exit: Exit.Exit<void, E>): Exit.Exit<void, E> =>
  Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Exit.void : exit

/**
 * Reads one worker's status.
 *
 * @since 0.1.0
 * @category testing
 */
export const status = (name: string): Effect.Effect<Option.Option<WorkerStatus>, never, WorkerRegistry> =>
  Effect.flatMap(WorkerRegistry, (registry) => registry.get(name))
