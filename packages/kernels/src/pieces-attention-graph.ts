import { MASKED_SCORE, type BlockPiece, type Span } from '@seqpar/core';
import { emitAttention, sliced, type AttentionGraphShape } from './attention-graph.js';
import { emitFusedAttention } from './fused-attention-graph.js';
import { GraphBuilder } from './graph-builder.js';

export interface PiecesGraphShape {
  readonly sq: number;
  readonly sk: number;
  readonly hq: number;
  readonly hkv: number;
  readonly d: number;
  readonly pieces: readonly BlockPiece[];
}

/** A piece's own attention shape. */
export function pieceShape({ hq, hkv, d }: Pick<PiecesGraphShape, 'hq' | 'hkv' | 'd'>, { query, key, mask }: BlockPiece): AttentionGraphShape {
  return { sq: query.end - query.start, sk: key.end - key.start, hq, hkv, d, mask: mask.kind, ...(mask.kind === 'band' ? { band: { min: mask.min, max: mask.max } } : {}) };
}

/**
 * Several pieces of one block (a window's strips: a dense core and two masked fringes each) as one graph, merged
 * inside it: one call and one result for the block instead of a call, a thread round trip and a merge per piece.
 * Unmasked pieces run the fused graph's ops (fused-attention-graph.ts), masked ones the exact graph's
 * (attention-graph.ts), one after another as ORT runs them in order, so the working memory is one piece's.
 * Rows are cut at every piece's edges; each cut merges the pieces that cover it by their lse (rows no piece covers
 * stay masked).
 *   inputs  q [Sq, Hq, D], k and v [Sk, Hkv, D]; outputs out [Sq, Hq, D], lse [Hq, Sq] and fallback [] (1 when a
 *   fused piece could not bracket its scores: the caller then runs the pieces one by one)
 */
export function buildPiecesAttentionGraph(shape: PiecesGraphShape): Uint8Array {
  const { sq, sk, hq, hkv, d, pieces } = shape;
  const g = new GraphBuilder('attention_pieces');
  const [q, k, v] = [g.input('q', 'float', [sq, hq, d]), g.input('k', 'float', [sk, hkv, d]), g.input('v', 'float', [sk, hkv, d])];
  const fallbacks: string[] = [];
  const parts = pieces.map((piece) => {
    const own = pieceShape(shape, piece);
    const rows = (x: string, span: Span, length: number) => sliced(g, x, 0, span.start, span.end, length);
    const [pq, pk, pv] = [rows(q, piece.query, sq), rows(k, piece.key, sk), rows(v, piece.key, sk)];
    if (piece.mask.kind !== 'none') return { rows: piece.query, ...emitAttention(g, own, pq, pk, pv) };
    const fused = emitFusedAttention(g, own, pq, pk, pv);
    fallbacks.push(fused.fallback);
    return { rows: piece.query, out: fused.out, lse: fused.lse };
  });

  const edges = [...new Set([0, sq, ...pieces.flatMap((p) => [p.query.start, p.query.end])])].sort((a, b) => a - b);
  const segments = edges.slice(1).map((end, i) => {
    const start = edges[i]!;
    const covering = parts.filter((part) => part.rows.start <= start && end <= part.rows.end);
    if (covering.length === 0) return maskedRows(g, end - start, hq, d);
    const cut = covering.map((part) => {
      const length = part.rows.end - part.rows.start;
      const [from, to] = [start - part.rows.start, end - part.rows.start];
      return { out: sliced(g, part.out, 0, from, to, length), lse: sliced(g, part.lse, 1, from, to, length) };
    });
    return mergeParts(g, cut);
  });
  const join = (part: 'out' | 'lse', axis: number) =>
    segments.length === 1
      ? g.op('Identity', [segments[0]![part]], {}, { outputName: part })
      : g.op(
          'Concat',
          segments.map((s) => s[part]),
          { axis },
          { outputName: part },
        );
  join('out', 0);
  join('lse', 1);
  if (fallbacks.length === 0) g.op('Identity', [g.scalar(0)], {}, { outputName: 'fallback' });
  else g.op('Max', fallbacks, {}, { outputName: 'fallback' });
  g.output('out', 'float', [sq, hq, d]);
  g.output('lse', 'float', [hq, sq]);
  g.output('fallback', 'float', []);
  return g.toModelBytes(21, { 'com.microsoft': 1 });
}

/** Partial results of the same rows (out [n, Hq, D], lse [Hq, n]) merged by their lse. */
function mergeParts(g: GraphBuilder, parts: { out: string; lse: string }[]): { out: string; lse: string } {
  if (parts.length === 1) return parts[0]!;
  const max = g.op(
    'Max',
    parts.map((p) => p.lse),
  );
  const weights = parts.map((p) => g.op('Exp', [g.op('Sub', [p.lse, max])])); // [Hq, n]
  const total = g.op('Sum', weights);
  const perRow = (w: string) => g.op('Unsqueeze', [g.op('Transpose', [w], { perm: [1, 0] }), g.ints([2])]); // [n, Hq, 1]
  const weighted = g.op(
    'Sum',
    parts.map((p, i) => g.op('Mul', [p.out, perRow(weights[i]!)])),
  );
  return { out: g.op('Div', [weighted, perRow(total)]), lse: g.op('Add', [max, g.op('Log', [total])]) };
}

/** Rows no piece reaches: out 0, lse masked. */
function maskedRows(g: GraphBuilder, rows: number, hq: number, d: number): { out: string; lse: string } {
  return {
    out: g.constant({ type: 'float', dims: [rows, hq, d], data: new Float32Array(rows * hq * d) }),
    lse: g.constant({ type: 'float', dims: [hq, rows], data: new Float32Array(hq * rows).fill(MASKED_SCORE) }),
  };
}
