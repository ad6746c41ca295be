import { describe, expect, it } from 'vitest';
import { burstSize } from '../src/coordinator/burst-size.js';

const steady = { prefillPending: false, stepMs: 5, budgets: [100], remainingMs: [60_000] };

describe('burst size: decode steps one coordinator call runs on the workers', () => {
  it('fills 50 ms at the last step time, up to 16 steps', () => {
    expect(burstSize(steady)).toBe(10);
    expect(burstSize({ ...steady, stepMs: 12 })).toBe(4);
    expect(burstSize({ ...steady, stepMs: 1 })).toBe(16);
    expect(burstSize({ ...steady, stepMs: 80 })).toBe(1);
  });

  it('runs one step while a prefill is pending and before any step was timed', () => {
    expect(burstSize({ ...steady, prefillPending: true })).toBe(1);
    expect(burstSize({ ...steady, stepMs: undefined })).toBe(1);
  });

  it('stops at the longest remaining budget, the nearest deadline and maxBurstSteps', () => {
    expect(burstSize({ ...steady, budgets: [3, 7, 2] })).toBe(7);
    expect(burstSize({ ...steady, remainingMs: [60_000, 22] })).toBe(4);
    expect(burstSize({ ...steady, remainingMs: [2] })).toBe(1);
    expect(burstSize({ ...steady, maxSteps: 1 })).toBe(1);
    expect(burstSize({ ...steady, stepMs: 1, maxSteps: 24 })).toBe(24);
  });
});
