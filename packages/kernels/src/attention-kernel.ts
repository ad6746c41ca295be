import { attentionShape, MASKED_SCORE, SeqparError, type BlockAttentionKernel, type MaskSpec, type PartialAttention, type Tensor } from '@seqpar/core';
import { buildAttentionGraph, type AttentionGraphShape } from './attention-graph.js';
import { buildFusedAttentionGraph } from './fused-attention-graph.js';
import { ComputeThread } from './compute-thread.js';
import type { WireTensor } from './compute-protocol.js';
import type { ExecutionOptions } from './session-options.js';

/**
 * Block attention with LSE on ONNX Runtime, run on a ComputeThread: one graph (and session) per block shape and
 * mask kind, built the first time that shape is seen. Unmasked blocks go through ORT's fused attention op
 * (fused-attention-graph.ts), falling back to the exact graph for the rare block whose scores it cannot bracket.
 * Callers' tensors are copied, never detached.
 */
export class AttentionKernel implements BlockAttentionKernel {
  constructor(
    readonly thread: ComputeThread,
    private readonly ownsThread: boolean,
  ) {}

  async attend(q: Tensor, k: Tensor, v: Tensor, mask: MaskSpec): Promise<PartialAttention> {
    const { sq, sk, hq, hkv, d } = attentionShape(q, k, v);
    if (mask.kind === 'positions' && (mask.queryPositions.length !== sq || mask.keyPositions.length !== sk)) {
      throw new SeqparError('ERR_SHAPE_MISMATCH', `positions mask has ${mask.queryPositions.length} query and ${mask.keyPositions.length} key positions for a ${sq}x${sk} block`, { exitCode: 2 });
    }
    if (sq === 0 || sk === 0) return maskedResult(sq, hq, d);
    const shape: AttentionGraphShape = { sq, sk, hq, hkv, d, mask: mask.kind };
    const feeds: Record<string, WireTensor> = {
      q: { type: 'float32', data: q.data, dims: [sq, hq, d] },
      k: { type: 'float32', data: k.data, dims: [sk, hkv, d] },
      v: { type: 'float32', data: v.data, dims: [sk, hkv, d] },
    };
    if (mask.kind === 'positions') {
      feeds['q_pos'] = { type: 'int32', data: mask.queryPositions, dims: [sq] };
      feeds['k_pos'] = { type: 'int32', data: mask.keyPositions, dims: [sk] };
    }
    const key = `${mask.kind}:${sq}:${sk}:${hq}:${hkv}:${d}`;
    if (this.useFused(shape)) {
      const fused = await this.runGraph(`attention-fused:${key}`, () => buildFusedAttentionGraph(shape), feeds);
      if (fused['fallback']![0] === 0) return partial(fused, shape);
    }
    return partial(await this.runGraph(`attention:${key}`, () => buildAttentionGraph(shape), feeds), shape);
  }

  /** The fused graph (ORT's MultiHeadAttention) serves unmasked blocks on the CPU provider, where it is measured. */
  private useFused(shape: AttentionGraphShape): boolean {
    return shape.mask === 'none' && (this.thread.options.device ?? 'cpu') === 'cpu';
  }

  private async runGraph(key: string, build: () => Uint8Array, feeds: Record<string, WireTensor>): Promise<Record<string, Float32Array>> {
    await this.thread.load(key, build);
    return this.thread.run(key, feeds);
  }

  async close(): Promise<void> {
    if (this.ownsThread) await this.thread.close();
  }
}

function partial(outputs: Record<string, Float32Array>, { sq, hq, d }: AttentionGraphShape): PartialAttention {
  return { out: { data: outputs['out']!, shape: [sq, hq, d] }, lse: { data: outputs['lse']!, shape: [hq, sq] } };
}

/** A block with no queries or no keys: nothing to compute, every lse masked. */
function maskedResult(sq: number, hq: number, d: number): PartialAttention {
  return { out: { data: new Float32Array(sq * hq * d), shape: [sq, hq, d] }, lse: { data: new Float32Array(hq * sq).fill(MASKED_SCORE), shape: [hq, sq] } };
}

/** A kernel on a compute thread of its own (or on `thread`, shared with a rank's other graphs). */
export async function createAttentionKernel(options: ExecutionOptions = {}, thread?: ComputeThread): Promise<AttentionKernel> {
  return thread ? new AttentionKernel(thread, false) : new AttentionKernel(await ComputeThread.start(options), true);
}
