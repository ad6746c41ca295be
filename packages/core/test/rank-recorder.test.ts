import { describe, expect, it } from 'vitest';
import { RankRecorder, toChromeTrace } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RankRecorder', () => {
  it('charges compute and communication separately and leaves the rest idle', async () => {
    const recorder = new RankRecorder(3, true);
    await recorder.time('compute', 'block', () => sleep(30));
    await recorder.time('recv', 'kv', () => sleep(20), { flowId: 'kv:2->3:0' });
    await sleep(15);
    const stats = recorder.stats({ bytesSent: 10, bytesRecv: 20 });
    expect(stats.rank).toBe(3);
    expect(stats.computeMs).toBeGreaterThanOrEqual(25);
    expect(stats.commMs).toBeGreaterThanOrEqual(15);
    expect(stats.idleMs).toBeGreaterThanOrEqual(10);
    expect(stats.bytesRecv).toBe(20);
    expect(stats.peakRssMb).toBeGreaterThan(1);
    expect(recorder.spans.map((span) => span.track)).toEqual(['compute', 'recv']);
  });

  it('records no spans unless traced, and times work that throws', async () => {
    const recorder = new RankRecorder(0);
    await expect(recorder.time('compute', 'x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(recorder.spans).toHaveLength(0);
  });
});

describe('toChromeTrace', () => {
  it('emits one pid per rank, slices on their tracks and a flow from send to receive', () => {
    const trace = toChromeTrace(
      [[{ name: 'send kv', track: 'send', startMs: 1000, durationMs: 2, flowId: 'a' }], [{ name: 'recv kv', track: 'recv', startMs: 1001, durationMs: 3, flowId: 'a' }]],
      [0, 0.5],
    );
    const slices = trace.traceEvents.filter((event) => event.ph === 'X');
    expect(slices.map((event) => [event.pid, event.tid, event.ts, event.dur])).toEqual([
      [0, 2, 0, 2000],
      [1, 3, 1500, 3000],
    ]);
    const flows = trace.traceEvents.filter((event) => event.ph === 's' || event.ph === 'f');
    expect(flows).toHaveLength(2);
    expect(flows[0]!.id).toBe(flows[1]!.id);
    expect(flows[1]!.ts).toBe(4500);
  });
});
