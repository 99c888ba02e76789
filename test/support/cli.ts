/**
 * The `effect-workers` command line as a real child process, for the CLI
 * tests: how it is started, and a run that collects stdout and stderr apart
 * (stdout holds results, `--json` documents among them; stderr holds errors
 * and logs).
 */
import { Data, Deferred, Duration, Effect } from "effect"
import { fileURLToPath } from "node:url"
import * as Children from "./children.js"

/**
 * The command that starts the CLI: the built `dist/bin.js` (the global setup
 * builds it), run by plain `node` as an installed package's `bin` is.
 * Every CLI test starts it through here.
 */
export const cliCommand = (): [string, ...Array<string>] => [
  process.execPath,
  fileURLToPath(new URL("../../dist/bin.js", import.meta.url))
]

/**
 * @category errors
 */
export class CliTimeout extends Data.TaggedError("CliTimeout")<{ readonly message: string }> {}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a run: this process's, without a `DATABASE_URL` unless `env` sets one. */
const environment = (env: Record<string, string | undefined>) => {
  const merged: Record<string, string | undefined> = { ...process.env, DATABASE_URL: undefined, ...env }
  return Object.fromEntries(Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined))
}

/**
 * Runs `command args...` to its end, with `env` added to (or, with
 * `undefined`, removed from) this process's environment (without its
 * `DATABASE_URL` unless `env` sets one) and stdin closed (not a terminal).
 * Killed and failed after `timeout` (default 120 s: a loaded machine takes
 * seconds to start a process).
 */
export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string | undefined> | undefined
    readonly cwd?: string | undefined
    readonly timeout?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<CliResult, CliTimeout> =>
  Effect.gen(function*() {
    const child = Children.spawnTracked(command, args, {
      env: environment(options.env ?? {}),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd })
    })
    const done = yield* Deferred.make<CliResult>()
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (chunk: Buffer) => stdout += chunk.toString("utf8"))
    child.stderr?.on("data", (chunk: Buffer) => stderr += chunk.toString("utf8"))
    // `close`, not `exit`: by then both streams have been read to their end.
    child.on("close", (code, signal) => Deferred.unsafeDone(done, Effect.succeed({ code, signal, stdout, stderr })))
    const timeout = options.timeout ?? Duration.seconds(120)
    return yield* Deferred.await(done).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new CliTimeout({
            message: `${command} ${args.join(" ")} did not end within ${Duration.format(timeout)}:\n` +
              `stdout:\n${stdout}\nstderr:\n${stderr}`
          })
      }),
      Effect.onInterrupt(() => Effect.sync(() => child.kill("SIGKILL"))),
      Effect.tapError(() => Effect.sync(() => child.kill("SIGKILL")))
    )
  })

/** Runs `effect-workers args...` to its end, as {@link runProcess} does. */
export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string | undefined> | undefined
    readonly timeout?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<CliResult, CliTimeout> => {
  const [command, ...prefix] = cliCommand()
  return runProcess(command, [...prefix, ...args], options)
}

/** A shell word: the argument in single quotes. */
const quote = (arg: string) => `'${arg.replaceAll("'", () => "'\\''")}'`

/**
 * Starts `effect-workers args...` on a pseudo-terminal (util-linux
 * `script`), so that it can prompt: write the answer to the child's stdin.
 * Its stdout and stderr arrive mixed, with the terminal's escapes.
 */
export const spawnAtTerminal = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {}
) =>
  Children.spawn("script", [
    "--quiet",
    "--return",
    "--command",
    [...cliCommand(), ...args].map(quote).join(" "),
    "/dev/null"
  ], {
    env: environment(env),
    stdio: ["pipe", "pipe", "pipe"]
  })

/**
 * Starts a long-running `effect-workers args...` (the dashboard), its
 * output collected together; the test stops it and awaits its exit.
 */
export const spawnCli = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) => {
  const [command, ...prefix] = cliCommand()
  return Children.spawn(command, [...prefix, ...args], { env: environment(env) })
}
