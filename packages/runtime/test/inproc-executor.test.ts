import { describe, expect, it } from 'vitest';
import { InprocExecutor } from '../src/executors/inproc-executor.js';
import { createAttentionKernel } from '@seqpar/kernels';

describe('InprocExecutor', () => {
  it('bounds joining a world: ranks that never come fail the join with ERR_TIMEOUT naming them', async () => {
    const executor = new InprocExecutor(2, (rank) => createAttentionKernel({ deviceIndex: rank }), {}, 300);
    // start() is never called, so no rank loop joins.
    const started = Date.now();
    const error = await executor.join().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect((error as Error).message).toMatch(/rank 0, rank 1 did not join within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
    await executor.close();
  });

  it('reports a rank loop that fails as lost (it was discarded) and starts it afresh on replace', async () => {
    const executor = new InprocExecutor(2, (rank) => createAttentionKernel({ deviceIndex: rank }), {}, 300);
    const lost: [number, string][] = [];
    executor.onLost((rank, error) => lost.push([rank, error.code]));
    await executor.start();
    // Nobody joins as the coordinator, so each rank's first join times out, which ends its loop.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(lost.sort()).toEqual([
      [0, 'ERR_TIMEOUT'],
      [1, 'ERR_TIMEOUT'],
    ]);
    await executor.replace(0);
    await executor.replace(1);
    const world = await executor.join();
    expect(world.worldSize).toBe(3);
    await world.close();
    await executor.close();
  });
});
