import type { ComputeThread } from './compute-thread.js';
import type { WireTensor } from './compute-protocol.js';

/**
 * Runs the row-local session `key` (every feed and output has its rows on axis 0, and output row i depends on feed
 * row i alone: a model's token-local layers) over tiles of at most `tileRows` rows, so its working memory follows
 * the tile, not the sequence. The tiles are queued at once (the thread runs them in order) and their outputs
 * written into whole outputs; one tile returns its outputs as they are.
 */
export async function runInRowTiles(thread: ComputeThread, key: string, feeds: Readonly<Record<string, WireTensor>>, tileRows: number): Promise<Record<string, Float32Array>> {
  const rows = Object.values(feeds)[0]?.dims[0] ?? 0;
  if (rows <= tileRows) return thread.run(key, feeds);
  const starts = Array.from({ length: Math.ceil(rows / tileRows) }, (_, i) => i * tileRows);
  const tiles = await Promise.all(starts.map((start) => thread.run(key, sliceRows(feeds, start, Math.min(rows, start + tileRows)))));
  const outputs: Record<string, Float32Array> = {};
  for (const [name, first] of Object.entries(tiles[0]!)) {
    const perRow = first.length / Math.min(rows, tileRows);
    const whole = new Float32Array(perRow * rows);
    tiles.forEach((tile, i) => whole.set(tile[name]!, starts[i]! * perRow));
    outputs[name] = whole;
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
