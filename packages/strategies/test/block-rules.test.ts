import { describe, expect, it } from 'vitest';
import {
  createPartial,
  documentIndex,
  isVisible,
  isVisibleInSequence,
  LAYOUTS,
  layoutPositions,
  mergeInto,
  mod,
  randomTensor,
  referenceAttention,
  seededRandom,
  shardRows,
  type BlockMask,
  type LayoutKind,
  type PartialAttention,
  type SequenceMask,
  type Tensor,
} from '@seqpar/core';
import { BLOCK_RULES, type PlannedBlock } from '../src/index.js';

const [HQ, HKV, D] = [4, 2, 4];

/** A block computed by the fp64 reference and rounded to float32, like a kernel's output. */
function referenceBlock(q: Tensor, k: Tensor, v: Tensor, mask: BlockMask): PartialAttention {
  const { out, lse } = referenceAttention(q, k, v, mask);
  return { out: { data: Float32Array.from(out), shape: [q.shape[0]!, HQ, D] }, lse: { data: Float32Array.from(lse), shape: [HQ, q.shape[0]!] } };
}

const rows = (t: Tensor, start: number, end: number): Tensor => {
  const size = t.data.length / t.shape[0]!;
  return { data: t.data.subarray(start * size, end * size), shape: [end - start, ...t.shape.slice(1)] };
};

/** A block with the rank whose KV it reads. */
type SourcedBlock = PlannedBlock & { readonly source: number };
type BlockOrder = (blocks: SourcedBlock[]) => SourcedBlock[];

/** Every block `rank` computes over a whole pass-KV ring (one source per step), as its layout's rule plans them. */
const blocksOfRank = (layout: LayoutKind, mask: boolean | SequenceMask, seq: number, n: number, rank: number): SourcedBlock[][] =>
  Array.from({ length: n }, (_, step) => {
    const source = mod(rank - step, n);
    return BLOCK_RULES[layout]({ seq, n, ...(typeof mask === 'boolean' ? { causal: mask } : mask) }, rank, source).map((block) => ({ ...block, source }));
  });

/** Runs every rank's planned blocks (all steps, in `order`) and scatters the merged rows back to global positions. */
function runPlans(layout: LayoutKind, causal: boolean, seq: number, n: number, q: Tensor, k: Tensor, v: Tensor, order: BlockOrder = (blocks) => blocks) {
  const [qs, ks, vs] = [q, k, v].map((t) => shardRows(t, layout, n)) as [Tensor[], Tensor[], Tensor[]];
  const out = new Float64Array(seq * HQ * D);
  const lse = new Float64Array(HQ * seq);
  for (let rank = 0; rank < n; rank++) {
    const acc = createPartial(qs[rank]!.shape[0]!, HQ, D);
    for (const block of order(blocksOfRank(layout, causal, seq, n, rank).flat())) {
      const partial = referenceBlock(
        rows(qs[rank]!, block.query.start, block.query.end),
        rows(ks[block.source]!, block.key.start, block.key.end),
        rows(vs[block.source]!, block.key.start, block.key.end),
        block.mask,
      );
      mergeInto(acc, partial, block.query);
    }
    const positions = layoutPositions(layout, seq, n, rank);
    positions.forEach((p, i) => {
      out.set(acc.out.data.subarray(i * HQ * D, (i + 1) * HQ * D), p * HQ * D);
      for (let h = 0; h < HQ; h++) lse[h * seq + p] = acc.lse.data[h * positions.length + i]!;
    });
  }
  return { out, lse };
}

/** A seeded Fisher-Yates shuffle. */
const shuffled =
  (random: () => number): BlockOrder =>
  (blocks) => {
    const copy = [...blocks];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  };

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe.each(LAYOUTS)('%s block rule with the merge', (layout) => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('reproduce full attention, causal and not, for N = %i and uneven S (and S < N)', (n) => {
    for (const seq of new Set([0, 1, n - 1, n, 2 * n + 1, 37])) {
      const random = seededRandom(seq * 10 + n);
      const q = randomTensor([seq, HQ, D], random);
      const k = randomTensor([seq, HKV, D], random);
      const v = randomTensor([seq, HKV, D], random);
      for (const causal of [false, true]) {
        const expected = referenceAttention(q, k, v, { kind: causal ? 'causal-inclusive' : 'none' });
        const got = runPlans(layout, causal, seq, n, q, k, v);
        expect(maxDiff(got.out, expected.out)).toBeLessThanOrEqual(1e-5);
        expect(maxDiff(got.lse, expected.lse)).toBeLessThanOrEqual(1e-5);
      }
    }
  });
});

describe('merge order', () => {
  it.each(LAYOUTS)('does not change %s results beyond 1e-6 under random permutations of the blocks', (layout) => {
    const [seq, n] = [29, 4];
    const random = seededRandom(9);
    const q = randomTensor([seq, HQ, D], random, 3);
    const k = randomTensor([seq, HKV, D], random, 3);
    const v = randomTensor([seq, HKV, D], random);
    for (const causal of [false, true]) {
      const forward = runPlans(layout, causal, seq, n, q, k, v);
      for (let trial = 0; trial < 5; trial++) {
        const other = runPlans(layout, causal, seq, n, q, k, v, shuffled(random));
        expect(maxDiff(other.out, forward.out)).toBeLessThanOrEqual(1e-6);
        expect(maxDiff(other.lse, forward.lse)).toBeLessThanOrEqual(1e-6);
      }
    }
  });
});

describe.each(LAYOUTS)('%s block rule as sets of (query, key) pairs', (layout) => {
  // Exact, no floating point: over all ranks and steps, the planned blocks under their masks (block-local
  // indices) must cover every causally visible global pair once and nothing else. For striped with uneven S this
  // is the proof that local j <= i (s <= r) and j < i (s > r) match global kPos <= qPos: with q = i·N + r and
  // k = j·N + s, k <= q  <=>  j·N + s <= i·N + r  <=>  j < i, or j = i and s <= r.
  // Packed documents (lengths 1, 2, 5, 3 cycling, the last cut to fit) and windows of 1 and 3 tokens.
  const documentsOf = (seq: number): number[] => {
    const lengths: number[] = [];
    for (let start = 0, d = 0; start < seq; d++) {
      lengths.push(Math.min([1, 2, 5, 3][d % 4]!, seq - start));
      start += lengths.at(-1)!;
    }
    return lengths;
  };
  const masks: Array<{ name: string; mask: (seq: number) => SequenceMask }> = [
    { name: 'full', mask: () => ({ causal: false }) },
    { name: 'causal', mask: () => ({ causal: true }) },
    { name: 'full documents', mask: (seq) => ({ causal: false, documents: documentsOf(seq) }) },
    { name: 'causal window 1', mask: () => ({ causal: true, window: 1 }) },
    { name: 'causal documents window 3', mask: (seq) => ({ causal: true, documents: documentsOf(seq), window: 3 }) },
  ];
  it.each(masks)('covers every visible pair exactly once ($name), S = 0..40, N = 1..8', ({ mask: maskOf }) => {
    for (let n = 1; n <= 8; n++) {
      for (let seq = 0; seq <= 40; seq++) {
        const mask = maskOf(seq);
        const seen = new Uint8Array(seq * seq);
        for (let rank = 0; rank < n; rank++) {
          const queryPositions = layoutPositions(layout, seq, n, rank, mask);
          for (const block of blocksOfRank(layout, mask, seq, n, rank).flat()) {
            expect(block.query.end).toBeGreaterThan(block.query.start);
            expect(block.key.end).toBeGreaterThan(block.key.start);
            const keyPositions = layoutPositions(layout, seq, n, block.source, mask);
            for (let i = block.query.start; i < block.query.end; i++) {
              for (let j = block.key.start; j < block.key.end; j++) {
                if (!isVisible(block.mask, i - block.query.start, j - block.key.start)) continue;
                seen[queryPositions[i]! * seq + keyPositions[j]!]! += 1;
              }
            }
          }
        }
        const documentOf = documentIndex(seq, mask.documents);
        const expected = Array.from({ length: seq * seq }, (_, pair) => (isVisibleInSequence(mask, documentOf, Math.floor(pair / seq), pair % seq) ? 1 : 0));
        expect(Array.from(seen), `${layout} S=${seq} N=${n}`).toEqual(expected);
      }
    }
  });
});

describe('schedule shapes', () => {
  it('ring skips blocks above the diagonal; striped never skips; zigzag halves every off-diagonal block', () => {
    const ringWork = Array.from({ length: 4 }, (_, rank) => blocksOfRank('contiguous', true, 64, 4, rank).flat().length);
    expect(ringWork).toEqual([1, 2, 3, 4]);
    for (let rank = 0; rank < 4; rank++) {
      expect(blocksOfRank('striped', true, 64, 4, rank).every((blocks) => blocks.length === 1)).toBe(true);
      for (const blocks of blocksOfRank('zigzag', true, 64, 4, rank).slice(1)) {
        const area = blocks.reduce((sum, b) => sum + (b.query.end - b.query.start) * (b.key.end - b.key.start), 0);
        expect(area).toBe(16 * 8);
      }
    }
    expect(BLOCK_RULES.striped({ seq: 10, n: 4, causal: true }, 1, 2)).toEqual([{ query: { start: 0, end: 3 }, key: { start: 0, end: 2 }, mask: { kind: 'causal-strict' } }]);
  });
});
