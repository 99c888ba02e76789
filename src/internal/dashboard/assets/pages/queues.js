/** Queues (#/queues): depth, wait and concurrency per queue; pause and resume; flow-control limits. */
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

const none = () => h("span", { class: "muted" }, "none")

const limit = (n) => (n === null ? none() : fmtNumber(n))

const rate = (r) => (r ? `${fmtNumber(r.limit)} per ${fmtDuration(r.periodMillis)}` : none())

/** Due jobs a limit holds back; a dash where the queue has no such limit. */
const held = (set, count) => (set ? h("span", { class: count > 0 ? "warn" : null }, fmtNumber(count)) : dash())

const sourceBadge = (source) =>
  source === "api"
    ? h("span", { class: "badge badge-api", title: "Set with JobClient.setLimits: kept until resetLimits" }, "api")
    : h("span", { class: "badge badge-code", title: "From the options of the runners of this queue" }, "code")

const renderKeys = (f) => {
  const keyRate = f.limits.keyRateLimit !== null
  return h(
    "table",
    { class: "table", "data-testid": `flow-keys-${f.queue}` },
    thead(
      h("th", null, "Partition key"),
      h("th", { class: "num" }, "Running"),
      h("th", { class: "num" }, "Waiting"),
      keyRate ? h("th", { class: "num", title: "Starts in the key's current rate window" }, "Started") : null,
      h("th", null, "")
    ),
    h(
      "tbody",
      null,
      f.keys.map((k) =>
        h(
          "tr",
          { "data-testid": `flow-key-${f.queue}-${k.key}`, "data-held": String(Boolean(k.held)) },
          h("th", { scope: "row", class: "mono" }, k.key === "" ? h("span", { class: "muted" }, "(no key)") : k.key),
          h("td", { class: "num" }, fmtNumber(k.running)),
          h("td", { class: "num" }, fmtNumber(k.waiting)),
          keyRate ? h("td", { class: "num" }, fmtNumber(k.started)) : null,
          h("td", null, k.held ? badge("held", "paused", `flow-key-held-${f.queue}-${k.key}`) : null)
        )
      )
    )
  )
}

/** One queue with limits: the limits, what runs, and the due jobs each limit holds back now. */
const flowCard = (f) => {
  const l = f.limits
  const field = (label, testid, value) => [h("dt", null, label), h("dd", { "data-testid": testid }, value)]
  const keyed = l.keyConcurrency !== null || l.keyRateLimit !== null
  return h(
    "section",
    { class: "card section", "data-testid": `flow-${f.queue}`, "data-source": l.source ?? "" },
    h(
      "div",
      { class: "section-head" },
      h("h2", null, h("a", { href: jobsHash({ queue: f.queue }) }, f.queue)),
      sourceBadge(l.source)
    ),
    h(
      "dl",
      { class: "fields" },
      field("Global concurrency", `limit-${f.queue}-globalConcurrency`, limit(l.globalConcurrency)),
      field("Per-key concurrency", `limit-${f.queue}-keyConcurrency`, limit(l.keyConcurrency)),
      field("Rate limit", `limit-${f.queue}-rateLimit`, rate(l.rateLimit)),
      field("Per-key rate limit", `limit-${f.queue}-keyRateLimit`, rate(l.keyRateLimit)),
      field("Fair", `limit-${f.queue}-fair`, l.fair ? "yes: keys take turns" : "no"),
      field("Running", `flow-running-${f.queue}`, fmtNumber(f.running)),
      field("Waiting (due)", `flow-waiting-${f.queue}`, fmtNumber(f.waiting)),
      l.rateLimit ? field("Started in the window", `flow-started-${f.queue}`, fmtNumber(f.started)) : null,
      field(
        "Held by global concurrency",
        `held-${f.queue}-global`,
        held(l.globalConcurrency !== null, f.heldByGlobalConcurrency)
      ),
      field(
        "Held by the rate limit",
        `held-${f.queue}-rate`,
        held(l.rateLimit !== null, f.heldByRateLimit)
      ),
      field(
        "Held by per-key limits",
        `held-${f.queue}-keys`,
        held(keyed, f.heldByKeyLimits)
      )
    ),
    f.keys.length === 0
      ? null
      : [
        h("h3", { class: "small muted" }, "Busiest keys, most running first"),
        h("div", { class: "scroll" }, renderKeys(f))
      ]
  )
}

const renderFlow = (flows) =>
  h(
    "section",
    { class: "section", "data-testid": "flow" },
    h(
      "div",
      { class: "section-head" },
      h("h2", null, "Flow control"),
      h("p", { class: "summary" }, "Limits over every runner; a due job a limit holds back waits for its next claim.")
    ),
    flows.length === 0
      ? h("p", { class: "empty card", "data-testid": "flow-none" }, "No queue has flow-control limits.")
      : h(
        "div",
        { class: "grid-2" },
        [...flows].sort((a, b) => a.queue.localeCompare(b.queue)).map(flowCard)
      )
  )

export const queuesPage = (root) =>
  livePage(root, {
    title: "Queues",
    subtitle: "A paused queue keeps its jobs; runners claim none of them until it is resumed.",
    load: async () => {
      const [queues, flows] = await Promise.all([get("/api/queues"), get("/api/flow")])
      return { queues, flows: Array.isArray(flows) ? flows : [] }
    },
    render: ({ queues, flows }, ctx) => [renderQueues(queues, ctx), queues.length ? renderFlow(flows) : null]
  })
