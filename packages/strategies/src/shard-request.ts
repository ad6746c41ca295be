import { layoutPositions, shardRows, unshardRows, type PartialAttention, type SequenceMask, type Span, type Tensor } from '@seqpar/core';
import type { RankInput } from './rank-context.js';
import type { Strategy } from './registry.js';

/** Splits a full request into each rank's input, in the strategy's layout under `mask` (copies the rows). */
export function shardRequest(strategy: Strategy, q: Tensor, k: Tensor, v: Tensor, mask: SequenceMask, degree: number): RankInput[] {
  const seq = q.shape[0]!;
  const [qs, ks, vs] = [q, k, v].map((t) => shardRows(t, strategy.layout, degree, mask)) as [Tensor[], Tensor[], Tensor[]];
  return qs.map((rankQ, rank) => ({ ...mask, q: rankQ, k: ks[rank]!, v: vs[rank]!, seq }));
}

/**
 * The runs of consecutive global rows rank `rank` holds in the strategy's layout, in its local row order: one run
 * for ring, two for zigzag, one per row for striped. A coordinator ships a rank's share straight from these rows
 * of the request's tensors (and writes its out rows straight back), with no sharded copy in between.
 */
export function rankRowRuns(strategy: Strategy, seq: number, degree: number, rank: number, mask?: SequenceMask): Span[] {
  const runs: { start: number; end: number }[] = [];
  for (const position of layoutPositions(strategy.layout, seq, degree, rank, mask)) {
    const last = runs[runs.length - 1];
    if (last?.end === position) last.end++;
    else runs.push({ start: position, end: position + 1 });
  }
  return runs;
}

/** Puts every rank's out [Sr, Hq, D] and lse [Hq, Sr] back into sequence order: out [S, Hq, D], lse [Hq, S]. */
export function gatherResults(strategy: Strategy, parts: readonly PartialAttention[], seq: number, mask?: SequenceMask): PartialAttention {
  const out = unshardRows(
    parts.map((part) => part.out),
    strategy.layout,
    seq,
    mask,
  );
  return {
    out,
    lse: gatherLse(
      strategy,
      parts.map((part) => part.lse),
      seq,
      mask,
    ),
  };
}

/** Every rank's lse [Hq, Sr] in sequence order: [Hq, S]. */
export function gatherLse(strategy: Strategy, parts: readonly Tensor[], seq: number, mask?: SequenceMask): Tensor {
  const heads = parts[0]?.shape[0] ?? 0;
  const lse = new Float32Array(heads * seq);
  parts.forEach((part, rank) => {
    const positions = layoutPositions(strategy.layout, seq, parts.length, rank, mask);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < positions.length; i++) lse[h * seq + positions[i]!] = part.data[h * positions.length + i]!;
    }
  });
  return { data: lse, shape: [heads, seq] };
}
