import { createPartial, planBlocks, type LayoutKind, type PartialAttention } from '@seqpar/core';
import { attendInto } from './block-attention.js';
import { fetchFrame, floatsOf, headerNumber, mod, packKv, postFrame, rowSlice, unpackKv, waitComm, type KvBlock } from './frames.js';
import type { RankContext, RankInput } from './rank-context.js';

/**
 * The loop that ring, striped and zigzag attention share (ring-flash-attention's forward): queries stay, KV blocks
 * travel one hop per step (rank r sends to r+1 and receives from r-1), so at step t rank r holds the KV of source
 * (r - t) mod N. The layout decides which blocks of (local Q, source KV) are computed under which mask; those
 * rules live in core's `planBlocks`. The transfer for step t+1 is in flight while step t computes.
 */
export async function passKvAttention(ctx: RankContext, input: RankInput, layout: LayoutKind): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const hkv = input.k.shape[1]!;
  const acc = createPartial(rows, hq, d);
  let kv: KvBlock = packKv(input.k, input.v);
  let release: (() => void) | undefined;
  for (let step = 0; step < n; step++) {
    const isLast = step === n - 1;
    const sent = isLast ? undefined : postFrame(ctx, mod(rank + 1, n), `kv/${step}`, { rows: kv.k.shape[0] }, kv.packed);
    const next = isLast ? undefined : fetchFrame(ctx, mod(rank - 1, n), `kv/${step}`);
    for (const block of planBlocks(layout, input.causal, input.seq, n, rank, step)) {
      const q = rowSlice(input.q, block.query.start, block.query.end);
      const k = rowSlice(kv.k, block.key.start, block.key.end);
      const v = rowSlice(kv.v, block.key.start, block.key.end);
      await attendInto(ctx, acc, block.query, q, k, v, block.mask, `src ${block.source}`);
    }
    if (next && sent) {
      const [frame] = await waitComm(ctx, `kv/${step}`, Promise.all([next, sent]));
      // The block in hand is computed and forwarded (the send has copied it out): its transport slot can go.
      release?.();
      kv = unpackKv(floatsOf(frame.payload), headerNumber(frame, 'rows'), hkv, d);
      release = () => frame.release?.();
    }
  }
  release?.();
  return acc;
}
