// Checks that the code quoted in the documentation is identical to the compiled
// example files it comes from. A quote is marked in Markdown as
//
//   <!-- snippet: examples/file.ts#region -->
//   ```ts
//   ...
//   ```
//
// where the path is relative to the Markdown file, and `#region` (optional)
// names a `// #region name` ... `// #endregion` block of that file, quoted
// without its common indentation; `#imports+name` quotes two regions, one
// after the other with a blank line between (the first quote of a file in a
// page shows its imports so).
// Run by `npm run lint`.
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const markdownFiles = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return markdownFiles(full)
    return entry.name.endsWith(".md") ? [full] : []
  })

const regionOf = (file, name) => {
  const lines = readFileSync(file, "utf8").split("\n")
  if (name === undefined) return lines.join("\n").trimEnd()
  const start = lines.findIndex((line) => line.trim() === `// #region ${name}`)
  if (start < 0) throw new Error(`no region "${name}" in ${path.relative(root, file)}`)
  const end = lines.findIndex((line, i) => i > start && line.trim() === "// #endregion")
  if (end < 0) throw new Error(`region "${name}" in ${path.relative(root, file)} has no end`)
  return dedent(lines.slice(start + 1, end)).join("\n").trimEnd()
}

// A region inside a block is quoted without the block's indentation.
const dedent = (lines) => {
  const indents = lines.filter((line) => line.trim() !== "").map((line) => /^ */.exec(line)[0].length)
  const common = indents.length === 0 ? 0 : Math.min(...indents)
  return lines.map((line) => line.slice(common))
}

const marker = /^<!-- snippet: ([^#\s]+)(?:#(\S+))? -->$/
const problems = []
let checked = 0

for (const doc of [path.join(root, "README.md"), ...markdownFiles(path.join(root, "docs"))]) {
  const lines = readFileSync(doc, "utf8").split("\n")
  lines.forEach((line, i) => {
    const match = marker.exec(line.trim())
    if (match === null) return
    const where = `${path.relative(root, doc)}:${i + 1}`
    if (!/^```/.test(lines[i + 1] ?? "")) {
      problems.push(`${where}: a snippet marker must be followed by a code block`)
      return
    }
    const close = lines.findIndex((l, j) => j > i + 1 && l.startsWith("```"))
    if (close < 0) {
      problems.push(`${where}: unclosed code block`)
      return
    }
    const quoted = lines.slice(i + 2, close).join("\n").trimEnd()
    try {
      const file = path.resolve(path.dirname(doc), match[1])
      const source = match[2] === undefined
        ? regionOf(file, undefined)
        : match[2].split("+").map((name) => regionOf(file, name)).join("\n\n")
      if (quoted !== source) {
        problems.push(`${where}: the quote differs from ${match[1]}${match[2] ? `#${match[2]}` : ""}`)
      }
      checked++
    } catch (error) {
      problems.push(`${where}: ${error.message}`)
    }
  })
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem)
  process.exit(1)
}
console.log(`${checked} documentation snippets match their example files`)
