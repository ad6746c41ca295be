import { attentionShape, MASKED_SCORE, SeqparError, type BlockAttentionKernel, type MaskSpec, type PartialAttention, type Tensor } from '@seqpar/core';
import { buildAttentionGraph } from './attention-graph.js';
import { ComputeThread } from './compute-thread.js';
import type { WireTensor } from './compute-protocol.js';
import type { ExecutionOptions } from './session-options.js';

/**
 * Block attention with LSE on ONNX Runtime, run on a ComputeThread: one graph (and session) per block shape and
 * mask kind, built the first time that shape is seen. Callers' tensors are copied, never detached.
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
    const key = `attention:${mask.kind}:${sq}:${sk}:${hq}:${hkv}:${d}`;
    await this.thread.load(key, () => buildAttentionGraph({ sq, sk, hq, hkv, d, mask: mask.kind }));
    const feeds: Record<string, WireTensor> = {
      q: { type: 'float32', data: q.data, dims: [sq, hq, d] },
      k: { type: 'float32', data: k.data, dims: [sk, hkv, d] },
      v: { type: 'float32', data: v.data, dims: [sk, hkv, d] },
    };
    if (mask.kind === 'positions') {
      feeds['q_pos'] = { type: 'int32', data: mask.queryPositions, dims: [sq] };
      feeds['k_pos'] = { type: 'int32', data: mask.keyPositions, dims: [sk] };
    }
    const outputs = await this.thread.run(key, feeds);
    return { out: { data: outputs['out']!, shape: [sq, hq, d] }, lse: { data: outputs['lse']!, shape: [hq, sq] } };
  }

  async close(): Promise<void> {
    if (this.ownsThread) await this.thread.close();
  }
}

/** A block with no queries or no keys: nothing to compute, every lse masked. */
function maskedResult(sq: number, hq: number, d: number): PartialAttention {
  return { out: { data: new Float32Array(sq * hq * d), shape: [sq, hq, d] }, lse: { data: new Float32Array(hq * sq).fill(MASKED_SCORE), shape: [hq, sq] } };
}

/** A kernel on a compute thread of its own (or on `thread`, shared with a rank's other graphs). */
export async function createAttentionKernel(options: ExecutionOptions = {}, thread?: ComputeThread): Promise<AttentionKernel> {
  return thread ? new AttentionKernel(thread, false) : new AttentionKernel(await ComputeThread.start(options), true);
}
