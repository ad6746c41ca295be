import { checkSequenceMask, RankRecorder, UsageError, type BlockAttentionKernel, type PartialAttention, type RankStats, type Tensor, type TraceSpan } from '@seqpar/core';
import { createInprocGroup, type Transport } from '@seqpar/transport';
import { STRATEGIES, type StrategyName } from './registry.js';
import { gatherResults, shardRequest } from './shard-request.js';

export interface InprocRunOptions {
  readonly causal: boolean;
  /** Packed documents' lengths (sum S); absent: one document. */
  readonly documents?: readonly number[];
  /** Sliding window W (causal only): query i sees keys i-W < j <= i. */
  readonly window?: number;
  readonly degree: number;
  /** usp: ranks per all-to-all group. */
  readonly ulyssesDegree?: number;
  /** One kernel per rank, or one shared by all (calls then queue on its thread). */
  readonly kernels: readonly BlockAttentionKernel[];
  readonly timeoutMs?: number;
  readonly traced?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Endpoints of ranks 0..degree-1, all opened in this process (e.g. ws or shm endpoints of one rendezvous); the
   * caller keeps and closes them. Default: a fresh inproc group, closed at the end.
   */
  readonly transports?: readonly Transport[];
}

export interface InprocRunResult {
  readonly result: PartialAttention;
  readonly ranks: RankStats[];
  readonly spans: TraceSpan[][];
  readonly framesSent: number[];
}

/**
 * Runs a strategy with all its ranks in this process, connected by the inproc transport (or endpoints the caller
 * opened): the NULL-device way to run the whole distributed schedule (tests, `--transport inproc`). Shards the
 * request, runs every rank, gathers.
 */
export async function runStrategyInproc(name: StrategyName, q: Tensor, k: Tensor, v: Tensor, options: InprocRunOptions): Promise<InprocRunResult> {
  const strategy = STRATEGIES[name];
  const degree = name === 'single' ? 1 : options.degree;
  const usp = options.ulyssesDegree === undefined ? {} : { ulyssesDegree: options.ulyssesDegree };
  const mask = { causal: options.causal, ...(options.documents ? { documents: options.documents } : {}), ...(options.window !== undefined ? { window: options.window } : {}) };
  checkSequenceMask(q.shape[0]!, mask);
  strategy.check(q.shape[1]!, k.shape[1]!, degree, { ...usp, ...mask });
  const transports = options.transports ?? createInprocGroup(degree);
  if (transports.length !== degree) throw new UsageError(`${degree} ranks need ${degree} transport endpoints, got ${transports.length}`);
  const inputs = shardRequest(strategy, q, k, v, mask, degree);
  const recorders = inputs.map((_, rank) => new RankRecorder(rank, options.traced ?? false));
  try {
    const parts = await Promise.all(
      inputs.map((input, rank) =>
        strategy.run(
          {
            rank,
            worldSize: degree,
            transport: transports[rank]!,
            kernel: options.kernels[rank % options.kernels.length]!,
            recorder: recorders[rank]!,
            tagPrefix: '',
            timeoutMs: options.timeoutMs ?? 60_000,
            ...(options.signal ? { signal: options.signal } : {}),
          },
          { ...input, ...usp },
        ),
      ),
    );
    return {
      result: gatherResults(strategy, parts, q.shape[0]!, mask),
      ranks: recorders.map((recorder, rank) => recorder.stats(transports[rank]!.stats())),
      spans: recorders.map((recorder) => recorder.spans),
      framesSent: transports.map((transport) => transport.stats().framesSent),
    };
  } finally {
    if (!options.transports) await Promise.all(transports.map((transport) => transport.close()));
  }
}
