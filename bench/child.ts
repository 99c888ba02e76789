import { spawn } from "node:child_process"

/**
 * Runs `script` in a child process with this process's flags (the tsx
 * loader) plus `flags`, and resolves with the JSON object it prints as its
 * last line of stdout. Lines it prints before go to stderr, indented, with
 * the reports' progress. Rejects, naming `what`, when it fails.
 */
export const runJsonChild = <A>(
  script: string,
  args: ReadonlyArray<string>,
  what: string,
  flags: ReadonlyArray<string> = []
): Promise<A> =>
  new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, ...flags, script, ...args], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    proc.stdout.setEncoding("utf8")
    proc.stdout.on("data", (chunk: string) => {
      out += chunk
    })
    proc.on("error", reject)
    proc.on("close", (code) => {
      const lines = out.trim().split("\n")
      const line = lines.at(-1) ?? ""
      for (const logged of lines.slice(0, -1)) process.stderr.write(`    ${logged}\n`)
      if (code !== 0 || !line.startsWith("{")) {
        reject(new Error(`${what} exited with code ${code}: ${out}`))
      } else {
        resolve(JSON.parse(line) as A)
      }
    })
  })
