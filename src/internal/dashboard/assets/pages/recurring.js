/** Recurring (#/recurring): the definitions, their schedules and last runs; trigger, pause, resume. */
import { get, post, session } from "../api.js"
import { dash, enc, h, thead } from "../dom.js"
import { fmtEvery, fmtNumber, preview } from "../format.js"
import { livePage } from "../live.js"
import { actionButton, badge, jobLink, jobsHash, pauseButton, runAction, stateBadge, timeCell } from "../ui.js"

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

export const recurringPage = (root) =>
  livePage(root, {
    title: "Recurring jobs",
    load: () => get("/api/recurring"),
    render: renderRecurring
  })
