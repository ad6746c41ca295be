import { shardLength, zigzagChunks, type LayoutKind, type Span } from './layout.js';

export type BlockMask = 'none' | 'causal-inclusive' | 'causal-strict';

/**
 * One kernel call of a pass-KV schedule: this rank's local query rows `query` against rows `key` of the KV block
 * that came from rank `source`, under `mask` (block-local indices). Ranges are never empty.
 */
export interface PlannedBlock {
  readonly source: number;
  readonly query: Span;
  readonly key: Span;
  readonly mask: BlockMask;
}

/**
 * The blocks rank `rank` computes at step `step` of a pass-KV ring, where KV travels r -> r+1 so the block in hand
 * comes from source s = (rank - step) mod N. An empty list means the step is skipped. Causal rules:
 *  - contiguous: s < r all visible; s = r the causal diagonal; s > r above the diagonal, skipped
 *  - striped:    local i, j are global i·N+r and j·N+s, so j <= i when s <= r and j < i when s > r
 *  - zigzag:     s = r local causal; s < r all Q vs the source's first chunk; s > r Q's second chunk vs all KV
 */
export function planBlocks(layout: LayoutKind, causal: boolean, seq: number, n: number, rank: number, step: number): PlannedBlock[] {
  const source = (((rank - step) % n) + n) % n;
  const queryRows = shardLength(layout, seq, n, rank);
  const keyRows = shardLength(layout, seq, n, source);
  const all = (length: number): Span => ({ start: 0, end: length });
  const block = (query: Span, key: Span, mask: BlockMask): PlannedBlock[] =>
    query.end > query.start && key.end > key.start ? [{ source, query, key, mask }] : [];

  if (!causal) return block(all(queryRows), all(keyRows), 'none');
  switch (layout) {
    case 'contiguous':
      if (source < rank) return block(all(queryRows), all(keyRows), 'none');
      return source === rank ? block(all(queryRows), all(keyRows), 'causal-inclusive') : [];
    case 'striped':
      return block(all(queryRows), all(keyRows), source <= rank ? 'causal-inclusive' : 'causal-strict');
    case 'zigzag': {
      if (source === rank) return block(all(queryRows), all(keyRows), 'causal-inclusive');
      const sourceFirst = zigzagChunks(seq, n, source).first;
      if (source < rank) return block(all(queryRows), all(sourceFirst.end - sourceFirst.start), 'none');
      const ownFirst = zigzagChunks(seq, n, rank).first;
      return block({ start: ownFirst.end - ownFirst.start, end: queryRows }, all(keyRows), 'none');
    }
  }
}

/** Every step's blocks for one rank: index t holds step t. */
export function planRank(layout: LayoutKind, causal: boolean, seq: number, n: number, rank: number): PlannedBlock[][] {
  return Array.from({ length: n }, (_, step) => planBlocks(layout, causal, seq, n, rank, step));
}
