/**
 * Debian's Chromium, driven by playwright-core, for the dashboard's browser
 * tests. `CHROMIUM_PATH` points elsewhere; when Chromium is missing and the
 * tests run as root on Debian, it is installed with apt-get (as `.ci/run`
 * does), otherwise the tests fail saying how to install it.
 */
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"

const executable = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

const ensureChromium = Effect.sync(() => {
  if (existsSync(executable)) return executable
  if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" })
    execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    })
  }
  if (!existsSync(executable)) {
    throw new Error(
      `no Chromium at ${executable}: install Debian's chromium (apt-get install chromium), ` +
        `or set CHROMIUM_PATH`
    )
  }
  return executable
})

/** A headless Chromium for the rest of the scope. */
export const launch: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.flatMap(ensureChromium, (executablePath) =>
    Effect.promise(() =>
      chromium.launch({
        executablePath,
        headless: true,
        // Root (as in CI containers) cannot use Chromium's sandbox.
        args: process.getuid?.() === 0 ? ["--no-sandbox"] : []
      })
    )),
  (browser) => Effect.promise(() => browser.close())
)

/** Where screenshots go, kept after the run as test artifacts. */
export const artifactsDir = new URL("../../test-artifacts/", import.meta.url)
