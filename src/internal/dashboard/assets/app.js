/* global document, window, location */
/**
 * The effect-workers dashboard: plain ES modules without dependencies or a build step.
 *
 * This module routes the hash to a page and starts the dashboard. Beside it:
 * api.js (calls to the JSON API), dom.js (building nodes), format.js (text for
 * numbers and dates), ui.js (messages, action buttons, badges, links), live.js
 * (the refresh loop), and one module per page in pages/.
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
 *     data-testid="flow-<queue>"            card of a queue with limits, data-source="code" | "api";
 *                                           "flow-none" when no queue has limits
 *     data-testid="limit-<queue>-<limit>"   globalConcurrency, keyConcurrency, rateLimit, keyRateLimit, fair
 *     data-testid="flow-running-<queue>"    also "flow-waiting-<queue>", "flow-started-<queue>" (with a rate limit)
 *     data-testid="held-<queue>-<limit>"    due jobs held back by "global", "rate" or "keys" (per-key limits)
 *     data-testid="flow-key-<queue>-<key>"  a busiest key's row, data-held="true" | "false"
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
import { get, session } from "./api.js"
import { append, h } from "./dom.js"
import { pageRoot } from "./live.js"
import { jobPage } from "./pages/job.js"
import { jobsPage } from "./pages/jobs.js"
import { overviewPage } from "./pages/overview.js"
import { processesPage } from "./pages/processes.js"
import { queuesPage } from "./pages/queues.js"
import { recurringPage } from "./pages/recurring.js"
import { clearMessage, leavePage, refreshRelativeTimes, showError } from "./ui.js"

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
  leavePage()
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
