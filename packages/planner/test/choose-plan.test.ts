import { describe, expect, it } from 'vitest';
import { choosePassMode, choosePlan, DECLARED_PROFILES, workloadOf } from '../src/index.js';

const profiles = Object.values(DECLARED_PROFILES);
const h100 = DECLARED_PROFILES['h100-nvlink']!;

describe('choosePlan', () => {
  it('says in a note why it uses fewer ranks than allowed, and gives none when it uses them all', () => {
    const local = DECLARED_PROFILES['local']!;
    const capped = choosePlan({ seq: 4096, causal: true, heads: 8, kvHeads: 2, headDim: 64 }, local, { maxWorkers: 100 });
    expect(capped.degree).toBe(local.computeUnits);
    expect(capped.note).toMatch(/degree capped at 2 of 100 workers: profile 'local' has 2 compute units/);
    const short = choosePlan({ seq: 512, causal: true, heads: 8, kvHeads: 2, headDim: 64 }, h100, { maxWorkers: 8 });
    expect(short.degree).toBe(1);
    expect(short.note).toMatch(/^one rank of 8/);
    const long = choosePlan({ seq: 1 << 20, causal: true, heads: 8, kvHeads: 8, headDim: 128 }, h100, { maxWorkers: 8 });
    expect(long.degree).toBe(8);
    expect(long.note).toBeUndefined();
  });

  it('keeps short requests on one worker on every declared profile', () => {
    // Short means 128 tokens: on the 2-core host Ulysses on 2 workers already measured 1.4-1.8x faster than one
    // worker at 512 (bench-results/planner.md), and the calibrated local profile puts the crossing near 256.
    for (const profile of profiles) {
      for (const causal of [false, true]) {
        const plan = choosePlan({ seq: 128, causal }, profile, { maxWorkers: 8 });
        expect(plan.strategy, profile.name).toBe('single');
        expect(plan.degree).toBe(1);
      }
    }
  });

  it('shards long requests and never picks plain ring for causal ones', () => {
    for (const profile of profiles) {
      for (const workers of [2, 4, 8]) {
        for (const seq of [65536, 262144]) {
          const plan = choosePlan({ seq, causal: true }, profile, { maxWorkers: workers });
          expect(plan.degree, `${profile.name} N=${workers} S=${seq}`).toBeGreaterThan(1);
          expect(plan.degree).toBeLessThanOrEqual(workers);
          expect(plan.strategy).not.toBe('ring');
        }
      }
    }
  });

  it('breaks a tie of the ring family by the mask: balanced layouts when causal, contiguous ring when not', () => {
    // Heads Ulysses cannot split, so the ring family's equal non-causal predictions decide.
    const request = { seq: 65536, heads: 8, kvHeads: 1, headDim: 64 };
    const nonCausal = choosePlan({ ...request, causal: false }, h100, { maxWorkers: 4 });
    const times = (strategy: string) => nonCausal.alternatives.find((a) => a.strategy === strategy)!.predictedMs;
    expect(times('zigzag')).toBe(times('ring'));
    expect(times('striped')).toBe(times('ring'));
    expect(nonCausal.strategy).toBe('ring');
    expect(choosePlan({ ...request, causal: true }, h100, { maxWorkers: 4 }).strategy).toMatch(/^(zigzag|striped|token-ring)$/);
  });

  it('never runs Ulysses beyond the KV-head count or on heads it does not divide', () => {
    for (const [heads, kvHeads] of [
      [8, 2],
      [32, 8],
      [12, 3],
    ] as const) {
      for (const workers of [4, 8, 16, 64]) {
        const plan = choosePlan({ seq: 131072, causal: true, heads, kvHeads, headDim: 128 }, h100, { maxWorkers: workers });
        const ulysses = plan.alternatives.find((a) => a.strategy === 'ulysses')!;
        if (ulysses.feasible) {
          expect(ulysses.degree).toBeLessThanOrEqual(kvHeads);
          expect(kvHeads % ulysses.degree).toBe(0);
        } else expect(ulysses.reason).toMatch(/kv heads|divide/);
        if (plan.strategy === 'ulysses') expect(plan.degree).toBeLessThanOrEqual(kvHeads);
      }
    }
  });

  it('never shards beyond the compute units a host shares', () => {
    const local = DECLARED_PROFILES['local']!;
    for (const seq of [8192, 65536]) {
      const plan = choosePlan({ seq, causal: true }, local, { maxWorkers: 8 });
      expect(plan.degree).toBe(local.computeUnits);
      for (const a of plan.alternatives) expect(a.degree).toBeLessThanOrEqual(local.computeUnits!);
    }
  });

  it('rules out plans over the memory budget', () => {
    const plan = choosePlan({ seq: 1 << 20, causal: true }, h100, { maxWorkers: 8, memoryBudget: 2 * 2 ** 30 });
    const single = plan.alternatives.find((a) => a.strategy === 'single')!;
    expect(single.feasible).toBe(false);
    expect(single.reason).toMatch(/budget/);
    expect(plan.peakMemoryBytes).toBeLessThanOrEqual(2 * 2 ** 30);
    expect(() => choosePlan({ seq: 1 << 20 }, h100, { maxWorkers: 2, memoryBudget: 1024 })).toThrow(expect.objectContaining({ code: 'ERR_NO_FEASIBLE_PLAN' }));
  });

  it('lists every strategy once, fastest feasible first', () => {
    const plan = choosePlan({ seq: 32768, causal: true }, h100, { maxWorkers: 4 });
    expect(plan.alternatives.map((a) => a.strategy).sort()).toEqual(['ring', 'single', 'striped', 'token-ring', 'ulysses', 'usp', 'zigzag']);
    expect(plan.alternatives[0]!.strategy).toBe(plan.strategy);
    const feasible = plan.alternatives.filter((a) => a.feasible).map((a) => a.predictedMs);
    expect(feasible).toEqual([...feasible].sort((a, b) => a - b));
  });
});

describe('the pass-KV vs pass-Q rule', () => {
  const gqa = { heads: 32, kvHeads: 8, headDim: 128 };
  it('passes Q for decode and short appends to a long cache', () => {
    for (const seq of [1, 16, 256]) expect(choosePassMode(workloadOf({ seq, prefix: 131072, causal: true, ...gqa }, h100), 8, h100)).toBe('pass-q');
    const plan = choosePlan({ seq: 1, prefix: 1 << 20, causal: true, ...gqa }, h100, { maxWorkers: 8 });
    expect(plan.strategy).not.toMatch(/^(ring|striped|zigzag)$/);
  });

  it('passes KV for long prefills', () => {
    for (const [seq, prefix] of [
      [65536, 0],
      [32768, 32768],
      [131072, 8192],
    ]) {
      expect(choosePassMode(workloadOf({ seq: seq!, prefix: prefix!, causal: true, ...gqa }, h100), 8, h100)).toBe('pass-kv');
    }
    const plan = choosePlan({ seq: 131072, prefix: 8192, causal: true, ...gqa }, h100, { maxWorkers: 8 });
    expect(plan.alternatives.find((a) => a.strategy === 'token-ring')!.reason).toMatch(/pass-kv/);
  });
});
