import type { TraceSpan } from './rank-recorder.js';

/** Chrome trace-event format (what Perfetto and chrome://tracing open): one pid per rank, one tid per track. */
export interface ChromeTraceEvent {
  name: string;
  ph: 'X' | 's' | 'f' | 'M';
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  id?: number;
  cat?: string;
  bp?: 'e';
  args?: Record<string, unknown>;
}

const TRACK_IDS = { compute: 1, send: 2, recv: 3 } as const;

/**
 * Merges the spans of every rank into one trace. `clockOffsetsMs[rank]` is added to that rank's times to correct
 * for clock differences between processes; the runtime's spans arrive already on the coordinator's clock, with
 * offsets chosen so that no hop runs backwards (runtime align-clocks.ts). Flow arrows join each send's start to
 * the end of its receive.
 */
export function toChromeTrace(
  spansByRank: ReadonlyArray<readonly TraceSpan[]>,
  clockOffsetsMs: readonly number[] = [],
): { traceEvents: ChromeTraceEvent[]; displayTimeUnit: 'ms' } {
  const events: ChromeTraceEvent[] = [];
  const flowIds = new Map<string, number>();
  const origin = Math.min(...spansByRank.flatMap((spans, rank) => spans.map((s) => s.startMs + (clockOffsetsMs[rank] ?? 0))));
  spansByRank.forEach((spans, rank) => {
    events.push({ name: 'process_name', ph: 'M', pid: rank, tid: 0, ts: 0, args: { name: `rank ${rank}` } });
    for (const [track, tid] of Object.entries(TRACK_IDS)) {
      events.push({ name: 'thread_name', ph: 'M', pid: rank, tid, ts: 0, args: { name: track } });
    }
    for (const span of spans) {
      const tid = TRACK_IDS[span.track];
      const ts = (span.startMs + (clockOffsetsMs[rank] ?? 0) - origin) * 1000;
      events.push({ name: span.name, ph: 'X', pid: rank, tid, ts, dur: span.durationMs * 1000, ...(span.args ? { args: span.args } : {}) });
      if (span.flowId === undefined) continue;
      if (!flowIds.has(span.flowId)) flowIds.set(span.flowId, flowIds.size + 1);
      const id = flowIds.get(span.flowId)!;
      // A flow starts inside the send slice and ends inside the receive slice that it enters.
      if (span.track === 'send') events.push({ name: 'hop', cat: 'hop', ph: 's', id, pid: rank, tid, ts });
      else events.push({ name: 'hop', cat: 'hop', ph: 'f', bp: 'e', id, pid: rank, tid, ts: ts + span.durationMs * 1000 });
    }
  });
  return { traceEvents: events, displayTimeUnit: 'ms' };
}
