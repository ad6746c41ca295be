import { NO_MASK, shardLength, type BlockMask, type LayoutKind } from '@seqpar/core';
import { BLOCK_RULES, planPieces, visibleBlocks, visiblePairs, type PlannedBlock, type RingWorld } from '@seqpar/strategies';
import type { KernelPieces } from './kernel-table.js';
import type { ScheduleStep } from './schedule.js';
import { attentionFlops, blockBytes, maskedPairs, mergeBytes, totalPairs, type AttentionWorkload } from './workload.js';

/** The work of one rank's queries against one rank's KV shard. */
export interface BlockWork {
  readonly pairs: number;
  /** The part of `pairs` in causally masked blocks. */
  readonly maskedPairs: number;
  readonly calls: number;
  /** The kernel calls by shape. */
  readonly pieces: readonly KernelPieces[];
  /** Query rows the blocks cover. */
  readonly queryRows: number;
  /** Key rows the blocks read. */
  readonly keyRows: number;
}

/**
 * The kernel calls a strategy makes for one block of `queryRows` x `keyRows` under `mask` (@seqpar/strategies'
 * planPieces: unmasked query chunks of up to 2048 rows, causal triangles halved to 512-row diagonals), grouped by shape.
 */
export function blockPieces(queryRows: number, keyRows: number, mask: BlockMask, w: Pick<AttentionWorkload, 'heads' | 'kvHeads' | 'headDim'>): KernelPieces[] {
  const groups = new Map<string, KernelPieces>();
  for (const piece of planPieces(queryRows, keyRows, mask)) {
    const shape = {
      queryRows: piece.query.end - piece.query.start,
      keyRows: piece.key.end - piece.key.start,
      masked: piece.mask.kind !== 'none',
      heads: w.heads,
      kvHeads: w.kvHeads,
      headDim: w.headDim,
    };
    const key = `${shape.queryRows}|${shape.keyRows}|${shape.masked}`;
    groups.set(key, { ...shape, count: (groups.get(key)?.count ?? 0) + 1 });
  }
  return [...groups.values()];
}

/** Query rows the calls of `pieces` return, each merged into an accumulator as it arrives. */
export const mergedRows = (pieces: readonly KernelPieces[]): number => pieces.reduce((sum, p) => sum + p.count * p.queryRows, 0);

/** A step's compute and memory traffic for `work`, every call's result merged into an accumulator as it arrives. */
export function workOfStep(work: BlockWork, w: AttentionWorkload): Pick<ScheduleStep, 'flops' | 'maskedFlops' | 'kernelCalls' | 'pieces' | 'kernelBytes' | 'mergeBytes'> {
  return {
    flops: attentionFlops(work.pairs, w),
    maskedFlops: attentionFlops(work.maskedPairs, w),
    kernelCalls: work.calls,
    pieces: work.pieces,
    kernelBytes: blockBytes(work.queryRows, work.keyRows, w),
    mergeBytes: mergeBytes(mergedRows(work.pieces), w),
  };
}

/** Calls of `pieces` in all. */
export const callCount = (pieces: readonly KernelPieces[]): number => pieces.reduce((sum, p) => sum + p.count, 0);

/** How a request's queries and KV are spread over `degree` ranks, and the work between any two shards. */
export interface ShardWork {
  queryRows(rank: number): number;
  kvRows(rank: number): number;
  work(queryOwner: number, kvHolder: number): BlockWork;
}

/**
 * Without a cached prefix: the layout's real pass-KV block rule (@seqpar/strategies' BLOCK_RULES), with the owner's
 * queries and the holder's KV, so ring causal is unbalanced and striped/zigzag are balanced exactly as
 * the strategies run them, and only the pairs the documents and window leave visible are priced.
 */
export function plannedShardWork(layout: LayoutKind, w: AttentionWorkload, degree: number): ShardWork {
  const world = worldOfWorkload(w, degree);
  const rows = (rank: number): number => shardLength(layout, w.seq, degree, rank, world);
  return {
    queryRows: rows,
    kvRows: rows,
    work: (owner, holder) => blocksWork(BLOCK_RULES[layout](world, owner, holder), w),
  };
}

const worldOfWorkload = (w: AttentionWorkload, n: number): RingWorld => ({
  seq: w.seq,
  n,
  causal: w.causal,
  ...(w.documents ? { documents: w.documents } : {}),
  ...(w.window !== undefined ? { window: w.window } : {}),
});

/** The pairs and kernel calls of `blocks`, as the strategies cut them. */
function blocksWork(blocks: readonly PlannedBlock[], w: AttentionWorkload): BlockWork {
  const work = blocks.reduce(
    (sum, b) => {
      const [q, k] = [b.query.end - b.query.start, b.key.end - b.key.start];
      const pairs = visiblePairs(q, k, b.mask);
      return {
        pairs: sum.pairs + pairs,
        maskedPairs: sum.maskedPairs + (b.mask.kind === 'none' ? 0 : pairs),
        pieces: [...sum.pieces, ...blockPieces(q, k, b.mask, w)],
        queryRows: sum.queryRows + q,
        keyRows: sum.keyRows + k,
      };
    },
    { pairs: 0, maskedPairs: 0, pieces: [] as KernelPieces[], queryRows: 0, keyRows: 0 },
  );
  return { ...work, calls: callCount(work.pieces) };
}

/**
 * With a cached prefix (prefill after a prompt cache, or decode): each rank holds 1/N of the queries and of the
 * cache, and a balanced layout gives every (owner, holder) pair 1/N² of the work (context-parallel inference,
 * Meta 2024, §3). Fractional rows are fine here: this is a volume model, not a layout.
 */
export function balancedShardWork(w: AttentionWorkload, degree: number): ShardWork {
  const pairs = totalPairs(w) / degree ** 2;
  const masked = maskedPairs(w) / degree ** 2;
  const queryRows = w.seq / degree;
  const keyRows = (w.seq + w.prefix) / degree;
  const pieces = pairs > 0 ? volumePieces(pairs, queryRows, keyRows, w) : [];
  return {
    queryRows: () => queryRows,
    kvRows: () => keyRows,
    work: () => ({ pairs, maskedPairs: masked, calls: callCount(pieces), pieces, queryRows, keyRows }),
  };
}

/**
 * Unmasked calls covering `pairs` visible pairs of a `queryRows` x `keyRows` block, cut as planPieces cuts a dense
 * block (a volume model: a causal share counts only its visible pairs).
 */
export function volumePieces(pairs: number, queryRows: number, keyRows: number, w: AttentionWorkload): KernelPieces[] {
  const [q, k] = [Math.max(1, Math.ceil(queryRows)), Math.max(1, Math.ceil(keyRows))];
  const dense = blockPieces(q, k, NO_MASK, w);
  const share = Math.min(1, pairs / (q * k));
  return dense.map((p) => ({ ...p, count: p.count * share }));
}

/** The calls of attention over the whole request on one rank: all of `w`'s heads (single), or a share (Ulysses). */
export function wholePieces(w: AttentionWorkload): KernelPieces[] {
  if (w.prefix === 0) return [...blocksWork(visibleBlocks('contiguous', worldOfWorkload(w, 1), 0, 0), w).pieces];
  return volumePieces(totalPairs(w), w.seq, w.seq + w.prefix, w);
}

/** The compute of a step that attends the whole request (single, or Ulysses over its share of the heads in `w`). */
export function wholeRequestWork(w: AttentionWorkload): Pick<ScheduleStep, 'flops' | 'maskedFlops' | 'kernelCalls' | 'pieces' | 'kernelBytes' | 'mergeBytes'> {
  const pieces = wholePieces(w);
  return {
    flops: attentionFlops(totalPairs(w), w),
    maskedFlops: attentionFlops(maskedPairs(w), w),
    kernelCalls: callCount(pieces),
    pieces,
    kernelBytes: blockBytes(w.seq, w.seq + w.prefix, w),
    mergeBytes: mergeBytes(mergedRows(pieces), w),
  };
}
