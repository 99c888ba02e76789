/** Overview (#/): jobs by queue and state, and the last hour's throughput. */
import { get } from "../api.js"
import { append, h, s, thead } from "../dom.js"
import { fmtNumber, minuteFormat, plural, toDate } from "../format.js"
import { livePage } from "../live.js"
import { jobsHash, stateBadge, STATES } from "../ui.js"

const niceCeil = (value) => {
  if (!(value > 0)) return 1
  const exp = 10 ** Math.floor(Math.log10(value))
  const f = value / exp
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
  return Math.max(1, nice * exp)
}

const barChart = (series, key, label, testid) => {
  const W = 640
  const H = 190
  const left = 44
  const right = 10
  const top = 14
  const bottom = 26
  const plotW = W - left - right
  const plotH = H - top - bottom
  const values = series.map((m) => (typeof m[key] === "number" ? m[key] : 0))
  const peak = values.length ? Math.max(...values) : 0
  const scale = niceCeil(peak)
  const n = Math.max(series.length, 1)
  const slot = plotW / n
  const barW = Math.max(1, slot * 0.72)
  const y = (v) => top + plotH - (v / scale) * plotH
  const total = values.reduce((a, b) => a + b, 0)

  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: ["chart", `chart-${key}`],
    role: "img",
    "aria-label": `${label}: ${fmtNumber(total)} in the last hour, at most ${fmtNumber(peak)} in a minute`,
    "data-testid": testid,
    "data-max": peak,
    "data-total": total
  })
  // Grid and the value axis: 0, half and the top of the scale.
  const ticks = [0, scale / 2, scale]
  for (const t of ticks) {
    const ty = y(t)
    append(svg, [
      s("line", { x1: left, x2: W - right, y1: ty, y2: ty, class: t === 0 ? "axis" : "grid" }),
      Number.isInteger(t)
        ? s("text", { x: left - 6, y: ty + 4, "text-anchor": "end", class: "tick" }, fmtNumber(t))
        : null
    ])
  }
  series.forEach((minute, i) => {
    const v = values[i]
    const x = left + i * slot
    const at = toDate(minute.at)
    const g = s(
      "g",
      null,
      s("title", null, `${at ? minuteFormat.format(at) : ""} — ${fmtNumber(v)} ${key}`),
      s("rect", { x, y: top, width: slot, height: plotH, class: "hit" })
    )
    if (v > 0) {
      const bh = Math.max(1.5, (v / scale) * plotH)
      append(g, [s("rect", { x: x + (slot - barW) / 2, y: top + plotH - bh, width: barW, height: bh, class: "bar" })])
    }
    svg.appendChild(g)
  })
  // Time axis: start, middle and end of the hour.
  if (series.length) {
    const marks = [[0, "start"], [Math.floor(series.length / 2), "middle"], [series.length - 1, "end"]]
    for (const [i, anchor] of marks) {
      const at = toDate(series[i].at)
      if (!at) continue
      const x = anchor === "start" ? left : anchor === "end" ? W - right : left + (i + 0.5) * slot
      svg.appendChild(s("text", { x, y: H - 8, "text-anchor": anchor, class: "tick" }, minuteFormat.format(at)))
    }
  }
  return h(
    "figure",
    { class: "card chart-card" },
    h(
      "figcaption",
      null,
      h("span", { class: "chart-title" }, label),
      h("span", { class: "muted" }, `peak ${fmtNumber(peak)}/min · scale 0–${fmtNumber(scale)}`)
    ),
    svg
  )
}

const renderOverview = (data) => {
  const counts = Array.isArray(data.counts) ? data.counts : []
  const throughput = Array.isArray(data.throughput) ? data.throughput : []
  const byQueue = new Map()
  const totals = Object.fromEntries(STATES.map((state) => [state, 0]))
  for (const { queue, state, count } of counts) {
    if (!STATES.includes(state)) continue
    if (!byQueue.has(queue)) byQueue.set(queue, Object.fromEntries(STATES.map((st) => [st, 0])))
    byQueue.get(queue)[state] += count
    totals[state] += count
  }
  const queues = [...byQueue.keys()].sort((a, b) => a.localeCompare(b))
  const grand = STATES.reduce((sum, state) => sum + totals[state], 0)

  const cards = h(
    "div",
    { class: "cards" },
    STATES.map((state) =>
      h(
        "a",
        { class: ["stat", `stat-${state}`], href: jobsHash({ state }), "data-testid": `card-${state}` },
        h("span", { class: "stat-value" }, fmtNumber(totals[state])),
        h("span", { class: "stat-label" }, state)
      )
    )
  )

  const countCell = (queue, state, count, testid) =>
    h(
      "td",
      { class: "num", "data-testid": testid },
      h("a", { href: jobsHash({ queue, state }), class: count === 0 ? "zero" : null }, fmtNumber(count))
    )

  const table = h(
    "table",
    { class: "table", "data-testid": "counts-table" },
    thead(
      h("th", null, "Queue"),
      STATES.map((state) => h("th", { class: "num" }, stateBadge(state))),
      h("th", { class: "num" }, "Total")
    ),
    h(
      "tbody",
      null,
      queues.length === 0
        ? h("tr", null, h("td", { colspan: STATES.length + 2, class: "empty" }, "No jobs yet."))
        : queues.map((queue) => {
          const row = byQueue.get(queue)
          const total = STATES.reduce((sum, state) => sum + row[state], 0)
          return h(
            "tr",
            { "data-testid": `counts-${queue}` },
            h("th", { scope: "row" }, h("a", { href: jobsHash({ queue }) }, queue)),
            STATES.map((state) => countCell(queue, state, row[state], `count-${queue}-${state}`)),
            h(
              "td",
              { class: "num strong", "data-testid": `count-${queue}-total` },
              h("a", { href: jobsHash({ queue }) }, fmtNumber(total))
            )
          )
        })
    ),
    h(
      "tfoot",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "row" }, "Total"),
        STATES.map((state) => countCell(undefined, state, totals[state], `count-total-${state}`)),
        h(
          "td",
          { class: "num strong", "data-testid": "count-total-total" },
          h("a", { href: jobsHash({}) }, fmtNumber(grand))
        )
      )
    )
  )

  const completed = throughput.reduce((sum, m) => sum + (m.completed || 0), 0)
  const failed = throughput.reduce((sum, m) => sum + (m.failed || 0), 0)

  return [
    cards,
    h(
      "section",
      { class: "card section" },
      h("h2", null, "Jobs by queue and state"),
      h("div", { class: "scroll" }, table)
    ),
    h(
      "section",
      { class: "section" },
      h(
        "div",
        { class: "section-head" },
        h("h2", null, "Last hour"),
        h(
          "p",
          { class: "summary", "data-testid": "throughput-summary" },
          `${plural(completed, "job")} completed and ${plural(failed, "attempt")} failed in the last hour ` +
            "(a failed attempt may be retried; discarded jobs are counted in the table above)"
        )
      ),
      h(
        "div",
        { class: "charts" },
        barChart(throughput, "completed", "Jobs completed per minute", "chart-completed"),
        barChart(throughput, "failed", "Failed attempts per minute", "chart-failed")
      )
    )
  ]
}

export const overviewPage = (root) =>
  livePage(root, {
    title: "Overview",
    load: () => get("/api/overview"),
    render: renderOverview
  })
