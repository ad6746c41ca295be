import { mergeInto, NO_MASK, rowSlice, type BlockMask, type BlockPiece, type PartialAttention, type Span, type Tensor } from '@seqpar/core';
import { attentionKeysWithin, pieceRowsCap } from '@seqpar/kernels';
import type { RankContext } from './rank-context.js';
import { bandBlock } from './visible-blocks.js';

/**
 * Query rows per masked kernel call. The masked graph materialises a block's scores, so its workspace grows with
 * rows x keys x heads: cutting queries into chunks of fixed height keeps a rank's memory linear in the keys it holds
 * (Rabe & Staats, "Self-attention does not need O(n^2) memory", query chunking): a 16k-token causal request on
 * one worker peaked at 11 GiB as one call, 0.7 GiB in chunks. Bands and causal triangles are halved down to this.
 */
const CAUSAL_BASE = 512;
/**
 * Query rows per unmasked call. Those run ORT's fused attention, which streams keys in tiles (its workspace grew
 * 40 MB from 512 to 4096 rows of an 8k-key block) but repacks all of a call's K and V first: at 512 rows that
 * repacking cost ~13% of an 8k-key call, at 2048 rows ~1%.
 */
const DENSE_ROWS = 2048;
/**
 * Keys per piece at most: 512 x 32768 pairs run at the fused op's full speed (~65 GFLOP/s measured at 1024 x
 * 16384) with bounded scores, so a rank holding more keys than that still never builds one huge block.
 */
const MAX_KEYS = 32768;

/**
 * How many times its rows a window strip's core must be wide to run dense between its two masked fringes. The
 * kernel runs a masked piece in 64-row tiles whose keys span the band's reach (attention-graph.ts), at about the
 * cost per score of a 512-row dense call, so a narrower core saves nothing and costs two more calls: at 16k, W
 * 1024, in one process, 512-row strips as one masked piece each took 721 ms against 893 as a dense core and two
 * masked triangles (and 724 as 1024-row masked strips).
 */
const STRIP_CORE_ROWS = 4;

/** Pieces of one strip that go to the kernel as one call (attendPieces): a window strip's dense core and two fringes. */
const STRIP_PIECES = 3;

/**
 * Attention of local queries `q` over `k`, `v` under `mask` (block-local indices, query 0 aligned with key 0),
 * folded into rows `rows` of `acc`: one kernel call per piece (planPieces), or per interior window strip where the
 * kernel takes several pieces at once (callGroups). Each call merges before the next starts: merging while the
 * next piece computes was measured 5-10% slower with two workers on two cores (a third busy thread).
 */
export async function attendInto(ctx: RankContext, acc: PartialAttention, rows: Span, q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, label: string): Promise<void> {
  const pieces = planPieces(q.shape[0]!, k.shape[0]!, mask, attentionKeysWithin(q.shape[1]!, q.shape[2]!), pieceRowsCap());
  for (const group of ctx.kernel.attendPieces ? callGroups(pieces, Math.min(CAUSAL_BASE, pieceRowsCap())) : pieces.map((piece) => [piece])) {
    const [query, key] = [cover(group.map((p) => p.query)), cover(group.map((p) => p.key))];
    // Counted per call (and shown on its trace span), so a trace and --json show how evenly the visible work fell.
    const pairs = group.reduce((sum, p) => sum + visiblePairs(p.query.end - p.query.start, p.key.end - p.key.start, p.mask), 0);
    ctx.recorder.countPairs(pairs);
    const [qs, ks, vs] = [rowSlice(q, query.start, query.end), rowSlice(k, key.start, key.end), rowSlice(v, key.start, key.end)];
    const partial = await ctx.recorder.time(
      'compute',
      `attend ${group.length === 1 ? group[0]!.mask.kind : `${group.length} pieces`} ${label}`,
      () =>
        group.length === 1
          ? ctx.kernel.attend(qs, ks, vs, group[0]!.mask)
          : ctx.kernel.attendPieces!(
              qs,
              ks,
              vs,
              group.map((p) => ({ query: shift(p.query, query.start), key: shift(p.key, key.start), mask: p.mask })),
            ),
      { args: { visiblePairs: pairs } },
    );
    await ctx.recorder.time('compute', 'merge', () => mergeInto(acc, partial, { start: rows.start + query.start, end: rows.start + query.end }));
  }
}

/**
 * One call per piece, except the pieces of an interior window strip (a dense core between two masked fringes,
 * within `strip` rows): those go as one call, its result merged in the graph. Calls and merges cost ~1.3 ms and
 * ~1 ms per piece here, which three pieces per strip paid twice over. Every interior strip of a request has the
 * same three pieces, so one session serves them all; the clipped strips at a block's edges keep the single-piece
 * shapes a causal plan shares (new graphs per edge shape would crowd the session cache, measured thrashing it when
 * full causal and window requests alternate).
 */
function callGroups(pieces: readonly BlockPiece[], strip: number): BlockPiece[][] {
  const groups: BlockPiece[][] = [];
  for (const piece of pieces) {
    const last = groups[groups.length - 1];
    const rows = last && cover([...last.map((p) => p.query), piece.query]);
    if (last && rows && rows.end - rows.start <= strip) last.push(piece);
    else groups.push([piece]);
  }
  return groups.flatMap((group) => (group.length === STRIP_PIECES ? [group] : group.map((piece) => [piece])));
}

const cover = (spans: readonly Span[]): Span => ({ start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)) });
const shift = (span: Span, by: number): Span => ({ start: span.start - by, end: span.end - by });

/** Rows and keys per unit that pieces are cut at (block-local), so the shapes of one request's blocks recur. */
const ALIGN = 64;
const alignDown = (x: number): number => Math.floor(x / ALIGN) * ALIGN;
const alignUp = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;

/** The limits on j - i of a block mask (open sides infinite). */
export function bandOf(mask: BlockMask): { min: number; max: number } {
  switch (mask.kind) {
    case 'none':
      return { min: -Infinity, max: Infinity };
    case 'causal-inclusive':
      return { min: -Infinity, max: 0 };
    case 'causal-strict':
      return { min: -Infinity, max: -1 };
    case 'band':
      return { min: mask.min, max: mask.max };
  }
}

/** Pairs (i, j) of an sq x sk block that `mask` leaves visible. */
export function visiblePairs(sq: number, sk: number, mask: BlockMask): number {
  const { min, max } = bandOf(mask);
  let pairs = 0;
  for (let i = 0; i < sq; i++) pairs += Math.max(0, Math.min(sk, i + max + 1) - Math.max(0, i + min));
  return pairs;
}

/**
 * The kernel calls of one block, whose visible pairs lie in a diagonal band min <= j - i <= max (a causal
 * triangle: max 0; a window: min 1 - W; none: no limits). Rows and keys are first trimmed to the band's reach; what
 * is left is all visible (one dense rectangle), or it has a core of keys every row sees between two fringes (the
 * core runs dense, each fringe is planned again), or its rows are halved. Down to CAUSAL_BASE rows what is left runs
 * masked. For a causal triangle that is the classic cut: top half (causal), bottom half against the top half's keys
 * (dense: j < mid <= i), bottom half (causal); a window of W is cut into strips of CAUSAL_BASE rows, each one masked
 * piece, or a dense core and two triangles once W is wide (STRIP_CORE_ROWS). Nearly all visible scores of a causal
 * block so land in dense rectangles on the kernel's fused unmasked path (about 1.4x faster per visible score than
 * the masked graph at a triangle, whose tiles trim their keys to the band's reach), and the
 * rectangles come in a few shapes (sq/2, sq/4, ...), so few kernel sessions are built. Dense rectangles go in
 * DENSE_ROWS-row pieces, and keys per piece stop at the block's own query count (and MAX_KEYS), so a rank's
 * workspace follows its share of the queries (S/N), not the length of the KV it is handed (zigzag's late chunk
 * meets both of a source's chunks at once); `keyCap` (the kernel's workspace budget, attentionKeysWithin) bounds them
 * too, and `rowCap` (a compute scope's piece bound, compute-priority.ts) the rows of every piece. No piece is empty.
 */
export function planPieces(sq: number, sk: number, mask: BlockMask, keyCap = MAX_KEYS, rowCap = Infinity): BlockPiece[] {
  const { min, max } = bandOf(mask);
  const pieces: BlockPiece[] = [];
  const [denseRows, maskedRows] = [Math.min(DENSE_ROWS, rowCap), Math.min(CAUSAL_BASE, rowCap)];
  const maxKeys = Math.min(Math.max(CAUSAL_BASE, sq), keyCap);
  const dense = (query: Span, key: Span): void => {
    for (let start = query.start; start < query.end; start += denseRows) {
      for (let keyStart = key.start; keyStart < key.end; keyStart += maxKeys) {
        pieces.push({ query: { start, end: Math.min(query.end, start + denseRows) }, key: { start: keyStart, end: Math.min(key.end, keyStart + maxKeys) }, mask: NO_MASK });
      }
    }
  };
  const plan = (r0: number, r1: number, k0: number, k1: number): void => {
    // Row i sees keys [i + min, i + max]: keep the keys some row sees, then the rows that see one of them.
    let [a0, a1] = [Math.max(k0, r0 + min), Math.min(k1, r1 + max)];
    const [i0, i1] = [Math.max(r0, a0 - max), Math.min(r1, a1 - min)];
    [a0, a1] = [Math.max(a0, i0 + min), Math.min(a1, i1 + max)];
    if (i1 <= i0 || a1 <= a0) return;
    // ... rounded out to whole ALIGN rows, so blocks that differ by a row (a causal-strict triangle reaches
    // (n-1) x (n-1)) are cut into the same shapes, each one kernel session.
    [r0, r1, k0, k1] = [Math.max(r0, alignDown(i0)), Math.min(r1, alignUp(i1)), Math.max(k0, alignDown(a0)), Math.min(k1, alignUp(a1))];
    if (k0 >= r1 - 1 + min && k1 - 1 <= r0 + max) return dense({ start: r0, end: r1 }, { start: k0, end: k1 });
    // Keys every row sees: from the last row's first key to the first row's last one, rounded in.
    const [coreStart, coreEnd] = [Math.max(k0, alignUp(r1 - 1 + min)), Math.min(k1, alignDown(r0 + max + 1))];
    // A core beside one fringe (a causal triangle's lower half) is split off from half the rows' width on; between
    // two fringes (a window's strip) only from twice it: narrower, the strip runs as one masked piece whose tiles
    // span the band's reach, cheaper than a small dense call and two masked triangles (STRIP_CORE_ROWS).
    const fringes = (k0 < coreStart ? 1 : 0) + (coreEnd < k1 ? 1 : 0);
    if (2 * (coreEnd - coreStart) >= (r1 - r0) * (fringes === 2 ? STRIP_CORE_ROWS : 1)) {
      plan(r0, r1, k0, coreStart);
      dense({ start: r0, end: r1 }, { start: coreStart, end: coreEnd });
      plan(r0, r1, coreEnd, k1);
    } else if (r1 - r0 > maskedRows) {
      const mid = r0 + Math.ceil((r1 - r0) / 2);
      plan(r0, mid, k0, k1);
      plan(mid, r1, k0, k1);
    } else {
      const shift = k0 - r0;
      pieces.push({
        query: { start: r0, end: r1 },
        key: { start: k0, end: k1 },
        mask: bandBlock({ start: 0, end: r1 - r0 }, { start: 0, end: k1 - k0 }, min - shift, max - shift)!.mask,
      });
    }
  };
  plan(0, sq, 0, sk);
  return pieces;
}
