import { Effect } from "effect"
import { request as httpRequest } from "node:http"

export interface Answer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly text: string
  readonly json: () => any
}

/** One HTTP request over a real socket to 127.0.0.1, with exactly the headers given (Host included). */
export const send = (
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {}
): Effect.Effect<Answer> =>
  Effect.async((resume) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers ?? {} },
      (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk) => (text += chunk))
        res.on("end", () =>
          resume(Effect.succeed({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text)
          })))
      }
    )
    req.on("error", (error) => resume(Effect.die(error)))
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

/** A dashboard action: a JSON POST with the header the dashboard asks of actions. */
export const post = (port: number, path: string, body: unknown = {}, headers: Record<string, string> = {}) =>
  send(port, path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-effect-workers": "1", ...headers },
    body: JSON.stringify(body)
  })
