import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Console, Deferred, Effect, Exit, Layer, Ref, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Host, Testing, Worker, WorkerError } from "../src/index.js"

const fixture = fileURLToPath(new URL("./fixtures/host-child.ts", import.meta.url))

interface Child {
  readonly process: ChildProcess
  readonly output: () => string
  /** Resolves when `text` has appeared in stdout or stderr. */
  readonly waitFor: (text: string) => Effect.Effect<void>
  readonly exit: Effect.Effect<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Parses each line as a JSON log entry; fails naming the first line that is not one. */
const jsonLines = (
  lines: ReadonlyArray<string>
): Array<{ message: unknown; logLevel: string; annotations: Record<string, unknown> }> =>
  lines.map((line) => {
    try {
      return JSON.parse(line)
    } catch {
      throw new Error(`not a JSON log line: ${line}`)
    }
  })

/** A console that keeps what the loggers write with `console.log`, one entry a call. */
const capturingConsole = Effect.map(Effect.console, (base) => {
  const lines: Array<string> = []
  const unsafe: Console.UnsafeConsole = Object.create(base.unsafe)
  unsafe.log = (...args: ReadonlyArray<unknown>) => {
    lines.push(args.map(String).join(" "))
  }
  return { console: { ...base, unsafe } satisfies Console.Console, lines }
})

/** Spawns the fixture host; it is killed when the test's scope closes if still alive. */
const spawnHost = (scenario: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(process.execPath, ["--import", "tsx", fixture, scenario], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NO_COLOR: "1", ...env }
      })
      let output = ""
      const waiters: Array<{ text: string; resume: () => void }> = []
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        for (const waiter of [...waiters]) {
          if (output.includes(waiter.text)) {
            waiters.splice(waiters.indexOf(waiter), 1)
            waiter.resume()
          }
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on("exit", (code, signal) => resolve({ code, signal }))
      )
      return {
        process: child,
        output: () => output,
        waitFor: (text) =>
          Effect.async<void>((resume) => {
            if (output.includes(text)) return resume(Effect.void)
            waiters.push({ text, resume: () => resume(Effect.void) })
          }).pipe(
            Effect.timeoutFail({
              duration: "20 seconds",
              onTimeout: () => new Error(`"${text}" never appeared; output so far:\n${output}`)
            }),
            Effect.orDie
          ),
        exit: Effect.promise(() => exited)
      }
    }),
    (child) => Effect.sync(() => child.process.exitCode === null && child.process.kill("SIGKILL"))
  )

describe("Host in a real process", () => {
  it.live(
    "SIGTERM stops workers gracefully: hooks in order, finalizers run, exit code 0",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnHost("graceful")
        yield* child.waitFor("hook: started")
        yield* child.waitFor("cleaner running")
        yield* child.waitFor("tick")
        child.process.kill("SIGTERM")
        const { code } = yield* child.exit
        const out = child.output()
        assert.strictEqual(code, 0, out)
        const order = ["hook: started", "hook: stopping", "finalizer: cleaner released its resources", "hook: stopped"]
        const positions = order.map((line) => out.indexOf(line))
        assert.isTrue(positions.every((p) => p >= 0), out)
        assert.deepStrictEqual([...positions].sort((a, b) => a - b), positions, out)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("a worker stuck past the grace period: exit code 1, its name logged", () =>
    Effect.gen(function*() {
      const child = yield* spawnHost("stuck")
      yield* child.waitFor("stuck-worker entered an uninterruptible section")
      child.process.kill("SIGINT")
      const { code } = yield* child.exit
      const out = child.output()
      assert.strictEqual(code, 1, out)
      assert.include(out, "did not finish within the grace period of 1000 ms")
      assert.include(out, "workers still running: stuck-worker")
      assert.notInclude(out, "ticker,")
    }).pipe(Effect.scoped), 180_000)

  // Sent once the child has shown it took the first: two kills in the same tick are often merged by the
  // kernel into one pending signal, which would not test the rule.
  it.live(
    "a second SIGINT right after the first is a wrapper's relay: the host drains and exits 0",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnHost("slow-stop")
        yield* child.waitFor("slow-worker running")
        child.process.kill("SIGINT")
        yield* child.waitFor("Host stopping")
        child.process.kill("SIGINT")
        const { code } = yield* child.exit
        const out = child.output()
        assert.strictEqual(code, 0, out)
        assert.include(out, "taken as a relay of the first")
        assert.include(out, "slow-worker stopped")
        assert.include(out, "Host stopped")
        assert.notInclude(out, "again during shutdown")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a second SIGINT more than a second after the first exits at once with code 130",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnHost("slow-stop", { STOP_MILLIS: String(60 * 60 * 1000) })
        yield* child.waitFor("slow-worker running")
        child.process.kill("SIGINT")
        yield* child.waitFor("slow-worker still stopping after 1.5 s")
        child.process.kill("SIGINT")
        const { code } = yield* child.exit
        const out = child.output()
        assert.strictEqual(code, 130, out)
        assert.include(out, "Received SIGINT again during shutdown: exiting now")
        assert.notInclude(out, "relay")
        assert.notInclude(out, "grace period")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("a worker failing with the stopHost policy stops the host with exit code 1", () =>
    Effect.gen(function*() {
      const child = yield* spawnHost("fatal")
      const { code } = yield* child.exit
      const out = child.output()
      assert.strictEqual(code, 1, out)
      assert.include(out, `Worker "fatal" failed and stopped the host: the disk is full`)
      assert.include(out, "hook: stopped")
    }).pipe(Effect.scoped), 180_000)

  it.live("a bad cron expression stops the host before any worker starts", () =>
    Effect.gen(function*() {
      const child = yield* spawnHost("bad-cron")
      const { code } = yield* child.exit
      const out = child.output()
      assert.strictEqual(code, 1, out)
      assert.include(out, `invalid day-of-week field in cron expression "0 2 * * 8"`)
      assert.notInclude(out, "hook: started")
    }).pipe(Effect.scoped), 180_000)

  it.live("LOG_FORMAT=json: every log line is a JSON object with its annotations", () =>
    Effect.gen(function*() {
      const child = yield* spawnHost("fatal", { LOG_FORMAT: "json" })
      const { code } = yield* child.exit
      const out = child.output()
      assert.strictEqual(code, 1, out)
      // The fixture's own progress lines are plain text; everything the loggers wrote must be JSON.
      const logs = jsonLines(out.split("\n").filter((line) => line !== "" && !line.startsWith("hook: ")))
      const failure = logs.find((log) => log.message === `Worker "fatal" iteration failed`)
      assert.isDefined(failure, out)
      assert.strictEqual(failure!.logLevel, "ERROR")
      assert.deepStrictEqual(failure!.annotations, { worker: "fatal" })
      assert.deepStrictEqual(
        logs.map((log) => log.message).filter((m) => m === "Host stopping" || m === "Host stopped"),
        ["Host stopping", "Host stopped"]
      )
    }).pipe(Effect.scoped), 180_000)

  it.live(
    "a LOG_FORMAT that is not a format: exit code 1, the variable and the formats named",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnHost("graceful", { LOG_FORMAT: "xml" })
        const { code } = yield* child.exit
        const out = child.output()
        assert.strictEqual(code, 1, out)
        assert.include(out, "Host failed to start")
        assert.include(out, `Invalid data at LOG_FORMAT: "Expected one of (pretty, logfmt, json, structured)`)
        assert.notInclude(out, "hook: started")
      }).pipe(Effect.scoped),
    30_000
  )
})

describe("Host.launch", () => {
  it.scoped("runs lifecycle hooks in order and stops workers in reverse order of start", () =>
    Effect.gen(function*() {
      const events = yield* Ref.make<Array<string>>([])
      const record = (event: string) => Ref.update(events, (xs) => [...xs, event])
      const worker = (name: string) =>
        Worker.make(
          name,
          Effect.zipRight(record(`${name} started`), Effect.never).pipe(
            Effect.onInterrupt(() => record(`${name} stopped`))
          )
        )
      const hooks = Layer.effectDiscard(Effect.gen(function*() {
        const lifecycle = yield* Host.Lifecycle
        yield* lifecycle.onStarted(record("started hook"))
        yield* lifecycle.onStopping(record("stopping hook"))
        yield* lifecycle.onStopped(record("stopped hook"))
      }))
      const resource = Layer.scopedDiscard(
        Effect.acquireRelease(record("resource acquired"), () => record("resource released"))
      )
      const app = Layer.mergeAll(hooks, worker("first"), worker("second"), worker("third")).pipe(
        Layer.provide(resource)
      )
      const host = yield* Testing.startHost(app, { gracePeriod: "5 seconds" })
      for (const name of ["first", "second", "third"]) {
        yield* host.registry.awaitStatus(name, (s) => s.state === "running")
      }
      yield* Effect.yieldNow()
      const exit = yield* host.stop
      assert.isTrue(Exit.isSuccess(exit))
      const log = yield* Ref.get(events)
      assert.strictEqual(log[0], "resource acquired")
      assert.deepStrictEqual(log.slice(-6), [
        "stopping hook",
        "third stopped",
        "second stopped",
        "first stopped",
        "resource released",
        "stopped hook"
      ])
      assert.includeMembers(log.slice(1, 5), ["started hook", "first started", "second started", "third started"])
    }))

  it.scoped("Lifecycle.stop ends the host cleanly", () =>
    Effect.gen(function*() {
      const ran = yield* Deferred.make<void>()
      const stopper = Worker.make(
        "stopper",
        Effect.gen(function*() {
          yield* Deferred.succeed(ran, void 0)
          const lifecycle = yield* Host.Lifecycle
          yield* lifecycle.stop
        })
      )
      const host = yield* Testing.startHost(stopper, { gracePeriod: "5 seconds" })
      yield* Deferred.await(ran)
      const exit = yield* host.await
      assert.isTrue(Exit.isSuccess(exit))
      const status = yield* host.registry.awaitStatus("stopper", (s) => s.state === "stopped")
      assert.strictEqual(status.iterations, 1)
    }))

  it.live("fails with ShutdownTimeout naming the worker that did not stop", () =>
    Effect.gen(function*() {
      const stuck = Worker.make("stubborn", Effect.uninterruptible(Effect.never))
      const fine = Worker.make("fine", Effect.void, { schedule: Schedule.spaced("1 second") })
      const host = yield* Testing.startHost(Layer.merge(stuck, fine), { gracePeriod: "100 millis", concurrent: true })
      yield* host.registry.awaitStatus("stubborn", (s) => s.state === "running")
      const exit = yield* host.stop
      assert.isTrue(Exit.isFailure(exit))
      const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause)
      assert.instanceOf(error, WorkerError.ShutdownTimeout)
      assert.deepStrictEqual((error as WorkerError.ShutdownTimeout).workers, ["stubborn"])
    }).pipe(Effect.scoped))

  it.live("rejects a grace period that is not a duration", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Host.launch(Worker.make("idle", Effect.void), { gracePeriod: "a while" as "1 second" })
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(
        String(Cause.squash((exit as Exit.Failure<void, unknown>).cause)),
        "gracePeriod must be a duration from 0 to 365000 days"
      )
    }))

  it.live("refuses a negative or NaN grace period, in options and in SHUTDOWN_GRACE_PERIOD, before starting", () =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const worker = Worker.make("counted", Ref.update(started, (n) => n + 1))
      const refused = (exit: Exit.Exit<void, unknown>) =>
        Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : "accepted"
      for (const gracePeriod of [-1, Number.NaN, "-5 seconds", "5 lightyears", Number.POSITIVE_INFINITY]) {
        const exit = yield* Effect.exit(Host.launch(worker, { gracePeriod: gracePeriod as "1 second" }))
        assert.include(
          refused(exit),
          "The host's gracePeriod must be a duration from 0 to 365000 days",
          String(gracePeriod)
        )
        assert.include(refused(exit), String(gracePeriod))
      }
      for (const text of ["-5 seconds", "NaN millis", "soon"]) {
        const exit = yield* Effect.exit(Host.launch(worker)).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SHUTDOWN_GRACE_PERIOD", text]])))
        )
        assert.include(refused(exit), `SHUTDOWN_GRACE_PERIOD must be a duration from 0 to 365000 days`, text)
        assert.include(refused(exit), JSON.stringify(text))
      }
      assert.strictEqual(yield* Ref.get(started), 0)
    }))

  it.scoped("a hook registered after its phase runs at once", () =>
    Effect.gen(function*() {
      const late = yield* Deferred.make<void>()
      const worker = Worker.make(
        "late-registrar",
        Effect.flatMap(Host.Lifecycle, (lifecycle) =>
          lifecycle.onStarted(Deferred.succeed(late, void 0).pipe(Effect.asVoid)))
      )
      const host = yield* Testing.startHost(worker, { gracePeriod: "5 seconds" })
      yield* Deferred.await(late)
      assert.isTrue(Exit.isSuccess(yield* host.stop))
    }))

  it.scoped("logFormat json writes each log line as a JSON object, with a worker's annotation", () =>
    Effect.gen(function*() {
      const { console, lines } = yield* capturingConsole
      const failing = Worker.make("json-logs", Effect.fail(new Error("boom")), { retry: false })
      const host = yield* Testing.startHost(failing, { gracePeriod: "5 seconds", logFormat: "json" }).pipe(
        Effect.withConsole(console)
      )
      yield* host.registry.awaitStatus("json-logs", (s) => s.state === "failed")
      assert.isTrue(Exit.isSuccess(yield* host.stop))
      const logs = jsonLines(lines)
      const messages = logs.map((log) => log.message)
      // The worker's first iteration is forked as the host starts: its line may come before "Host started".
      assert.sameMembers(messages.slice(0, 2), ["Host started with 1 worker", `Worker "json-logs" iteration failed`])
      assert.deepStrictEqual(messages.slice(2), ["Host stopping", "Host stopped"])
      const failure = logs.find((log) => log.message === `Worker "json-logs" iteration failed`)!
      assert.deepStrictEqual(failure.annotations, { worker: "json-logs" })
      assert.strictEqual(failure.logLevel, "ERROR")
    }))

  it.scoped("reads the format from LOG_FORMAT", () =>
    Effect.gen(function*() {
      const { console, lines } = yield* capturingConsole
      const host = yield* Testing.startHost(Worker.make("idle", Effect.never), { gracePeriod: "5 seconds" }).pipe(
        Effect.withConsole(console),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LOG_FORMAT", "logfmt"]])))
      )
      assert.isTrue(Exit.isSuccess(yield* host.stop))
      assert.strictEqual(lines.length, 3, lines.join("\n"))
      for (const line of lines) assert.match(line, /^timestamp=\S+ level=INFO fiber=#\d+ message="Host st/)
    }))

  it.effect("rejects a log format that is not one, from the option or from LOG_FORMAT", () =>
    Effect.gen(function*() {
      const message = (exit: Exit.Exit<void, unknown>) =>
        Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : "the host succeeded"
      const fromOption = yield* Effect.exit(
        Host.launch(Worker.make("idle", Effect.void), { logFormat: "xml" as "json" })
      )
      assert.include(message(fromOption), "logFormat must be one of pretty, logfmt, json, structured (got xml)")
      const fromConfig = yield* Effect.exit(
        Host.launch(Worker.make("idle", Effect.void)).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LOG_FORMAT", "JSON"]])))
        )
      )
      assert.include(message(fromConfig), "LOG_FORMAT")
      assert.include(message(fromConfig), "Expected one of (pretty, logfmt, json, structured) but received")
    }))
})
