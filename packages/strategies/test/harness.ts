import { createPartial, seededRandom, type BlockAttentionKernel, type PartialAttention, type Tensor } from '@seqpar/core';
import { runStrategyInproc, type InprocRunResult, type StrategyName } from '../src/index.js';

/** Runs a strategy on `n` in-process ranks sharing one real kernel. */
export function runInproc(name: StrategyName, kernel: BlockAttentionKernel, q: Tensor, k: Tensor, v: Tensor, causal: boolean, n: number): Promise<InprocRunResult> {
  return runStrategyInproc(name, q, k, v, { causal, degree: n, kernels: [kernel], timeoutMs: 20_000 });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** A partial result of `rows` query rows with random out in [-0.5, 0.5) and lse in [0, 4). */
export function randomPartial(rows: number, heads: number, dim: number, seed: number): PartialAttention {
  const random = seededRandom(seed);
  const partial = createPartial(rows, heads, dim);
  partial.out.data.forEach((_, i, data) => (data[i] = random() - 0.5));
  partial.lse.data.forEach((_, i, data) => (data[i] = 4 * random()));
  return partial;
}
