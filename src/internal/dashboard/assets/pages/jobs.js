/* global location, window */
/** Jobs (#/jobs): the filtered list, row actions and bulk actions. */
import { ApiError, get, post, query, session } from "../api.js"
import { enc, h, thead } from "../dom.js"
import { fmtNumber, plural, preview } from "../format.js"
import { livePage } from "../live.js"
import { actionButton, jobHash, jobLink, jobsHash, runAction, stateBadge, STATES, timeCell } from "../ui.js"

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

export const jobActionButtons = (job, after) => {
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

export const jobsPage = (root, params) => {
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
