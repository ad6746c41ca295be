import { describe, expect, it } from 'vitest';
import { RankRecorder, type BlockAttentionKernel } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import { relayRing, type Relay } from '../src/ring-relay.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Rank 0 of a ring of 3 over a scripted transport: sends take 10 ms to hand off, every received frame is a
 * "slot" frame whose release is logged, so the log shows each received tensor's lifetime.
 */
function scriptedRank() {
  const log: string[] = [];
  const transport: Transport = {
    rank: 0,
    worldSize: 3,
    kind: 'shm',
    async send(to, tag) {
      log.push(`send ${tag} → ${to}`);
      await delay(10);
      log.push(`sent ${tag}`);
    },
    async recv(from, tag): Promise<Frame> {
      await delay(1);
      log.push(`recv ${tag} ← ${from}`);
      return { tag, header: { rows: 1 }, payload: new Uint8Array(4), release: () => log.push(`release ${tag}`) };
    },
    stats: () => ({ bytesSent: 0, bytesRecv: 0, framesSent: 0, framesRecv: 0 }),
    close: async () => undefined,
  };
  const ctx = { rank: 0, worldSize: 3, transport, kernel: {} as BlockAttentionKernel, recorder: new RankRecorder(0), tagPrefix: '', timeoutMs: 1000 };
  const relay: Relay<Float32Array> = { direction: 1, tag: 'x', pack: (values) => ({ rows: 1, values }), unpack: (values) => values };
  return { log, ctx, relay };
}

describe('relayRing', () => {
  it('keeps each received tensor until it was computed on and its forward was handed off, then releases it', async () => {
    const { log, ctx, relay } = scriptedRank();
    await relayRing(ctx, relay, new Float32Array(1), async (step) => void log.push(`compute ${step}`));
    // Step 1 holds what arrived as x/0: forwarded as x/1 and computed on, released only after x/1 was sent.
    expect(log.indexOf('release x/0')).toBeGreaterThan(log.indexOf('sent x/1'));
    expect(log.indexOf('release x/0')).toBeGreaterThan(log.indexOf('compute 1'));
    // The last step forwards nothing; what it held is released after its compute.
    expect(log.indexOf('release x/1')).toBeGreaterThan(log.indexOf('compute 2'));
    expect(log.filter((line) => line.startsWith('send'))).toEqual(['send x/0 → 1', 'send x/1 → 1']);
    expect(log.filter((line) => line.startsWith('release'))).toEqual(['release x/0', 'release x/1']);
  });

  it('releases what it holds and what is already on its way when a step fails', async () => {
    const { log, ctx, relay } = scriptedRank();
    const failing = relayRing(ctx, relay, new Float32Array(1), async (step) => {
      if (step === 1) throw new Error('kernel failed');
    });
    await expect(failing).rejects.toThrow('kernel failed');
    await delay(20);
    // x/0 was in hand at step 1; x/1 was being received for step 2, which never ran.
    expect(log.filter((line) => line.startsWith('release')).sort()).toEqual(['release x/0', 'release x/1']);
    expect(log.indexOf('release x/0')).toBeGreaterThan(log.indexOf('sent x/1'));
  });
});
