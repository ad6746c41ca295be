import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASKED_SCORE, randomTensor, referenceAttention, seededRandom, type Tensor } from '@seqpar/core';
import { buildBatchedDecodeAttentionGraph, buildDecodeAttentionGraph, ComputeThread, type ResidentLayout } from '../src/index.js';

let thread: ComputeThread;
beforeAll(async () => (thread = await ComputeThread.start({ threads: 1 })));
afterAll(() => thread.close());

const UNWRITTEN = 0x7fffffff;
const maxAbsDiff = (a: Float32Array, b: Float64Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const rowsOf = (t: Tensor, start: number, end: number): Tensor => {
  const width = t.data.length / t.shape[0]!;
  return { data: t.data.slice(start * width, end * width), shape: [end - start, ...t.shape.slice(1)] };
};

/** Writes cache rows [start, end) of k, v and their positions into resident tensors <share>k, v and pos of `capacity` rows. */
async function writeCache(k: Tensor, v: Tensor, positions: Int32Array, start: number, end: number, capacity: number, share = ''): Promise<void> {
  const [hkv, d] = [k.shape[1]!, k.shape[2]!];
  const kv: ResidentLayout = { type: 'float32', groups: hkv, width: d, capacity, fill: 0 };
  await Promise.all([
    thread.writeRows(`${share}k`, kv, start, { type: 'float32', data: rowsOf(k, start, end).data, dims: [end - start, hkv, d] }),
    thread.writeRows(`${share}v`, kv, start, { type: 'float32', data: rowsOf(v, start, end).data, dims: [end - start, hkv, d] }),
    thread.writeRows(`${share}pos`, { type: 'int32', groups: 1, width: 1, capacity, fill: UNWRITTEN }, start, {
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

  it.each([undefined, 12])('one batched run over several sessions’ shares, each of its own size, gives each session the bits of a run of its own (window %s)', async (window) => {
    const [hq, hkv, d] = [8, 2, 16];
    const random = seededRandom(11);
    const sizes = [5, 37, 1];
    const q = randomTensor([sizes.length, hq, d], random);
    // The last query sits before its share's only row: it sees nothing (out 0, lse masked), as a lone run gives.
    const queryPositions = Int32Array.of(200, 30, 0);
    await thread.load(`single:${window}`, () => buildDecodeAttentionGraph({ t: 1, hq, hkv, d, ...(window === undefined ? {} : { window }) }));
    await thread.load(`batched:${window}`, () => buildBatchedDecodeAttentionGraph({ sessions: sizes.length, hq, hkv, d, ...(window === undefined ? {} : { window }) }));
    const feeds: Record<string, { resident: string; dims: number[] }> = {};
    const alone: Record<string, Float32Array>[] = [];
    for (const [i, rows] of sizes.entries()) {
      const [k, v] = [randomTensor([rows, hkv, d], random), randomTensor([rows, hkv, d], random)];
      const capacity = rows + 4;
      await writeCache(
        k,
        v,
        Int32Array.from({ length: rows }, (_, j) => 2 * j + 3),
        0,
        rows,
        capacity,
        `s${i}:`,
      );
      const share = {
        k: { resident: `s${i}:k`, dims: [hkv, capacity, d] },
        v: { resident: `s${i}:v`, dims: [hkv, capacity, d] },
        k_pos: { resident: `s${i}:pos`, dims: [capacity] },
      };
      Object.assign(feeds, { [`k${i}`]: share.k, [`v${i}`]: share.v, [`k_pos${i}`]: share.k_pos });
      alone.push(
        await thread.run(`single:${window}`, {
          q: { type: 'float32', data: rowsOf(q, i, i + 1).data, dims: [1, hq, d] },
          q_pos: { type: 'int32', data: queryPositions.slice(i, i + 1), dims: [1] },
          ...share,
        }),
      );
    }
    const { out, lse } = await thread.run(`batched:${window}`, {
      q: { type: 'float32', data: q.data, dims: q.shape },
      q_pos: { type: 'int32', data: queryPositions, dims: [sizes.length] },
      ...feeds,
    });
    expect(Array.from(out!)).toEqual(alone.flatMap((run) => Array.from(run['out']!)));
    expect(Array.from(lse!)).toEqual(Array.from({ length: hq * sizes.length }, (_, at) => alone[at % sizes.length]!['lse']![Math.floor(at / sizes.length)]));
    expect(alone[2]!['lse']![0]).toBeLessThan(MASKED_SCORE / 10);
    await Promise.all(sizes.flatMap((_, i) => ['k', 'v', 'pos'].map((part) => thread.drop(`s${i}:${part}`))));
  });
});
