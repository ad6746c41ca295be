import type { BlockAttentionKernel, Tensor } from '@seqpar/core';
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
