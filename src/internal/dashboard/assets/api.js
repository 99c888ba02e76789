/* global document */
/** Calls to the dashboard's JSON API, under the base path the server mounted it at. */

/** What the server said of this session, read once at start. */
export const session = { readOnly: false, protected: false }

export class ApiError extends Error {
  constructor(status, tag, message) {
    super(message)
    this.status = status
    this.tag = tag
  }
}

const defaultMessages = {
  400: "the request is not valid",
  401: "sign in to use the dashboard",
  403: "not allowed",
  404: "not found",
  409: "not possible in the job's current state",
  503: "the database is unavailable"
}

// Some errors come with their fields only, without a message.
const describeError = (data) => {
  if (!data || typeof data !== "object") return undefined
  const id = typeof data.id === "string" ? data.id : undefined
  switch (data._tag) {
    case "InvalidJobState":
      return `cannot ${data.action} job ${id}: it is ${data.state}`
    case "JobNotFound":
      return `no job with id ${id}`
    case "RecurringNotFound":
      return `no recurring definition with id "${id}"`
    default:
      return undefined
  }
}

/** Where the server mounted the dashboard ("" at the root, else "/like/this"): every API path is under it. */
const base = document.querySelector("meta[name=\"effect-workers-base\"]")?.getAttribute("content") ?? ""

const request = async (method, path, body) => {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } }
  if (method === "POST") {
    init.headers["content-type"] = "application/json"
    // Required by the server on every POST, against cross-site requests.
    init.headers["x-effect-workers"] = "1"
    init.body = JSON.stringify(body ?? {})
  }
  let res
  try {
    res = await fetch(base + path, init)
  } catch {
    throw new ApiError(0, "NetworkError", "the dashboard server cannot be reached")
  }
  const text = await res.text()
  let data
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = undefined
    }
  }
  if (!res.ok) {
    const tag = data && typeof data._tag === "string" ? data._tag : `HTTP ${res.status}`
    const message = data && typeof data.message === "string" && data.message !== ""
      ? data.message
      : describeError(data) ?? defaultMessages[res.status] ?? (res.statusText || "request failed")
    throw new ApiError(res.status, tag, message)
  }
  return data
}

export const get = (path) => request("GET", path)
export const post = (path, body) => request("POST", path, body)

export const query = (params) => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ""
}

export const errorText = (error) => {
  if (error instanceof ApiError) {
    return `${error.tag}: ${error.message}`
  }
  return `Error: ${error && error.message ? error.message : String(error)}`
}
