// Throughput and round-trip time of each transport between two real processes (inproc: one process), at 64 KiB
// and 8 MiB, next to memcpy of the same sizes. Throughput is an echo stream: rank 0 sends N frames while the
// peer sends each back, so every frame crosses the link twice; GB/s counts both crossings.
import { createInprocGroup, createTransport, runPeerCommand, spawnPeerProcess, startRendezvous } from '@seqpar/transport';
import { writeReport } from './bench-report.mjs';

const KiB = 1024;
const sizes = [64 * KiB, 8 * 1024 * KiB];
const framesFor = (size) => (size === 64 * KiB ? 512 : 48);

export async function run() {
  const rows = [];
  for (const size of sizes) rows.push({ transport: 'memcpy', ...measureMemcpy(size) });
  for (const kind of ['inproc', 'ws', 'shm']) {
    const pair = await openPair(kind);
    try {
      for (const size of sizes) rows.push({ transport: kind, ...(await measure(pair, size)) });
    } finally {
      await pair.dispose();
    }
  }
  const memcpy8 = rows.find((r) => r.transport === 'memcpy' && r.bytes === sizes[1]).gbPerS;
  const shm8 = rows.find((r) => r.transport === 'shm' && r.bytes === sizes[1]).gbPerS;
  const ws8 = rows.find((r) => r.transport === 'ws' && r.bytes === sizes[1]).gbPerS;
  writeReport('transport', {
    title: 'seqpar transports: throughput and round trip (rank 0 <-> rank 1)',
    columns: ['transport', 'bytes', 'frames', 'gbPerS', 'rttUs'],
    rows,
    notes: [
      'gbPerS: echo stream, payload bytes x 2 crossings / wall time (memcpy: one copy into a reused buffer).',
      'rttUs: median of one frame out and back, sequential.',
      `shm / memcpy at 8 MiB: ${(shm8 / memcpy8).toFixed(2)} (target >= 0.5); ws at 8 MiB: ${ws8.toFixed(2)} GB/s (target >= 2).`,
      'ws and shm peers are separate processes; inproc copies on send. Machine shared with other jobs: compare within one run.',
    ],
  });
}

function measureMemcpy(size) {
  const src = Buffer.alloc(size, 1);
  const dst = Buffer.alloc(size);
  const frames = framesFor(size) * 4;
  const start = performance.now();
  for (let i = 0; i < frames; i += 1) src.copy(dst);
  const ms = performance.now() - start;
  return { bytes: size, frames, gbPerS: (frames * size) / ms / 1e6, rttUs: '' };
}

async function measure(pair, size) {
  const payload = new Uint8Array(size).fill(5);
  const frames = framesFor(size);
  await echo(pair, payload, 4, 'warm');
  const start = performance.now();
  await echo(pair, payload, frames, 'stream');
  const ms = performance.now() - start;
  const rtts = [];
  for (let i = 0; i < 20; i += 1) {
    const t = performance.now();
    await echo(pair, payload, 1, 'rtt');
    rtts.push((performance.now() - t) * 1000);
  }
  rtts.sort((a, b) => a - b);
  return { bytes: size, frames, gbPerS: (2 * frames * size) / ms / 1e6, rttUs: rtts[10] };
}

async function echo(pair, payload, count, tag) {
  const peerDone = pair.run({ op: 'echo', tag, count });
  const sending = (async () => {
    for (let i = 0; i < count; i += 1) await pair.local.send(1, tag, { i }, payload);
  })();
  for (let i = 0; i < count; i += 1) {
    const frame = await pair.local.recv(1, tag, { timeoutMs: 30_000 });
    frame.release?.();
  }
  await Promise.all([sending, peerDone]);
}

async function openPair(kind) {
  if (kind === 'inproc') {
    const [local, peer] = createInprocGroup(2);
    return { local, run: (command) => runPeerCommand(peer, command), dispose: () => Promise.all([local.close(), peer.close()]) };
  }
  const token = `bench-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address };
  const peer = spawnPeerProcess(kind, { ...options, rank: 1 });
  const local = await createTransport(kind, { ...options, rank: 0 });
  await peer.ready;
  return { local, run: (command) => peer.run(command), dispose: () => Promise.all([local.close(), peer.kill(), rendezvous.close()]) };
}
