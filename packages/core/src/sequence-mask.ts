import { UsageError } from './errors.js';
import type { Span } from './layout.js';

/**
 * Which keys each query of a whole sequence sees (global positions i, j):
 *  - documents: lengths L1..Lm of documents packed back to back (sum S); query i sees key j only within its own
 *    document. Absent: one document of S tokens.
 *  - causal: j <= i.
 *  - window (causal only): i - W < j <= i, Mistral's `sliding_window`.
 * So query i sees one run of keys, [firstVisibleKey(i), lastVisibleKey(i)], and both ends only grow with i: every
 * strategy plans its blocks from that.
 */
export interface SequenceMask {
  readonly causal: boolean;
  readonly documents?: readonly number[];
  readonly window?: number;
}

/** Throws a UsageError unless `mask` is well formed for a sequence of `seq` tokens. */
export function checkSequenceMask(seq: number, mask: SequenceMask): void {
  const { documents, window } = mask;
  if (documents !== undefined) {
    if (!Array.isArray(documents) || !documents.every((length) => Number.isInteger(length) && length >= 1)) {
      throw new UsageError(`document lengths must be whole numbers >= 1, got [${String(documents)}]`);
    }
    const total = documents.reduce((a, b) => a + b, 0);
    if (total !== seq) throw new UsageError(`document lengths sum to ${total} but the sequence has ${seq} tokens`);
  }
  if (window !== undefined) {
    if (!Number.isInteger(window) || window < 1) throw new UsageError(`window must be a whole number >= 1, got ${String(window)}`);
    if (!mask.causal) throw new UsageError('a sliding window needs causal attention');
  }
}

/** The documents as global spans, in order (one span of `seq` tokens without documents; none when seq is 0). */
export function documentSpans(seq: number, documents?: readonly number[]): Span[] {
  const lengths = documents ?? (seq > 0 ? [seq] : []);
  const spans: Span[] = [];
  let start = 0;
  for (const length of lengths) {
    spans.push({ start, end: start + length });
    start += length;
  }
  return spans;
}

/**
 * The band of `j - i` a mask allows inside one document: [-(W-1), 0] with a window, (-inf, 0] when causal,
 * everything otherwise.
 */
export function maskBand(mask: SequenceMask): { readonly min: number; readonly max: number } {
  return { min: mask.window === undefined ? -Infinity : 1 - mask.window, max: mask.causal ? 0 : Infinity };
}

/** Pairs (i, j) of one document of `length` tokens that the mask leaves visible: what attention over it costs. */
export function documentPairs(length: number, mask: SequenceMask): number {
  if (!mask.causal) return length * length;
  const w = Math.min(mask.window ?? length, length);
  // Rows i < w see i + 1 keys, the rest see w.
  return (w * (w + 1)) / 2 + (length - w) * w;
}

/** Visible pairs of the whole sequence. */
export function sequencePairs(seq: number, mask: SequenceMask): number {
  return documentSpans(seq, mask.documents).reduce((sum, span) => sum + documentPairs(span.end - span.start, mask), 0);
}

/** Whether query i sees key j (global positions), given the document of every position. */
export function isVisibleInSequence(mask: SequenceMask, documentOf: Int32Array, i: number, j: number): boolean {
  if (documentOf[i] !== documentOf[j]) return false;
  const { min, max } = maskBand(mask);
  return j - i >= min && j - i <= max;
}

/** The index of each position's document. */
export function documentIndex(seq: number, documents?: readonly number[]): Int32Array {
  const index = new Int32Array(seq);
  documentSpans(seq, documents).forEach((span, d) => index.fill(d, span.start, span.end));
  return index;
}
