import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, Option } from "effect"
import { createRequire } from "node:module"
import { Metrics, Testing, Worker } from "../src/index.js"

interface ParsedSample {
  readonly labels?: Record<string, string>
  readonly value?: string
  readonly buckets?: Record<string, string>
  readonly quantiles?: Record<string, string>
  readonly count?: string
  readonly sum?: string
}

interface ParsedFamily {
  readonly name: string
  readonly help: string
  readonly type: string
  readonly metrics: ReadonlyArray<ParsedSample>
}

// The parser ships no type declarations.
const parse = createRequire(import.meta.url)("parse-prometheus-text-format") as (
  text: string
) => ReadonlyArray<ParsedFamily>

/** The one family named `name`; fails when it is missing or split in two. */
const family = (families: ReadonlyArray<ParsedFamily>, name: string): ParsedFamily => {
  const found = families.filter((f) => f.name === name)
  assert.strictEqual(found.length, 1, `families named ${name}: ${JSON.stringify(found)}`)
  return found[0]
}

/** A sample value as Prometheus reads it. */
const toNumber = (value: string): number =>
  value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : value === "NaN" ? NaN : Number(value)

/** The value of the series of `name` whose labels include `labels`, if there is one. */
const valueOf = (text: string, name: string, labels: Record<string, string>): Option.Option<number> =>
  Option.fromNullable(
    parse(text).find((f) => f.name === name)?.metrics.find((sample) =>
      Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)
    )?.value
  ).pipe(Option.map(toNumber))

/** The lines of `text` for the family `name`: its HELP, TYPE and samples. */
const linesOf = (text: string, name: string): ReadonlyArray<string> =>
  text.split("\n").filter((line) =>
    line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `) ||
    new RegExp(`^${name}(_bucket|_sum|_count)?[ {]`).test(line)
  )

describe("Metrics.prometheusText", () => {
  it.live("renders counters, gauges, histograms, frequencies and summaries that a Prometheus parser reads", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("pt_requests", { description: "Requests handled", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(requests, "method", "GET"), 3)
      yield* Metric.increment(Metric.tagged(requests, "method", "say \"hi\"\\\nbye"))
      const temperature = Metric.gauge("pt_temperature", { description: "Degrees\nCelsius, C:\\" })
      yield* Metric.set(temperature, -2.5)
      const latency = Metric.histogram("pt_latency_seconds", MetricBoundaries.fromIterable([0.1, 0.5, 1]), "Latency")
      for (const seconds of [0.05, 0.3, 0.3, 2]) yield* Metric.update(latency, seconds)
      const colors = Metric.frequency("pt_colors", { description: "Colors seen" })
      for (const color of ["red", "blue", "red"]) yield* Metric.update(colors, color)
      const sizes = Metric.summary({
        name: "pt_sizes",
        maxAge: "1 hour",
        maxSize: 100,
        error: 0.01,
        quantiles: [0.5, 0.9],
        description: "Sizes"
      })
      for (let size = 1; size <= 10; size++) yield* Metric.update(sizes, size)

      const text = yield* Metrics.prometheusText
      assert.isTrue(text.endsWith("\n"))
      const families = parse(text)
      // Every name once: series of one name are grouped under one HELP and TYPE.
      const names = families.map((f) => f.name)
      assert.deepStrictEqual(names, [...new Set(names)])

      const counter = family(families, "pt_requests_total")
      assert.strictEqual(counter.type, "COUNTER")
      assert.strictEqual(counter.help, "Requests handled")
      assert.deepStrictEqual(counter.metrics, [
        { labels: { method: "GET" }, value: "3" },
        { labels: { method: "say \"hi\"\\\nbye" }, value: "1" }
      ])

      const gauge = family(families, "pt_temperature")
      assert.strictEqual(gauge.type, "GAUGE")
      assert.strictEqual(gauge.help, "Degrees\nCelsius, C:\\")
      assert.deepStrictEqual(gauge.metrics, [{ value: "-2.5" }])

      const histogram = family(families, "pt_latency_seconds")
      assert.strictEqual(histogram.type, "HISTOGRAM")
      assert.deepStrictEqual(histogram.metrics, [{
        buckets: { "0.1": "1", "0.5": "3", "1": "3", "+Inf": "4" },
        sum: "2.65",
        count: "4"
      }])

      const frequency = family(families, "pt_colors_total")
      assert.strictEqual(frequency.type, "COUNTER")
      assert.deepStrictEqual(frequency.metrics, [
        { labels: { key: "blue" }, value: "1" },
        { labels: { key: "red" }, value: "2" }
      ])

      const summary = family(families, "pt_sizes")
      assert.strictEqual(summary.type, "SUMMARY")
      const state = yield* Metric.value(sizes)
      assert.deepStrictEqual(
        state.quantiles.map(([q, v]) => [q, Option.getOrThrow(v)]),
        Object.entries(summary.metrics[0].quantiles!).map(([q, v]) => [Number(q), toNumber(v)])
      )
      assert.strictEqual(summary.metrics[0].sum, "55")
      assert.strictEqual(summary.metrics[0].count, "10")
    }))

  it.effect("writes labelled histograms with cumulative buckets, +Inf, _sum and _count per series", () =>
    Effect.gen(function*() {
      const wait = Metric.histogram("pt_wait_seconds", MetricBoundaries.fromIterable([1, 10]), "Wait")
      yield* Metric.update(Metric.tagged(wait, "queue", "b"), 20)
      yield* Metric.update(Metric.tagged(wait, "queue", "a"), 0.5)
      yield* Metric.update(Metric.tagged(wait, "queue", "a"), 5)
      const text = yield* Metrics.prometheusText
      assert.deepStrictEqual(linesOf(text, "pt_wait_seconds"), [
        "# HELP pt_wait_seconds Wait",
        "# TYPE pt_wait_seconds histogram",
        `pt_wait_seconds_bucket{queue="a",le="1"} 1`,
        `pt_wait_seconds_bucket{queue="a",le="10"} 2`,
        `pt_wait_seconds_bucket{queue="a",le="+Inf"} 2`,
        `pt_wait_seconds_sum{queue="a"} 5.5`,
        `pt_wait_seconds_count{queue="a"} 2`,
        `pt_wait_seconds_bucket{queue="b",le="1"} 0`,
        `pt_wait_seconds_bucket{queue="b",le="10"} 0`,
        `pt_wait_seconds_bucket{queue="b",le="+Inf"} 1`,
        `pt_wait_seconds_sum{queue="b"} 20`,
        `pt_wait_seconds_count{queue="b"} 1`
      ])
    }))

  it.effect("sanitises names, formats special numbers, and renders non-incremental counters as gauges", () =>
    Effect.gen(function*() {
      yield* Metric.set(Metric.tagged(Metric.gauge("pt.odd-name"), "bad-label:x", "v"), Infinity)
      yield* Metric.set(Metric.gauge("pt_negative_infinity"), -Infinity)
      yield* Metric.set(Metric.gauge("pt_nan"), NaN)
      yield* Metric.incrementBy(Metric.counter("pt_up_down"), -2)
      yield* Metric.increment(Metric.counter("pt_bigint", { bigint: true, incremental: true }))
      const text = yield* Metrics.prometheusText
      assert.deepStrictEqual(linesOf(text, "pt_odd_name"), [
        "# TYPE pt_odd_name gauge",
        `pt_odd_name{bad_label_x="v"} +Inf`
      ])
      assert.deepStrictEqual(linesOf(text, "pt_negative_infinity"), [
        "# TYPE pt_negative_infinity gauge",
        "pt_negative_infinity -Inf"
      ])
      assert.deepStrictEqual(linesOf(text, "pt_nan"), ["# TYPE pt_nan gauge", "pt_nan NaN"])
      assert.deepStrictEqual(linesOf(text, "pt_up_down"), ["# TYPE pt_up_down gauge", "pt_up_down -2"])
      assert.deepStrictEqual(linesOf(text, "pt_bigint_total"), ["# TYPE pt_bigint_total counter", "pt_bigint_total 1"])
      // The parser reads them back as numbers.
      assert.deepStrictEqual(valueOf(text, "pt_odd_name", { bad_label_x: "v" }), Option.some(Infinity))
      assert.deepStrictEqual(valueOf(text, "pt_negative_infinity", {}), Option.some(-Infinity))
      assert.isTrue(Number.isNaN(Option.getOrThrow(valueOf(text, "pt_nan", {}))))
    }))

  it.scoped("shows a worker's iterations counter moving between two renders", () =>
    Effect.gen(function*() {
      const name = "effect_workers_worker_iterations_total"
      const series = { worker: "pt-ticker", outcome: "success" }
      const before = yield* Metrics.prometheusText
      assert.isTrue(Option.isNone(valueOf(before, name, series)))
      const registry = yield* Testing.start(Worker.make("pt-ticker", Effect.void, { schedule: "1 second" }))
      yield* registry.awaitStatus("pt-ticker", (s) => s.iterations >= 1)
      const first = yield* Metrics.prometheusText
      assert.deepStrictEqual(valueOf(first, name, series), Option.some(1))
      yield* Testing.advance("1 second")
      yield* registry.awaitStatus("pt-ticker", (s) => s.iterations >= 2)
      const second = yield* Metrics.prometheusText
      assert.deepStrictEqual(valueOf(second, name, series), Option.some(2))
      assert.include(second, "# HELP effect_workers_worker_iterations_total Worker iterations that ended, by outcome\n")
      assert.include(second, "# TYPE effect_workers_worker_iterations_total counter\n")
    }))

  it("exposes the Prometheus text content type", () => {
    assert.strictEqual(Metrics.prometheusContentType, "text/plain; version=0.0.4; charset=utf-8")
  })
})
