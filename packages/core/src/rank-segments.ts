import { layoutSpans, type LayoutKind } from './layout.js';
import { documentSpans, type SequenceMask } from './sequence-mask.js';

/**
 * A run of a rank's local rows inside one document, evenly spaced in the sequence: local rows
 * [local, local + count) are global positions start, start + stride, ... (stride 1, or N for the striped layout).
 */
export interface Segment {
  readonly document: number;
  readonly local: number;
  readonly start: number;
  readonly count: number;
  readonly stride: number;
}

/** `rank`'s tokens under `kind`, cut at document boundaries, in local row order. */
export function rankSegments(kind: LayoutKind, seq: number, n: number, rank: number, mask?: SequenceMask): Segment[] {
  const documents = documentSpans(seq, mask?.documents);
  const segments: Segment[] = [];
  let local = 0;
  const push = (document: number, start: number, count: number, stride: number): void => {
    if (count <= 0) return;
    segments.push({ document, local, start, count, stride });
    local += count;
  };
  if (kind === 'striped') {
    // Rank r holds positions i·N + r: inside document [a, b) those with ceil((a - r) / N) <= i < ceil((b - r) / N).
    const firstRow = (position: number): number => Math.max(0, Math.ceil((position - rank) / n));
    documents.forEach((span, d) => push(d, firstRow(span.start) * n + rank, firstRow(span.end) - firstRow(span.start), n));
    return segments;
  }
  // Runs and documents are both ascending: walk them together.
  let d = 0;
  for (const run of layoutSpans(kind, seq, n, rank, mask)) {
    let start = run.start;
    while (start < run.end) {
      while (documents[d]!.end <= start) d++;
      const end = Math.min(run.end, documents[d]!.end);
      push(d, start, end - start, 1);
      start = end;
    }
  }
  return segments;
}
