import { pieceRowsCap } from './compute-priority.js';
import type { ComputeThread } from './compute-thread.js';
import type { WireTensor } from './compute-protocol.js';

/**
 * Runs the row-local session `key` (every feed and output has its rows on axis 0, and output row i depends on feed
 * row i alone: a model's token-local layers) over tiles of at most `tileRows` rows, so its working memory follows
 * the tile, not the sequence. Tiles run one after another, each written into the whole outputs as it returns, so
 * only one tile's feeds and outputs are in flight; one tile returns its outputs as they are. A compute scope's
 * piece bound (compute-priority.ts) makes the tiles smaller still.
 */
export async function runInRowTiles(thread: ComputeThread, key: string, feeds: Readonly<Record<string, WireTensor>>, budgetRows: number): Promise<Record<string, Float32Array>> {
  const rows = Object.values(feeds)[0]?.dims[0] ?? 0;
  const tileRows = Math.min(budgetRows, pieceRowsCap());
  if (rows <= tileRows) return thread.run(key, feeds);
  const outputs: Record<string, Float32Array> = {};
  for (let start = 0; start < rows; start += tileRows) {
    const end = Math.min(rows, start + tileRows);
    for (const [name, tile] of Object.entries(await thread.run(key, sliceRows(feeds, start, end)))) {
      const perRow = tile.length / (end - start);
      (outputs[name] ??= new Float32Array(perRow * rows)).set(tile, start * perRow);
    }
  }
  return outputs;
}

function sliceRows(feeds: Readonly<Record<string, WireTensor>>, start: number, end: number): Record<string, WireTensor> {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => {
      const perRow = t.data.length / t.dims[0]!;
      return [name, { type: t.type, data: t.data.subarray(start * perRow, end * perRow), dims: [end - start, ...t.dims.slice(1)] }];
    }),
  );
}
