import { createPartial, type PartialAttention } from '@seqpar/core';
import { attendSequence } from './attend-sequence.js';
import type { RankContext, RankInput } from './rank-context.js';

/** The unsharded reference: one rank attends over the whole sequence (in memory-bounded kernel calls). */
export async function singleAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const acc = (ctx.createPartial ?? createPartial)(rows, hq, d);
  await attendSequence(ctx, acc, input, input.q, input.k, input.v, 'all');
  return acc;
}
