import { isRowTiled, ROW_TILE, type AttentionGraphShape } from './attention-graph.js';

const FLOAT = 4;
/** A session's own structures (graph, kernels, plans), measured at 2-4 MB for small blocks. */
const SESSION_OVERHEAD = 4 * 2 ** 20;

/**
 * An upper bound on the memory an attention session holds once it has run: ORT's arena at the graph's peak plus
 * constants folded at load (the causal bias [Sq, Sk] and its tiles). Measured on the CPU provider as RSS per
 * session over distinct lengths, Sq = Sk = S, D 64 unless noted (measured / this bound, MB):
 *   exact graph, causal, Hq 4: S 200 3.9/8.3, 500 13/19, 1500 69/96, 3000 228/326, 6000 467/1196, 8192 805/2180;
 *     Hq 8 Hkv 2, S 3000: 382/578; Hq 2 D 128, S 4000: 255/372; positions mask, Hq 4, S 2000: 166/249
 *   exact graph, row-tiled (Hq 8, S 512): causal 10.8/25, band 11.7/25
 *   fused graph (no mask): Hq 4, S 3000 39/55, S 8192 83/136; Hq 8, S 1000 30/39, S 512 8.8/24, S 2048 31/72
 *   a window strip's pieces graph (Hq 8, 512 x 1536, three 512 x 512 pieces): 23.2/31 (attendPieces)
 */
export function attentionSessionBytes({ sq, sk, hq, d, mask }: AttentionGraphShape, fused: boolean): number {
  const rows = (sq + sk) * hq * d * FLOAT;
  if (fused) return 8 * rows + 2 * SESSION_OVERHEAD;
  const visibleKeys = mask === 'causal-inclusive' || mask === 'causal-strict' ? Math.ceil(sk / 2) : sk;
  // A row-tiled graph's scores live one tile of every head at a time (its tile keys at most all of sk).
  const scores = isRowTiled({ sq, sk }) ? hq * ROW_TILE * sk * FLOAT : hq * sq * visibleKeys * FLOAT;
  const bias = mask === 'none' ? 0 : sq * sk * FLOAT;
  return 3 * scores + 2 * bias + 8 * rows + SESSION_OVERHEAD;
}
