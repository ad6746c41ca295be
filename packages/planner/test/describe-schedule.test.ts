import { describe, expect, it } from 'vitest';
import { STRATEGY_NAMES, type StrategyName } from '@seqpar/core';
import { describeSchedule } from '../src/describe-schedule.js';
import { attentionFlops, totalPairs, type AttentionWorkload } from '../src/workload.js';

const workload = (seq: number, causal: boolean, prefix = 0): AttentionWorkload => ({ seq, prefix, causal, heads: 8, kvHeads: 8, headDim: 64, bytesPerElement: 2 });
const rankFlops = (strategy: StrategyName, w: AttentionWorkload, n: number): number[] =>
  describeSchedule(strategy, w, n).ranks.map((steps) => steps.reduce((sum, s) => sum + s.flops, 0));

describe('describeSchedule', () => {
  it('covers exactly the request FLOPs for every strategy, S, N, mask and prefix', () => {
    for (const strategy of STRATEGY_NAMES) {
      for (const [seq, n, causal, prefix] of [
        [1000, 4, true, 0],
        [1003, 3, false, 0],
        [4096, 8, true, 0],
        [512, 4, true, 2048],
      ] as const) {
        const w = workload(seq, causal, prefix);
        const total = rankFlops(strategy, w, n).reduce((a, b) => a + b, 0);
        expect(total / attentionFlops(totalPairs(w), w)).toBeCloseTo(1, 9);
      }
    }
  });

  it('prices the visible pairs of packed documents and windows, exactly as the strategies cut them', () => {
    const skewed = { ...workload(16384, true), documents: [12288, ...Array<number>(16).fill(256)] };
    const windowed = { ...workload(16384, true), window: 1024 };
    for (const w of [skewed, windowed, { ...skewed, causal: false }]) {
      for (const strategy of STRATEGY_NAMES) {
        const total = rankFlops(strategy, w, 4).reduce((a, b) => a + b, 0);
        expect(total / attentionFlops(totalPairs(w), w), strategy).toBeCloseTo(1, 9);
      }
    }
    // A window of 1024 is about 1/8 of full causal at 16k; the skewed pack's zigzag work stays balanced.
    expect(totalPairs(windowed) / totalPairs(workload(16384, true))).toBeLessThan(0.13);
    const flops = rankFlops('zigzag', skewed, 2);
    expect(Math.max(...flops) / Math.min(...flops)).toBeLessThan(1.05);
  });

  it('leaves causal ring unbalanced and striped/zigzag/TokenRing balanced', () => {
    const w = workload(8192, true);
    const spread = (flops: number[]): number => Math.max(...flops) / Math.min(...flops);
    expect(spread(rankFlops('ring', w, 8))).toBeGreaterThan(10);
    for (const strategy of ['striped', 'zigzag', 'token-ring'] as const) expect(spread(rankFlops(strategy, w, 8))).toBeLessThan(1.01);
  });

  it('marks causally masked FLOPs: none when not causal, the triangle when causal', () => {
    const masked = (strategy: StrategyName, w: AttentionWorkload): number =>
      describeSchedule(strategy, w, 4)
        .ranks.flat()
        .reduce((sum, s) => sum + s.maskedFlops, 0);
    for (const strategy of STRATEGY_NAMES) expect(masked(strategy, workload(2048, false))).toBe(0);
    const w = workload(2048, true);
    // Ring's diagonal blocks are masked, the rest full; striped masks every block; single runs one causal block.
    expect(masked('ring', w) / attentionFlops(totalPairs(w), w)).toBeCloseTo((4 * 513 * 256) / totalPairs(w), 9);
    for (const strategy of ['striped', 'single', 'ulysses'] as const) expect(masked(strategy, w) / attentionFlops(totalPairs(w), w)).toBeCloseTo(1, 9);
  });

  it('sends every message it needs, once, and sizes the ring hop as a KV shard', () => {
    for (const strategy of STRATEGY_NAMES) {
      const schedule = describeSchedule(strategy, workload(4096, true), 4);
      const sent = schedule.ranks
        .flat()
        .flatMap((s) => [...s.sendsAtStart, ...s.sendsAtEnd])
        .sort((a, b) => a - b);
      expect(sent).toEqual(schedule.messages.map((m) => m.id));
      const needed = new Set(schedule.ranks.flat().flatMap((s) => s.needs));
      expect(needed.size).toBe(schedule.messages.length);
    }
    const ring = describeSchedule('ring', workload(4096, false), 4);
    expect(ring.messages[0]!.bytes).toBe(2 * 1024 * 8 * 64 * 2);
  });
});
