/* global document, Node */
/**
 * Building DOM nodes. Every value is set as text (text nodes, `setAttribute`),
 * never parsed as HTML.
 */

const SVG_NS = "http://www.w3.org/2000/svg"

export const append = (parent, children) => {
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

export const h = (tag, props, ...children) => {
  const el = document.createElement(tag)
  setProps(el, props)
  return append(el, children)
}

export const s = (tag, props, ...children) => {
  const el = document.createElementNS(SVG_NS, tag)
  setProps(el, props)
  return append(el, children)
}

export const enc = encodeURIComponent

export const dash = () => h("span", { class: "muted" }, "—")

/** A table's header row. */
export const thead = (...cells) => h("thead", null, h("tr", null, ...cells))
