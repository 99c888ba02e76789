/** Numbers, dates, durations and JSON as text. */

const numberFormat = new Intl.NumberFormat("en-US")
export const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit"
})
export const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
export const minuteFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" })

export const fmtNumber = (n) => (typeof n === "number" && Number.isFinite(n) ? numberFormat.format(n) : "—")

export const plural = (n, one, many = `${one}s`) => `${fmtNumber(n)} ${n === 1 ? one : many}`

// ISO strings and epoch millis alike.
export const toDate = (value) => {
  if (value === null || value === undefined || value === "") return null
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? null : d
}

const sameDay = (a, b) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate()

export const fmtDate = (d) => (sameDay(d, new Date()) ? timeFormat.format(d) : dateTimeFormat.format(d))

const fmtSpan = (ms) => {
  const sec = Math.floor(ms / 1000)
  if (sec < 60) return `${sec} s`
  const min = Math.floor(sec / 60)
  if (min < 60) return `${min} min`
  const hours = Math.floor(min / 60)
  if (hours < 48) return `${hours} h`
  return `${Math.floor(hours / 24)} d`
}

export const fmtRelative = (d, now = Date.now()) => {
  const diff = d.getTime() - now
  if (Math.abs(diff) < 1000) return "now"
  return diff < 0 ? `${fmtSpan(-diff)} ago` : `in ${fmtSpan(diff)}`
}

export const fmtDuration = (ms) => {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—"
  if (ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  const sec = Math.floor(ms / 1000)
  if (sec < 60) return `${sec} s`
  const min = Math.floor(sec / 60)
  if (min < 60) return sec % 60 ? `${min} min ${sec % 60} s` : `${min} min`
  const hours = Math.floor(min / 60)
  if (hours < 24) return min % 60 ? `${hours} h ${min % 60} min` : `${hours} h`
  const days = Math.floor(hours / 24)
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`
}

export const fmtEvery = (ms) => {
  const units = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [1000, "s"]]
  for (const [size, unit] of units) {
    if (ms >= size && ms % size === 0) return `every ${fmtNumber(ms / size)} ${unit}`
  }
  return ms < 1000 ? `every ${fmtNumber(ms)} ms` : `every ${fmtDuration(ms)}`
}

export const pretty = (value) => {
  if (value === undefined) return "undefined"
  try {
    return JSON.stringify(value, null, 2)
  } catch {
    return String(value)
  }
}

export const preview = (value, max = 90) => {
  if (value === undefined || value === null) return ""
  let text
  try {
    text = JSON.stringify(value)
  } catch {
    text = String(value)
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
