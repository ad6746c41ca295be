import { maskBand, rankSegments, type BlockMask, type LayoutKind, type Segment, type SequenceMask, type Span } from '@seqpar/core';

/** One block of attention: local query rows `query` against rows `key` of the KV in hand. */
export interface PlannedBlock {
  readonly query: Span;
  readonly key: Span;
  /** Block-local: query row i and key row j are the block's own indices from 0. */
  readonly mask: BlockMask;
}

/** What every rank knows of a request: S tokens over N ranks, and which pairs the mask leaves visible. */
export interface RingWorld extends SequenceMask {
  readonly seq: number;
  readonly n: number;
}

/** The world of a request as one rank sees it. */
export function worldOf(input: { readonly seq: number } & SequenceMask, n: number): RingWorld {
  return { seq: input.seq, n, causal: input.causal, ...(input.documents ? { documents: input.documents } : {}), ...(input.window !== undefined ? { window: input.window } : {}) };
}

/**
 * The blocks of `rank`'s queries against `source`'s keys that hold visible pairs, under `layout`: none when the
 * mask hides all of that KV from these queries, so the step is skipped (and the KV need not travel there).
 *
 * Both ranks' rows are cut at document boundaries into evenly spaced runs (core's rank-segments.ts). Only runs of
 * one document meet. For query run position a (global i = qStart + s·a) and key run position b (j = kStart + s·b)
 * the mask's rule min <= j - i <= max (maskBand) becomes a band on b - a alone:
 *   ceil((min - (kStart - qStart)) / s) <= b - a <= floor((max - (kStart - qStart)) / s)
 * so every block is a rectangle under a diagonal band, which block-attention.ts cuts into dense and masked pieces.
 */
export function visibleBlocks(layout: LayoutKind, world: RingWorld, rank: number, source: number): PlannedBlock[] {
  const keyRuns = new Map<number, Segment[]>();
  for (const run of rankSegments(layout, world.seq, world.n, source, world)) keyRuns.set(run.document, [...(keyRuns.get(run.document) ?? []), run]);
  const { min, max } = maskBand(world);
  const blocks: PlannedBlock[] = [];
  for (const q of rankSegments(layout, world.seq, world.n, rank, world)) {
    for (const k of keyRuns.get(q.document) ?? []) {
      const offset = k.start - q.start;
      const block = bandBlock(
        { start: q.local, end: q.local + q.count },
        { start: k.local, end: k.local + k.count },
        Math.ceil((min - offset) / q.stride),
        Math.floor((max - offset) / q.stride),
      );
      if (block) blocks.push(block);
    }
  }
  return mergeDense(blocks);
}

/**
 * The block `query` x `key` whose pair (a, b) is visible when min <= b - a <= max, with the mask named as simply
 * as it can be (limits the block's extent makes moot are dropped); undefined when no pair is visible.
 */
export function bandBlock(query: Span, key: Span, min: number, max: number): PlannedBlock | undefined {
  const [rows, keys] = [query.end - query.start, key.end - key.start];
  if (rows <= 0 || keys <= 0 || min > max || min > keys - 1 || max < -(rows - 1)) return undefined;
  return { query, key, mask: blockMask(min <= -(rows - 1) ? -Infinity : min, max >= keys - 1 ? Infinity : max) };
}

/** A band as the kernel's simplest mask: none, a causal triangle, or a band. */
export function blockMask(min: number, max: number): BlockMask {
  if (min === -Infinity && max === Infinity) return { kind: 'none' };
  if (min === -Infinity && max === 0) return { kind: 'causal-inclusive' };
  if (min === -Infinity && max === -1) return { kind: 'causal-strict' };
  return { kind: 'band', min, max };
}

/**
 * Unmasked blocks that share their keys and meet in queries (or share queries and meet in keys) become one block:
 * the zigzag layout's two chunks facing one chunk of KV are then one kernel call's rows, as in the classic rule.
 */
function mergeDense(blocks: PlannedBlock[]): PlannedBlock[] {
  const merged = [...blocks];
  // Each merge may make the result adjacent to another (zigzag's four chunk pairs, non-causal): repeat until none.
  for (let i = 0; i < merged.length; i++) {
    const block = merged[i]!;
    const into = block.mask.kind === 'none' ? merged.findIndex((other, j) => j !== i && other.mask.kind === 'none' && adjacent(other, block)) : -1;
    if (into < 0) continue;
    merged[into] = { query: union(merged[into]!.query, block.query), key: union(merged[into]!.key, block.key), mask: block.mask };
    merged.splice(i, 1);
    i = -1;
  }
  return merged;
}

const sameSpan = (a: Span, b: Span): boolean => a.start === b.start && a.end === b.end;
const meets = (a: Span, b: Span): boolean => a.end === b.start || b.end === a.start;
const adjacent = (a: PlannedBlock, b: PlannedBlock): boolean => (sameSpan(a.key, b.key) && meets(a.query, b.query)) || (sameSpan(a.query, b.query) && meets(a.key, b.key));
const union = (a: Span, b: Span): Span => ({ start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) });
