/**
 * `npm run bench [-- suite...]`: installs bench/'s own dependencies when they
 * are missing or out of date, then runs the suites one after the other. Each
 * suite prints a report and, as its last line, a JSON object of its figures;
 * this prints the reports and, as the very last line, all figures merged.
 */
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const benchDir = fileURLToPath(new URL(".", import.meta.url))
const suites = {
  workers: "workers.ts",
  jobs: "jobs.ts",
  recurring: "recurring.ts",
  faults: "faults.ts",
  flow: "flow.ts",
  dashboard: "dashboard.ts"
}

const requested = process.argv.slice(2)
const unknown = requested.filter((name) => !Object.hasOwn(suites, name))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(", ")}; available: ${Object.keys(suites).join(", ")}`)
  process.exit(2)
}
const selected = requested.length > 0 ? requested : Object.keys(suites)

const digest = () => {
  const hash = createHash("sha256")
  for (const file of ["package.json", "package-lock.json"]) {
    const path = join(benchDir, file)
    if (existsSync(path)) hash.update(readFileSync(path))
  }
  return hash.digest("hex")
}

// A stamp of package.json and the lockfile, written after a successful install, tells whether node_modules is current.
const ensureDependencies = () => {
  const stamp = join(benchDir, "node_modules", ".bench-installed")
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest()) return
  console.error("installing bench/ dependencies")
  // Under `npm run`, npm_execpath is the npm that runs us; use the same one.
  const npm = process.env.npm_execpath
  const [command, prefix] = npm !== undefined && npm.endsWith(".js")
    ? [process.execPath, [npm]]
    : [process.platform === "win32" ? "npm.cmd" : "npm", []]
  // npm's output goes to stderr so stdout stays the reports and the JSON.
  const result = spawnSync(command, [...prefix, "--prefix", benchDir, "install", "--no-audit", "--no-fund"], {
    stdio: ["ignore", 2, 2]
  })
  if (result.status !== 0) {
    console.error("installing bench/ dependencies failed")
    process.exit(1)
  }
  // The install may have updated the lockfile: stamp what is there now.
  writeFileSync(stamp, digest())
}

const resolveTsx = () => {
  try {
    return import.meta.resolve("tsx")
  } catch {
    console.error("tsx is not installed: run `npm install` at the root of the repository first")
    process.exit(1)
  }
}

/** Runs one suite, passing its report through; returns its exit code and the figures of its last line. */
const runSuite = async (file, tsx) => {
  const proc = spawn(process.execPath, ["--import", tsx, join(benchDir, file)], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const exited = new Promise((resolve, reject) => {
    proc.on("error", reject)
    proc.on("close", resolve)
  })
  // Hold each line back by one, so the last (the figures) is not printed here.
  let last
  for await (const line of createInterface({ input: proc.stdout })) {
    if (last !== undefined) console.log(last)
    last = line
  }
  const code = await exited
  try {
    return { code, figures: JSON.parse(last ?? "") }
  } catch {
    if (last !== undefined) console.log(last)
    return { code: code === 0 ? 1 : code, figures: {} }
  }
}

ensureDependencies()
const tsx = resolveTsx()
const figures = {}
let failed = false
for (const name of selected) {
  const { code, figures: suiteFigures } = await runSuite(suites[name], tsx)
  Object.assign(figures, suiteFigures)
  if (code !== 0) {
    console.error(`suite ${name} exited with code ${code}`)
    failed = true
  }
}
console.log(JSON.stringify(figures))
process.exitCode = failed ? 1 : 0
