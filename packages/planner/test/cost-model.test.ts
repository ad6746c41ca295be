import { describe, expect, it } from 'vitest';
import { DECLARED_PROFILES, describeSchedule, estimateCost, kernelSeconds, type AttentionWorkload } from '../src/index.js';

const local = DECLARED_PROFILES['local']!;
const w = (causal: boolean): AttentionWorkload => ({ seq: 4096, prefix: 0, causal, heads: 8, kvHeads: 8, headDim: 64, bytesPerElement: 4 });

describe('cost model', () => {
  it('charges causally masked FLOPs at the profile causal rate and shares compute units between ranks', () => {
    const gflop = 1e9;
    expect(kernelSeconds(gflop, 0, local, 1)).toBeCloseTo(gflop / local.attentionFlops, 12);
    expect(kernelSeconds(gflop, gflop, local, 1)).toBeCloseTo(gflop / local.causalAttentionFlops!, 12);
    // Two units: four ranks each get half of one.
    expect(kernelSeconds(gflop, 0, local, 4)).toBeCloseTo((2 * gflop) / local.attentionFlops, 12);
    const h100 = DECLARED_PROFILES['h100-nvlink']!;
    expect(kernelSeconds(gflop, gflop, h100, 8)).toBeCloseTo(gflop / h100.attentionFlops, 12);
  });

  it('predicts a single-rank causal request at its FLOPs over the causal rate, plus fixed costs', () => {
    const single = estimateCost(describeSchedule('single', w(true), 1), local);
    const flops = 4 * ((4096 * 4097) / 2) * 8 * 64;
    const expected = (1000 * flops) / local.causalAttentionFlops! + local.kernelLaunchMs + local.stepOverheadMs;
    expect(single.predictedMs).toBeCloseTo(expected, 6);
    expect(single.exposedCommMs).toBe(0);
  });
});
