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
});
