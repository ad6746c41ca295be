/**
 * Working memory one call on a compute thread may take, whatever the sequence length: a row-local graph (a
 * model's token-local layers) runs over row tiles sized from it (row-tiles.ts), so a rank's workspace stays flat
 * as its share of the sequence grows. ONNX Runtime gives each session its own CPU arena, which keeps its largest
 * run's memory until the session is released: a 16k-token prefill on 2 ranks ran 8 layer graphs of 8192 rows each
 * and held ~540 MB of arenas per rank (45-66 MB per pre-attention graph, ~91 MB per post-attention graph, summed,
 * not shared). Attention needs no tiling for this: ORT's fused attention streams keys in blocks on the CPU, and
 * the masked graph runs on the strategies' small diagonal pieces.
 */
export const WORKSPACE_BUDGET_BYTES = 16 * 2 ** 20;

/** Row tiles come in multiples of this (and never fewer rows), so a graph meets few distinct shapes. */
const ROW_QUANTUM = 64;

/** Rows per run of a row-local graph that needs `bytesPerRow` of working memory per row, within `budgetBytes`. */
export function rowsWithin(bytesPerRow: number, budgetBytes = WORKSPACE_BUDGET_BYTES): number {
  return Math.max(ROW_QUANTUM, Math.floor(budgetBytes / bytesPerRow / ROW_QUANTUM) * ROW_QUANTUM);
}
