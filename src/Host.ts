/**
 * Runs a program of worker layers as a process: `NodeRuntime.runMain` plus a
 * shutdown grace period, a repeated signal that forces exit, exit codes,
 * lifecycle hooks, and ordered start and stop of workers.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import {
  Cause,
  Config,
  ConfigError,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Layer,
  Logger,
  Option,
  Scope
} from "effect"
import * as Check from "./internal/options.js"
import { loggedCause } from "./internal/registry.js"
import { forceExitOnSecondSignal, ShutdownDeadline } from "./internal/shutdown.js"
import { ShutdownTimeout, type WorkerFailed } from "./WorkerError.js"
import { make as makeRegistry, RegistryInternal, WorkerRegistry } from "./WorkerRegistry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface HostOptions {
  /**
   * How long shutdown may take: stopping hooks, stopping workers and
   * releasing resources. When it runs out, the host logs the workers still
   * running and fails with `ShutdownTimeout` (exit code 1). Default: the
   * `SHUTDOWN_GRACE_PERIOD` config value, else 30 seconds.
   */
  readonly gracePeriod?: Duration.DurationInput | undefined
  /**
   * Stop all workers at once instead of one after another in reverse order of
   * start. Workers always start without waiting for each other. Default `false`.
   */
  readonly concurrent?: boolean | undefined
  /**
   * The format of log lines, written with Effect's built-in loggers. Default:
   * the `LOG_FORMAT` config value, else the loggers are left as they are
   * (under {@link run}, Effect's pretty logger).
   */
  readonly logFormat?: LogFormat | undefined
}

/**
 * How the host writes log lines, with Effect's built-in loggers: `"pretty"`
 * (`Logger.pretty`, for people), `"logfmt"` (`Logger.logFmt`), `"json"`
 * (`Logger.json`: one JSON object a line, with the annotations and spans) or
 * `"structured"` (`Logger.structured`: objects printed by `console.log`).
 *
 * @since 0.1.0
 * @category models
 */
export type LogFormat = "pretty" | "logfmt" | "json" | "structured"

const logFormats: ReadonlyArray<LogFormat> = ["pretty", "logfmt", "json", "structured"]

const loggers: Record<LogFormat, Layer.Layer<never>> = {
  pretty: Logger.pretty,
  logfmt: Logger.logFmt,
  json: Logger.json,
  structured: Logger.structured
}

/**
 * How a host can fail besides its layer's own errors.
 *
 * @since 0.1.0
 * @category errors
 */
export type HostError = WorkerFailed | ShutdownTimeout | ConfigError.ConfigError

/**
 * The host's lifetime, like `IHostApplicationLifetime`: register hooks and
 * ask the host to stop.
 *
 * @since 0.1.0
 * @category models
 */
export interface LifecycleService {
  /** Runs `hook` once every worker has been started. */
  readonly onStarted: (hook: Effect.Effect<void>) => Effect.Effect<void>
  /** Runs `hook` when shutdown begins, before workers are stopped. */
  readonly onStopping: (hook: Effect.Effect<void>) => Effect.Effect<void>
  /** Runs `hook` after workers have stopped and resources were released. */
  readonly onStopped: (hook: Effect.Effect<void>) => Effect.Effect<void>
  /** Asks the host to stop gracefully (exit code 0). */
  readonly stop: Effect.Effect<void>
  /** Completes when shutdown begins. */
  readonly stopping: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Lifecycle extends Context.Tag("effect-workers/Lifecycle")<Lifecycle, LifecycleService>() {}

/** The grace period's range, stated in docs/host.md. */
const graceRule: Check.DurationRule = { min: 0 }

/**
 * The grace period from config: `SHUTDOWN_GRACE_PERIOD`, a duration such as
 * `"10 seconds"`, default 30 seconds.
 *
 * @since 0.1.0
 * @category config
 */
export const gracePeriodConfig: Config.Config<Duration.Duration> = Config.string("SHUTDOWN_GRACE_PERIOD").pipe(
  // Read as text and checked before decoding: Effect's `Config.duration` reads "-5 seconds" as 0.
  Config.mapOrFail((text) =>
    Either.mapBoth(Check.durationMillis(text, graceRule), {
      onLeft: (reason) => ConfigError.InvalidData([], `SHUTDOWN_GRACE_PERIOD ${reason}`),
      onRight: Duration.millis
    })
  ),
  Config.withDefault(Duration.seconds(30)),
  Config.withDescription("How long the host waits for workers to stop before exiting anyway")
)

/**
 * The log format from config: `LOG_FORMAT`, one of `pretty`, `logfmt`,
 * `json` or `structured`; `Option.none()` when it is not set.
 *
 * @since 0.1.0
 * @category config
 */
export const logFormatConfig: Config.Config<Option.Option<LogFormat>> = Config.literal(...logFormats)("LOG_FORMAT")
  .pipe(
    Config.option,
    Config.withDescription("The format of the host's log lines: pretty, logfmt, json or structured")
  )

const decodeLogFormat = (input: LogFormat): Effect.Effect<LogFormat, ConfigError.ConfigError> =>
  logFormats.includes(input)
    ? Effect.succeed(input)
    : Effect.fail(
      ConfigError.InvalidData(
        ["logFormat"],
        `The host's logFormat must be one of ${logFormats.join(", ")} (got ${String(input)})`
      )
    )

// `NodeRuntime.runMain` swaps the default logger for the pretty one, which `Logger.json` and the others
// do not replace: remove it too, so the chosen logger is the only console logger.
const withLogFormat = <A, E, R>(effect: Effect.Effect<A, E, R>, format: LogFormat): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.provide(loggers[format]), Effect.provide(Logger.remove(Logger.prettyLoggerDefault)))

const decodeGracePeriod = (
  input: Duration.DurationInput
): Effect.Effect<Duration.Duration, ConfigError.ConfigError> =>
  Either.match(Check.durationMillis(input, graceRule), {
    onLeft: (reason) => Effect.fail(ConfigError.InvalidData(["gracePeriod"], `The host's gracePeriod ${reason}`)),
    onRight: (millis) => Effect.succeed(Duration.millis(millis))
  })

const checkConcurrent = (input: unknown): Effect.Effect<boolean, ConfigError.ConfigError> =>
  Either.match(Check.boolean(input), {
    onLeft: (reason) => Effect.fail(ConfigError.InvalidData(["concurrent"], `The host's concurrent option ${reason}`)),
    onRight: Effect.succeed
  })

const runHooks = (hooks: ReadonlyArray<Effect.Effect<void>>, phase: string) =>
  Effect.forEach(
    hooks,
    (hook) => Effect.catchAllCause(hook, (cause) => Effect.logError(`A ${phase} hook failed`, loggedCause(cause))),
    { discard: true }
  )

/**
 * Builds `layer`, starts its workers once the whole graph is built, runs
 * until interrupted (a signal, under {@link run}), until `Lifecycle.stop`, or
 * until a worker with the `"stopHost"` policy fails; then shuts down within
 * the grace period.
 *
 * **Details**
 *
 * Shutdown runs the stopping hooks, stops the workers (in reverse order of
 * start, or all at once with `concurrent`), releases the layer's resources in
 * reverse order of acquisition, then runs the stopped hooks. If that takes
 * longer than the grace period, the workers still running are logged and the
 * effect fails with `ShutdownTimeout`.
 *
 * With `logFormat` (or `LOG_FORMAT`), the host and everything it runs log
 * with that built-in logger. A bad option or config value fails the host
 * with a `ConfigError` before anything is built.
 *
 * @since 0.1.0
 * @category running
 */
export const launch = <E, R>(
  layer: Layer.Layer<never, E, R>,
  options?: HostOptions
): Effect.Effect<void, E | HostError, Exclude<R, WorkerRegistry | Lifecycle>> =>
  Effect.gen(function*() {
    const settings = yield* Effect.all({
      grace: options?.gracePeriod !== undefined ? decodeGracePeriod(options.gracePeriod) : gracePeriodConfig,
      concurrent: checkConcurrent(options?.concurrent ?? false),
      logFormat: options?.logFormat !== undefined
        ? Effect.map(decodeLogFormat(options.logFormat), Option.some)
        : logFormatConfig
    }).pipe(Effect.tapErrorCause((cause) => Effect.logError("Host failed to start", loggedCause(cause))))
    const program = host(layer, settings.grace, settings.concurrent)
    return yield* Option.isSome(settings.logFormat) ? withLogFormat(program, settings.logFormat.value) : program
  }).pipe(Effect.uninterruptible)

const host = <E, R>(
  layer: Layer.Layer<never, E, R>,
  grace: Duration.Duration,
  concurrent: boolean
): Effect.Effect<void, E | WorkerFailed | ShutdownTimeout, Exclude<R, WorkerRegistry | Lifecycle>> =>
  Effect.gen(function*() {
    const hostScope = yield* Scope.make()
    const timerScope = yield* Scope.fork(hostScope, ExecutionStrategy.sequential)
    const registry = yield* makeRegistry(false).pipe(Scope.extend(timerScope))
    const internal = registry[RegistryInternal]
    const started: Array<Effect.Effect<void>> = []
    const stoppingHooks: Array<Effect.Effect<void>> = []
    const stopped: Array<Effect.Effect<void>> = []
    const stopRequested = yield* Deferred.make<void>()
    const stoppingSignal = yield* Deferred.make<void>()
    let phase: "building" | "started" | "stopping" | "stopped" = "building"
    let shutdownDeadline: number | undefined
    // A hook registered after its moment has passed runs at once rather than never.
    const register =
      (hooks: Array<Effect.Effect<void>>, passed: boolean, name: string) => (hook: Effect.Effect<void>) =>
        Effect.suspend(() => {
          if (!passed) {
            hooks.push(hook)
            return Effect.void
          }
          return runHooks([hook], name)
        })
    const lifecycle: LifecycleService = {
      onStarted: (hook) => Effect.suspend(() => register(started, phase !== "building", "started")(hook)),
      onStopping: (hook) =>
        Effect.suspend(() => register(stoppingHooks, phase === "stopping" || phase === "stopped", "stopping")(hook)),
      onStopped: (hook) => Effect.suspend(() => register(stopped, phase === "stopped", "stopped")(hook)),
      stop: Deferred.succeed(stopRequested, void 0).pipe(Effect.asVoid),
      stopping: Deferred.await(stoppingSignal)
    }
    const appScope = yield* Scope.fork(hostScope, ExecutionStrategy.sequential)

    const shutdown = (exit: Exit.Exit<unknown, unknown>) =>
      Effect.gen(function*() {
        const clock = yield* Effect.clock
        const deadline = clock.unsafeCurrentTimeMillis() + Duration.toMillis(grace)
        shutdownDeadline = deadline
        const remaining = () => Duration.millis(Math.max(0, deadline - clock.unsafeCurrentTimeMillis()))
        phase = "stopping"
        yield* Deferred.succeed(stoppingSignal, void 0)
        yield* Effect.logInfo("Host stopping")
        const steps = Effect.gen(function*() {
          yield* runHooks(stoppingHooks, "stopping")
          yield* internal.stopAll(concurrent)
          yield* Scope.close(appScope, exit)
        })
        // Run detached so that a finalizer stuck in an uninterruptible region cannot hold the host past its grace.
        const finished = yield* Effect.timeoutOption(Effect.interruptible(Effect.disconnect(steps)), remaining())
        if (Option.isNone(finished)) {
          const workers = internal.unstopped()
          const error = new ShutdownTimeout({ gracePeriodMillis: Duration.toMillis(grace), workers })
          yield* Effect.logError(error.message)
          // Stop the registry's timer without waiting on what is stuck.
          yield* Effect.forkDaemon(Scope.close(timerScope, Exit.void))
          return yield* Effect.fail(error)
        }
        phase = "stopped"
        yield* runHooks(stopped, "stopped")
        yield* Scope.close(hostScope, Exit.void)
        yield* Effect.logInfo("Host stopped")
      })

    const run = Effect.gen(function*() {
      // The deadline is internal: typed away so that it stays out of the layer's requirements.
      const context = Context.make(WorkerRegistry, registry).pipe(
        Context.add(Lifecycle, lifecycle),
        Context.add(ShutdownDeadline, { get: () => shutdownDeadline })
      ) as Context.Context<never> as Context.Context<WorkerRegistry | Lifecycle>
      yield* Layer.buildWithScope(Layer.provide(layer, Layer.succeedContext(context)), appScope).pipe(
        Effect.tapErrorCause((cause) => Effect.logError("Host failed to start", loggedCause(cause)))
      )
      yield* internal.startAll()
      phase = "started"
      yield* Effect.logInfo(`Host started with ${internal.describe()}`)
      yield* runHooks(started, "started")
      const failure = yield* Effect.raceFirst(
        Effect.map(registry.failure, Option.some),
        Effect.as(Deferred.await(stopRequested), Option.none<WorkerFailed>())
      )
      if (Option.isSome(failure)) {
        yield* Effect.logError(failure.value.message)
        return yield* Effect.fail(failure.value)
      }
    })

    const exit = yield* Effect.exit(Effect.interruptible(run))
    const shutdownExit = yield* Effect.exit(shutdown(exit))
    if (Exit.isFailure(shutdownExit)) {
      return yield* Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
        ? Exit.failCause(Cause.sequential(exit.cause, shutdownExit.cause))
        : shutdownExit
    }
    return yield* exit
  })

/**
 * Runs `layer` as the process's program with `NodeRuntime.runMain` and
 * {@link launch}: SIGINT or SIGTERM starts a graceful shutdown, and the
 * process exits with 0 after a clean stop or 1 when a worker failure stopped
 * the host, the layer failed to build, or shutdown overran the grace period.
 *
 * **Details**
 *
 * A second SIGINT or SIGTERM at least 1 second after the first forces exit at
 * once with code 130. One sooner is taken as a wrapper (`tsx`, `npx`, `npm`)
 * relaying the same Ctrl-C: it is ignored, with a line on stderr.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schedule } from "effect"
 * import { Host, Worker } from "effect-workers"
 *
 * const Heartbeat = Worker.make("heartbeat", Effect.log("alive"), { schedule: Schedule.spaced("1 second") })
 *
 * Host.run(Layer.mergeAll(Heartbeat), { gracePeriod: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E>(
  layer: Layer.Layer<never, E, WorkerRegistry | Lifecycle>,
  options?: HostOptions
): void => {
  const stopWatching = forceExitOnSecondSignal()
  NodeRuntime.runMain(launch(layer, options), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const code = Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 1 : 0
      stopWatching()
      onExit(code)
      // A host process ends with its host, even when something keeps the event loop alive.
      process.exit(code)
    }
  })
}
