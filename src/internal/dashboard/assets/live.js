/* global document, window */
/** The refresh loop: a page reloads its data every few seconds while the tab is visible. */
import { append, h } from "./dom.js"
import { timeFormat } from "./format.js"
import { clearLoadError, refreshRelativeTimes, showError } from "./ui.js"

export const REFRESH_MS = 5000

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

export const pageRoot = (name) => h("section", { class: "page", "data-testid": `page-${name}` })

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

/**
 * A page whose body is rebuilt from `load()` when the data changed. `top` nodes
 * stay in place across refreshes (filter forms keep what is typed in them).
 */

export const livePage = (root, { title, subtitle, top = [], load, render, onError }) => {
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
