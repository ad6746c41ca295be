import type { TraceSpan } from '@seqpar/core';
import { describe, expect, it } from 'vitest';
import { alignClocks, hops, shiftSpans } from '../src/coordinator/align-clocks.js';

const send = (flowId: string, startMs: number): TraceSpan => ({ name: 'send', track: 'send', startMs, durationMs: 0.1, flowId });
const recv = (flowId: string, startMs: number, endMs: number): TraceSpan => ({ name: 'recv', track: 'recv', startMs, durationMs: endMs - startMs, flowId });

describe('alignClocks', () => {
  it('without binding hops, shifts each rank by the midpoint of its bracket', () => {
    const { offsetsMs, causal } = alignClocks(
      [[], []],
      [
        { lowMs: 999, highMs: 1001 },
        { lowMs: -502, highMs: -498 },
      ],
    );
    expect(causal).toBe(true);
    expect(offsetsMs[0]).toBeCloseTo(-1000, 9);
    expect(offsetsMs[1]).toBeCloseTo(500, 9);
  });

  it('narrows brackets with hops so that no hop goes back in time', () => {
    // True clocks: rank 0 = coordinator + 1000, rank 1 = coordinator - 500. A frame left rank 0 at coordinator
    // time 10 and arrived at rank 1 at 10.05; another left rank 1 at 20 and arrived at rank 0 at 20.05.
    const spans = [
      [send('a', 1010), recv('b', 1015, 1020.05)],
      [recv('a', -495, -489.95), send('b', -480)],
    ];
    // Brackets as wide as a 2 ms round trip, centred 0.4 ms off the truth: the midpoints alone break hop a.
    const brackets = [
      { lowMs: 999.4, highMs: 1001.4 },
      { lowMs: -501.4, highMs: -499.4 },
    ];
    const midpoints = brackets.map((b) => -(b.lowMs + b.highMs) / 2);
    const before = hops(spans.map((s, rank) => shiftSpans(s, midpoints[rank]!)));
    expect(before.some((hop) => hop.recvEndMs < hop.sendStartMs)).toBe(true);

    const { offsetsMs, causal } = alignClocks(spans, brackets);
    expect(causal).toBe(true);
    const after = hops(spans.map((s, rank) => shiftSpans(s, offsetsMs[rank]!)));
    expect(after).toHaveLength(2);
    for (const hop of after) expect(hop.recvEndMs).toBeGreaterThanOrEqual(hop.sendStartMs - 1e-9);
    offsetsMs.forEach((offset, rank) => expect(-offset).toBeGreaterThanOrEqual(brackets[rank]!.lowMs - 1e-9));
    offsetsMs.forEach((offset, rank) => expect(-offset).toBeLessThanOrEqual(brackets[rank]!.highMs + 1e-9));
  });

  it('reports contradictory facts (a drifted clock) and falls back to the bracket midpoints', () => {
    const spans = [[send('a', 100)], [recv('a', 0, 1)]];
    const { offsetsMs, causal } = alignClocks(spans, [
      { lowMs: 0, highMs: 0.1 },
      { lowMs: 0, highMs: 0.1 },
    ]);
    expect(causal).toBe(false);
    expect(offsetsMs).toEqual([-0.05, -0.05]);
  });

  it('leaves a rank without a bracket on its own clock and ignores its hops', () => {
    const spans = [[send('a', 100)], [recv('a', 0, 1)]];
    const { offsetsMs, causal } = alignClocks(spans, [{ lowMs: -1, highMs: 1 }, undefined]);
    expect(causal).toBe(true);
    expect(offsetsMs[0]).toBeCloseTo(0, 9);
    expect(offsetsMs[1]).toBe(0);
  });
});
