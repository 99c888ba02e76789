/**
 * Workers suite: CPU and retained heap of many periodic tasks firing every
 * second, for effect-workers against `setInterval`, croner, and one
 * `Effect.repeat` fiber per task. Each configuration runs in a fresh child
 * process. Prints a table, then one JSON line of every figure.
 */
import { fileURLToPath } from "node:url"
import { runJsonChild } from "./child.js"
import { formatTable, type Row } from "./table.js"
import { type ChildResult, type Impl, impls, labels } from "./workers-config.js"

const counts = [1_000, 10_000] as const
const warmupMs = 2_000
const windowMs = 10_000
/** Targets for effect-workers at the largest count. */
const targets = { cpuRatioVsCroner: 1 / 3, heapBytesPerWorker: 2048 }
/** A run that fired outside this share of the expected runs is flagged and fails the suite, whatever its CPU. */
const firedTolerance = { min: 0.9, max: 1.05 }

const selected = impls
const child = fileURLToPath(new URL("./workers-child.ts", import.meta.url))

// Each configuration in a process of its own, with the GC exposed to measure retained heap.
const runChild = (impl: Impl, count: number): Promise<ChildResult> =>
  runJsonChild(
    child,
    [impl, String(count), String(warmupMs), String(windowMs)],
    `${impl} with ${count} workers`,
    ["--expose-gc"]
  )

const key = (impl: Impl, count: number, figure: string) => `${impl.replaceAll("-", "_")}_${count}_${figure}`
const round = (n: number, digits: number) => Number(n.toFixed(digits))

const results: Array<ChildResult> = []
console.error(
  `workers suite: ${selected.length * counts.length} runs of ${(warmupMs + windowMs) / 1000} s or more each`
)
for (const count of counts) {
  for (const impl of selected) {
    console.error(`  ${labels[impl]}, ${count} workers`)
    results.push(await runChild(impl, count))
  }
}

const firedOk = (r: ChildResult) => {
  const share = r.fired / r.expected
  return share >= firedTolerance.min && share <= firedTolerance.max
}

const rows: Array<Row> = results.map((r) => [
  labels[r.impl],
  r.workers.toLocaleString("en-US"),
  r.cpuPct.toFixed(1),
  r.cpuMicrosPerRun.toFixed(1),
  Math.round(r.heapBytesPerWorker).toLocaleString("en-US"),
  `${r.fired.toLocaleString("en-US")} / ${Math.round(r.expected).toLocaleString("en-US")}${firedOk(r) ? "" : " !"}`,
  Math.round(r.setupMs).toLocaleString("en-US")
])

const find = (impl: Impl, count: number) => results.find((r) => r.impl === impl && r.workers === count)
const largest = counts[counts.length - 1]
const croner = find("croner", largest)!

/** The figures checked against the targets, for one way of building the workers. */
const against = (impl: Impl) => {
  const ours = find(impl, largest)
  if (ours === undefined) return undefined
  const cpuRatio = ours.cpuPct / croner.cpuPct
  return {
    impl,
    cpuRatio,
    perRunRatio: ours.cpuMicrosPerRun / croner.cpuMicrosPerRun,
    heap: ours.heapBytesPerWorker,
    cpuMet: cpuRatio <= targets.cpuRatioVsCroner,
    heapMet: ours.heapBytesPerWorker <= targets.heapBytesPerWorker
  }
}
const headline = against("effect-workers")!
const labelled = against("effect-workers-labelled")
const layers = against("effect-workers-layers")
const broken = results.filter((r) => !firedOk(r))

const pct = (share: number) => `${Math.round(share * 100)}%`
const verdict = (met: boolean) => (met ? "met" : "MISSED")
const n = largest.toLocaleString("en-US")

console.log(
  `Periodic tasks firing every 1 s: CPU over a ${windowMs / 1000} s window after a ${warmupMs / 1000} s warm-up;` +
    " heap retained after full GC"
)
console.log(
  formatTable(
    ["implementation", "workers", "CPU % of a core", "CPU µs/run", "heap B/worker", "runs / expected", "setup ms"],
    rows,
    ["left", "right", "right", "right", "right", "right", "right"]
  )
)
for (const t of [headline, labelled, layers]) {
  if (t === undefined) continue
  console.log(
    `${labels[t.impl]} at ${n}: CPU ${t.cpuRatio.toFixed(2)}x croner's (target <= ` +
      `${targets.cpuRatioVsCroner.toFixed(2)}, ${verdict(t.cpuMet)}; per run ${t.perRunRatio.toFixed(2)}x), ` +
      `heap ${Math.round(t.heap)} B/worker (target <= ${targets.heapBytesPerWorker}, ${verdict(t.heapMet)})`
  )
}
if (broken.length > 0) {
  console.log(
    `! fired outside ${pct(firedTolerance.min)}-${pct(firedTolerance.max)} of the expected runs (late or lost ticks; ` +
      `its CPU % is not comparable, µs/run is): ${broken.map((r) => `${labels[r.impl]} at ${r.workers}`).join(", ")}`
  )
}

const figures: Record<string, number> = {
  cpu_ratio_vs_croner: round(headline.cpuRatio, 3),
  cpu_per_run_ratio_vs_croner: round(headline.perRunRatio, 3),
  heap_bytes_per_worker: Math.round(headline.heap)
}
if (labelled !== undefined) {
  figures.labelled_cpu_ratio_vs_croner = round(labelled.cpuRatio, 3)
  figures.labelled_cpu_per_run_ratio_vs_croner = round(labelled.perRunRatio, 3)
  figures.labelled_heap_bytes_per_worker = Math.round(labelled.heap)
}
if (layers !== undefined) {
  figures.layers_cpu_ratio_vs_croner = round(layers.cpuRatio, 3)
  figures.layers_cpu_per_run_ratio_vs_croner = round(layers.perRunRatio, 3)
  figures.layers_heap_bytes_per_worker = Math.round(layers.heap)
}
for (const r of results) {
  figures[key(r.impl, r.workers, "cpu_pct")] = round(r.cpuPct, 2)
  figures[key(r.impl, r.workers, "cpu_us_per_run")] = round(r.cpuMicrosPerRun, 2)
  figures[key(r.impl, r.workers, "heap_bytes_per_worker")] = Math.round(r.heapBytesPerWorker)
  figures[key(r.impl, r.workers, "fired")] = r.fired
  figures[key(r.impl, r.workers, "fired_ratio")] = round(r.fired / r.expected, 3)
  figures[key(r.impl, r.workers, "setup_ms")] = Math.round(r.setupMs)
}
console.log(JSON.stringify(figures))
