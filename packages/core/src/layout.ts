import { documentZigzagSpans } from './document-zigzag.js';
import { UsageError } from './errors.js';
import type { SequenceMask } from './sequence-mask.js';
import type { Tensor } from './tensor.js';

/**
 * How a sequence of S tokens is spread over N ranks:
 *  - contiguous (ring, Ulysses): rank r owns [floor(r·S/N), floor((r+1)·S/N))
 *  - striped (Striped Attention): rank r owns tokens r, r+N, r+2N, ...
 *  - zigzag: S is cut into 2N chunks at floor(c·S/2N); rank r owns chunk r, then chunk 2N-1-r
 * Every layout lists a rank's tokens in ascending global order, works for any S >= 0 (S < N leaves some ranks
 * empty) and partitions 0..S-1 over the ranks. With packed documents (a mask's `documents`), zigzag balances per
 * document instead (document-zigzag.ts); the other layouts ignore documents.
 */
export type LayoutKind = 'contiguous' | 'striped' | 'zigzag';

export const LAYOUTS: readonly LayoutKind[] = ['contiguous', 'striped', 'zigzag'];

export interface Span {
  readonly start: number;
  readonly end: number;
}

/** `a` mod `n` in 0..n-1, also for negative `a`: the rank `step` hops back round a ring of n is mod(rank - step, n). */
export const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** Where part `index` of a sequence of `seq` tokens cut into `parts` near-equal parts starts (`parts` for the end). */
export const partStart = (index: number, parts: number, seq: number): number => Math.floor((index * seq) / parts);

/** Global token span of zigzag chunk c (of 2N). */
function zigzagChunk(seq: number, n: number, chunk: number): Span {
  return { start: partStart(chunk, 2 * n, seq), end: partStart(chunk + 1, 2 * n, seq) };
}

/** A rank's two zigzag chunks: its early one (chunk r) and its late one (chunk 2N-1-r). */
export function zigzagChunks(seq: number, n: number, rank: number): { first: Span; second: Span } {
  return { first: zigzagChunk(seq, n, rank), second: zigzagChunk(seq, n, 2 * n - 1 - rank) };
}

/** Zigzag over packed documents: the rank's spans, or undefined when the classic layout applies. */
function documentSpansOf(kind: LayoutKind, seq: number, n: number, rank: number, mask?: SequenceMask): Span[] | undefined {
  return kind === 'zigzag' && mask?.documents ? documentZigzagSpans(seq, n, mask)[rank] : undefined;
}

/** A rank's tokens as ascending runs of consecutive positions (contiguous and zigzag layouts). */
export function layoutSpans(kind: Exclude<LayoutKind, 'striped'>, seq: number, n: number, rank: number, mask?: SequenceMask): Span[] {
  checkWorld(seq, n, rank);
  const spans = documentSpansOf(kind, seq, n, rank, mask);
  if (spans) return spans;
  if (kind === 'contiguous') return [{ start: partStart(rank, n, seq), end: partStart(rank + 1, n, seq) }];
  const { first, second } = zigzagChunks(seq, n, rank);
  return [first, second];
}

/** How many tokens `rank` owns, without listing them. */
export function shardLength(kind: LayoutKind, seq: number, n: number, rank: number, mask?: SequenceMask): number {
  checkWorld(seq, n, rank);
  const spans = documentSpansOf(kind, seq, n, rank, mask);
  if (spans) return spans.reduce((sum, span) => sum + span.end - span.start, 0);
  switch (kind) {
    case 'contiguous':
      return partStart(rank + 1, n, seq) - partStart(rank, n, seq);
    case 'striped':
      return Math.max(0, Math.ceil((seq - rank) / n));
    case 'zigzag': {
      const { first, second } = zigzagChunks(seq, n, rank);
      return first.end - first.start + second.end - second.start;
    }
  }
}

/** Global positions owned by `rank`, ascending. */
export function layoutPositions(kind: LayoutKind, seq: number, n: number, rank: number, mask?: SequenceMask): Int32Array {
  const positions = new Int32Array(shardLength(kind, seq, n, rank, mask));
  const spans = documentSpansOf(kind, seq, n, rank, mask);
  if (spans) {
    let i = 0;
    for (const span of spans) for (let p = span.start; p < span.end; p++) positions[i++] = p;
    return positions;
  }
  switch (kind) {
    case 'contiguous': {
      const start = partStart(rank, n, seq);
      return positions.map((_, i) => start + i);
    }
    case 'striped':
      return positions.map((_, i) => i * n + rank);
    case 'zigzag': {
      const { first, second } = zigzagChunks(seq, n, rank);
      const firstLength = first.end - first.start;
      return positions.map((_, i) => (i < firstLength ? first.start + i : second.start + i - firstLength));
    }
  }
}

/** Splits the rows (leading dimension) of `t` over N ranks; each shard is a copy. */
export function shardRows(t: Tensor, kind: LayoutKind, n: number, mask?: SequenceMask): Tensor[] {
  const seq = t.shape[0]!;
  const rowSize = rowSizeOf(t);
  return Array.from({ length: n }, (_, rank) => {
    const positions = layoutPositions(kind, seq, n, rank, mask);
    const data = new Float32Array(positions.length * rowSize);
    positions.forEach((p, i) => data.set(t.data.subarray(p * rowSize, (p + 1) * rowSize), i * rowSize));
    return { data, shape: [positions.length, ...t.shape.slice(1)] };
  });
}

/** Inverse of `shardRows`: puts every rank's rows back at their global positions. */
export function unshardRows(shards: readonly Tensor[], kind: LayoutKind, seq: number, mask?: SequenceMask): Tensor {
  const n = shards.length;
  const rowShape = shards[0]?.shape.slice(1) ?? [];
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(seq * rowSize);
  shards.forEach((shard, rank) => {
    const positions = layoutPositions(kind, seq, n, rank, mask);
    if (shard.shape[0] !== positions.length) {
      throw new UsageError(`rank ${rank} returned ${shard.shape[0]} rows but owns ${positions.length} under the ${kind} layout`, 'ERR_SHAPE_MISMATCH');
    }
    positions.forEach((p, i) => data.set(shard.data.subarray(i * rowSize, (i + 1) * rowSize), p * rowSize));
  });
  return { data, shape: [seq, ...rowShape] };
}

function rowSizeOf(t: Tensor): number {
  return t.shape.slice(1).reduce((a, b) => a * b, 1);
}

function checkWorld(seq: number, n: number, rank: number): void {
  if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`sequence length ${seq} is not a whole number >= 0`);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rank) || rank < 0 || rank >= n) {
    throw new RangeError(`rank ${rank} is not in 0..${n - 1}`);
  }
}
