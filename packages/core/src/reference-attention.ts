import type { MaskSpec } from './attention-types.js';
import { MASKED_SCORE } from './attention-types.js';
import { UsageError } from './errors.js';
import { documentIndex, isVisibleInSequence, type SequenceMask } from './sequence-mask.js';
import type { Tensor } from './tensor.js';

/** fp64 result of the reference: out [Sq, Hq, D], lse [Hq, Sq]. */
export interface ReferenceAttention {
  readonly out: Float64Array;
  readonly lse: Float64Array;
}

/** A block mask, or a whole sequence's mask (q, k and v are then the whole sequence). */
export type ReferenceMask = MaskSpec | { readonly kind: 'sequence'; readonly mask: SequenceMask };

/** Whether query i may see key j under `mask` (block-local indices). */
export function isVisible(mask: MaskSpec, i: number, j: number): boolean {
  switch (mask.kind) {
    case 'band':
      return j - i >= mask.min && j - i <= mask.max;
    case 'none':
      return true;
    case 'causal-inclusive':
      return j <= i;
    case 'causal-strict':
      return j < i;
    case 'positions':
      return mask.keyPositions[j]! <= mask.queryPositions[i]!;
  }
}

export interface AttentionShape {
  readonly sq: number;
  readonly sk: number;
  readonly hq: number;
  readonly hkv: number;
  readonly d: number;
}

/** Checks q [Sq, Hq, D], k and v [Sk, Hkv, D] against each other and returns the sizes. */
export function attentionShape(q: Tensor, k: Tensor, v: Tensor): AttentionShape {
  const [sq, hq, d] = q.shape;
  const [sk, hkv, dk] = k.shape;
  if (q.shape.length !== 3 || k.shape.length !== 3 || v.shape.length !== 3) {
    throw new UsageError(`q, k and v must be 3-D [S, H, D]; got [${q.shape}], [${k.shape}], [${v.shape}]`, 'ERR_SHAPE_MISMATCH');
  }
  if (v.shape[0] !== sk || v.shape[1] !== hkv || v.shape[2] !== dk) {
    throw new UsageError(`k [${k.shape}] and v [${v.shape}] must have the same shape`, 'ERR_SHAPE_MISMATCH');
  }
  if (dk !== d) throw new UsageError(`head dim of q (${d}) and k (${dk}) differ`, 'ERR_SHAPE_MISMATCH');
  if (hkv! < 1 || hq! % hkv! !== 0) {
    throw new UsageError(`query heads (${hq}) must be a multiple of kv heads (${hkv})`, 'ERR_SHAPE_MISMATCH');
  }
  return { sq: sq!, sk: sk!, hq: hq!, hkv: hkv!, d: d! };
}

/**
 * Plain two-pass softmax attention in float64: the independent reference every kernel and strategy is tested
 * against. Slow on purpose (no tiling, no merge), so it shares no code path with what it checks.
 */
export function referenceAttention(q: Tensor, k: Tensor, v: Tensor, mask: ReferenceMask): ReferenceAttention {
  const { sq, sk, hq, hkv, d } = attentionShape(q, k, v);
  const visible = visibility(mask, sk);
  const group = hq / hkv;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(sq * hq * d);
  const lse = new Float64Array(hq * sq);
  const scores = new Float64Array(sk);
  for (let h = 0; h < hq; h++) {
    const kvHead = Math.floor(h / group);
    for (let i = 0; i < sq; i++) {
      let max = -Infinity;
      for (let j = 0; j < sk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q.data[(i * hq + h) * d + c]! * k.data[(j * hkv + kvHead) * d + c]!;
        scores[j] = visible(i, j) ? dot * scale : -Infinity;
        max = Math.max(max, scores[j]!);
      }
      if (max === -Infinity) {
        lse[h * sq + i] = MASKED_SCORE;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < sk; j++) sum += Math.exp(scores[j]! - max);
      lse[h * sq + i] = max + Math.log(sum);
      for (let j = 0; j < sk; j++) {
        const weight = Math.exp(scores[j]! - max) / sum;
        if (weight === 0) continue;
        for (let c = 0; c < d; c++) out[(i * hq + h) * d + c] += weight * v.data[(j * hkv + kvHead) * d + c]!;
      }
    }
  }
  return { out, lse };
}

function visibility(mask: ReferenceMask, seq: number): (i: number, j: number) => boolean {
  if (mask.kind !== 'sequence') return (i, j) => isVisible(mask, i, j);
  const documentOf = documentIndex(seq, mask.mask.documents);
  return (i, j) => isVisibleInSequence(mask.mask, documentOf, i, j);
}
