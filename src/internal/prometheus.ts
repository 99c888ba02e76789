/**
 * Renders Effect metric snapshots in the Prometheus text exposition format,
 * version 0.0.4.
 */
import { MetricKeyType, type MetricPair, MetricState, Option } from "effect"

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type Labels = ReadonlyArray<readonly [string, string]>

interface Sample {
  readonly suffix: string
  readonly labels: Labels
  readonly value: string
}

interface Series {
  readonly sortKey: string
  readonly samples: ReadonlyArray<Sample>
}

interface Family {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  help: string | undefined
  readonly series: Array<Series>
}

const sanitizeMetricName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(replaced) ? replaced : `_${replaced}`
}

// Label names, unlike metric names, may not contain colons.
const sanitizeLabelName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(replaced) ? replaced : `_${replaced}`
}

const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "+Inf"
  if (value === -Infinity) return "-Inf"
  return String(value)
}

const withTotal = (name: string) => name.endsWith("_total") ? name : `${name}_total`

// The metric's tags, sanitised. A tag that would clash with the label the format adds
// (`le`, `quantile`, `key`) is dropped.
const tagLabels = (pair: MetricPair.MetricPair.Untyped, reserved?: string): Array<readonly [string, string]> => {
  const labels: Array<readonly [string, string]> = []
  const seen = new Set<string>(reserved === undefined ? [] : [reserved])
  for (const tag of pair.metricKey.tags) {
    const name = sanitizeLabelName(tag.key)
    if (seen.has(name)) continue
    seen.add(name)
    labels.push([name, tag.value])
  }
  return labels
}

const labelString = (labels: Labels) =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

const toFamily = (
  pair: MetricPair.MetricPair.Untyped
): { readonly name: string; readonly type: Family["type"]; readonly series: Array<Series> } | undefined => {
  const key = pair.metricKey
  const state = pair.metricState
  const base = sanitizeMetricName(key.name)
  if (MetricState.isCounterState(state)) {
    const labels = tagLabels(pair)
    const sample = { suffix: "", labels, value: formatNumber(state.count) }
    // An Effect counter without `incremental: true` may decrease, which a Prometheus counter must not: it is a gauge.
    return MetricKeyType.isCounterKey(key.keyType) && key.keyType.incremental
      ? { name: withTotal(base), type: "counter", series: [{ sortKey: labelString(labels), samples: [sample] }] }
      : { name: base, type: "gauge", series: [{ sortKey: labelString(labels), samples: [sample] }] }
  }
  if (MetricState.isGaugeState(state)) {
    const labels = tagLabels(pair)
    return {
      name: base,
      type: "gauge",
      series: [{ sortKey: labelString(labels), samples: [{ suffix: "", labels, value: formatNumber(state.value) }] }]
    }
  }
  if (MetricState.isHistogramState(state)) {
    const labels = tagLabels(pair, "le")
    const samples: Array<Sample> = []
    // Effect's bucket counts are already cumulative; its boundaries end with +Inf, whose count leaves out NaN
    // observations, so the +Inf bucket is written from the total count, as Prometheus requires.
    for (const [boundary, count] of state.buckets) {
      if (boundary === Infinity) continue
      samples.push({
        suffix: "_bucket",
        labels: [...labels, ["le", formatNumber(boundary)]],
        value: formatNumber(count)
      })
    }
    samples.push({ suffix: "_bucket", labels: [...labels, ["le", "+Inf"]], value: formatNumber(state.count) })
    samples.push({ suffix: "_sum", labels, value: formatNumber(state.sum) })
    samples.push({ suffix: "_count", labels, value: formatNumber(state.count) })
    return { name: base, type: "histogram", series: [{ sortKey: labelString(labels), samples }] }
  }
  if (MetricState.isFrequencyState(state)) {
    const labels = tagLabels(pair, "key")
    const occurrences = [...state.occurrences].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    return {
      name: withTotal(base),
      type: "counter",
      series: occurrences.map(([occurrence, count]) => {
        const withKey: Labels = [...labels, ["key", occurrence]]
        return { sortKey: labelString(withKey), samples: [{ suffix: "", labels: withKey, value: formatNumber(count) }] }
      })
    }
  }
  if (MetricState.isSummaryState(state)) {
    const labels = tagLabels(pair, "quantile")
    const samples: Array<Sample> = state.quantiles.map(([quantile, value]) => ({
      suffix: "",
      labels: [...labels, ["quantile", formatNumber(quantile)]],
      // A quantile without samples in the summary's window is NaN, as Prometheus clients write it.
      value: formatNumber(Option.getOrElse(value, () => NaN))
    }))
    samples.push({ suffix: "_sum", labels, value: formatNumber(state.sum) })
    samples.push({ suffix: "_count", labels, value: formatNumber(state.count) })
    return { name: base, type: "summary", series: [{ sortKey: labelString(labels), samples }] }
  }
  return undefined
}

const compare = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0

/**
 * Renders `pairs` grouped by metric name, families sorted by name and series
 * by labels. A metric whose name is taken by a metric of another type is left
 * out: one name can have one type only.
 */
export const render = (pairs: Iterable<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const rendered = toFamily(pair)
    if (rendered === undefined) continue
    const existing = families.get(rendered.name)
    const family = existing ?? { name: rendered.name, type: rendered.type, help: undefined, series: [] }
    if (family.type !== rendered.type) continue
    if (existing === undefined) families.set(family.name, family)
    if (family.help === undefined && Option.isSome(pair.metricKey.description)) {
      family.help = pair.metricKey.description.value
    }
    family.series.push(...rendered.series)
  }
  const lines: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => compare(a.name, b.name))) {
    if (family.help !== undefined) lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    for (const series of [...family.series].sort((a, b) => compare(a.sortKey, b.sortKey))) {
      for (const sample of series.samples) {
        lines.push(`${family.name}${sample.suffix}${labelString(sample.labels)} ${sample.value}`)
      }
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}
