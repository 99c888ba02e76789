/**
 * Jobs suite: durable no-op jobs on PostgreSQL, for effect-workers against
 * graphile-worker and pg-boss. Throughput of a backlog enqueued in bulk, the
 * bulk enqueue rate, and enqueue-to-start latency on an idle runner. Each
 * configuration runs in a fresh child process, in a schema of its own, on one
 * database: the server at `DATABASE_URL`, or an embedded PostgreSQL started
 * for the run. Prints tables, then one JSON line of every figure.
 */
import { Effect, Exit, Scope } from "effect"
import { fileURLToPath } from "node:url"
import { runJsonChild } from "./child.js"
import { serverUrl } from "./database.js"
import {
  bulkChunk,
  type ChildResult,
  type Impl,
  impls,
  labels,
  type LatencyResult,
  type Mode,
  type ThroughputResult
} from "./jobs-config.js"
import { formatTable, type Row } from "./table.js"

const counts: Record<Mode, number> = { throughput: 50_000, latency: 1_000 }
/** Targets for effect-workers. */
const targets = { throughputRatioVsGraphileBest: 1.5, latencyP50Ms: 3, latencyP99Ms: 8, bulkJobsPerSecond: 100_000 }

const child = fileURLToPath(new URL("./jobs-child.ts", import.meta.url))

const runChild = (impl: Impl, mode: Mode, url: string): Promise<ChildResult> =>
  runJsonChild(child, [impl, mode, String(counts[mode]), url], `${impl} ${mode}`)

const scope = Effect.runSync(Scope.make())
const throughputs: Array<ThroughputResult> = []
const latencies: Array<LatencyResult> = []
const failures: Array<string> = []
try {
  const url = await serverUrl("jobs", scope)
  console.error(
    `jobs suite: ${impls.length} throughput runs of ${counts.throughput.toLocaleString("en-US")} jobs, ` +
      `${impls.length} latency runs of ${counts.latency.toLocaleString("en-US")} jobs`
  )
  for (const mode of ["throughput", "latency"] as const) {
    for (const impl of impls) {
      console.error(`  ${labels[impl][mode]}, ${mode}`)
      try {
        const result = await runChild(impl, mode, url)
        if (result.mode === "throughput") throughputs.push(result)
        else latencies.push(result)
      } catch (error) {
        console.error(String(error))
        failures.push(`${labels[impl][mode]} ${mode}`)
      }
    }
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const perSecond = (jobs: number, ms: number) => jobs / (ms / 1000)
const jobsPerSecond = (r: ThroughputResult) => perSecond(r.jobs, r.runMs)
const cpuPerThousand = (r: ThroughputResult) => r.runCpuMs / (r.jobs / 1000)
const bulkPerSecond = (r: ThroughputResult) => perSecond(r.jobs, r.enqueueMs)
const round = (n: number, digits: number) => Number(n.toFixed(digits))
const whole = (n: number) => Math.round(n).toLocaleString("en-US")
const ms = (n: number) => n.toFixed(2)
const verdict = (met: boolean) => (met ? "met" : "MISSED")

const throughputOf = (impl: Impl) => throughputs.find((r) => r.impl === impl)
const latencyOf = (impl: Impl) => latencies.find((r) => r.impl === impl)
const ours = throughputOf("effect-workers")
const oursLatency = latencyOf("effect-workers")

console.log(
  `Throughput: ${counts.throughput.toLocaleString("en-US")} no-op jobs enqueued in bulk ` +
    `(${bulkChunk.toLocaleString("en-US")} per call, runner stopped), then run from the runner's start ` +
    "until every one is recorded as completed"
)
console.log(
  formatTable(
    ["implementation", "jobs", "run s", "jobs/s", "vs effect-workers", "CPU ms/1,000 jobs", "enqueue s", "enqueued/s"],
    throughputs.map((r) => [
      labels[r.impl].throughput,
      r.jobs.toLocaleString("en-US"),
      (r.runMs / 1000).toFixed(2),
      whole(jobsPerSecond(r)),
      ours === undefined ? "-" : `${(jobsPerSecond(r) / jobsPerSecond(ours)).toFixed(2)}x`,
      cpuPerThousand(r).toFixed(1),
      (r.enqueueMs / 1000).toFixed(2),
      whole(bulkPerSecond(r))
    ]),
    ["left", "right", "right", "right", "right", "right", "right", "right"]
  )
)
console.log("")
console.log(
  `Latency: ${counts.latency.toLocaleString("en-US")} single enqueues to an idle runner, each timed from the ` +
    "enqueue call until its handler starts (after a warm-up)"
)
console.log(
  formatTable(
    ["implementation", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"],
    latencies.map((r): Row => [labels[r.impl].latency, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max), ms(r.mean)]),
    ["left", "right", "right", "right", "right", "right"]
  )
)

const figures: Record<string, number> = {}
const graphileBest = throughputOf("graphile-best")
const graphileDefault = throughputOf("graphile-default")
const pgBoss = throughputOf("pg-boss")
if (ours !== undefined) {
  const rate = jobsPerSecond(ours)
  const bulk = bulkPerSecond(ours)
  figures.throughput_jobs_per_s = Math.round(rate)
  figures.throughput_cpu_ms_per_1000_jobs = round(cpuPerThousand(ours), 1)
  if (graphileBest !== undefined) {
    const ratio = rate / jobsPerSecond(graphileBest)
    figures.throughput_ratio_vs_graphile_best = round(ratio, 3)
    console.log(
      `effect-workers throughput: ${whole(rate)} jobs/s, ${ratio.toFixed(2)}x graphile-worker's best ` +
        `(target >= ${targets.throughputRatioVsGraphileBest}x, ${
          verdict(ratio >= targets.throughputRatioVsGraphileBest)
        })`
    )
  }
  if (graphileDefault !== undefined) {
    figures.throughput_ratio_vs_graphile_default = round(rate / jobsPerSecond(graphileDefault), 3)
  }
  if (pgBoss !== undefined) figures.throughput_ratio_vs_pgboss = round(rate / jobsPerSecond(pgBoss), 3)
  figures.bulk_enqueue_jobs_per_s = Math.round(bulk)
  console.log(
    `effect-workers bulk enqueue: ${whole(bulk)} jobs/s (target >= ${whole(targets.bulkJobsPerSecond)}, ` +
      `${verdict(bulk >= targets.bulkJobsPerSecond)})`
  )
}
if (oursLatency !== undefined) {
  figures.latency_p50_ms = round(oursLatency.p50, 3)
  figures.latency_p90_ms = round(oursLatency.p90, 3)
  figures.latency_p99_ms = round(oursLatency.p99, 3)
  figures.latency_max_ms = round(oursLatency.max, 3)
  console.log(
    `effect-workers latency: p50 ${ms(oursLatency.p50)} ms (target <= ${targets.latencyP50Ms}, ` +
      `${verdict(oursLatency.p50 <= targets.latencyP50Ms)}), p99 ${ms(oursLatency.p99)} ms ` +
      `(target <= ${targets.latencyP99Ms}, ${verdict(oursLatency.p99 <= targets.latencyP99Ms)})`
  )
}
if (failures.length > 0) console.log(`! failed, left out: ${failures.join(", ")}`)

const prefixes: Record<Exclude<Impl, "effect-workers">, string> = {
  "graphile-default": "graphile_default",
  "graphile-best": "graphile_best",
  "pg-boss": "pgboss"
}
for (const [impl, prefix] of Object.entries(prefixes) as Array<[Impl, string]>) {
  const t = throughputOf(impl)
  if (t !== undefined) {
    figures[`${prefix}_throughput_jobs_per_s`] = Math.round(jobsPerSecond(t))
    figures[`${prefix}_throughput_cpu_ms_per_1000_jobs`] = round(cpuPerThousand(t), 1)
    figures[`${prefix}_bulk_enqueue_jobs_per_s`] = Math.round(bulkPerSecond(t))
  }
  const l = latencyOf(impl)
  if (l !== undefined) {
    figures[`${prefix}_latency_p50_ms`] = round(l.p50, 3)
    figures[`${prefix}_latency_p90_ms`] = round(l.p90, 3)
    figures[`${prefix}_latency_p99_ms`] = round(l.p99, 3)
    figures[`${prefix}_latency_max_ms`] = round(l.max, 3)
  }
}
console.log(JSON.stringify(figures))
process.exitCode = failures.length > 0 ? 1 : 0
