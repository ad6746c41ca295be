import { describe, expect, it } from 'vitest';
import { loadProfile, workloadOf, type PlanRequest } from '@seqpar/planner';
import { simulate } from '../src/simulate.js';

/** Published trends the projection must reproduce; sources in packages/sim/README.md. */
const run = (profileName: string, request: PlanRequest, degree: number, strategy: Parameters<typeof simulate>[0]) => {
  const profile = loadProfile(profileName);
  return simulate(strategy, workloadOf(request, profile), degree, profile);
};

describe('published trends', () => {
  it('causal striped beats ring by >= 1.3x at S = 256k on 8 A100 NVLink (Striped Attention: up to 1.45x)', () => {
    for (const heads of [{}, { heads: 32, kvHeads: 32, headDim: 128 }]) {
      const request = { seq: 262144, causal: true, ...heads };
      const ring = run('a100-nvlink', request, 8, 'ring');
      const striped = run('a100-nvlink', request, 8, 'striped');
      expect(ring.predictedMs / striped.predictedMs).toBeGreaterThanOrEqual(1.3);
    }
  });

  it('zigzag reaches >= 85% of ideal at 8k tokens per device on 8 H800/H100 NVLink (ring-flash-attention: ~85%)', () => {
    for (const profile of ['h800-nvlink', 'h100-nvlink']) {
      const result = run(profile, { seq: 8 * 8192, causal: true, heads: 32, kvHeads: 32, headDim: 128 }, 8, 'zigzag');
      expect(result.idealMs / result.predictedMs).toBeGreaterThanOrEqual(0.85);
      expect(result.idealMs / result.predictedMs).toBeLessThanOrEqual(1);
    }
  });

  it('TokenRing beats ring on PCIe with 4 devices at 24k tokens (TokenRing, causal LLM setting)', () => {
    const request = { seq: 24000, causal: true, heads: 32, kvHeads: 32, headDim: 128 };
    expect(run('a100-pcie', request, 4, 'token-ring').predictedMs).toBeLessThan(run('a100-pcie', request, 4, 'ring').predictedMs);
  });
});

describe('simulate', () => {
  // How fast the projection runs is a benchmark's question; this one asks that it holds together at scale.
  it('projects N = 64, S = 1M causal on every rank: balanced layouts near ideal, plain ring about twice it', () => {
    const results = Object.fromEntries(
      (['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'] as const).map((strategy) => [
        strategy,
        run('h100-nvlink', { seq: 1 << 20, causal: true, heads: 64, kvHeads: 64, headDim: 128 }, 64, strategy),
      ]),
    );
    for (const result of Object.values(results)) {
      expect(result.rankBusy).toHaveLength(64);
      expect(result.predictedMs).toBeGreaterThanOrEqual(result.idealMs);
    }
    for (const balanced of [results['striped']!, results['zigzag']!, results['token-ring']!]) {
      expect(Math.min(...balanced.rankBusy)).toBeGreaterThan(0.95);
      expect(balanced.predictedMs / balanced.idealMs).toBeLessThan(1.25);
    }
    // Causal ring: the last rank computes on all 64 steps, the first only its diagonal, so ~2x the ideal.
    expect(results['ring']!.rankBusy[0]!).toBeLessThan(0.05);
    expect(results['ring']!.predictedMs / results['zigzag']!.predictedMs).toBeGreaterThan(1.8);
  });

  it('reports causal ring as badly utilised and a balanced layout as busy, utilisation matching predicted time', () => {
    const request = { seq: 131072, causal: true };
    const ring = run('a100-nvlink', request, 8, 'ring');
    const zigzag = run('a100-nvlink', request, 8, 'zigzag');
    expect(ring.utilization).toBeLessThan(0.6);
    expect(zigzag.utilization).toBeGreaterThan(0.8);
    for (const r of [ring, zigzag]) expect(r.utilization).toBeCloseTo(r.idealMs / r.predictedMs, 9);
    // The last rank of a causal ring computes every step; the first only its diagonal.
    expect(ring.rankBusy[7]!).toBeGreaterThan(0.95);
    expect(ring.rankBusy[0]!).toBeLessThan(0.2);
  });

  it('keeps utilisation consistent with predicted time at 100 ranks (busy ranks waiting on overheads are not utilised)', () => {
    const zigzag = run('h100-nvlink', { seq: 65536, causal: true }, 100, 'zigzag');
    expect(zigzag.predictedMs / zigzag.idealMs).toBeGreaterThan(5);
    expect(zigzag.utilization).toBeLessThan(0.2);
    expect(zigzag.utilization).toBeCloseTo(zigzag.idealMs / zigzag.predictedMs, 9);
  });

  it('becomes communication-bound on a slow link: utilisation drops as bandwidth shrinks', () => {
    const request = { seq: 16384, causal: false };
    expect(run('a100-pcie', request, 8, 'ring').utilization).toBeLessThan(run('a100-nvlink', request, 8, 'ring').utilization);
  });

  it('runs single on one rank and refuses Ulysses beyond the kv heads with a usage error', () => {
    expect(run('local', { seq: 1024 }, 4, 'single').degree).toBe(1);
    expect(() => run('local', { seq: 1024, heads: 8, kvHeads: 2 }, 4, 'ulysses')).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});

describe('packed documents and windows', () => {
  it('project the visible work: a window of 1024 predicts a fraction of full causal', () => {
    // On this host's profile at 16k (ideal 1/8), and on H100s at 128k (ideal 1/64) where compute dominates the links.
    for (const [profile, request, limit] of [
      ['local', { seq: 16384 }, 0.2],
      ['h100-nvlink', { seq: 131072, heads: 32, kvHeads: 8, headDim: 128 }, 0.1],
    ] as const) {
      const full = run(profile, { ...request, causal: true }, 2, 'zigzag');
      const windowed = run(profile, { ...request, causal: true, window: 1024 }, 2, 'zigzag');
      expect(windowed.predictedMs / full.predictedMs, profile).toBeLessThan(limit);
    }
  });
});
