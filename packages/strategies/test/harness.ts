import { RankRecorder, type BlockAttentionKernel, type PartialAttention, type RankStats, type Tensor } from '@seqpar/core';
import { createInprocGroup, type Transport } from '@seqpar/transport';
import { gatherResults, shardRequest, STRATEGIES, type StrategyName } from '../src/index.js';

export interface InprocRun {
  readonly result: PartialAttention;
  readonly stats: RankStats[];
  readonly transports: Transport[];
}

/** Runs a strategy on `n` in-process ranks (real transports and kernel) and gathers the full result. */
export async function runInproc(name: StrategyName, kernel: BlockAttentionKernel, q: Tensor, k: Tensor, v: Tensor, causal: boolean, n: number): Promise<InprocRun> {
  const strategy = STRATEGIES[name];
  strategy.check(q.shape[1]!, k.shape[1]!, n);
  const transports = createInprocGroup(n);
  const inputs = shardRequest(strategy, q, k, v, causal, n);
  const recorders = inputs.map((_, rank) => new RankRecorder(rank));
  try {
    const parts = await Promise.all(
      inputs.map((input, rank) =>
        strategy.run({ rank, worldSize: n, transport: transports[rank]!, kernel, recorder: recorders[rank]!, tagPrefix: 't/', timeoutMs: 20_000 }, input),
      ),
    );
    const stats = recorders.map((recorder, rank) => recorder.stats(transports[rank]!.stats()));
    return { result: gatherResults(strategy, parts, q.shape[0]!), stats, transports };
  } finally {
    await Promise.all(transports.map((transport) => transport.close()));
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
