/**
 * A Chromium, driven by playwright-core, for the dashboard's browser tests:
 * the one at `CHROMIUM_PATH` when it is set, otherwise Debian's
 * (`/usr/bin/chromium`). When that is missing and the tests run as root on
 * Debian, it is installed with apt-get (as `.ci/run` does), saying so in one
 * line; otherwise the tests fail saying how to install it or to set
 * `CHROMIUM_PATH`.
 */
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"

const debianChromium = "/usr/bin/chromium"

const commandOutput = (error: unknown) => {
  const { stderr, stdout } = error as { readonly stderr?: Buffer; readonly stdout?: Buffer }
  return `${stderr?.toString() ?? ""}${stdout?.toString() ?? ""}`.trim() || String(error)
}

const ensureChromium = Effect.sync(() => {
  const fromEnv = process.env.CHROMIUM_PATH
  if (fromEnv !== undefined && fromEnv !== "") {
    if (existsSync(fromEnv)) return fromEnv
    throw new Error(
      `CHROMIUM_PATH is "${fromEnv}", where there is no file: point it at a Chromium or Chrome executable`
    )
  }
  if (existsSync(debianChromium)) return debianChromium
  if (process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get")) {
    throw new Error(
      `The dashboard's browser tests need Chromium, and there is none at ${debianChromium}: install Debian's ` +
        `(apt-get install chromium), or set CHROMIUM_PATH to a Chromium or Chrome executable`
    )
  }
  // Written to stderr, which the test run shows even for tests that pass: this takes a minute or more.
  process.stderr.write(
    `Installing Debian's chromium with apt-get for the dashboard's browser tests (CHROMIUM_PATH chooses another)\n`
  )
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "pipe" })
    execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], {
      stdio: "pipe",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    })
  } catch (error) {
    throw new Error(
      `Installing chromium with apt-get failed (install it yourself, or set CHROMIUM_PATH): ${commandOutput(error)}`
    )
  }
  if (!existsSync(debianChromium)) {
    throw new Error(`apt-get installed chromium, but there is no ${debianChromium}: set CHROMIUM_PATH`)
  }
  return debianChromium
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
