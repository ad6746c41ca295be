import {
  attentionShape,
  createPartial,
  mergeInto,
  rowSlice,
  SeqparError,
  type BlockAttentionKernel,
  type BlockPiece,
  type MaskSpec,
  type PartialAttention,
  type Tensor,
} from '@seqpar/core';
import { buildAttentionGraph, type AttentionGraphShape } from './attention-graph.js';
import { attentionSessionBytes } from './attention-session-bytes.js';
import { buildFusedAttentionGraph } from './fused-attention-graph.js';
import { ComputeThread } from './compute-thread.js';
import { buildPiecesAttentionGraph, pieceShape } from './pieces-attention-graph.js';
import type { WireTensor } from './compute-protocol.js';
import { SessionCache } from './session-cache.js';
import type { ExecutionOptions, SessionMemory } from './session-options.js';
import { WORKSPACE_BUDGET_BYTES } from './workspace-budget.js';

/**
 * What the sessions of one kernel may hold (estimated, attention-session-bytes.ts). A server meets every sequence
 * length, and each block shape has its own session; past this the least recently used are released. Building a
 * session again costs about one run of it. Strategies cut blocks into pieces of a few shapes whose keys the
 * workspace budget bounds (workspace-budget.ts: a 512 x 2048 piece at H 8, D 64 is estimated at 50 MB), so this
 * holds the shapes of a full causal request and a sliding-window one together (16k tokens on 2 zigzag ranks: 512 x
 * 512 masked diagonals, 512 x 512..2048 x 2048 unmasked pieces, 512 x 1536 window strips and their fringes: 237 MB
 * estimated), so the two taking turns rebuild nothing. At 12 budgets a kernel's resident set after 150 new lengths
 * reached 1.23-1.30x its warm size (against 0.92-1.12x at 8), past the flat bound a long-lived server needs.
 */
export const SESSION_CACHE_BYTES = 8 * WORKSPACE_BUDGET_BYTES;

/** The fused graph's sessions keep their arena but plan no memory pattern (session-options.ts). */
const FUSED_SESSION_MEMORY: SessionMemory = { arena: true, pattern: false };

/**
 * Block attention with LSE on ONNX Runtime, run on a ComputeThread: one graph (and session) per block shape and
 * mask kind, built when that shape is first seen and kept in a byte-bounded cache (session-cache.ts). Unmasked blocks go through ORT's fused attention op
 * (fused-attention-graph.ts), falling back to the exact graph for the rare block whose scores it cannot bracket.
 * Callers' tensors are copied, never detached.
 */
export class AttentionKernel implements BlockAttentionKernel {
  readonly sessions: SessionCache;

  constructor(
    readonly thread: ComputeThread,
    private readonly ownsThread: boolean,
    sessionCacheBytes = SESSION_CACHE_BYTES,
  ) {
    this.sessions = new SessionCache(thread, sessionCacheBytes);
  }

  async attend(q: Tensor, k: Tensor, v: Tensor, mask: MaskSpec): Promise<PartialAttention> {
    const { sq, sk, hq, hkv, d } = attentionShape(q, k, v);
    if (mask.kind === 'positions' && (mask.queryPositions.length !== sq || mask.keyPositions.length !== sk)) {
      throw new SeqparError('ERR_SHAPE_MISMATCH', `positions mask has ${mask.queryPositions.length} query and ${mask.keyPositions.length} key positions for a ${sq}x${sk} block`, {
        exitCode: 2,
      });
    }
    if (sq === 0 || sk === 0) return createPartial(sq, hq, d);
    const shape: AttentionGraphShape = { sq, sk, hq, hkv, d, mask: mask.kind, ...(mask.kind === 'band' ? { band: { min: mask.min, max: mask.max } } : {}) };
    const feeds: Record<string, WireTensor> = {
      q: { type: 'float32', data: q.data, dims: [sq, hq, d] },
      k: { type: 'float32', data: k.data, dims: [sk, hkv, d] },
      v: { type: 'float32', data: v.data, dims: [sk, hkv, d] },
    };
    if (mask.kind === 'positions') {
      feeds['q_pos'] = { type: 'int32', data: mask.queryPositions, dims: [sq] };
      feeds['k_pos'] = { type: 'int32', data: mask.keyPositions, dims: [sk] };
    }
    const key = `${maskName(mask)}:${sq}:${sk}:${hq}:${hkv}:${d}`;
    if (this.useFused(shape)) {
      const fused = await this.sessions.run(`attention-fused:${key}`, attentionSessionBytes(shape, true), () => buildFusedAttentionGraph(shape), feeds, FUSED_SESSION_MEMORY);
      if (fused['fallback']![0] === 0) return partial(fused, shape);
    }
    return partial(await this.sessions.run(`attention:${key}`, attentionSessionBytes(shape, false), () => buildAttentionGraph(shape), feeds), shape);
  }

  /**
   * The pieces of one block (block-local spans, each under its own mask) in one call, merged in the graph
   * (pieces-attention-graph.ts): the block's out [Sq, Hq, D] and lse [Hq, Sq]. Its unmasked pieces take the fused
   * path, so off the CPU provider, or when a fused piece cannot bracket its scores, the pieces run one by one, each
   * as `attend` runs it, and merge here.
   */
  async attendPieces(q: Tensor, k: Tensor, v: Tensor, pieces: readonly BlockPiece[]): Promise<PartialAttention> {
    const { sq, sk, hq, hkv, d } = attentionShape(q, k, v);
    if ((this.thread.options.device ?? 'cpu') !== 'cpu') return this.attendEach(q, k, v, pieces);
    const shape = { sq, sk, hq, hkv, d, pieces };
    const key = `${sq}:${sk}:${hq}:${hkv}:${d}:${pieces.map(({ query, key, mask }) => `${query.start}-${query.end}/${key.start}-${key.end}/${maskName(mask)}`).join(',')}`;
    const feeds: Record<string, WireTensor> = {
      q: { type: 'float32', data: q.data, dims: [sq, hq, d] },
      k: { type: 'float32', data: k.data, dims: [sk, hkv, d] },
      v: { type: 'float32', data: v.data, dims: [sk, hkv, d] },
    };
    // Pieces run one after another, so the session holds about its largest piece's memory, and every piece's out
    // and lse until the merges at the end.
    const outs = pieces.reduce((sum, { query }) => sum + (query.end - query.start) * hq * (d + 1) * Float32Array.BYTES_PER_ELEMENT, 0);
    const bytes = outs + Math.max(...pieces.map((piece) => attentionSessionBytes(pieceShape(shape, piece), piece.mask.kind === 'none')));
    const outputs = await this.sessions.run(`attention-pieces:${key}`, bytes, () => buildPiecesAttentionGraph(shape), feeds);
    if (outputs['fallback']![0] !== 0) return this.attendEach(q, k, v, pieces);
    return { out: { data: outputs['out']!, shape: [sq, hq, d] }, lse: { data: outputs['lse']!, shape: [hq, sq] } };
  }

  /** The pieces one call each, merged here. */
  private async attendEach(q: Tensor, k: Tensor, v: Tensor, pieces: readonly BlockPiece[]): Promise<PartialAttention> {
    const [sq, hq, d] = q.shape as [number, number, number];
    const acc = createPartial(sq, hq, d);
    for (const { query, key, mask } of pieces) {
      mergeInto(acc, await this.attend(rowSlice(q, query.start, query.end), rowSlice(k, key.start, key.end), rowSlice(v, key.start, key.end), mask), query);
    }
    return acc;
  }

  /** The fused graph (ORT's MultiHeadAttention) serves unmasked blocks on the CPU provider, where it is measured. */
  private useFused(shape: AttentionGraphShape): boolean {
    return shape.mask === 'none' && (this.thread.options.device ?? 'cpu') === 'cpu';
  }

  async close(): Promise<void> {
    if (this.ownsThread) await this.thread.close();
  }
}

/** A mask as part of a session key (a positions mask's positions are feeds, not part of the graph). */
function maskName(mask: MaskSpec): string {
  return `${mask.kind}${mask.kind === 'band' ? `[${mask.min},${mask.max}]` : ''}`;
}

function partial(outputs: Record<string, Float32Array>, { sq, hq, d }: AttentionGraphShape): PartialAttention {
  return { out: { data: outputs['out']!, shape: [sq, hq, d] }, lse: { data: outputs['lse']!, shape: [hq, sq] } };
}

/** A block with no queries or no keys: nothing to compute, every lse masked. */
/** A kernel on a compute thread of its own (or on `thread`, shared with a rank's other graphs). */
export async function createAttentionKernel(options: ExecutionOptions = {}, thread?: ComputeThread): Promise<AttentionKernel> {
  return thread ? new AttentionKernel(thread, false) : new AttentionKernel(await ComputeThread.start(options), true);
}
