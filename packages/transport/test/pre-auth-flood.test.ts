import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { patternPayload } from '../src/conformance-commands.js';
import { spawnPeerProcess } from '../src/peer-process.js';
import { joinRendezvous, startRendezvous } from '../src/rendezvous.js';
import { encodeData } from '../src/wire-frame.js';
import { connectWithRetry } from '../src/ws-connect.js';
import { dialHandshake } from '../src/ws-handshake.js';

const token = 'flood-token';
const MiB = 2 ** 20;
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((step) => step()));
  cleanup = [];
});

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(/\d+/.exec(line)![0]) / 1024;
}

/** One unauthenticated connection: it sends `hello` (if any) and waits until the server drops it; resolves how it ended. */
function intruder(address: string, hello: Uint8Array | undefined): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${address}`, { perMessageDeflate: false, generateMask: (mask) => mask.fill(0) });
    ws.on('error', () => {});
    ws.on('open', () => hello && ws.send(hello, () => {}));
    ws.on('unexpected-response', (_request, response) => (resolve(`http ${response.statusCode}`), ws.terminate()));
    ws.on('close', (code) => resolve(`close ${code}`));
  });
}

describe('pre-authentication limits of a listening port', () => {
  it('a flood of 1,000 connections and 64 MiB hellos leaves the listener RSS flat, and a legitimate peer connects afterwards', async () => {
    const rendezvous = await startRendezvous({ worldSize: 2, token });
    cleanup.push(() => rendezvous.close());
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, connectTimeoutMs: 60_000, heartbeatMs: 60_000 };
    // The listener under attack: rank 0 of a ws world, in its own process, waiting for rank 1 to dial it.
    const target = spawnPeerProcess('ws', { ...options, rank: 0 });
    cleanup.push(() => target.kill());
    const [address] = await joinRendezvous({ ...options, rank: 1, address: '127.0.0.1:1', timeoutMs: 10_000 });
    const pid = target.child.pid!;
    await sleep(300);
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);

    const oversize = new Uint8Array(64 * MiB);
    // 1,000 at once (silent, small junk, 64 MiB), then 16 oversize hellos within the pending cap, so they all reach the parser.
    const flood = await Promise.all(Array.from({ length: 1000 }, (_, i) => intruder(address!, i % 50 === 0 ? oversize : i % 2 ? new Uint8Array(8) : undefined)));
    const oversizeWave = await Promise.all(Array.from({ length: 16 }, () => intruder(address!, oversize)));
    const outcomes = [...flood, ...oversizeWave];
    clearInterval(sampler);
    await sleep(300);
    const after = rssMiB(pid);
    const tally = outcomes.reduce<Record<string, number>>((counts, outcome) => ((counts[outcome] = (counts[outcome] ?? 0) + 1), counts), {});
    console.log(`listener RSS ${before.toFixed(0)} MiB -> peak ${peak.toFixed(0)} -> ${after.toFixed(0)} MiB; outcomes ${JSON.stringify(tally)}`);
    expect(after - before).toBeLessThan(50);
    expect(peak - before).toBeLessThan(50);
    expect(oversizeWave).toEqual(Array(16).fill('close 1009')); // cut at their frame header, before any payload is buffered

    const legit = await connectWithRetry(address!, Date.now() + 15_000);
    cleanup.push(async () => legit.terminate());
    await dialHandshake(legit, token, 1, 2 * MiB);
    await target.ready;
    const draining = target.run({ op: 'drain', tag: 'after-flood', count: 1, peer: 1 });
    legit.send(encodeData('after-flood', { seq: 0 }, patternPayload(0, MiB)));
    expect(await draining).toEqual([0]);
  }, 60_000);
});
