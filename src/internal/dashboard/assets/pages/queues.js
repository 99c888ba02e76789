/** Queues (#/queues): depth, wait and concurrency per queue; pause and resume. */
import { get, session } from "../api.js"
import { dash, enc, h, thead } from "../dom.js"
import { fmtDuration, fmtNumber } from "../format.js"
import { livePage } from "../live.js"
import { badge, jobsHash, pauseButton } from "../ui.js"

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

export const queuesPage = (root) =>
  livePage(root, {
    title: "Queues",
    subtitle: "A paused queue keeps its jobs; runners claim none of them until it is resumed.",
    load: () => get("/api/queues"),
    render: renderQueues
  })
