/** What the workers suite runs, shared by its parent and child processes. */

export const impls = [
  "effect-workers",
  "effect-workers-labelled",
  "effect-workers-layers",
  "effect-repeat",
  "setinterval",
  "croner"
] as const
export type Impl = (typeof impls)[number]

export const labels: Record<Impl, string> = {
  "effect-workers": "effect-workers (mergeAll, \"1 second\", one label)",
  "effect-workers-labelled": "effect-workers (mergeAll, \"1 second\")",
  "effect-workers-layers": "effect-workers (Layer.mergeAll, spaced)",
  "effect-repeat": "Effect.repeat fiber each",
  setinterval: "setInterval",
  croner: "croner"
}

/** What one child process reports. */
export interface ChildResult {
  readonly impl: Impl
  readonly workers: number
  /** CPU time (user + system) over the window, as % of one core. */
  readonly cpuPct: number
  /** CPU time over the window divided by the runs in it. */
  readonly cpuMicrosPerRun: number
  /** Heap retained after full GC, less the heap before the tasks started, per task. */
  readonly heapBytesPerWorker: number
  /** Task runs counted in the window. */
  readonly fired: number
  /** One run per task per second of the window. */
  readonly expected: number
  /** Time to create and schedule every task. */
  readonly setupMs: number
}
