/**
 * Child processes for tests. Every child spawned here is tracked: one still
 * running when its test file ends is killed and fails the file.
 */
import { Data, Deferred, Duration, Effect, type Scope } from "effect"
import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from "node:child_process"

/**
 * @category errors
 */
export class ChildProcessError extends Data.TaggedError("ChildProcessError")<{ readonly message: string }> {}

export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/**
 * @category models
 */
export interface Child {
  readonly process: ChildProcess
  /** Everything the child wrote to stdout and stderr so far. */
  readonly output: Effect.Effect<string>
  /**
   * Waits until the output matches `pattern`. Fails when the child exits
   * first or `timeout` (default 20 s) passes, with the output so far.
   */
  readonly waitForOutput: (
    pattern: RegExp | string,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<void, ChildProcessError>
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  /** Completes when the child has exited. */
  readonly exit: Effect.Effect<ChildExit>
}

interface Tracked {
  readonly command: string
  readonly child: ChildProcess
  leaked: boolean
}

const tracked = new Set<Tracked>()

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

const describe = (entry: Tracked) => `pid ${entry.child.pid ?? "?"}: ${entry.command}`

/**
 * Spawns a tracked child process (node's `spawn`, stdout and stderr piped).
 * Prefer {@link spawn} in Effect tests.
 */
export const spawnTracked = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): ChildProcess => {
  const child = nodeSpawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options })
  tracked.add({ command: [command, ...args].join(" "), child, leaked: false })
  return child
}

/**
 * Spawns a tracked child whose output is collected. If it still runs when
 * the scope closes after a successful test, it is killed and reported as
 * leaked: a test ends its children and waits for their exit.
 */
export const spawn = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<ChildExit>()
    let output = ""
    const outputChanged = new Set<() => void>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawnTracked(command, args, options)
        const append = (chunk: Buffer) => {
          output += chunk.toString("utf8")
          for (const listener of outputChanged) listener()
        }
        child.stdout?.on("data", append)
        child.stderr?.on("data", append)
        child.on("exit", (code, signal) => {
          Deferred.unsafeDone(exited, Effect.succeed({ code, signal }))
          for (const listener of outputChanged) listener()
        })
        return child
      }),
      (child, exit) =>
        Effect.gen(function*() {
          if (!isRunning(child)) return
          for (const entry of tracked) if (entry.child === child) entry.leaked = exit._tag === "Success"
          child.kill("SIGKILL")
          yield* Deferred.await(exited)
        })
    )

    const waitForOutput = (
      pattern: RegExp | string,
      waitOptions?: { readonly timeout?: Duration.DurationInput | undefined }
    ) => {
      const matches = () => typeof pattern === "string" ? output.includes(pattern) : pattern.test(output)
      // Starting a child under tsx takes seconds, and many more on a loaded machine.
      const timeout = waitOptions?.timeout ?? Duration.seconds(90)
      const waitFor = Effect.async<void, ChildProcessError>((resume) => {
        const check = () => {
          if (!matches() && isRunning(child)) return
          outputChanged.delete(check)
          const status = child.exitCode ?? child.signalCode
          resume(
            matches()
              ? Effect.void
              : Effect.fail(
                new ChildProcessError({ message: `exited (${status}) before printing ${pattern}:\n${output}` })
              )
          )
        }
        outputChanged.add(check)
        check()
        return Effect.sync(() => outputChanged.delete(check))
      })
      return waitFor.pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new ChildProcessError({
              message: `did not print ${pattern} within ${Duration.format(timeout)}:\n${output}`
            })
        })
      )
    }

    return {
      process: child,
      output: Effect.sync(() => output),
      waitForOutput,
      kill: (signal = "SIGTERM") => Effect.sync(() => void child.kill(signal)),
      exit: Deferred.await(exited)
    }
  })

/**
 * Kills children still running or killed as leaked, forgets finished ones,
 * and describes the problems. The setup file calls it after each test file.
 */
export const collectLeaks = async (): Promise<ReadonlyArray<string>> => {
  const problems: Array<string> = []
  for (const entry of tracked) {
    if (isRunning(entry.child)) {
      problems.push(`Child process still running when its test file ended (now killed): ${describe(entry)}`)
      await new Promise<void>((resolve) => {
        entry.child.once("exit", () => resolve())
        entry.child.kill("SIGKILL")
      })
    } else if (entry.leaked) {
      problems.push(`Child process still running when its test ended (killed): ${describe(entry)}`)
    }
  }
  tracked.clear()
  return problems
}
