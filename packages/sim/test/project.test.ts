import { describe, expect, it } from 'vitest';
import { DECLARED_PROFILES, ScheduleBuilder, type HardwareProfile } from '@seqpar/planner';
import { project } from '../src/project.js';
import { projectionTrace } from '../src/sim-trace.js';

/** 1 GFLOP/s and 1 GB/s with no fixed costs: 1 ms per MFLOP and per MB. */
const unit: HardwareProfile = {
  ...DECLARED_PROFILES['local']!,
  name: 'unit',
  attentionFlops: 1e9,
  kernelLaunchMs: 0,
  stepOverheadMs: 0,
  memoryBandwidth: 1e15,
  linkBandwidth: 1e9,
  linkLatencyMs: 0.5,
  computeUnits: undefined,
  shardingOverheadMs: 0,
  kernelTable: undefined,
  requestMsPerMiB: undefined,
  mergeMsPerMiB: undefined,
  sendMsPerMiB: undefined,
  hostThreads: undefined,
};

describe('project', () => {
  it('starts a step when its input arrives and overlaps sends with compute', () => {
    const b = new ScheduleBuilder(2);
    const m = b.message(0, 1, 2e6, 'kv');
    b.step(0, { label: 'a', flops: 1e6, sendsAtStart: [m] });
    b.step(1, { label: 'b', flops: 1e6, needs: [m] });
    const p = project(b.build({ strategy: 'ring', layout: 'contiguous', pass: 'pass-kv', peakMemoryBytes: 0, requestBytes: 0 }), unit);
    // The message takes 2 ms + 0.5 ms latency; rank 1 then computes 1 ms.
    expect(p.wallMs).toBeCloseTo(3.5, 9);
    expect(p.utilization[0]).toBeCloseTo(1 / 3.5, 9);
  });

  it('serves one port first in, first out', () => {
    const b = new ScheduleBuilder(3);
    const first = b.message(0, 1, 1e6, 'first');
    const second = b.message(0, 2, 1e6, 'second');
    b.step(0, { label: 'send', sendsAtStart: [first, second] });
    b.step(1, { label: 'x', needs: [first] });
    b.step(2, { label: 'y', needs: [second] });
    const p = project(b.build({ strategy: 'ring', layout: 'contiguous', pass: 'pass-kv', peakMemoryBytes: 0, requestBytes: 0 }), unit);
    const recv = p.spans.filter((s) => s.track === 'recv').map((s) => s.endMs);
    expect(recv).toEqual([1.5, 2.5]);
    const trace = projectionTrace(p, 3);
    expect(trace.traceEvents.filter((e) => e.ph === 's')).toHaveLength(2);
    expect(new Set(trace.traceEvents.map((e) => e.pid))).toEqual(new Set([0, 1, 2]));
  });

  it("queues ranks' host work on a shared host thread", () => {
    const b = new ScheduleBuilder(2);
    // 1 MFLOP of kernel (1 ms) then 2 MB of merges (2 ms at 1 GB/s) on each rank.
    for (const rank of [0, 1]) b.step(rank, { label: 'attend', flops: 1e6, mergeBytes: 2e6 });
    const schedule = b.build({ strategy: 'ring', layout: 'contiguous', pass: 'pass-kv', peakMemoryBytes: 0, requestBytes: 0 });
    const merging = { ...unit, memoryBandwidth: 1e9 };
    // One host thread each: both ranks finish at 3 ms; one shared: the second rank's merges wait for the first's.
    expect(project(schedule, merging).wallMs).toBeCloseTo(3, 9);
    expect(project(schedule, { ...merging, hostThreads: 1 }).wallMs).toBeCloseTo(5, 9);
  });

  it('names a schedule that waits on a message nobody sends', () => {
    const b = new ScheduleBuilder(2);
    const m = b.message(0, 1, 1, 'lost');
    b.step(1, { label: 'stuck', needs: [m] });
    b.step(0, { label: 'idle' });
    expect(() => project(b.build({ strategy: 'ring', layout: 'contiguous', pass: 'pass-kv', peakMemoryBytes: 0, requestBytes: 0 }), unit)).toThrow(/rank\(s\) 1/);
  });
});
