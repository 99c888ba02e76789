/**
 * Flow suite: what flow control costs and what fairness buys, for
 * effect-workers alone (its peers sell these features apart). Throughput of a
 * backlog of no-op jobs with a limit against the same backlog without one,
 * and the wait of small keys' jobs behind a key with a large backlog, with
 * fair claiming against first in, first out. Each configuration runs in a
 * fresh child process, in a schema of its own, on one database: the server at
 * `DATABASE_URL`, or an embedded PostgreSQL started for the run. The pairs run
 * in turn, `FLOW_ROUNDS` times (default 3), and the median of each is kept:
 * the machine is noisy. Prints a table, then one JSON line of every figure.
 */
import { Effect, Exit, Scope } from "effect"
import { fileURLToPath } from "node:url"
import { runJsonChild } from "./child.js"
import { serverUrl } from "./database.js"
import { type Config, type FlowResult, labels } from "./flow-config.js"
import { formatTable } from "./table.js"

const rounds = Number(process.env.FLOW_ROUNDS ?? "3")
const targets = { globalLimitRatio: 0.95, perKeyRatio: 0.8, fairnessWaitRatio: 0.1 }
const pairs: ReadonlyArray<readonly [Config, Config]> = [
  ["unlimited", "global"],
  ["keyed-unlimited", "per-key"],
  ["fifo", "fair"]
]

const child = fileURLToPath(new URL("./flow-child.ts", import.meta.url))
const results = new Map<Config, Array<FlowResult>>()
const failures: Array<string> = []
const scope = Effect.runSync(Scope.make())
try {
  const url = await serverUrl("flow", scope)
  console.error(`flow suite: ${pairs.length * 2} configurations, ${rounds} rounds`)
  for (let round = 1; round <= rounds; round++) {
    for (const pair of pairs) {
      for (const config of pair) {
        console.error(`  round ${round}: ${labels[config]}`)
        try {
          const result = await runJsonChild<FlowResult>(child, [config, url], config)
          results.set(config, [...(results.get(config) ?? []), result])
        } catch (error) {
          console.error(String(error))
          failures.push(`${config} (round ${round})`)
        }
      }
    }
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const medianOf = (config: Config, pick: (r: FlowResult) => number | null) => {
  const values = (results.get(config) ?? []).map(pick).filter((v): v is number => v !== null)
  return values.length === 0 ? undefined : median(values)
}
const jobsPerSecond = (config: Config) => {
  const runMs = medianOf(config, (r) => r.runMs)
  const jobs = results.get(config)?.[0]?.jobs
  return runMs === undefined || jobs === undefined ? undefined : jobs / (runMs / 1000)
}
const fixed = (n: number | undefined, digits = 0) => n === undefined ? "-" : n.toFixed(digits)
const verdict = (met: boolean) => (met ? "met" : "MISSED")

console.log(
  `Flow control: one runner with its defaults (concurrency 10, prefetch up to 500); median of ${rounds} rounds`
)
console.log(
  formatTable(
    ["configuration", "jobs", "run s (median)", "jobs/s", "small keys' wait p50 ms", "p99 ms"],
    [...results.keys()].map((config) => [
      labels[config],
      String(results.get(config)?.[0]?.jobs ?? "-"),
      fixed((medianOf(config, (r) => r.runMs) ?? NaN) / 1000, 2),
      fixed(jobsPerSecond(config)),
      fixed(medianOf(config, (r) => r.smallKeysWaitP50Ms)),
      fixed(medianOf(config, (r) => r.smallKeysWaitP99Ms))
    ]),
    ["left", "right", "right", "right", "right", "right"]
  )
)

const figures: Record<string, number> = {}
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : Number((a / b).toFixed(3))
const report = (key: string, value: number | undefined, line: (value: number) => string) => {
  if (value === undefined) return
  figures[key] = value
  console.log(line(value))
}
for (const config of [...results.keys()]) {
  const rate = jobsPerSecond(config)
  if (rate !== undefined) figures[`${config.replaceAll("-", "_")}_jobs_per_s`] = Math.round(rate)
}
report(
  "throughput_global_limit_ratio",
  ratio(jobsPerSecond("global"), jobsPerSecond("unlimited")),
  (r) =>
    `global concurrency limit that does not bind, against no limit: ${r}x throughput (target >= ${targets.globalLimitRatio}, ${
      verdict(r >= targets.globalLimitRatio)
    })`
)
report(
  "throughput_per_key_ratio",
  ratio(jobsPerSecond("per-key"), jobsPerSecond("keyed-unlimited")),
  (r) =>
    `key concurrency 5 over 1,000 keys, against no limit: ${r}x throughput (target >= ${targets.perKeyRatio}, ${
      verdict(r >= targets.perKeyRatio)
    })`
)
report(
  "fairness_small_keys_p99_wait_ratio",
  ratio(medianOf("fair", (r) => r.smallKeysWaitP99Ms), medianOf("fifo", (r) => r.smallKeysWaitP99Ms)),
  (r) =>
    `small keys' p99 wait with fair claiming, against first in, first out: ${r}x (target <= ${targets.fairnessWaitRatio}, ${
      verdict(r <= targets.fairnessWaitRatio)
    })`
)
for (const config of ["fifo", "fair"] as const) {
  const p99 = medianOf(config, (r) => r.smallKeysWaitP99Ms)
  if (p99 !== undefined) figures[`${config}_small_keys_wait_p99_ms`] = Math.round(p99)
}
if (failures.length > 0) console.log(`! failed, left out: ${failures.join(", ")}`)
console.log(JSON.stringify(figures))
process.exitCode = failures.length > 0 ? 1 : 0
