import { SeqparError, UsageError, type Tensor } from '@seqpar/core';
import { STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { allGather } from '@seqpar/transport';
import { generateOp } from './generate-op.js';
import type { ResultMemory } from './result-memory.js';
import { sessionPrefillOp, sessionReleaseOp, sessionStepOp } from './generation-sessions.js';

/** What the coordinator asks one rank to do: arguments plus this rank's tensors. */
export interface OpCall {
  readonly args: Readonly<Record<string, unknown>>;
  readonly tensors: Tensor[];
}

export interface OpReply {
  readonly header: Record<string, unknown>;
  readonly tensors: Tensor[];
  /** Called once the reply's tensors are sent: their memory may be reused. */
  readonly sent?: () => void;
}

/** A rank's context on a worker: the strategies' context plus the memory its attention results reuse. */
export interface WorkerContext extends RankContext {
  readonly resultMemory: ResultMemory;
}

/** Streams a partial reply to the coordinator ahead of the result (in order); see control-messages.ts. */
export type EmitPartial = (header: Record<string, unknown>) => void;

/** An operation every participating worker runs on its share; `ctx.transport` reaches the other participants. */
export type WorkerOp = (ctx: WorkerContext, call: OpCall, emit: EmitPartial) => Promise<OpReply>;

/** Distributed attention by any registered strategy: tensors [q, k, v] of this rank, reply [out, lse]. */
const attentionOp: WorkerOp = async (ctx, { args, tensors }) => {
  const strategy = STRATEGIES[args.strategy as StrategyName];
  if (!strategy) throw new UsageError(`unknown strategy '${String(args.strategy)}'`);
  const [q, k, v] = tensors;
  if (!q || !k || !v) throw new SeqparError('ERR_BAD_FRAME', 'attention needs q, k and v');
  const mask = {
    causal: args.causal === true,
    ...(Array.isArray(args.documents) ? { documents: args.documents as number[] } : {}),
    ...(typeof args.window === 'number' ? { window: args.window } : {}),
  };
  const usp = args.ulyssesDegree === undefined ? {} : { ulyssesDegree: Number(args.ulyssesDegree) };
  const part = await strategy.run({ ...ctx, createPartial: ctx.resultMemory.createPartial }, { q, k, v, seq: Number(args.seq), ...mask, ...usp });
  return { header: {}, tensors: [part.out, part.lse], sent: () => ctx.resultMemory.give(part) };
};

/**
 * A collective smoke test of the whole path: each rank sums its tensor (fp64), all-gathers the sums over the
 * data plane, and replies with every rank's sum, which must agree across ranks.
 */
const allGatherChecksumOp: WorkerOp = async (ctx, { tensors }) => {
  const sum = ctx.recorder.time('compute', 'sum', () => (tensors[0]?.data ?? []).reduce((a, b) => a + b, 0));
  const frames = await ctx.recorder.time('recv', 'all-gather', async () =>
    allGather(ctx.transport, `${ctx.tagPrefix}checksum`, { header: { sum: await sum } }, { timeoutMs: ctx.timeoutMs, signal: ctx.signal }),
  );
  return { header: { sums: frames.map((frame) => frame.header.sum) }, tensors: [] };
};

/** How the worker loop treats an op's calls besides running them; an op without an entry gets the defaults. */
export interface OpTraits {
  /**
   * Inputs the op reads in place only, which may so stay in the frames (shm slots) they arrived in until the call
   * is answered instead of being copied out. Default none.
   */
  readonly inPlaceInputs?: (args: Readonly<Record<string, unknown>>) => readonly number[];
  /** Whether the call's memory is watched (its stats' workspacePeakMb). Default true. */
  readonly measured?: boolean;
}

/**
 * Attention reads its q, k and v in place: on one rank all three stay in their slots (12 MiB less copying at 2k
 * tokens, H 8, D 64; 48 MiB at 8k); with more ranks only q, since a pass-KV strategy sends its own k and v on as
 * one frame, which it finds ready only where they arrived back to back. A decode step comes every few
 * milliseconds and its stats go unread, while a memory window costs /proc reads and a high-water-mark reset
 * (~0.25 ms of CPU per step measured).
 */
export const OP_TRAITS: Readonly<Record<string, OpTraits>> = {
  attention: { inPlaceInputs: (args) => (args.degree === 1 ? [0, 1, 2] : [0]) },
  'session.step': { measured: false },
  'session.release': { measured: false },
};

/** Operations a worker serves, by name. A new kind of request is one entry here. */
export const WORKER_OPS: Readonly<Record<string, WorkerOp>> = {
  attention: attentionOp,
  'all-gather-checksum': allGatherChecksumOp,
  generate: generateOp,
  'session.prefill': sessionPrefillOp,
  'session.step': sessionStepOp,
  'session.release': sessionReleaseOp,
};
