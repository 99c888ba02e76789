/** Processes (#/processes): the hosted workers of every process that reports them, and every job runner. */
import { get } from "../api.js"
import { dash, h, thead } from "../dom.js"
import { fmtNumber, toDate } from "../format.js"
import { livePage } from "../live.js"
import { badge, jobsHash, relativeCell, timeCell } from "../ui.js"

const renderProcesses = ({ workers, runners }) => {
  const workersTable = workers.length === 0
    ? h("p", { class: "empty" }, "No process hosts workers.")
    : h(
      "table",
      { class: "table", "data-testid": "workers-table" },
      thead(
        h("th", null, "Name and process"),
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
        [...workers].sort((a, b) => a.name.localeCompare(b.name) || a.process.localeCompare(b.process)).map((w) =>
          h(
            "tr",
            { "data-testid": `worker-${w.name}`, "data-state": w.state, "data-process": w.process },
            h(
              "th",
              { scope: "row" },
              w.name,
              h(
                "div",
                { class: "muted small", title: w.process, "data-testid": "worker-process" },
                `${w.host} · pid ${w.pid}${w.local ? " (this one)" : ""}`
              )
            ),
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
      h(
        "p",
        { class: "muted small" },
        "The workers of every process with the job tables, as each reports them every 5 s (this one's as they are now)."
      ),
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

export const processesPage = (root) =>
  livePage(root, {
    title: "Processes",
    load: async () => {
      const [workers, runners] = await Promise.all([get("/api/workers"), get("/api/runners")])
      return { workers: Array.isArray(workers) ? workers : [], runners: Array.isArray(runners) ? runners : [] }
    },
    render: renderProcesses
  })
