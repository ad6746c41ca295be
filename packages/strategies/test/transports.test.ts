import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom, type BlockAttentionKernel } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createTransport, startRendezvous, type RendezvousServer, type Transport } from '@seqpar/transport';
import { runStrategyInproc, type StrategyName } from '../src/index.js';
import { maxAbsDiff } from './harness.js';

// Every strategy over real ws and shm endpoints (sockets, shared-memory slot rings) of three ranks in this process;
// the inproc transport runs the full matrix in strategies.test.ts. S = 1031 makes uneven shards and frames of
// ~66 KB, large enough to travel through shm slots rather than inline on the socket.
const DISTRIBUTED: StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const [seq, hq, hkv, d, n] = [1031, 6, 3, 8, 3];
const random = seededRandom(11);
const q = randomTensor([seq, hq, d], random);
const k = randomTensor([seq, hkv, d], random);
const v = randomTensor([seq, hkv, d], random);

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

describe.each(['ws', 'shm'] as const)('over the %s transport', (kind) => {
  let rendezvous: RendezvousServer;
  let transports: Transport[] = [];
  beforeAll(async () => {
    const token = `strategies-${kind}-${Math.random()}`;
    rendezvous = await startRendezvous({ worldSize: n, token });
    transports = await Promise.all(Array.from({ length: n }, (_, rank) => createTransport(kind, { rank, worldSize: n, token, rendezvous: rendezvous.address })));
  });
  afterAll(async () => {
    await Promise.all(transports.map((transport) => transport.close()));
    await rendezvous?.close();
  });

  describe.each([false, true])('causal %s', (causal) => {
    it.each(DISTRIBUTED)('%s equals the single-device kernel', async (name) => {
      const expected = await kernel.attend(q, k, v, { kind: causal ? 'causal-inclusive' : 'none' });
      const sentBefore = transports.map((transport) => transport.stats().bytesSent);
      const { result } = await runStrategyInproc(name, q, k, v, { causal, degree: n, kernels: [kernel], timeoutMs: 20_000, transports });
      expect(maxAbsDiff(result.out.data, expected.out.data)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(result.lse.data, expected.lse.data)).toBeLessThanOrEqual(1e-3);
      // Every rank really sent its blocks over this transport (but causal ring's last rank: no rank needs its KV).
      const senders = causal && name === 'ring' ? transports.slice(0, -1) : transports;
      senders.forEach((transport, rank) => expect(transport.stats().bytesSent).toBeGreaterThan(sentBefore[rank]! + 16 * 1024));
    });
  });
});
