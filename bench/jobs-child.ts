/**
 * One configuration of the jobs suite, in a process of its own:
 * `node --import tsx bench/jobs-child.ts <impl> <mode> <count> <databaseUrl>`.
 *
 * - `throughput`: enqueues `count` no-op jobs with the bulk API (runner
 *   stopped), then starts the runner and times it until every job is recorded
 *   as completed.
 * - `latency`: starts the runner, then `count` times enqueues one job and
 *   times it until its handler starts, waiting for the runner to be idle again
 *   (the job recorded as completed) before the next.
 *
 * Works in a schema of its own, dropped before and after. Prints one JSON line
 * (a {@link ChildResult}).
 */
import pg from "pg"
import { bulkChunk, type ChildResult, type Impl, impls, type Mode, modes } from "./jobs-config.js"
import { make, type Subject } from "./jobs-subjects.js"

const [implArg, modeArg, countArg, url] = process.argv.slice(2)
const impl = implArg as Impl
const mode = modeArg as Mode
const count = Number(countArg)
if (!impls.includes(impl) || !modes.includes(mode) || !(count > 0) || url === undefined) {
  throw new Error(`usage: jobs-child.ts <${impls.join("|")}> <${modes.join("|")}> <count> <databaseUrl>`)
}

/** Latency samples taken first and left out, while connections and code warm up. */
const latencyWarmup = 50
/** A configuration still running after this long has failed. */
const deadlineMs = 15 * 60_000

const deadline = setTimeout(() => {
  process.stderr.write(`${impl} ${mode}: still running after ${deadlineMs / 60_000} minutes, giving up\n`)
  process.exit(1)
}, deadlineMs)
deadline.unref()

const schema = `bench_jobs_${impl.replaceAll("-", "_")}_${mode}`

const dropSchema = async () => {
  const client = new pg.Client({ connectionString: url, application_name: "effect-workers-bench" })
  await client.connect()
  try {
    await client.query("SET client_min_messages = warning")
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`)
  } finally {
    await client.end()
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves once `remaining` says every job is completed, asking every `everyMs`. */
const completed = async (subject: Subject, everyMs: number) => {
  while (await subject.remaining() > 0) await sleep(everyMs)
}

let handled = 0
let onHandled: (() => void) | undefined
const onStart = () => {
  handled++
  onHandled?.()
}

const throughput = async (subject: Subject): Promise<ChildResult> => {
  const enqueueStarted = performance.now()
  for (let from = 0; from < count; from += bulkChunk) {
    await subject.enqueueMany(from, Math.min(bulkChunk, count - from))
  }
  const enqueueMs = performance.now() - enqueueStarted
  const waiting = await subject.remaining()
  if (waiting !== count) throw new Error(`${count} jobs enqueued but ${waiting} waiting`)

  const allHandled = new Promise<void>((resolve) => {
    onHandled = () => {
      if (handled >= count) resolve()
    }
  })
  const runStarted = performance.now()
  const cpuStarted = process.cpuUsage()
  await subject.start()
  const startMs = performance.now() - runStarted
  // Ask the database only once every handler ran, so the counts do not compete with the runner.
  await allHandled
  await completed(subject, 2)
  const runMs = performance.now() - runStarted
  const cpu = process.cpuUsage(cpuStarted)
  const runCpuMs = (cpu.user + cpu.system) / 1000
  return { impl, mode: "throughput", jobs: count, enqueueMs, runMs, runCpuMs, startMs, handled }
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

const latency = async (subject: Subject): Promise<ChildResult> => {
  await subject.start()
  const samples: Array<number> = []
  for (let i = 0; i < latencyWarmup + count; i++) {
    let startedAt = 0
    const started = new Promise<void>((resolve) => {
      onHandled = () => {
        startedAt = performance.now()
        resolve()
      }
    })
    const enqueued = performance.now()
    await Promise.all([subject.enqueueOne(i), started])
    if (i >= latencyWarmup) samples.push(startedAt - enqueued)
    await completed(subject, 1)
  }
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    impl,
    mode: "latency",
    samples: samples.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
    mean: samples.reduce((sum, ms) => sum + ms, 0) / samples.length
  }
}

await dropSchema()
const subject = await make(impl, { url, schema, mode, onStart })
let result: ChildResult
try {
  result = mode === "throughput" ? await throughput(subject) : await latency(subject)
} finally {
  await subject.close()
}
await dropSchema()
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
