import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeThread, GraphBuilder, runInRowTiles, withComputePriority, type WireTensor } from '../src/index.js';

const WIDTH = 8;

/** A row-local graph with two outputs: y = relu(x·W) [t, 4] and z = x + b [t, WIDTH]. */
function rowLocal(): Uint8Array {
  const g = new GraphBuilder('row_local');
  const x = g.input('x', 'float', ['t', WIDTH]);
  const w = g.constant({ type: 'float', dims: [WIDTH, 4], data: Float32Array.from({ length: WIDTH * 4 }, (_, i) => Math.sin(i)) });
  g.op('Relu', [g.op('MatMul', [x, w])], {}, { outputName: 'y' });
  g.op('Add', [x, g.input('b', 'float', ['t', WIDTH])], {}, { outputName: 'z' });
  g.output('y', 'float', ['t', 4]);
  g.output('z', 'float', ['t', WIDTH]);
  return g.toModelBytes();
}

let thread: ComputeThread;
beforeAll(async () => {
  thread = await ComputeThread.start({ threads: 1 });
  await thread.load('row-local', rowLocal, { arena: false, pattern: false });
});
afterAll(async () => thread?.close());

const rows = 200;
const feeds: Record<string, WireTensor> = {
  x: { type: 'float32', data: Float32Array.from({ length: rows * WIDTH }, (_, i) => Math.cos(i)), dims: [rows, WIDTH] },
  b: { type: 'float32', data: Float32Array.from({ length: rows * WIDTH }, (_, i) => i), dims: [rows, WIDTH] },
};

describe('runInRowTiles', () => {
  it('gives what one run over all rows gives, for tiles that do and do not divide the rows', async () => {
    const whole = await thread.run('row-local', feeds);
    for (const tile of [64, 50, 199, 200, 1000]) {
      const tiled = await runInRowTiles(thread, 'row-local', feeds, tile);
      expect(tiled['y']).toEqual(whole['y']);
      expect(tiled['z']).toEqual(whole['z']);
    }
  });
  it('cuts smaller tiles inside a compute scope with a piece bound (a server’s prefill chunk), with the same outputs', async () => {
    const whole = await thread.run('row-local', feeds);
    const tileRows: number[] = [];
    const counting = { run: (key: string, tile: Record<string, WireTensor>) => (tileRows.push(tile['x']!.dims[0]!), thread.run(key, tile)) } as unknown as ComputeThread;
    const tiled = await withComputePriority(1, () => runInRowTiles(counting, 'row-local', feeds, 1000), 64);
    expect(tileRows).toEqual([64, 64, 64, 8]);
    expect(tiled['y']).toEqual(whole['y']);
    expect(tiled['z']).toEqual(whole['z']);
  });
});
