/* global document, window, location, Node */
/**
 * The effect-workers dashboard: a plain ES module without dependencies.
 *
 * Every value that comes from the API is rendered as text (`textContent`, text
 * nodes, `setAttribute` on safe attributes), never parsed as HTML.
 *
 * Hooks for browser tests:
 *
 *   Everywhere
 *     data-testid="message"                 message area; data-kind="error" | "success" on it
 *     data-testid="read-only"               header badge, present only in read-only mode
 *     data-testid="nav-<page>"              nav links: overview, queues, jobs, recurring, processes
 *     data-testid="page-<name>"             page roots: overview, queues, jobs, job, recurring, processes, not-found
 *     data-testid="updated-at"              time of the page's last successful refresh
 *     data-testid="refresh"                 button that reloads the page's data now
 *     data-action="<action>"                every action button (see below); disabled while its request runs
 *
 *   Overview (#/)
 *     data-testid="count-<queue>-<state>"   count cell, holding a link to the jobs of that queue and state
 *     data-testid="count-<queue>-total"     a queue's total
 *     data-testid="count-total-<state>"     the total row; "count-total-total" is the grand total
 *     data-testid="card-<state>"            the per-state totals above the table
 *     data-testid="chart-completed"         completed per minute (SVG), "chart-failed" failed per minute
 *     data-testid="throughput-summary"      e.g. "1,234 completed and 5 failed in the last hour"
 *
 *   Queues (#/queues)
 *     data-testid="queue-<name>"            row, with data-paused="true" | "false"
 *     data-testid="pause-<name>"            button, data-action="pause"
 *     data-testid="resume-<name>"           button, data-action="resume"
 *
 *   Jobs (#/jobs?queue=&state=&name=&search=&before=&limit=)
 *     data-testid="jobs-filter"             filter form; fields "filter-queue", "filter-state", "filter-name",
 *                                           "filter-search"; buttons "filter-apply", "filter-clear"
 *     data-testid="state-tab-<state>"       quick state filters; "state-tab-all"
 *     data-testid="jobs-table"              the table; "jobs-empty" when nothing matches
 *     data-testid="job-row-<id>"            row, with data-state="<state>"
 *     data-action="retry" | "run-now" | "cancel" | "delete"   row actions (only those the state allows)
 *     data-testid="older"                   link to the next (older) page; "newest" back to the first page
 *     data-testid="bulk"                    bulk form; select "bulk-action" (retry | cancel | delete),
 *                                           button "bulk-apply" ("Apply to all matching")
 *
 *   Job detail (#/jobs/<id>)
 *     data-testid="job-id", "job-name", "job-state", "job-actions" (holds the data-action buttons)
 *     data-testid="payload", "result", "progress"   <pre> with the JSON, pretty-printed
 *     data-testid="errors"                  list of failed attempts; "error-<attempt>" each, "error-cause-<attempt>" its <pre>
 *     data-field="<field>"                  value of each field: id, name, queue, state, priority, attempt, uniqueKey,
 *                                           lockedBy, traceId, recurringId, recurringTick, insertedAt, runAt,
 *                                           attemptedAt, finalizedAt, waited, duration
 *
 *   Recurring (#/recurring)
 *     data-testid="recurring-<id>"          row, with data-paused="true" | "false"
 *     data-testid="recurring-error-<id>"    why a definition was set aside, when it was
 *     data-testid="recurring-trigger-<id>"  data-action="trigger"
 *     data-testid="recurring-pause-<id>"    data-action="pause"; "recurring-resume-<id>" data-action="resume"
 *
 *   Processes (#/processes)
 *     data-testid="worker-<name>"           hosted worker row, with data-state="<state>"
 *     data-testid="process-<host>:<pid>"    a process's row, with data-alive="true" | "false"
 *     data-testid="process-alive-<host>:<pid>"  its badge: "alive" | "dead" (alive when one of its runners is)
 *     data-testid="runner-<id>"             each of its runners, with data-alive="true" | "false"
 */

const STATES = ["scheduled", "available", "running", "retryable", "completed", "discarded", "cancelled"]
const REFRESH_MS = 5000

const JOB_ACTIONS = [
  {
    action: "retry",
    label: "Retry",
    when: (state) => state === "discarded" || state === "cancelled" || state === "retryable",
    done: "retried"
  },
  {
    action: "run-now",
    label: "Run now",
    when: (state) => state === "scheduled" || state === "retryable",
    done: "will run now"
  },
  {
    action: "cancel",
    label: "Cancel",
    when: (state) => state === "scheduled" || state === "available" || state === "running" || state === "retryable",
    done: "cancelled"
  },
  {
    action: "delete",
    label: "Delete",
    when: (state) => state !== "running",
    done: "deleted",
    danger: true
  }
]

const BULK_DONE = { retry: "Retried", cancel: "Cancelled", delete: "Deleted" }

const session = { readOnly: false, protected: false }

// ---------------------------------------------------------------------------
// DOM

const SVG_NS = "http://www.w3.org/2000/svg"

const append = (parent, children) => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else if (child instanceof Node) parent.appendChild(child)
    else parent.appendChild(document.createTextNode(String(child)))
  }
  return parent
}

// Attribute names always come from this file; values are set with setAttribute, so they stay text.
const setProps = (el, props) => {
  if (!props) return
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler)
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value)
    } else if (key === "value") {
      el.value = value
    } else if (value === true) {
      el.setAttribute(key, "")
    } else {
      el.setAttribute(key, String(value))
    }
  }
}

const h = (tag, props, ...children) => {
  const el = document.createElement(tag)
  setProps(el, props)
  return append(el, children)
}

const s = (tag, props, ...children) => {
  const el = document.createElementNS(SVG_NS, tag)
  setProps(el, props)
  return append(el, children)
}

const enc = encodeURIComponent

// ---------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat("en-US")
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit"
})
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
const minuteFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" })

const fmtNumber = (n) => (typeof n === "number" && Number.isFinite(n) ? numberFormat.format(n) : "—")

const plural = (n, one, many = `${one}s`) => `${fmtNumber(n)} ${n === 1 ? one : many}`

// ISO strings and epoch millis alike.
const toDate = (value) => {
  if (value === null || value === undefined || value === "") return null
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? null : d
}

const sameDay = (a, b) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate()

const fmtDate = (d) => (sameDay(d, new Date()) ? timeFormat.format(d) : dateTimeFormat.format(d))

const fmtSpan = (ms) => {
  const sec = Math.floor(ms / 1000)
  if (sec < 60) return `${sec} s`
  const min = Math.floor(sec / 60)
  if (min < 60) return `${min} min`
  const hours = Math.floor(min / 60)
  if (hours < 48) return `${hours} h`
  return `${Math.floor(hours / 24)} d`
}

const fmtRelative = (d, now = Date.now()) => {
  const diff = d.getTime() - now
  if (Math.abs(diff) < 1000) return "now"
  return diff < 0 ? `${fmtSpan(-diff)} ago` : `in ${fmtSpan(diff)}`
}

const fmtDuration = (ms) => {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—"
  if (ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  const sec = Math.floor(ms / 1000)
  if (sec < 60) return `${sec} s`
  const min = Math.floor(sec / 60)
  if (min < 60) return sec % 60 ? `${min} min ${sec % 60} s` : `${min} min`
  const hours = Math.floor(min / 60)
  if (hours < 24) return min % 60 ? `${hours} h ${min % 60} min` : `${hours} h`
  const days = Math.floor(hours / 24)
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`
}

const fmtEvery = (ms) => {
  const units = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [1000, "s"]]
  for (const [size, unit] of units) {
    if (ms >= size && ms % size === 0) return `every ${fmtNumber(ms / size)} ${unit}`
  }
  return ms < 1000 ? `every ${fmtNumber(ms)} ms` : `every ${fmtDuration(ms)}`
}

const pretty = (value) => {
  if (value === undefined) return "undefined"
  try {
    return JSON.stringify(value, null, 2)
  } catch {
    return String(value)
  }
}

const preview = (value, max = 90) => {
  if (value === undefined || value === null) return ""
  let text
  try {
    text = JSON.stringify(value)
  } catch {
    text = String(value)
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

const dash = () => h("span", { class: "muted" }, "—")

// A date in local time with a relative hint that the ticker keeps current.
const timeCell = (value, { relative = true } = {}) => {
  const d = toDate(value)
  if (!d) return dash()
  return h(
    "time",
    { datetime: d.toISOString(), title: `${dateTimeFormat.format(d)} (${d.toISOString()})` },
    fmtDate(d),
    relative ? [" ", h("span", { class: "rel", "data-rel": d.getTime() }, fmtRelative(d))] : null
  )
}

// Only the relative hint, e.g. "3 s ago".
const relativeCell = (value) => {
  const d = toDate(value)
  if (!d) return dash()
  return h(
    "time",
    { datetime: d.toISOString(), title: dateTimeFormat.format(d), class: "rel-only", "data-rel": d.getTime() },
    fmtRelative(d)
  )
}

const refreshRelativeTimes = () => {
  const now = Date.now()
  for (const el of document.querySelectorAll("[data-rel]")) {
    el.textContent = fmtRelative(new Date(Number(el.getAttribute("data-rel"))), now)
  }
}

const stateBadge = (state, testid) => h("span", { class: ["badge", `state-${state}`], "data-testid": testid }, state)

const badge = (text, kind, testid) => h("span", { class: ["badge", `badge-${kind}`], "data-testid": testid }, text)

// ---------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, tag, message) {
    super(message)
    this.status = status
    this.tag = tag
  }
}

const defaultMessages = {
  400: "the request is not valid",
  401: "sign in to use the dashboard",
  403: "not allowed",
  404: "not found",
  409: "not possible in the job's current state",
  503: "the database is unavailable"
}

// Some errors come with their fields only, without a message.
const describeError = (data) => {
  if (!data || typeof data !== "object") return undefined
  const id = typeof data.id === "string" ? data.id : undefined
  switch (data._tag) {
    case "InvalidJobState":
      return `cannot ${data.action} job ${id}: it is ${data.state}`
    case "JobNotFound":
      return `no job with id ${id}`
    case "RecurringNotFound":
      return `no recurring definition with id "${id}"`
    default:
      return undefined
  }
}

/** Where the server mounted the dashboard ("" at the root, else "/like/this"): every API path is under it. */
const base = document.querySelector("meta[name=\"effect-workers-base\"]")?.getAttribute("content") ?? ""

const request = async (method, path, body) => {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } }
  if (method === "POST") {
    init.headers["content-type"] = "application/json"
    // Required by the server on every POST, against cross-site requests.
    init.headers["x-effect-workers"] = "1"
    init.body = JSON.stringify(body ?? {})
  }
  let res
  try {
    res = await fetch(base + path, init)
  } catch {
    throw new ApiError(0, "NetworkError", "the dashboard server cannot be reached")
  }
  const text = await res.text()
  let data
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = undefined
    }
  }
  if (!res.ok) {
    const tag = data && typeof data._tag === "string" ? data._tag : `HTTP ${res.status}`
    const message = data && typeof data.message === "string" && data.message !== ""
      ? data.message
      : describeError(data) ?? defaultMessages[res.status] ?? (res.statusText || "request failed")
    throw new ApiError(res.status, tag, message)
  }
  return data
}

const get = (path) => request("GET", path)
const post = (path, body) => request("POST", path, body)

const query = (params) => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ""
}

const errorText = (error) => {
  if (error instanceof ApiError) {
    return `${error.tag}: ${error.message}`
  }
  return `Error: ${error && error.message ? error.message : String(error)}`
}

// ---------------------------------------------------------------------------
// Message area

let messageTimer
let messageSource = null

/** Set by an action that navigates: its success message stays on the next page. */
let carryMessage = false

const showMessage = (kind, content, source = null) => {
  const bar = document.getElementById("message-bar")
  const el = document.getElementById("message")
  clearTimeout(messageTimer)
  el.replaceChildren()
  append(el, [content])
  el.setAttribute("data-kind", kind)
  bar.setAttribute("data-kind", kind)
  bar.hidden = false
  messageSource = source
  if (kind === "success") messageTimer = setTimeout(clearMessage, 10_000)
}

const clearMessage = () => {
  clearTimeout(messageTimer)
  const el = document.getElementById("message")
  el.replaceChildren()
  el.removeAttribute("data-kind")
  document.getElementById("message-bar").hidden = true
  messageSource = null
}

const showError = (error, source = null) => showMessage("error", errorText(error), source)
const showSuccess = (content) => showMessage("success", content)

// Load errors clear themselves once loading works again; the outcome of an action stays.
const clearLoadError = () => {
  if (messageSource === "load") clearMessage()
}

// Runs an action from a button: disables it meanwhile, reports the outcome, then calls
// `after(failed)`, which reloads: after a failure too, since the page may show a stale state.
const runAction = async (button, perform, describe, after) => {
  button.disabled = true
  let failed = false
  try {
    const result = await perform()
    showSuccess(describe(result))
  } catch (error) {
    failed = true
    showError(error)
  }
  try {
    if (after) await after(failed)
  } finally {
    button.disabled = false
  }
}

/** A table's header row. */
const thead = (...cells) => h("thead", null, h("tr", null, ...cells))

const actionButton = (label, action, props, onClick) =>
  h("button", {
    type: "button",
    class: ["btn", "btn-sm", props.danger ? "btn-danger" : null],
    "data-action": action,
    ...props.attrs,
    on: { click: (event) => onClick(event.currentTarget) }
  }, label)

// ---------------------------------------------------------------------------
// Refreshing

// Reloads every `interval` ms while the tab is visible; `run(true)` reloads now. A task returning "stop" ends the reloads.
const poller = (task, interval) => {
  let timer = null
  let running = null
  let again = false
  let stopped = false

  const run = async (force = false) => {
    if (stopped) return
    clearTimeout(timer)
    timer = null
    if (!force && document.visibilityState === "hidden") return
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      let outcome
      do {
        again = false
        outcome = await task()
      } while (again && !stopped)
      return outcome
    })()
    let outcome
    try {
      outcome = await running
    } finally {
      running = null
    }
    if (!stopped && interval && outcome !== "stop" && document.visibilityState !== "hidden") {
      timer = setTimeout(run, interval)
    }
  }

  const onVisibility = () => {
    if (document.visibilityState === "visible") run()
    else clearTimeout(timer)
  }
  document.addEventListener("visibilitychange", onVisibility)
  run(true)
  return {
    refresh: () => run(true),
    stop: () => {
      stopped = true
      clearTimeout(timer)
      document.removeEventListener("visibilitychange", onVisibility)
    }
  }
}

const pageRoot = (name) => h("section", { class: "page", "data-testid": `page-${name}` })

const pageHeader = (title, subtitle) => {
  const updated = h("span", { class: "updated", "data-testid": "updated-at" }, "Loading…")
  const refresh = h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-testid": "refresh" }, "Refresh")
  const el = h(
    "div",
    { class: "page-header" },
    h("div", { class: "page-title" }, h("h1", null, title), subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    h("div", { class: "page-header-right" }, updated, refresh)
  )
  return {
    el,
    refresh,
    setUpdated: (d) => {
      updated.textContent = `Updated ${timeFormat.format(d)}`
      updated.setAttribute("title", `Refreshes every ${REFRESH_MS / 1000} s while this tab is visible`)
    }
  }
}

/**
 * A page whose body is rebuilt from `load()` when the data changed. `top` nodes
 * stay in place across refreshes (filter forms keep what is typed in them).
 */
/** Whether the reader is selecting text in `el`: a refresh then waits, so the selection is not lost. */
const selecting = (el) => {
  const selection = window.getSelection()
  return selection !== null && !selection.isCollapsed && el.contains(selection.anchorNode)
}

/** Names a <details> across renders: its row's test id and its place in that row. */
const detailsKey = (details) => {
  const row = details.closest("[data-testid]")
  const siblings = row ? [...row.querySelectorAll("details")] : []
  return `${row?.getAttribute("data-testid") ?? ""}:${siblings.indexOf(details)}`
}

const livePage = (root, { title, subtitle, top = [], load, render, onError }) => {
  const header = pageHeader(title, subtitle)
  const body = h("div", { class: "page-body" }, h("p", { class: "loading" }, "Loading…"))
  append(root, [header.el, top, body])
  let last = null
  let stopped = false
  const ctx = {
    refresh: () => poll.refresh(),
    stop: () => {
      stopped = true
      poll.stop()
    }
  }
  const poll = poller(async () => {
    try {
      const data = await load()
      if (stopped) return
      const key = JSON.stringify(data)
      if (key !== last && !selecting(body)) {
        last = key
        // A refresh keeps what the reader had: open details and the scroll position.
        const open = new Set([...body.querySelectorAll("details[open]")].map(detailsKey))
        const x = window.scrollX
        const y = window.scrollY
        body.replaceChildren()
        append(body, [render(data, ctx)])
        for (const details of body.querySelectorAll("details")) if (open.has(detailsKey(details))) details.open = true
        window.scrollTo(x, y)
        refreshRelativeTimes()
      }
      header.setUpdated(new Date())
      clearLoadError()
    } catch (error) {
      if (stopped) return
      // A handled error replaces the body and ends automatic reloads (e.g. a deleted job).
      if (onError && onError(error, body, ctx)) {
        last = null
        header.setUpdated(new Date())
        return "stop"
      }
      showError(error, "load")
    }
  }, REFRESH_MS)
  header.refresh.addEventListener("click", () => ctx.refresh())
  return ctx
}

// ---------------------------------------------------------------------------
// Links

const jobsHash = (filter = {}) =>
  `#/jobs${
    query({
      queue: filter.queue,
      state: filter.state,
      name: filter.name,
      search: filter.search,
      before: filter.before,
      limit: filter.limit
    })
  }`

const jobHash = (id) => `#/jobs/${enc(id)}`

const jobLink = (id, text = id) => h("a", { href: jobHash(id), class: "mono" }, text)

// ---------------------------------------------------------------------------
// Overview

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

const overviewPage = (root) =>
  livePage(root, {
    title: "Overview",
    load: () => get("/api/overview"),
    render: renderOverview
  })

// ---------------------------------------------------------------------------
// Queues

/** Pause or Resume, for a queue or a recurring definition at `path`; `testId` names the button per action. */
const pauseButton = (ctx, paused, path, what, testId) => {
  const action = paused ? "resume" : "pause"
  return actionButton(
    paused ? "Resume" : "Pause",
    action,
    { attrs: { "data-testid": testId(action) } },
    (button) =>
      runAction(
        button,
        () => post(`${path}/${action}`),
        () => `${what} ${paused ? "resumed" : "paused"}`,
        () => ctx.refresh()
      )
  )
}

const renderQueues = (queues, ctx) => {
  if (!queues.length) {
    return h("p", { class: "empty card" }, "No queues yet: a queue appears once a job is enqueued on it.")
  }
  const sorted = [...queues].sort((a, b) => a.name.localeCompare(b.name))
  const c = (q, state) => (q.counts && typeof q.counts[state] === "number" ? q.counts[state] : 0)
  const countLink = (q, state) =>
    h(
      "td",
      { class: "num" },
      h("a", { href: jobsHash({ queue: q.name, state }), class: c(q, state) ? null : "zero" }, fmtNumber(c(q, state)))
    )
  return h(
    "div",
    { class: "card scroll" },
    h(
      "table",
      { class: "table", "data-testid": "queues-table" },
      thead(
        h("th", null, "Queue"),
        h("th", null, "Status"),
        h("th", { class: "num", title: "available + scheduled + retryable" }, "Depth"),
        h("th", { class: "num" }, "Available"),
        h("th", { class: "num" }, "Scheduled"),
        h("th", { class: "num" }, "Retryable"),
        h("th", { class: "num" }, "Running"),
        h("th", { class: "num", title: "How long the oldest due job has waited" }, "Oldest wait"),
        h("th", { class: "num", title: "Slots of this queue in the runners alive now" }, "Concurrency"),
        session.readOnly ? null : h("th", { class: "actions-col" }, "")
      ),
      h(
        "tbody",
        null,
        sorted.map((q) => {
          const depth = c(q, "available") + c(q, "scheduled") + c(q, "retryable")
          const wait = q.oldestWaitMillis
          return h(
            "tr",
            { "data-testid": `queue-${q.name}`, "data-paused": String(Boolean(q.paused)) },
            h("th", { scope: "row" }, h("a", { href: jobsHash({ queue: q.name }) }, q.name)),
            h("td", null, q.paused ? badge("paused", "paused", `queue-paused-${q.name}`) : badge("active", "active")),
            h("td", { class: "num strong", "data-testid": `depth-${q.name}` }, fmtNumber(depth)),
            countLink(q, "available"),
            countLink(q, "scheduled"),
            countLink(q, "retryable"),
            countLink(q, "running"),
            h(
              "td",
              { class: ["num", typeof wait === "number" && wait > 60_000 ? "warn" : null] },
              typeof wait === "number" ? fmtDuration(wait) : dash()
            ),
            h(
              "td",
              {
                class: ["num", q.concurrency ? null : "muted"],
                title: q.concurrency ? null : "No runner alive serves this queue"
              },
              fmtNumber(q.concurrency)
            ),
            session.readOnly ? null : h(
              "td",
              { class: "actions" },
              pauseButton(ctx, q.paused, `/api/queues/${enc(q.name)}`, `Queue ${q.name}`, (a) => `${a}-${q.name}`)
            )
          )
        })
      )
    )
  )
}

const queuesPage = (root) =>
  livePage(root, {
    title: "Queues",
    subtitle: "A paused queue keeps its jobs; runners claim none of them until it is resumed.",
    load: () => get("/api/queues"),
    render: renderQueues
  })

// ---------------------------------------------------------------------------
// Jobs

const filterOf = (params) => ({
  queue: params.get("queue") ?? "",
  state: params.get("state") ?? "",
  name: params.get("name") ?? "",
  search: params.get("search") ?? ""
})

const describeFilter = (filter) => {
  const parts = []
  if (filter.queue) parts.push(`queue = ${filter.queue}`)
  if (filter.state) parts.push(`state = ${filter.state}`)
  if (filter.name) parts.push(`name = ${filter.name}`)
  if (filter.search) parts.push(`search = ${filter.search}`)
  return parts.length ? parts.join(", ") : "every job (no filter)"
}

const cleanFilter = (filter) => {
  const out = {}
  for (const key of ["queue", "state", "name", "search"]) if (filter[key]) out[key] = filter[key]
  return out
}

const jobActionButtons = (job, after) => {
  if (session.readOnly) return null
  return JOB_ACTIONS.filter((a) => a.when(job.state)).map((a) =>
    actionButton(
      a.label,
      a.action,
      { danger: a.danger, attrs: { "data-testid": `${a.action}-${job.id}` } },
      (button) => {
        // Deleting cannot be undone: asked first.
        if (
          a.action === "delete" && !window.confirm(`Delete job #${job.id} (${job.name})? This cannot be undone.`)
        ) return
        return runAction(
          button,
          () => post(`/api/jobs/${enc(job.id)}/${a.action}`),
          () => `Job ${job.id} ${a.done}`,
          (failed) => after(a.action, failed)
        )
      }
    )
  )
}

const lastError = (job) => (Array.isArray(job.errors) && job.errors.length ? job.errors[job.errors.length - 1] : null)

const renderJobs = ({ page, counts }, ctx, filter, before, limit) => {
  const jobs = Array.isArray(page.jobs) ? page.jobs : []
  const rows = jobs.map((job) => {
    const err = lastError(job)
    const failedState = job.state === "retryable" || job.state === "discarded"
    return h(
      "tr",
      { "data-testid": `job-row-${job.id}`, "data-state": job.state },
      h("td", { class: "id-cell" }, jobLink(job.id)),
      h(
        "td",
        { class: "job-cell" },
        h("a", { href: jobHash(job.id), class: "job-name" }, job.name),
        job.payload !== undefined && job.payload !== null
          ? h("div", { class: "payload-preview mono", title: preview(job.payload, 2000) }, preview(job.payload))
          : null,
        failedState && err ? h("div", { class: "error-line", title: err.message }, err.message) : null
      ),
      h("td", null, h("a", { href: jobsHash({ ...filter, queue: job.queue, before: undefined }) }, job.queue)),
      h("td", null, stateBadge(job.state)),
      h("td", { class: "num" }, `${fmtNumber(job.attempt)}/${fmtNumber(job.maxAttempts)}`),
      h("td", { class: "nowrap" }, timeCell(job.runAt)),
      h("td", { class: "nowrap" }, timeCell(job.finalizedAt)),
      session.readOnly ? null : h(
        "td",
        { class: "actions" },
        jobActionButtons(job, () => ctx.refresh())
      )
    )
  })

  const table = jobs.length === 0
    ? h("p", { class: "empty", "data-testid": "jobs-empty" }, before ? "No older jobs." : "No jobs match this filter.")
    : h(
      "table",
      { class: "table", "data-testid": "jobs-table" },
      thead(
        h("th", null, "Id"),
        h("th", null, "Job"),
        h("th", null, "Queue"),
        h("th", null, "State"),
        h("th", { class: "num" }, "Attempt"),
        h("th", null, "Run at"),
        h("th", null, "Finalized"),
        session.readOnly ? null : h("th", { class: "actions-col" }, "")
      ),
      h("tbody", null, rows)
    )

  const pager = h(
    "div",
    { class: "pager" },
    h("span", { class: "muted" }, `${plural(jobs.length, "job")} on this page${before ? " (older jobs)" : ""}`),
    h(
      "div",
      { class: "pager-links" },
      before
        ? h("a", { class: "btn btn-sm", href: jobsHash({ ...filter, limit }), "data-testid": "newest" }, "← Newest")
        : null,
      page.next
        ? h(
          "a",
          { class: "btn btn-sm", href: jobsHash({ ...filter, before: page.next, limit }), "data-testid": "older" },
          "Older →"
        )
        : null
    )
  )

  return [stateTabs(filter, counts), h("div", { class: "card scroll" }, table), pager]
}

const stateTabs = (filter, counts) => {
  const totals = {}
  if (Array.isArray(counts)) {
    for (const c of counts) {
      if (filter.queue && c.queue !== filter.queue) continue
      totals[c.state] = (totals[c.state] ?? 0) + c.count
    }
  }
  const tab = (state, label) =>
    h(
      "a",
      {
        class: ["tab", (filter.state || "") === (state || "") ? "active" : null],
        href: jobsHash({ ...filter, state }),
        "data-testid": `state-tab-${state || "all"}`,
        "aria-current": (filter.state || "") === (state || "") ? "true" : null
      },
      label,
      state && counts ? h("span", { class: "tab-count" }, fmtNumber(totals[state] ?? 0)) : null
    )
  return h("nav", { class: "tabs", "aria-label": "States" }, tab("", "All"), STATES.map((state) => tab(state, state)))
}

const jobsPage = (root, params) => {
  const filter = filterOf(params)
  const before = params.get("before") || undefined
  const limit = params.get("limit") || undefined

  const labeled = (labelText, control) => h("label", { class: "field" }, h("span", null, labelText), control)
  const queueInput = h("input", {
    type: "text",
    name: "queue",
    list: "queue-names",
    value: filter.queue,
    placeholder: "any queue",
    autocomplete: "off",
    "data-testid": "filter-queue"
  })
  const queueList = h("datalist", { id: "queue-names" })
  const stateSelect = h(
    "select",
    { name: "state", "data-testid": "filter-state" },
    h("option", { value: "" }, "any state"),
    STATES.map((state) => h("option", { value: state }, state))
  )
  stateSelect.value = filter.state
  const nameInput = h("input", {
    type: "text",
    name: "name",
    value: filter.name,
    placeholder: "job name",
    "data-testid": "filter-name"
  })
  const searchInput = h("input", {
    type: "search",
    name: "search",
    value: filter.search,
    placeholder: "job id or text in the payload",
    "data-testid": "filter-search"
  })
  const values = () => ({
    queue: queueInput.value.trim(),
    state: stateSelect.value,
    name: nameInput.value.trim(),
    search: searchInput.value.trim()
  })
  const apply = () => {
    const target = jobsHash({ ...values(), limit })
    if (location.hash === target) ctx.refresh()
    else location.hash = target
  }
  const form = h(
    "form",
    {
      class: "filters card",
      "data-testid": "jobs-filter",
      role: "search",
      on: {
        submit: (event) => {
          event.preventDefault()
          apply()
        }
      }
    },
    labeled("Queue", queueInput),
    queueList,
    labeled("State", stateSelect),
    labeled("Name", nameInput),
    labeled("Search", searchInput),
    h(
      "div",
      { class: "filter-buttons" },
      h("button", { type: "submit", class: "btn btn-primary", "data-testid": "filter-apply" }, "Filter"),
      h("a", { class: "btn", href: "#/jobs", "data-testid": "filter-clear" }, "Clear")
    )
  )
  stateSelect.addEventListener("change", apply)

  get("/api/queues").then((queues) => {
    for (const q of Array.isArray(queues) ? queues : []) queueList.appendChild(h("option", { value: q.name }))
  }, () => {})

  const top = [form]
  // Without a filter a bulk action would cover every job: not offered.
  if (!session.readOnly && Object.keys(cleanFilter(filter)).length > 0) {
    const bulkSelect = h(
      "select",
      { name: "action", "data-testid": "bulk-action", "aria-label": "Bulk action" },
      h("option", { value: "retry" }, "Retry"),
      h("option", { value: "cancel" }, "Cancel"),
      h("option", { value: "delete" }, "Delete")
    )
    const bulkButton = h(
      "button",
      { type: "submit", class: "btn btn-warn", "data-testid": "bulk-apply" },
      "Apply to all matching"
    )
    const bulk = h(
      "form",
      {
        class: "bulk",
        "data-testid": "bulk",
        on: {
          submit: (event) => {
            event.preventDefault()
            const action = bulkSelect.value
            runAction(
              bulkButton,
              async () => {
                // Counted first, and confirmed with that count: a link can fill the filter, never run the action.
                const preview = await post("/api/jobs/bulk", { action, filter: cleanFilter(filter), dryRun: true })
                const count = preview && typeof preview.count === "number" ? preview.count : 0
                const max = preview && typeof preview.limit === "number" ? preview.limit : count
                if (count > max) {
                  throw new ApiError(
                    409,
                    "BulkLimitExceeded",
                    `more than ${max} jobs match ${
                      describeFilter(filter)
                    }: narrow the filter (the bulk limit is ${max})`
                  )
                }
                const verb = { retry: "Retry", cancel: "Cancel", delete: "Delete" }[action] ?? action
                const question = `${verb} ${plural(count, "job")} matching ${describeFilter(filter)}?` +
                  (action === "delete" ? " This cannot be undone." : "")
                if (count === 0 || !window.confirm(question)) return { count: 0, skipped: true }
                return post("/api/jobs/bulk", { action, filter: cleanFilter(filter) })
              },
              (result) =>
                result && result.skipped
                  ? `Nothing done: no job matching ${describeFilter(filter)} was changed`
                  : `${BULK_DONE[action] ?? action} ${
                    plural(result && typeof result.count === "number" ? result.count : 0, "job")
                  } matching ${describeFilter(filter)}`,
              () => ctx.refresh()
            )
          }
        }
      },
      h("span", { class: "bulk-label" }, "All jobs matching ", h("strong", null, describeFilter(filter)), ":"),
      bulkSelect,
      bulkButton
    )
    top.push(bulk)
  }

  const ctx = livePage(root, {
    title: "Jobs",
    subtitle: describeFilter(filter) === "every job (no filter)"
      ? "All jobs, newest first"
      : `Filtered: ${describeFilter(filter)}`,
    top,
    load: async () => {
      const [page, overview] = await Promise.all([
        get(`/api/jobs${query({ ...cleanFilter(filter), before, limit })}`),
        get("/api/overview").catch(() => null)
      ])
      return { page, counts: overview ? overview.counts : null }
    },
    render: (data, c) => renderJobs(data, c, filter, before, limit)
  })
  return ctx
}

// ---------------------------------------------------------------------------
// Job detail

const field = (label, name, value) => [h("dt", null, label), h("dd", { "data-field": name }, value ?? dash())]

const textOrDash = (value, mono = false) =>
  value === null || value === undefined || value === ""
    ? dash()
    : h("span", { class: mono ? "mono" : null }, String(value))

const jsonBlock = (title, testid, value) =>
  h(
    "section",
    { class: "card section" },
    h("h2", null, title),
    h("pre", { class: "json", "data-testid": testid }, pretty(value))
  )

const renderJob = (job, ctx) => {
  const inserted = toDate(job.insertedAt)
  const runAt = toDate(job.runAt)
  const attempted = toDate(job.attemptedAt)
  const finalized = toDate(job.finalizedAt)
  const now = Date.now()

  // Waited: from when the job was due (its run time, or its insertion if later) to its latest attempt.
  let waited = null
  let waitedLabel = "Waited"
  const due = inserted && runAt ? Math.max(inserted.getTime(), runAt.getTime()) : (runAt ?? inserted)?.valueOf()
  if (attempted && due !== undefined) waited = attempted.getTime() - due
  else if (!attempted && due !== undefined && job.state === "available" && now > due) {
    waited = now - due
    waitedLabel = "Waiting for"
  }
  let duration = null
  let durationLabel = "Duration"
  if (attempted && finalized) duration = finalized.getTime() - attempted.getTime()
  else if (attempted && job.state === "running") {
    duration = now - attempted.getTime()
    durationLabel = "Running for"
  }

  const errors = Array.isArray(job.errors) ? [...job.errors].sort((a, b) => b.attempt - a.attempt) : []

  const after = (action, failed) => {
    if (action === "delete" && !failed) {
      carryMessage = true
      location.hash = "#/jobs"
    } else return ctx.refresh()
  }

  return [
    h(
      "div",
      { class: "job-head card" },
      h(
        "div",
        { class: "job-head-main" },
        h("span", { class: "job-id mono", "data-testid": "job-id" }, `#${job.id}`),
        h("span", { class: "job-title", "data-testid": "job-name" }, job.name),
        stateBadge(job.state, "job-state")
      ),
      session.readOnly
        ? null
        : h("div", { class: "actions", "data-testid": "job-actions" }, jobActionButtons(job, after))
    ),
    h(
      "div",
      { class: "grid-2" },
      h(
        "section",
        { class: "card section" },
        h("h2", null, "Job"),
        h(
          "dl",
          { class: "fields" },
          field("Id", "id", textOrDash(job.id, true)),
          field("Name", "name", textOrDash(job.name)),
          field("Queue", "queue", h("a", { href: jobsHash({ queue: job.queue }) }, job.queue)),
          field("State", "state", stateBadge(job.state)),
          field("Priority", "priority", fmtNumber(job.priority)),
          field("Attempt", "attempt", `${fmtNumber(job.attempt)} of ${fmtNumber(job.maxAttempts)}`),
          field("Unique key", "uniqueKey", textOrDash(job.uniqueKey, true)),
          field("Runner", "lockedBy", textOrDash(job.lockedBy, true)),
          field("Trace id", "traceId", textOrDash(job.traceId, true)),
          field(
            "Recurring",
            "recurringId",
            job.recurringId ? h("a", { href: "#/recurring", class: "mono" }, job.recurringId) : dash()
          ),
          field("Recurring tick", "recurringTick", timeCell(job.recurringTick))
        )
      ),
      h(
        "section",
        { class: "card section" },
        h("h2", null, "Timing"),
        h(
          "dl",
          { class: "fields" },
          field("Inserted", "insertedAt", timeCell(job.insertedAt)),
          field("Run at", "runAt", timeCell(job.runAt)),
          field("Attempted", "attemptedAt", timeCell(job.attemptedAt)),
          field("Finalized", "finalizedAt", timeCell(job.finalizedAt)),
          field(waitedLabel, "waited", waited === null ? dash() : fmtDuration(waited)),
          field(durationLabel, "duration", duration === null ? dash() : fmtDuration(duration))
        )
      )
    ),
    jsonBlock("Payload", "payload", job.payload),
    job.progress !== undefined && job.progress !== null ? jsonBlock("Progress", "progress", job.progress) : null,
    job.result !== undefined && (job.result !== null || job.state === "completed")
      ? jsonBlock("Result", "result", job.result)
      : null,
    h(
      "section",
      { class: "card section" },
      h("h2", null, errors.length ? `Errors (${fmtNumber(errors.length)})` : "Errors"),
      errors.length === 0
        ? h("p", { class: "muted", "data-testid": "errors" }, "No attempt has failed.")
        : h(
          "ol",
          { class: "errors", "data-testid": "errors" },
          errors.map((e) =>
            h(
              "li",
              { class: "error-item", "data-testid": `error-${e.attempt}` },
              h(
                "div",
                { class: "error-head" },
                h("span", { class: "badge badge-attempt" }, `Attempt ${fmtNumber(e.attempt)}`),
                timeCell(e.at),
                h("span", { class: "error-message" }, e.message)
              ),
              h("pre", { class: "cause", "data-testid": `error-cause-${e.attempt}` }, e.cause ?? "")
            )
          )
        )
    )
  ]
}

const jobPage = (root, id) =>
  livePage(root, {
    title: `Job ${id}`,
    subtitle: h("a", { href: "#/jobs" }, "← All jobs"),
    load: () => get(`/api/jobs/${enc(id)}`),
    render: renderJob,
    onError: (error, body) => {
      if (!(error instanceof ApiError) || error.status !== 404) return false
      body.replaceChildren(h("p", { class: "empty card", "data-testid": "job-not-found" }, `Job ${id} was not found.`))
      return true
    }
  })

// ---------------------------------------------------------------------------
// Recurring

const schedule = (r) => {
  const parts = []
  if (r.cron) {
    parts.push(h("code", { class: "cron" }, r.cron))
    parts.push(" ", h("span", { class: "muted" }, r.timeZone || "UTC"))
  } else if (typeof r.everyMillis === "number") {
    parts.push(fmtEvery(r.everyMillis))
  } else {
    parts.push(dash())
  }
  const bounds = []
  if (r.start) bounds.push(h("div", { class: "small muted" }, "from ", timeCell(r.start, { relative: false })))
  if (r.end) bounds.push(h("div", { class: "small muted" }, "until ", timeCell(r.end, { relative: false })))
  return [h("div", null, parts), bounds]
}

const misfireText = (m) => {
  if (m === "skip") return "skip"
  if (m === "runOnce") return "run once"
  if (m && typeof m === "object" && typeof m.backfill === "number") return `backfill up to ${fmtNumber(m.backfill)}`
  return preview(m)
}

const renderRecurring = (items, ctx) => {
  if (!items.length) return h("p", { class: "empty card" }, "No recurring jobs are defined.")
  const sorted = [...items].sort((a, b) => a.id.localeCompare(b.id))
  return h(
    "div",
    { class: "card scroll" },
    h(
      "table",
      { class: "table", "data-testid": "recurring-table" },
      thead(
        h("th", null, "Id"),
        h("th", null, "Job"),
        h("th", null, "Schedule"),
        h("th", null, "Misfire"),
        h("th", null, "Source"),
        h("th", null, "Status"),
        h("th", null, "Last run"),
        h("th", null, "Next run"),
        session.readOnly ? null : h("th", { class: "actions-col" }, "")
      ),
      h(
        "tbody",
        null,
        sorted.map((r) => {
          return h(
            "tr",
            { "data-testid": `recurring-${r.id}`, "data-paused": String(Boolean(r.paused)) },
            h("th", { scope: "row", class: "mono" }, r.id),
            h(
              "td",
              null,
              h("div", { class: "nowrap" }, r.jobName),
              h("div", { class: "small muted" }, "queue ", h("a", { href: jobsHash({ queue: r.queue }) }, r.queue)),
              r.payload !== undefined && r.payload !== null
                ? h("div", { class: "payload-preview mono", title: preview(r.payload, 2000) }, preview(r.payload))
                : null
            ),
            h("td", null, schedule(r)),
            h("td", { class: "nowrap" }, misfireText(r.misfire)),
            h("td", null, badge(r.source, r.source === "code" ? "code" : "api")),
            h(
              "td",
              null,
              r.paused ? badge("paused", "paused") : r.error ? badge("set aside", "paused") : badge("active", "active"),
              r.error ? h("div", { class: "small", "data-testid": `recurring-error-${r.id}` }, r.error) : null
            ),
            h(
              "td",
              { class: "nowrap" },
              timeCell(r.lastRunAt),
              r.lastJobId || r.lastJobState
                ? h(
                  "div",
                  { class: "small" },
                  r.lastJobId ? jobLink(r.lastJobId, `job ${r.lastJobId}`) : null,
                  " ",
                  r.lastJobState ? stateBadge(r.lastJobState) : null
                )
                : null
            ),
            h("td", { class: "nowrap" }, r.paused ? h("span", { class: "muted" }, "paused") : timeCell(r.nextRunAt)),
            session.readOnly ? null : h(
              "td",
              { class: "actions" },
              actionButton(
                "Trigger now",
                "trigger",
                { attrs: { "data-testid": `recurring-trigger-${r.id}` } },
                (button) =>
                  runAction(
                    button,
                    () => post(`/api/recurring/${enc(r.id)}/trigger`),
                    (result) =>
                      result && result.jobId
                        ? ["Triggered ", r.id, ": ", jobLink(result.jobId, `job ${result.jobId}`)]
                        : `Triggered ${r.id}`,
                    () => ctx.refresh()
                  )
              ),
              pauseButton(
                ctx,
                r.paused,
                `/api/recurring/${enc(r.id)}`,
                `Recurring ${r.id}`,
                (a) => `recurring-${a}-${r.id}`
              )
            )
          )
        })
      )
    )
  )
}

const recurringPage = (root) =>
  livePage(root, {
    title: "Recurring jobs",
    load: () => get("/api/recurring"),
    render: renderRecurring
  })

// ---------------------------------------------------------------------------
// Processes

const renderProcesses = ({ workers, runners }) => {
  const workersTable = workers.length === 0
    ? h("p", { class: "empty" }, "This process hosts no workers.")
    : h(
      "table",
      { class: "table", "data-testid": "workers-table" },
      thead(
        h("th", null, "Name"),
        h("th", null, "Kind"),
        h("th", null, "State"),
        h("th", null, "Last start"),
        h("th", null, "Last end"),
        h("th", null, "Last error"),
        h("th", { class: "num" }, "Iterations"),
        h("th", { class: "num" }, "Failures"),
        h("th", { class: "num" }, "Skipped"),
        h("th", null, "Next run")
      ),
      h(
        "tbody",
        null,
        [...workers].sort((a, b) => a.name.localeCompare(b.name)).map((w) =>
          h(
            "tr",
            { "data-testid": `worker-${w.name}`, "data-state": w.state },
            h("th", { scope: "row" }, w.name),
            h("td", null, w.kind),
            h("td", null, h("span", { class: ["badge", `ws-${w.state}`] }, w.state)),
            h("td", { class: "nowrap" }, timeCell(w.lastStartedAt)),
            h("td", { class: "nowrap" }, timeCell(w.lastEndedAt)),
            h(
              "td",
              { class: "error-col" },
              w.lastError
                ? h(
                  "details",
                  null,
                  h("summary", { class: "error-line" }, w.lastError.split("\n")[0]),
                  h("pre", { class: "cause" }, w.lastError)
                )
                : dash()
            ),
            h("td", { class: "num" }, fmtNumber(w.iterations)),
            h("td", { class: ["num", w.failures ? "warn" : null] }, fmtNumber(w.failures)),
            h("td", { class: "num" }, fmtNumber(w.skipped)),
            h("td", { class: "nowrap" }, timeCell(w.nextRunAt))
          )
        )
      )
    )

  // One row per process (host and pid): a process may run several runners, one per JobRunner layer.
  const processes = new Map()
  for (const r of runners) {
    const key = `${r.host}:${r.pid}`
    const group = processes.get(key) ?? { key, host: r.host, pid: r.pid, runners: [] }
    group.runners.push(r)
    processes.set(key, group)
  }
  const earliest = (dates) => dates.reduce((a, b) => (a === null || toDate(b) < toDate(a) ? b : a), null)
  const latest = (dates) => dates.reduce((a, b) => (a === null || toDate(b) > toDate(a) ? b : a), null)
  const runnersTable = runners.length === 0
    ? h("p", { class: "empty" }, "No job runner has registered.")
    : h(
      "table",
      { class: "table", "data-testid": "runners-table" },
      thead(
        h("th", null, "Process"),
        h("th", null, "Runners"),
        h("th", null, "Queues"),
        h("th", null, "Started"),
        h("th", null, "Heartbeat"),
        h("th", null, "Status")
      ),
      h(
        "tbody",
        null,
        [...processes.values()].sort((a, b) =>
          Number(b.runners.some((r) => r.alive)) - Number(a.runners.some((r) => r.alive)) || a.key.localeCompare(b.key)
        ).map((p) => {
          const alive = p.runners.some((r) => r.alive)
          const queues = [...new Set(p.runners.flatMap((r) => (Array.isArray(r.queues) ? r.queues : [])))].sort()
          return h(
            "tr",
            { "data-testid": `process-${p.key}`, "data-alive": String(alive) },
            h("th", { scope: "row" }, p.host, h("span", { class: "muted" }, ` pid ${p.pid}`)),
            h(
              "td",
              null,
              p.runners.map((r) =>
                h(
                  "div",
                  { class: "mono small", "data-testid": `runner-${r.id}`, "data-alive": String(Boolean(r.alive)) },
                  r.id,
                  r.alive ? null : h("span", { class: "muted" }, " (dead)")
                )
              )
            ),
            h("td", null, queues.map((q) => h("a", { class: "chip", href: jobsHash({ queue: q }) }, q))),
            h("td", { class: "nowrap" }, timeCell(earliest(p.runners.map((r) => r.startedAt)))),
            h("td", { class: "nowrap" }, relativeCell(latest(p.runners.map((r) => r.heartbeatAt)))),
            h(
              "td",
              null,
              alive
                ? badge("alive", "alive", `process-alive-${p.key}`)
                : badge("dead", "dead", `process-alive-${p.key}`)
            )
          )
        })
      )
    )

  return [
    h(
      "section",
      { class: "card section" },
      h("h2", null, "Hosted workers"),
      h("p", { class: "muted small" }, "The workers of the process serving this dashboard."),
      h("div", { class: "scroll" }, workersTable)
    ),
    h(
      "section",
      { class: "card section" },
      h("h2", null, "Job runners"),
      h(
        "p",
        { class: "muted small" },
        "Every process that claims jobs, with its runners, as their heartbeats report them."
      ),
      h("div", { class: "scroll" }, runnersTable)
    )
  ]
}

const processesPage = (root) =>
  livePage(root, {
    title: "Processes",
    load: async () => {
      const [workers, runners] = await Promise.all([get("/api/workers"), get("/api/runners")])
      return { workers: Array.isArray(workers) ? workers : [], runners: Array.isArray(runners) ? runners : [] }
    },
    render: renderProcesses
  })

// ---------------------------------------------------------------------------
// Routing

const notFoundPage = (root) => {
  append(root, [
    h("div", { class: "page-header" }, h("div", { class: "page-title" }, h("h1", null, "Not found"))),
    h("p", { class: "empty card" }, "There is no such page. ", h("a", { href: "#/" }, "Back to the overview"))
  ])
  return null
}

const parseHash = () => {
  const raw = location.hash.replace(/^#/, "") || "/"
  const q = raw.indexOf("?")
  const path = (q === -1 ? raw : raw.slice(0, q)).replace(/\/+$/, "") || "/"
  return { path, params: new URLSearchParams(q === -1 ? "" : raw.slice(q + 1)) }
}

const resolve = (path) => {
  if (path === "/") return { name: "overview", nav: "overview", mount: overviewPage }
  if (path === "/queues") return { name: "queues", nav: "queues", mount: queuesPage }
  if (path === "/jobs") return { name: "jobs", nav: "jobs", mount: jobsPage }
  if (path === "/recurring") return { name: "recurring", nav: "recurring", mount: recurringPage }
  if (path === "/processes") return { name: "processes", nav: "processes", mount: processesPage }
  const match = /^\/jobs\/([^/]+)$/.exec(path)
  if (match) {
    let id
    try {
      id = decodeURIComponent(match[1])
    } catch {
      id = match[1]
    }
    return { name: "job", nav: "jobs", mount: (root) => jobPage(root, id) }
  }
  return { name: "not-found", nav: null, mount: notFoundPage }
}

const titles = {
  overview: "Overview",
  queues: "Queues",
  jobs: "Jobs",
  job: "Job",
  recurring: "Recurring",
  processes: "Processes",
  "not-found": "Not found"
}

let current = null

const route = () => {
  // A success message is about the page it was shown on, unless the action itself moved on (a deleted job).
  if (!carryMessage && document.getElementById("message").getAttribute("data-kind") === "success") clearMessage()
  carryMessage = false
  if (current) current.stop()
  current = null
  const { path, params } = parseHash()
  const { name, nav, mount } = resolve(path)
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.getAttribute("data-nav") === nav) link.setAttribute("aria-current", "page")
    else link.removeAttribute("aria-current")
  }
  document.title = `${titles[name] ?? "Dashboard"} · effect-workers`
  const main = document.getElementById("main")
  const root = pageRoot(name)
  main.replaceChildren(root)
  current = mount(root, params) ?? null
  window.scrollTo(0, 0)
}

// ---------------------------------------------------------------------------
// Start

const start = async () => {
  document.getElementById("message-close").addEventListener("click", clearMessage)
  try {
    const info = await get("/api/session")
    session.readOnly = Boolean(info && info.readOnly)
    session.protected = Boolean(info && info.protected)
  } catch (error) {
    showError(error)
  }
  if (session.readOnly) {
    document.body.classList.add("read-only")
    document.getElementById("topbar-right").appendChild(
      h(
        "span",
        { class: "badge badge-readonly", "data-testid": "read-only", title: "Actions are disabled" },
        "read-only"
      )
    )
  }
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone
  append(document.getElementById("footer"), [
    `Times in local time${zone ? ` (${zone})` : ""}. `,
    session.protected ? "Access requires the dashboard's token. " : null,
    session.readOnly ? "Read-only: actions are disabled." : null
  ])
  window.addEventListener("hashchange", route)
  setInterval(() => {
    if (document.visibilityState === "visible") refreshRelativeTimes()
  }, 1000)
  route()
}

start()
