import { toChromeTrace, type TraceSpan } from '@seqpar/core';
import type { Projection } from './project.js';

/** The projection as a Chrome trace-event file (Perfetto): one pid per rank, compute/send/recv tracks, hop arrows. */
export function projectionTrace(projection: Projection, degree: number): ReturnType<typeof toChromeTrace> {
  const byRank: TraceSpan[][] = Array.from({ length: degree }, () => []);
  for (const span of projection.spans) {
    byRank[span.rank]!.push({
      name: span.name,
      track: span.track,
      startMs: span.startMs,
      durationMs: span.endMs - span.startMs,
      ...(span.message === undefined ? {} : { flowId: `m${span.message}` }),
    });
  }
  return toChromeTrace(byRank);
}
