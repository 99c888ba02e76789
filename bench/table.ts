/** Plain-text tables for the suites' reports. */

export type Row = ReadonlyArray<string>
export type Align = "left" | "right"

export const formatTable = (header: Row, rows: ReadonlyArray<Row>, align: ReadonlyArray<Align>): string => {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)))
  const line = (row: Row) =>
    row.map((cell, i) => (align[i] === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ")
      .trimEnd()
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}
