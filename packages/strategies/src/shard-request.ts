import { layoutPositions, shardRows, unshardRows, type PartialAttention, type Tensor } from '@seqpar/core';
import type { RankInput } from './rank-context.js';
import type { Strategy } from './registry.js';

/** Splits a full request into each rank's input, in the strategy's layout (copies the rows). */
export function shardRequest(strategy: Strategy, q: Tensor, k: Tensor, v: Tensor, causal: boolean, degree: number): RankInput[] {
  const seq = q.shape[0]!;
  const [qs, ks, vs] = [q, k, v].map((t) => shardRows(t, strategy.layout, degree)) as [Tensor[], Tensor[], Tensor[]];
  return qs.map((rankQ, rank) => ({ q: rankQ, k: ks[rank]!, v: vs[rank]!, seq, causal }));
}

/** Puts every rank's out [Sr, Hq, D] and lse [Hq, Sr] back into sequence order: out [S, Hq, D], lse [Hq, S]. */
export function gatherResults(strategy: Strategy, parts: readonly PartialAttention[], seq: number): PartialAttention {
  const out = unshardRows(parts.map((part) => part.out), strategy.layout, seq);
  const heads = out.shape[1]!;
  const lse = new Float32Array(heads * seq);
  parts.forEach((part, rank) => {
    const positions = layoutPositions(strategy.layout, seq, parts.length, rank);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < positions.length; i++) lse[h * seq + positions[i]!] = part.lse.data[h * positions.length + i]!;
    }
  });
  return { out, lse: { data: lse, shape: [heads, seq] } };
}
