import { MASKED_SCORE, type PartialAttention } from '@seqpar/core';
import { SpareBuffer } from '../rpc/tensor-payload.js';

/**
 * The memory a worker's attention result accumulates in, kept from its last result (sent before the next request
 * starts): fresh, the 32 MiB out of a 16k-token request costs ~15 ms of first-touch page faults; reused, a fill.
 * Only a partial made here comes back, so memory the strategy got elsewhere is never handed out twice.
 */
export class ResultMemory {
  private readonly spare = new SpareBuffer();
  private made: ArrayBufferLike | undefined;

  /** An accumulator as core's createPartial makes it (out 0, every lse masked), out and lse in one buffer. */
  readonly createPartial = (rows: number, heads: number, dim: number): PartialAttention => {
    const outLength = rows * heads * dim;
    const bytes = 4 * (outLength + heads * rows);
    const reused = this.spare.holds(bytes);
    const values = new Float32Array(this.spare.take(bytes));
    this.made = values.buffer;
    const out = values.subarray(0, outLength);
    // A new buffer is zeros already: filling it would fault in all its pages in one step (0.4-0.65 s for the
    // 32 MiB out of a 64k request's rank on a loaded host), where merging faults them in piece by piece.
    if (reused) out.fill(0);
    return {
      out: { data: out, shape: [rows, heads, dim] },
      lse: { data: values.subarray(outLength).fill(MASKED_SCORE), shape: [heads, rows] },
    };
  };

  /** Takes back `result`'s memory once it has been sent, if it was made here. */
  give(result: PartialAttention): void {
    if (result.out.data.buffer !== this.made) return;
    this.made = undefined;
    this.spare.give([result.out]);
  }
}
