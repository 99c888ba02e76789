// Builds the package into dist/: the compiled modules with their
// declarations and maps, and beside them the files the code reads at run
// time (the SQL migrations, the dashboard's page and assets).
//
//   node scripts/build.mjs                a clean build (`npm run build`, and before `npm pack`)
//   node scripts/build.mjs --incremental  only what changed since the last build (the tests' global setup)
import { execFileSync } from "node:child_process"
import { chmodSync, cpSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(root, "dist")
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
const incremental = process.argv.includes("--incremental")

if (!incremental) rmSync(dist, { recursive: true, force: true })
// The build info lives in dist/, so that deleting dist/ also forgets what was built.
const flags = incremental ? ["--incremental", "--tsBuildInfoFile", path.join(dist, ".tsbuildinfo")] : []
execFileSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json"), ...flags], { stdio: "inherit" })
for (const dir of ["migrations", "internal/dashboard/assets"]) {
  const target = path.join(dist, dir)
  rmSync(target, { recursive: true, force: true })
  cpSync(path.join(root, "src", dir), target, { recursive: true })
}
chmodSync(path.join(dist, "bin.js"), 0o755)
