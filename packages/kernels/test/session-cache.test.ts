import { afterEach, describe, expect, it } from 'vitest';
import { ComputeThread, GraphBuilder } from '../src/index.js';
import { KEEP_RECENT, SessionCache } from '../src/session-cache.js';

/** y = x + `add`, a session that tells which build made it. */
function adder(add: number): Uint8Array {
  const g = new GraphBuilder('adder');
  g.op('Add', [g.input('x', 'float', [1]), g.scalar(add)], {}, { outputName: 'y' });
  g.output('y', 'float', [1]);
  return g.toModelBytes();
}

let thread: ComputeThread | undefined;
afterEach(async () => thread?.close());

describe('SessionCache', () => {
  const x = { type: 'float32' as const, data: Float32Array.of(0), dims: [1] };

  it('releases the least recently used sessions past its budget, keeping the most recent few', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    const cache = new SessionCache(thread, 2 * 100);
    const builds: string[] = [];
    const use = async (key: string, add: number) => {
      const { y } = await cache.run(key, 100, () => (builds.push(key), adder(add)), { x });
      return y![0];
    };
    for (let i = 0; i < KEEP_RECENT + 2; i++) expect(await use(`s${i}`, i)).toBe(i);
    // The budget holds two; the KEEP_RECENT most recent stay regardless.
    expect(cache.size).toEqual({ sessions: KEEP_RECENT, bytes: KEEP_RECENT * 100 });
    expect(await use('s0', 10)).toBe(10); // s0 was released: built again
    expect(await use('s5', 20)).toBe(5); // s5 stayed: not built again
    expect(builds).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's0']);
    await expect(thread.run('s1', { x })).rejects.toMatchObject({ code: 'ERR_KERNEL' }); // released on the thread too
  });

  it('never releases a session while a run of it is in flight', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    const cache = new SessionCache(thread, 0);
    const runs = Array.from({ length: KEEP_RECENT + 3 }, (_, i) => cache.run(`s${i}`, 100, () => adder(i), { x }));
    expect((await Promise.all(runs)).map(({ y }) => y![0])).toEqual(Array.from({ length: KEEP_RECENT + 3 }, (_, i) => i));
    await cache.run('last', 100, () => adder(-1), { x });
    expect(cache.size.sessions).toBe(KEEP_RECENT);
  });
});
