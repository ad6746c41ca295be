import { describe, expect, it } from 'vitest';
import { DECLARED_PROFILES, describeSchedule, estimateCost, kernelFlopsAt, kernelSeconds, requestBytes, type AttentionWorkload } from '../src/index.js';

const local = DECLARED_PROFILES['local']!;
const w = (causal: boolean): AttentionWorkload => ({ seq: 4096, prefix: 0, causal, heads: 8, kvHeads: 8, headDim: 64, bytesPerElement: 4 });

describe('cost model', () => {
  it('charges causally masked FLOPs at the profile causal rate and shares compute units between ranks', () => {
    const gflop = 1e9;
    expect(kernelSeconds(gflop, 0, local, 1)).toBeCloseTo(gflop / local.attentionFlops, 12);
    expect(kernelSeconds(gflop, gflop, local, 1)).toBeCloseTo(gflop / local.causalAttentionFlops!, 12);
    // Two units: four ranks each get half of one, at the speed two kernels measured running at once.
    expect(kernelSeconds(gflop, 0, local, 4)).toBeCloseTo((2 * gflop) / local.attentionFlops / local.concurrentKernelEfficiency!, 12);
    const h100 = DECLARED_PROFILES['h100-nvlink']!;
    expect(kernelSeconds(gflop, gflop, h100, 8)).toBeCloseTo(gflop / h100.attentionFlops, 12);
  });

  it('reads the kernel speed off the calibrated curve: exact at its points, log-linear between, flat beyond', () => {
    const curve = local.kernelCurve!;
    for (const p of curve) expect(kernelFlopsAt(local, p.rows)).toEqual({ unmasked: p.flops, causal: p.causalFlops });
    const [a, b] = [curve[1]!, curve[2]!];
    const mid = kernelFlopsAt(local, Math.sqrt(a.rows * b.rows));
    expect(mid.unmasked).toBeCloseTo(Math.sqrt(a.flops * b.flops), 3);
    // Below the smallest point small blocks are bound by per-row work: FLOP/s fall with the side.
    expect(kernelFlopsAt(local, curve[0]!.rows / 2).unmasked).toBeCloseTo(curve[0]!.flops / 2, 3);
    expect(kernelFlopsAt(local, 1e6).causal).toBe(curve[curve.length - 1]!.causalFlops);
    // A 256-row block runs slower per FLOP than a 4096-row one, as measured (50 vs 80 GFLOP/s unmasked).
    expect(kernelSeconds(1e9, 0, local, 1, 256)).toBeGreaterThan(1.5 * kernelSeconds(1e9, 0, local, 1, 4096));
  });

  it('predicts a single-rank causal request at its FLOPs over the causal rate at its block size, plus fixed costs', () => {
    const single = estimateCost(describeSchedule('single', w(true), 1), local);
    const flops = 4 * ((4096 * 4097) / 2) * 8 * 64;
    const requestMs = (local.requestMsPerMiB! * requestBytes(w(true))) / 2 ** 20;
    const expected = requestMs + (1000 * flops) / kernelFlopsAt(local, 4096).causal + local.stepOverheadMs;
    expect(single.predictedMs).toBeCloseTo(expected, 6);
    expect(single.exposedCommMs).toBe(0);
  });
});
