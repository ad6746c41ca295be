import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ComputeThread, GraphBuilder, withComputePriority } from '../src/index.js';

/** y = x·2 over a vector of n floats. */
function doubler(n: number): Uint8Array {
  const g = new GraphBuilder('doubler');
  g.op('Mul', [g.input('x', 'float', [n]), g.scalar(2)], {}, { outputName: 'y' });
  g.output('y', 'float', [n]);
  return g.toModelBytes();
}

/** A model whose run takes a while: a chain of large matmuls. */
function slowModel(): Uint8Array {
  const g = new GraphBuilder('slow');
  let x = g.input('x', 'float', [512, 512]);
  for (let i = 0; i < 64; i++) x = g.op('MatMul', [x, x]);
  g.op('Identity', [x], {}, { outputName: 'y' });
  g.output('y', 'float', [512, 512]);
  return g.toModelBytes();
}

let thread: ComputeThread | undefined;
afterEach(async () => thread?.close());

describe('ComputeThread', () => {
  it('runs a loaded model repeatedly on reused feed buffers, leaving the caller’s arrays alone', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('doubler', () => doubler(1 << 20));
    const backing = new Float32Array((1 << 20) + 3).map((_, i) => i);
    const x = backing.subarray(3); // a view with an offset, as strategies slice blocks out of larger tensors
    for (let round = 0; round < 3; round++) {
      const { y } = await thread.run('doubler', { x: { type: 'float32', data: x, dims: [1 << 20] } });
      expect(y![0]).toBe(6);
      expect(y![(1 << 20) - 1]).toBe(2 * ((1 << 20) + 2));
    }
    expect(backing[3]).toBe(3);
    expect(x.length).toBe(1 << 20);
  });

  it('reports a run of a model that was never loaded as ERR_KERNEL', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await expect(thread.run('missing', {})).rejects.toMatchObject({ code: 'ERR_KERNEL' });
  });

  it('runs a chain in one request: later steps read earlier outputs, writes take rows from them', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('doubler', () => doubler(4));
    // y [4] is written as 4 rows of one float, from row 1 of a 6-row resident tensor.
    const layout = { type: 'float32' as const, groups: 1, width: 1, capacity: 6, fill: -1 };
    const outputs = await thread.chain([
      { run: 'doubler', feeds: { x: { type: 'float32', data: Float32Array.of(1, 2, 3, 4), dims: [4] } } },
      { write: 'rows', layout, at: 1, rows: { output: 'y' } },
      { run: 'doubler', feeds: { x: { output: 'y' } } },
    ]);
    expect(Array.from(outputs['y']!)).toEqual([4, 8, 12, 16]);
    await thread.load('doubler6', () => doubler(6));
    const { y } = await thread.run('doubler6', { x: { resident: 'rows', dims: [6] } });
    expect(Array.from(y!)).toEqual([-2, 4, 8, 12, 16, -2]);
  });

  it('feeds rows of an earlier output and keeps outputs of one graph apart under the names a step gives them', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('doubler', () => doubler(4));
    await thread.load('doubler2', () => doubler(2));
    const outputs = await thread.chain([
      { run: 'doubler', feeds: { x: { type: 'float32', data: Float32Array.of(1, 2, 3, 4), dims: [4] } } },
      { run: 'doubler2', feeds: { x: { output: 'y', rows: [0, 2] } }, outputs: { y: 'first' } },
      { run: 'doubler2', feeds: { x: { output: 'y', rows: [2, 4] } }, outputs: { y: 'second' } },
    ]);
    expect([outputs['y'], outputs['first'], outputs['second']].map((t) => Array.from(t!))).toEqual([
      [2, 4, 6, 8],
      [4, 8],
      [12, 16],
    ]);
    await expect(thread.chain([{ run: 'doubler2', feeds: { x: { output: 'first', rows: [1, 3] } } }])).rejects.toMatchObject({ code: 'ERR_KERNEL' });
  });

  it('runs queued chains lowest priority first, in the order sent among equals', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('slow', slowModel);
    await thread.load('doubler', () => doubler(1));
    const t = thread;
    const finished: string[] = [];
    const run = (name: string, priority: number, key = 'doubler') =>
      withComputePriority(priority, () =>
        t.run(key, { x: { type: 'float32', data: new Float32Array(key === 'slow' ? 512 * 512 : 1), dims: key === 'slow' ? [512, 512] : [1] } }),
      ).then(() => finished.push(name));
    // The slow run holds the thread while the others queue behind it; then the urgent ones go first.
    const runs = [run('running', 5, 'slow'), run('late a', 5), run('late b', 5), run('urgent a', 0), run('urgent b', 0), run('default', Number.MAX_SAFE_INTEGER)];
    await Promise.all(runs);
    expect(finished).toEqual(['running', 'urgent a', 'urgent b', 'late a', 'late b', 'default']);
  });

  it('fails a chain whose step names an output no earlier step produced, with ERR_KERNEL', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('doubler', () => doubler(4));
    await expect(thread.chain([{ run: 'doubler', feeds: { x: { output: 'nothing' } } }])).rejects.toMatchObject({
      code: 'ERR_KERNEL',
      message: expect.stringContaining("'nothing'"),
    });
  });

  it('rejects pending and later calls with a typed error when its thread dies', async () => {
    thread = await ComputeThread.start({ threads: 1 });
    await thread.load('slow', slowModel);
    const pending = thread.run('slow', { x: { type: 'float32', data: new Float32Array(512 * 512).fill(1e-3), dims: [512, 512] } });
    await (thread as unknown as { worker: Worker }).worker.terminate(); // stands in for a crash
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(thread.run('slow', {})).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});
