import { createPartial, mergeInto, type PartialAttention } from '@seqpar/core';
import { withFrame, type Frame } from '@seqpar/transport';
import { fetchFrame, floatsOf, headerNumber, postFrame, waitComm } from './frames.js';
import { sendPackedPartial, unpackPartial } from './partial-frames.js';
import type { RankContext } from './rank-context.js';

/**
 * Decoding over a KV cache sharded across ranks (context-parallel inference, Meta 2024), when every rank already
 * holds the new queries (the model's decode step computes a token's token-local layers on every rank, so no query
 * has to travel): each rank's (out, lse) over its own share of the cache goes to every other rank, and every rank
 * merges all of them in rank order, so all hold the same bits. The partials of all heads (out and lse) are one
 * frame per peer, packed into a reused buffer; on shm a frame this small travels inside the ring's record, so
 * the exchange is one record each way and no socket message while both ranks poll (transport shm-poller.ts).
 */
export async function gatherDecodePartials(ctx: RankContext, local: PartialAttention): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  if (n === 1) return local;
  const [rows, heads, dim] = local.out.shape as [number, number, number];
  const peers = Array.from({ length: n }, (_, p) => p).filter((p) => p !== rank);
  const sent = sendPackedPartial(local, (packed) => Promise.all(peers.map((p) => postFrame(ctx, p, 'dpart', { rows }, packed))));
  sent.catch(() => undefined); // awaited below; a failed receive (abort, lost peer) must not leave it unhandled meanwhile
  const merged = createPartial(rows, heads, dim);
  const merge = (partial: PartialAttention) => ctx.recorder.time('compute', 'merge', () => mergeInto(merged, partial));
  const partialOf = (frame: Frame) => unpackPartial(floatsOf(frame.payload), headerNumber(frame, 'rows'), heads, dim);
  // Each peer's partial is merged inside the scope of its frame, in rank order (so every rank adds in one order).
  for (let p = 0; p < n; p++) {
    if (p === rank) await merge(local);
    else await withFrame(waitComm(ctx, `partial ← ${p}`, fetchFrame(ctx, p, 'dpart')), (frame) => merge(partialOf(frame)));
  }
  await waitComm(ctx, 'partial sent', sent);
  return merged;
}
