/**
 * One configuration of the workers suite, in a process of its own so heaps do
 * not mix: `node --expose-gc --import tsx bench/workers-child.ts <impl> <count>
 * <warmupMs> <windowMs>`. Starts `count` periodic tasks firing every second,
 * waits out the warm-up, then measures CPU time and retained heap over the
 * window and prints one JSON line (a {@link ChildResult}).
 */
import { Effect, Layer, Schedule } from "effect"
import * as Worker from "../src/Worker.js"
import * as WorkerRegistry from "../src/WorkerRegistry.js"
import { type ChildResult, type Impl, impls } from "./workers-config.js"

const [implArg, countArg, warmupArg, windowArg] = process.argv.slice(2)
const impl = implArg as Impl
const count = Number(countArg)
const warmupMs = Number(warmupArg)
const windowMs = Number(windowArg)
if (!impls.includes(impl) || !(count > 0) || !(warmupMs >= 0) || !(windowMs > 0)) {
  throw new Error(`usage: workers-child.ts <${impls.join("|")}> <count> <warmupMs> <windowMs>`)
}

const gc = globalThis.gc
if (gc === undefined) throw new Error("run with --expose-gc")

let fired = 0
const tick = (): void => {
  fired++
}

/** Heap in use after full collections (twice, so weak references and finalizers settle). */
const settledHeap = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

// croner lives in bench/node_modules, which a fresh clone's typecheck does not
// have: import it through a non-literal specifier with the slice of its API we use.
type CronConstructor = new(pattern: string, run: () => void) => unknown
const cronerSpecifier: string = "croner"
const loadCron = async (): Promise<CronConstructor> =>
  ((await import(cronerSpecifier)) as { Cron: CronConstructor }).Cron

type Layers = Array<Worker.WorkerLayer<unknown, never>>

const startEffectWorkers = (
  merge: (layers: Layers) => Worker.WorkerLayer<unknown, never>,
  schedule: Worker.Options<never, never, never>["schedule"]
) => {
  const task = Effect.sync(tick)
  const workers = merge(Array.from({ length: count }, (_, i) => Worker.make(`worker-${i}`, task, { schedule })))
  // As `Testing.start` does: build the workers on a registry that starts them at once, keep the scope open.
  return new Promise<void>((resolve, reject) => {
    const fiber = Effect.runFork(
      Effect.scoped(
        Layer.build(Layer.provideMerge(workers, WorkerRegistry.layer)).pipe(
          Effect.zipRight(Effect.sync(resolve)),
          Effect.zipRight(Effect.never)
        )
      )
    )
    fiber.addObserver((exit) => reject(new Error(`effect-workers ended: ${String(exit)}`)))
  })
}

/** Starts the tasks; resolves once every one of them is scheduled. */
const start = async (): Promise<void> => {
  switch (impl) {
    // The form docs/workers.md recommends for many workers: one layer, a plain interval, one metrics label.
    case "effect-workers":
      return startEffectWorkers((layers) => Worker.mergeAll(layers, { metricsLabel: "bench" }), "1 second")
    // The same with a metrics label (a series and its hooks) per worker, the default.
    case "effect-workers-labelled":
      return startEffectWorkers((layers) => Worker.mergeAll(layers), "1 second")
    // What a program with a handful of workers writes: a layer each and an Effect `Schedule`.
    case "effect-workers-layers":
      return startEffectWorkers(([first, ...rest]) => Layer.mergeAll(first!, ...rest), Schedule.spaced("1 second"))
    case "effect-repeat": {
      // The naive Effect baseline: one sleeping fiber per task.
      const repeated = Effect.repeat(Effect.sync(tick), Schedule.spaced("1 second"))
      for (let i = 0; i < count; i++) Effect.runFork(repeated)
      return
    }
    case "setinterval": {
      for (let i = 0; i < count; i++) setInterval(tick, 1000)
      return
    }
    case "croner": {
      const Cron = await loadCron()
      for (let i = 0; i < count; i++) new Cron("* * * * * *", tick)
      return
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const heapBefore = settledHeap()
const setupStarted = performance.now()
await start()
const setupMs = performance.now() - setupStarted
await sleep(warmupMs)

// Collect the start-up garbage now so the window only pays for steady state.
gc()
const firedBefore = fired
const cpuBefore = process.cpuUsage()
const windowStarted = performance.now()
await sleep(windowMs)
const cpu = process.cpuUsage(cpuBefore)
const elapsedMs = performance.now() - windowStarted
const firedInWindow = fired - firedBefore
const heapAfter = settledHeap()

const result: ChildResult = {
  impl,
  workers: count,
  cpuPct: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
  cpuMicrosPerRun: (cpu.user + cpu.system) / Math.max(1, firedInWindow),
  heapBytesPerWorker: (heapAfter - heapBefore) / count,
  fired: firedInWindow,
  expected: count * (elapsedMs / 1000),
  setupMs
}
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
