import type { PartialAttention } from '@seqpar/core';
import type { RankContext, RankInput } from './rank-context.js';

/** The unsharded reference: one rank, one kernel call over the whole sequence. */
export function singleAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return ctx.recorder.time('compute', 'attend', () =>
    ctx.kernel.attend(input.q, input.k, input.v, { kind: input.causal ? 'causal-inclusive' : 'none' }),
  );
}
