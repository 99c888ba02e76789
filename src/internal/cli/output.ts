/**
 * What the commands print: text tables for people, one JSON document for
 * scripts (`--json`). Results go to stdout; errors, logs and prompts to
 * stderr, so that stdout stays parseable.
 */
import { Console, Effect } from "effect"

/** Prints `value` as one JSON document. */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value, null, 2))

/** Control characters would let a stored value move the cursor or recolour the terminal: shown escaped. */
const printable = (text: string) =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** Prints lines of text, each on one line, whatever the values in it hold. */
export const printLines = (lines: ReadonlyArray<string>): Effect.Effect<void> =>
  lines.length === 0 ? Effect.void : Console.log(lines.map(printable).join("\n"))

/** A table with a header row, columns padded to their widest cell. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
): ReadonlyArray<string> => {
  const cells = rows.map((row) => row.map(printable))
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  ").trimEnd()
  return [line(headers), ...cells.map(line)]
}

/** `key: value` lines, keys aligned. */
export const fields = (entries: ReadonlyArray<readonly [string, string]>): ReadonlyArray<string> => {
  const width = Math.max(...entries.map(([key]) => key.length)) + 1
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width)} ${printable(value)}`)
}

/** A time to the second, in UTC: `2026-05-01 12:00:00Z`. */
export const time = (date: Date): string => date.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z")

/** A length of time for people: `45s`, `12m 5s`, `3h 20m`, `2d 4h`. */
export const age = (millis: number): string => {
  const seconds = Math.max(0, Math.floor(millis / 1000))
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return `${hours}h ${minutes % 60}m`
  return `${Math.floor(hours / 24)}d ${hours % 24}h`
}

/** How a filter reads in a message: `queue="email" state="discarded"`. */
export const describeFilter = (filter: object): string =>
  Object.entries(filter).filter(([, value]) => value !== undefined).map(([key, value]) =>
    `${key}=${JSON.stringify(value)}`
  ).join(" ")
