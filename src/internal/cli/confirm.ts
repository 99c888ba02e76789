/**
 * The confirmation an action on jobs asks for, unless `--yes`. Without a
 * terminal on stdin nobody can answer: the command is refused instead of
 * hanging or guessing.
 */
import { Prompt } from "@effect/cli"
import type { Terminal } from "@effect/platform"
import { Effect } from "effect"
import { Declined, UsageError } from "./errors.js"

/** Asks `question` (default no); fails with `Declined` on no, or `UsageError` when it cannot ask. */
export const confirm = (
  question: string,
  action: string,
  yes: boolean
): Effect.Effect<void, Declined | UsageError, Terminal.Terminal> =>
  Effect.gen(function*() {
    if (yes) return
    if (process.stdin.isTTY !== true) {
      return yield* new UsageError({
        message: `Refusing to ${action} without confirmation: stdin is not a terminal, so nobody can answer. ` +
          "Pass --yes to confirm on the command line."
      })
    }
    const confirmed = yield* Prompt.confirm({ message: question, initial: false }).pipe(
      Effect.catchTag("QuitException", () => Effect.succeed(false))
    )
    if (!confirmed) return yield* new Declined({ action })
  })
