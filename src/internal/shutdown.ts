import { Context } from "effect"

/**
 * When the host's shutdown must be over, for parts that bound their own
 * stopping (the job runner's drain) so that they finish what matters, such
 * as giving unfinished jobs back, before the host gives up on them.
 */
export class ShutdownDeadline extends Context.Tag("effect-workers/internal/ShutdownDeadline")<ShutdownDeadline, {
  /** Epoch milliseconds by which shutdown must be over; `undefined` until it begins. */
  readonly get: () => number | undefined
}>() {}
