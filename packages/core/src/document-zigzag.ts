import type { Span } from './layout.js';
import { documentPairs, documentSpans, type SequenceMask } from './sequence-mask.js';

/**
 * How far the busiest rank may exceed the mean work before one more document is spread rather than dealt whole.
 * Dealing whole is free (no pair crosses ranks); spreading costs a KV pass but balances to within rounding.
 */
const TOLERANCE = 0.05;

/**
 * The zigzag layout of packed documents, for each rank its global spans in ascending order. Dealing every document
 * whole keeps all its pairs on one rank (no communication), but one long document would leave the others idle;
 * cutting every document zigzag-wise balances each one but sends KV for all of them. So: documents are dealt
 * whole, largest first, each to the least loaded rank (LPT), and while the busiest rank would carry more than
 * (1 + TOLERANCE) x the mean work, the largest document still dealt whole is instead cut into 2N chunks with rank
 * r taking chunks r and 2N-1-r (which balances causal and windowed work inside it). Work is the document's visible
 * pairs under the mask. One document of S tokens is the classic zigzag layout. No length need divide anything.
 */
export function documentZigzagSpans(seq: number, n: number, mask: SequenceMask): Span[][] {
  const key = `${seq}:${n}:${mask.causal}:${mask.window}:${mask.documents?.join(',')}`;
  if (memo?.key === key) return memo.spans;
  const spans = dealDocuments(documentSpans(seq, mask.documents), n, mask);
  memo = { key, spans };
  return spans;
}

/** Every rank asks for the same layout in turn (and the planner asks for every rank's): keep the last one. */
let memo: { key: string; spans: Span[][] } | undefined;

function dealDocuments(documents: Span[], n: number, mask: SequenceMask): Span[][] {
  const work = documents.map((span) => documentPairs(span.end - span.start, mask));
  const total = work.reduce((a, b) => a + b, 0);
  const largestFirst = documents.map((_, d) => d).sort((a, b) => work[b]! - work[a]! || a - b);
  const limit = (1 + TOLERANCE) * (total / n);
  // A document heavier than a rank's mean share overloads whoever takes it whole.
  let spread = largestFirst.filter((d) => work[d]! > total / n).length;
  let owners = dealWhole(largestFirst.slice(spread), work, n, (total - sumOf(largestFirst.slice(spread), work)) / n);
  while (owners.maxLoad > limit && spread < documents.length) {
    spread++;
    owners = dealWhole(largestFirst.slice(spread), work, n, (total - sumOf(largestFirst.slice(spread), work)) / n);
  }
  const perRank: Span[][] = Array.from({ length: n }, () => []);
  documents.forEach((span, d) => {
    const owner = owners.owner.get(d);
    if (owner !== undefined) perRank[owner]!.push(span);
    else zigzagCut(span, n).forEach((chunks, rank) => perRank[rank]!.push(...chunks));
  });
  return perRank.map((spans) => spans.filter((span) => span.end > span.start).sort((a, b) => a.start - b.start));
}

/** LPT: each document (largest first) to the least loaded rank, on top of `base` work every rank already has. */
function dealWhole(documents: number[], work: number[], n: number, base: number): { owner: Map<number, number>; maxLoad: number } {
  const loads = new Array<number>(n).fill(base);
  const owner = new Map<number, number>();
  for (const d of documents) {
    const rank = loads.indexOf(Math.min(...loads));
    loads[rank]! += work[d]!;
    owner.set(d, rank);
  }
  return { owner, maxLoad: Math.max(...loads) };
}

/** A document cut into 2N chunks: rank r's are chunk r and chunk 2N-1-r. */
function zigzagCut(span: Span, n: number): Span[][] {
  const length = span.end - span.start;
  const edge = (c: number): number => span.start + Math.floor((c * length) / (2 * n)); // layout.ts's partStart, inside the document
  const chunk = (c: number): Span => ({ start: edge(c), end: edge(c + 1) });
  return Array.from({ length: n }, (_, rank) => [chunk(rank), chunk(2 * n - 1 - rank)]);
}

const sumOf = (documents: number[], work: number[]): number => documents.reduce((sum, d) => sum + work[d]!, 0);
