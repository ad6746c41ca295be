import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASKED_SCORE, randomTensor, referenceAttention, seededRandom, type Tensor } from '@seqpar/core';
import { buildDecodeAttentionGraph, ComputeThread, type ResidentLayout } from '../src/index.js';

let thread: ComputeThread;
beforeAll(async () => (thread = await ComputeThread.start({ threads: 1 })));
afterAll(() => thread.close());

const UNWRITTEN = 0x7fffffff;
const maxAbsDiff = (a: Float32Array, b: Float64Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const rowsOf = (t: Tensor, start: number, end: number): Tensor => {
  const width = t.data.length / t.shape[0]!;
  return { data: t.data.slice(start * width, end * width), shape: [end - start, ...t.shape.slice(1)] };
};

/** Writes cache rows [start, end) of k, v and their positions into resident tensors of `capacity` rows. */
async function writeCache(k: Tensor, v: Tensor, positions: Int32Array, start: number, end: number, capacity: number): Promise<void> {
  const [hkv, d] = [k.shape[1]!, k.shape[2]!];
  const kv: ResidentLayout = { type: 'float32', groups: hkv, width: d, capacity, fill: 0 };
  await Promise.all([
    thread.writeRows('k', kv, start, { type: 'float32', data: rowsOf(k, start, end).data, dims: [end - start, hkv, d] }),
    thread.writeRows('v', kv, start, { type: 'float32', data: rowsOf(v, start, end).data, dims: [end - start, hkv, d] }),
    thread.writeRows('pos', { type: 'int32', groups: 1, width: 1, capacity, fill: UNWRITTEN }, start, {
      type: 'int32',
      data: positions.slice(start, end),
      dims: [end - start, 1, 1],
    }),
  ]);
}

async function attend(q: Tensor, queryPositions: Int32Array, hkv: number, capacity: number) {
  const [t, hq, d] = q.shape as [number, number, number];
  const key = `decode:${t}:${hq}:${hkv}:${d}`;
  await thread.load(key, () => buildDecodeAttentionGraph({ t, hq, hkv, d }));
  return thread.run(key, {
    q: { type: 'float32', data: q.data, dims: q.shape },
    q_pos: { type: 'int32', data: queryPositions, dims: [t] },
    k: { resident: 'k', dims: [hkv, capacity, d] },
    v: { resident: 'v', dims: [hkv, capacity, d] },
    k_pos: { resident: 'pos', dims: [capacity] },
  });
}

describe('decode attention over a resident KV cache', () => {
  it.each([
    [1, 8, 2, 16],
    [3, 6, 3, 8],
    [2, 4, 4, 32],
  ])('t = %i, Hq %i, Hkv %i, D %i: equals full attention under the positions rule, across cache growth', async (t, hq, hkv, d) => {
    const random = seededRandom(t * 100 + hq);
    const cached = 37;
    const k = randomTensor([cached, hkv, d], random);
    const v = randomTensor([cached, hkv, d], random);
    // An uneven share of a sharded cache: every third position, so queries see some rows and not others.
    const keyPositions = Int32Array.from({ length: cached }, (_, j) => 3 * j + 1);
    const q = randomTensor([t, hq, d], random);
    // The first query (position 0) sees no row: out 0, lse masked. The others see a prefix.
    const queryPositions = Int32Array.from({ length: t }, (_, i) => (i === 0 && t > 1 ? 0 : 60 + 20 * i));
    for (const [filled, capacity] of [
      [20, 24],
      [cached, 50],
    ] as const) {
      // The same session serves both cache sizes; the unwritten rows past `filled` must stay invisible.
      await writeCache(k, v, keyPositions, filled === cached ? 20 : 0, filled, capacity);
      const { out, lse } = await attend(q, queryPositions, hkv, capacity);
      const expected = referenceAttention(q, rowsOf(k, 0, filled), rowsOf(v, 0, filled), { kind: 'positions', queryPositions, keyPositions: keyPositions.slice(0, filled) });
      expect(maxAbsDiff(out!, expected.out)).toBeLessThanOrEqual(1e-5);
      for (let i = 0; i < lse!.length; i++) {
        if (expected.lse[i]! < MASKED_SCORE / 10) expect(lse![i]!).toBeLessThan(MASKED_SCORE / 10);
        else expect(Math.abs(lse![i]! - expected.lse[i]!)).toBeLessThanOrEqual(1e-4);
      }
    }
    await Promise.all(['k', 'v', 'pos'].map((name) => thread.drop(name)));
  });

  it('a run naming a resident tensor that is missing or was broken by a failed write fails with ERR_KERNEL', async () => {
    const q = { data: new Float32Array(8), shape: [1, 2, 4] };
    await expect(attend(q, Int32Array.of(0), 1, 4)).rejects.toMatchObject({ code: 'ERR_KERNEL', message: expect.stringMatching(/no resident tensor/) });
    const k = randomTensor([2, 1, 4], seededRandom(1));
    await writeCache(k, k, Int32Array.of(0, 1), 0, 2, 4);
    await expect(writeCache(k, k, Int32Array.of(0, 1), 3, 5, 4)).rejects.toMatchObject({ code: 'ERR_KERNEL' });
    await expect(attend(q, Int32Array.of(0), 1, 4)).rejects.toMatchObject({ code: 'ERR_KERNEL', message: expect.stringMatching(/unusable/) });
  });
});
