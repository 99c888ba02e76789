/* global document */
/** What several pages share: the message area, action buttons, badges, time cells, links. */
import { errorText, post, query } from "./api.js"
import { append, dash, enc, h } from "./dom.js"
import { dateTimeFormat, fmtDate, fmtRelative, toDate } from "./format.js"

export const STATES = ["scheduled", "available", "running", "retryable", "completed", "discarded", "cancelled"]

// A date in local time with a relative hint that the ticker keeps current.
export const timeCell = (value, { relative = true } = {}) => {
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
export const relativeCell = (value) => {
  const d = toDate(value)
  if (!d) return dash()
  return h(
    "time",
    { datetime: d.toISOString(), title: dateTimeFormat.format(d), class: "rel-only", "data-rel": d.getTime() },
    fmtRelative(d)
  )
}

export const refreshRelativeTimes = () => {
  const now = Date.now()
  for (const el of document.querySelectorAll("[data-rel]")) {
    el.textContent = fmtRelative(new Date(Number(el.getAttribute("data-rel"))), now)
  }
}

export const stateBadge = (state, testid) =>
  h("span", { class: ["badge", `state-${state}`], "data-testid": testid }, state)

export const badge = (text, kind, testid) =>
  h("span", { class: ["badge", `badge-${kind}`], "data-testid": testid }, text)

// Message area

let messageTimer
let messageSource = null

/** Set by an action that navigates: its success message stays on the next page. */
let carryMessage = false

/** Called by an action before it navigates: its success message stays on the next page. */
export const carryMessageToNextPage = () => {
  carryMessage = true
}

// A success message is about the page it was shown on, unless the action itself moved on (a deleted job).
export const leavePage = () => {
  if (!carryMessage && document.getElementById("message").getAttribute("data-kind") === "success") clearMessage()
  carryMessage = false
}

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

export const clearMessage = () => {
  clearTimeout(messageTimer)
  const el = document.getElementById("message")
  el.replaceChildren()
  el.removeAttribute("data-kind")
  document.getElementById("message-bar").hidden = true
  messageSource = null
}

export const showError = (error, source = null) => showMessage("error", errorText(error), source)
const showSuccess = (content) => showMessage("success", content)

// Load errors clear themselves once loading works again; the outcome of an action stays.
export const clearLoadError = () => {
  if (messageSource === "load") clearMessage()
}

// Runs an action from a button: disables it meanwhile, reports the outcome, then calls
// `after(failed)`, which reloads: after a failure too, since the page may show a stale state.
export const runAction = async (button, perform, describe, after) => {
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

export const actionButton = (label, action, props, onClick) =>
  h("button", {
    type: "button",
    class: ["btn", "btn-sm", props.danger ? "btn-danger" : null],
    "data-action": action,
    ...props.attrs,
    on: { click: (event) => onClick(event.currentTarget) }
  }, label)

// Links

export const jobsHash = (filter = {}) =>
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

export const jobHash = (id) => `#/jobs/${enc(id)}`

export const jobLink = (id, text = id) => h("a", { href: jobHash(id), class: "mono" }, text)

/** Pause or Resume, for a queue or a recurring definition at `path`; `testId` names the button per action. */
export const pauseButton = (ctx, paused, path, what, testId) => {
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
