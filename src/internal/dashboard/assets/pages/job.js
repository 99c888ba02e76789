/* global location */
/** Job detail (#/jobs/<id>): every field, the payload, the result and the failed attempts. */
import { ApiError, get, session } from "../api.js"
import { dash, enc, h } from "../dom.js"
import { fmtDuration, fmtNumber, pretty, toDate } from "../format.js"
import { livePage } from "../live.js"
import { carryMessageToNextPage, jobsHash, stateBadge, timeCell } from "../ui.js"
import { jobActionButtons } from "./jobs.js"

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
      carryMessageToNextPage()
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

export const jobPage = (root, id) =>
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
