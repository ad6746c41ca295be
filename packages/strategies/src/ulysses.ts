import { createPartial, partStart, UsageError, type PartialAttention } from '@seqpar/core';
import { attendSequence } from './attend-sequence.js';
import { gatherHeads, scatterHeads } from './head-exchange.js';
import type { RankContext, RankInput } from './rank-context.js';

/** Ulysses keeps the contiguous layout: rank r's tokens are [floor(r·S/N), floor((r+1)·S/N)). */
export const ULYSSES_LAYOUT = 'contiguous';

/** Ulysses splits heads across ranks, so the degree must divide the KV heads (and hence the query heads). */
export function checkUlyssesDegree(hq: number, hkv: number, degree: number): void {
  if (degree > hkv || hkv % degree !== 0 || hq % degree !== 0) {
    throw new UsageError(`ulysses needs the worker count (${degree}) to divide the kv heads (${hkv}) and query heads (${hq}); use fewer workers or another strategy`);
  }
}

/**
 * DeepSpeed-Ulysses (Jacobs et al., 2023): an all-to-all turns "my tokens, all heads" into "all tokens, my heads"
 * (rank p gets query heads [p·Hq/N, (p+1)·Hq/N) and the KV heads they read), each rank runs ordinary attention
 * over the whole sequence for its heads (under the request's mask, so balanced for any documents and window), and a
 * second all-to-all brings out and lse back to the token owners.
 */
export async function ulyssesAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const n = ctx.worldSize;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const hkv = input.k.shape[1]!;
  checkUlyssesDegree(hq, hkv, n);
  const placement = (s: number) => [{ start: partStart(s, n, input.seq), end: partStart(s + 1, n, input.seq) }];
  const heads = await scatterHeads(ctx, input, input.seq, placement);
  const local = createPartial(input.seq, hq / n, d);
  await attendSequence(ctx, local, input, heads.q, heads.k, heads.v, 'heads');
  return gatherHeads(ctx, local, placement, rows, hq);
}
