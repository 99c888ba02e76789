import { Tracer } from "effect"

export interface EndedSpan {
  readonly name: string
  readonly spanId: string
  readonly attributes: ReadonlyMap<string, unknown>
  /** Span ids of its links. */
  readonly links: ReadonlyArray<string>
  readonly exit: string
}

/** A tracer that keeps every ended span in `ended`, as an exporter would receive them. */
export const recordingTracer = (): { readonly tracer: Tracer.Tracer; readonly ended: Array<EndedSpan> } => {
  const ended: Array<EndedSpan> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, _startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const spanId = `span-${++ids}`
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime: 0n },
        attributes,
        links,
        sampled: true,
        kind,
        end: (_endTime, exit) =>
          void ended.push({ name, spanId, attributes, links: links.map((link) => link.span.spanId), exit: exit._tag }),
        attribute: (key, value) => void attributes.set(key, value),
        event: () => undefined,
        addLinks: () => undefined
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, ended }
}
