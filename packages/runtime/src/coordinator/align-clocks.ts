import type { TraceSpan } from '@seqpar/core';
import type { ClockBracket } from '../worker/clock-sync.js';

export interface ClockAlignment {
  /** Added to rank r's span times to put them on the coordinator's clock (0 for a rank without a bracket). */
  readonly offsetsMs: number[];
  /** False when no offsets inside the brackets keep every hop causal (clocks drifted): bracket midpoints are used. */
  readonly causal: boolean;
}

/** x[to] - x[from] <= weight */
interface Constraint {
  readonly from: number;
  readonly to: number;
  readonly weight: number;
}

/**
 * Offsets that put every rank's spans on the coordinator's clock with no hop going back in time. The unknowns are
 * the deltas x_r (rank r's clock minus the coordinator's, whose own x is 0); every fact is a difference bound:
 *
 *   lowMs_r <= x_r <= highMs_r                  the clock bracket measured by ping (clock-sync.ts)
 *   x_B - x_A <= recvEnd_B - sendStart_A        hop A -> B: the frame arrived after it left
 *
 * The true deltas satisfy all of them, so the set is not empty. A set of difference bounds is closed under
 * componentwise max and min and is convex, so its greatest point (shortest paths from the coordinator's node,
 * Bellman-Ford) and its least point (shortest paths to it) belong to it, and so does their midpoint: the answer.
 * Where no hop binds it is each bracket's midpoint, NTP's estimate; a binding hop narrows the bracket further.
 */
export function alignClocks(spansByRank: ReadonlyArray<readonly TraceSpan[]>, brackets: ReadonlyArray<ClockBracket | undefined>): ClockAlignment {
  const n = spansByRank.length;
  const known = (rank: number) => brackets[rank] !== undefined;
  const constraints: Constraint[] = [];
  for (let rank = 0; rank < n; rank++) {
    const bracket = brackets[rank];
    if (!bracket) continue;
    constraints.push({ from: n, to: rank, weight: bracket.highMs }, { from: rank, to: n, weight: -bracket.lowMs });
  }
  for (const hop of hops(spansByRank)) {
    if (hop.from !== hop.to && known(hop.from) && known(hop.to)) constraints.push({ from: hop.from, to: hop.to, weight: hop.recvEndMs - hop.sendStartMs });
  }
  const greatest = shortestPaths(n + 1, n, constraints);
  const least = shortestPaths(
    n + 1,
    n,
    constraints.map(({ from, to, weight }) => ({ from: to, to: from, weight })),
  );
  const causal = greatest !== undefined && least !== undefined;
  const offsetsMs = Array.from({ length: n }, (_, rank) => {
    const bracket = brackets[rank];
    if (!bracket) return 0;
    const delta = causal ? (greatest[rank]! - least[rank]!) / 2 : (bracket.lowMs + bracket.highMs) / 2;
    return -delta;
  });
  return { offsetsMs, causal };
}

/** Rank r's spans moved by `offsetMs` onto another clock. */
export function shiftSpans(spans: readonly TraceSpan[], offsetMs: number): TraceSpan[] {
  return spans.map((span) => ({ ...span, startMs: span.startMs + offsetMs }));
}

/** Each flow id's send start and receive end, where both were recorded (a send's own clock, a receive's own). */
export function hops(spansByRank: ReadonlyArray<readonly TraceSpan[]>): { from: number; to: number; sendStartMs: number; recvEndMs: number }[] {
  const sends = new Map<string, { rank: number; startMs: number }>();
  spansByRank.forEach((spans, rank) => {
    for (const span of spans) if (span.track === 'send' && span.flowId !== undefined) sends.set(span.flowId, { rank, startMs: span.startMs });
  });
  return spansByRank.flatMap((spans, rank) =>
    spans.flatMap((span) => {
      const send = span.track === 'recv' && span.flowId !== undefined ? sends.get(span.flowId) : undefined;
      return send ? [{ from: send.rank, to: rank, sendStartMs: send.startMs, recvEndMs: span.startMs + span.durationMs }] : [];
    }),
  );
}

/** Bellman-Ford distances from `source`; undefined when a negative cycle makes the bounds contradictory. */
function shortestPaths(nodes: number, source: number, constraints: readonly Constraint[]): number[] | undefined {
  const dist = new Array<number>(nodes).fill(Infinity);
  dist[source] = 0;
  for (let round = 0; round < nodes; round++) {
    let changed = false;
    for (const { from, to, weight } of constraints) {
      if (dist[from]! + weight < dist[to]!) {
        dist[to] = dist[from]! + weight;
        changed = true;
      }
    }
    if (!changed) return dist;
  }
  return undefined;
}
