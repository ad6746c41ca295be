/**
 * Working memory one call on a compute thread may take, whatever the sequence length: a row-local graph (a
 * model's token-local layers) runs over row tiles sized from it (row-tiles.ts), and an attention call holds at
 * most so many keys (attentionKeysWithin), so a rank's workspace stays flat as its share of the sequence grows.
 * ONNX Runtime gives each session its own CPU arena, which keeps its largest run's memory until the session is
 * released: a 16k-token prefill on 2 ranks ran 8 layer graphs of 8192 rows each and held ~540 MB of arenas per
 * rank (45-66 MB per pre-attention graph, ~91 MB per post-attention graph, summed, not shared).
 */
export const WORKSPACE_BUDGET_BYTES = 32 * 2 ** 20;

/** Row tiles come in multiples of this (and never fewer rows), so a graph meets few distinct shapes. */
const ROW_QUANTUM = 64;

/** Rows per run of a row-local graph that needs `bytesPerRow` of working memory per row, within `budgetBytes`. */
export function rowsWithin(bytesPerRow: number, budgetBytes = WORKSPACE_BUDGET_BYTES): number {
  return Math.max(ROW_QUANTUM, Math.floor(budgetBytes / bytesPerRow / ROW_QUANTUM) * ROW_QUANTUM);
}

/** Keys per attention call: a power of two from 512 up to this. */
const MAX_KEYS = 32768;

/**
 * Keys one unmasked attention call may hold within `budgetBytes`: the fused graph holds about six copies of its
 * keys and values widened to all query heads (the reference key's concat, V's padding, the op's own transposes).
 * Measured at 512 query rows, H 8, D 64 (ms per 1k keys): 2048 keys ~16, 4096 ~15, 8192 19-26, so pieces of a
 * few thousand keys cost no speed.
 */
export function attentionKeysWithin(queryHeads: number, headDim: number, budgetBytes = WORKSPACE_BUDGET_BYTES): number {
  const keys = budgetBytes / (6 * queryHeads * (headDim + 1) * 4);
  return Math.min(MAX_KEYS, Math.max(512, 2 ** Math.floor(Math.log2(keys))));
}
