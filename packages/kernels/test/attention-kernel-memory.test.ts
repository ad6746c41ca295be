import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom } from '@seqpar/core';
import { createAttentionKernel, SESSION_CACHE_BYTES, type AttentionKernel } from '../src/index.js';
import { KEEP_RECENT } from '../src/session-cache.js';

const HEADS = 2;
const DIM = 32;
const LENGTHS = 150;

let kernel: AttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

describe('AttentionKernel memory over many sequence lengths', () => {
  // Each length is a new block shape, so a new session: a server meets them all. Per length, the blocks a
  // strategy sends: a Ulysses rank's whole causal sequence and a ring's unmasked off-diagonal half.
  it('stays flat after a warm-up, holding no more sessions than its byte budget', async () => {
    const random = seededRandom(14);
    const rssMb = () => process.memoryUsage().rss / 2 ** 20;
    const attendLengths = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const s = 300 + Math.floor(random() * 2700);
        const [q, k, v] = [0, 1, 2].map(() => randomTensor([s, HEADS, DIM], random)) as [
          ReturnType<typeof randomTensor>,
          ReturnType<typeof randomTensor>,
          ReturnType<typeof randomTensor>,
        ];
        await kernel.attend(q, k, v, { kind: 'causal-inclusive' });
        const half = (t: typeof q) => ({ data: t.data.subarray(0, (s >> 1) * HEADS * DIM), shape: [s >> 1, HEADS, DIM] });
        await kernel.attend(half(q), half(k), half(v), { kind: 'none' });
        const cached = kernel.sessions.size;
        expect(cached.bytes <= SESSION_CACHE_BYTES || cached.sessions <= KEEP_RECENT).toBe(true);
      }
    };
    await attendLengths(LENGTHS);
    const warm = { rss: rssMb(), cached: kernel.sessions.size };
    await attendLengths(LENGTHS);
    const after = { rss: rssMb(), cached: kernel.sessions.size };
    console.log(
      `rss after warm-up ${warm.rss.toFixed(0)} MB (${warm.cached.sessions} sessions), after ${LENGTHS} more lengths ${after.rss.toFixed(0)} MB (${after.cached.sessions} sessions)`,
    );
    expect(after.rss).toBeLessThan(warm.rss * 1.25);
  }, 300_000);
});
