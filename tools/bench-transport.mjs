// Throughput and round-trip time of each transport between two real processes (inproc: one process), at 64 B,
// 64 KiB and 8 MiB, next to memcpy of the bigger sizes. Throughput is an echo stream: rank 0 sends N frames while
// the peer sends each back, so every frame crosses the link twice; GB/s counts both crossings. After one untimed
// round (JIT, socket buffers) each size runs three timed rounds and reports the median round.
import { patternPayload } from '@seqpar/transport';
import { writeReport } from './bench-report.mjs';
import { median } from './bench-util.mjs';
import { openPair, openRawWsPair, roundTrips } from './transport-pairs.mjs';

const KiB = 1024;
const sizes = [64, 64 * KiB, 8 * 1024 * KiB];
const framesFor = (size) => (size <= 64 * KiB ? 512 : 48);
const rounds = 3;

export async function run(args = []) {
  // `npm run bench -- transport ws` measures only the named transports and writes no report (for profiling).
  const only = args.length ? args : undefined;
  const rows = [];
  for (const size of sizes.slice(1)) rows.push({ transport: 'memcpy', ...measureMemcpy(size) });
  for (const kind of only ?? ['inproc', 'ws', 'shm', 'raw-ws']) {
    const pair = kind === 'raw-ws' ? await openRawWsPair() : await openPair(kind);
    try {
      for (const size of sizes) rows.push({ transport: kind, ...(await measure(pair, size)) });
    } finally {
      await pair.dispose();
    }
  }
  if (only) return void console.table(rows);
  const at = (transport, bytes) => rows.find((r) => r.transport === transport && r.bytes === bytes);
  const big = sizes.at(-1);
  const memcpy8 = at('memcpy', big).gbPerS;
  const shm8 = at('shm', big).gbPerS;
  const ws8 = at('ws', big).gbPerS;
  const [ws, raw] = [at('ws', big), at('raw-ws', big)];
  const [wsTiny, rawTiny] = [at('ws', sizes[0]), at('raw-ws', sizes[0])];
  writeReport('transport', {
    title: 'seqpar transports: throughput and round trip (rank 0 <-> rank 1)',
    columns: ['transport', 'bytes', 'frames', 'gbPerS', 'oneWayGbPerS', 'rttUs'],
    rows,
    notes: [
      'gbPerS: echo stream, payload bytes x 2 crossings / wall time (memcpy: one copy into a reused buffer). oneWayGbPerS (8 MiB): rank 0 streams, rank 1 only receives (and checks the pattern); the setting in which plain ws with bufferutil first measured 2.4-3.2 GB/s.',
      'raw-ws: the same measurements over plain ws binary messages (bufferutil, no deflate, zero masks) between two processes, without seqpar framing, credit or mailbox: the floor of ws on this machine in this run.',
      `gbPerS is the median of ${rounds} timed rounds after an untimed one; rttUs: median of one frame out and back, sequential (101 samples, 21 at 8 MiB), inside one peer command.`,
      `shm / memcpy at 8 MiB: ${(shm8 / memcpy8).toFixed(2)} (target >= 0.5); ws at 8 MiB: ${ws8.toFixed(2)} GB/s (target >= 2).`,
      `ws / raw-ws at 8 MiB: echo ${(ws.gbPerS / raw.gbPerS).toFixed(2)}, one-way ${(ws.oneWayGbPerS / raw.oneWayGbPerS).toFixed(2)}; 64 B round trip ${wsTiny.rttUs.toFixed(0)} us vs ${rawTiny.rttUs.toFixed(0)} us raw.`,
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
  await echo(pair, payload, frames, 'warm');
  const rates = [];
  for (let round = 0; round < rounds; round += 1) {
    const start = performance.now();
    await echo(pair, payload, frames, `stream-${round}`);
    rates.push((2 * frames * size) / (performance.now() - start) / 1e6);
  }
  const oneWay = size > 64 * KiB ? { oneWayGbPerS: await oneWayRate(pair, size, frames) } : {};
  const rtts = await roundTrips(pair, payload, size <= 64 * KiB ? 101 : 21);
  return { bytes: size, frames, gbPerS: median(rates), ...oneWay, rttUs: median(rtts) };
}

/** Median GB/s of rank 0 streaming `frames` frames that rank 1 drains (every frame carries pattern 0, which it checks). */
async function oneWayRate(pair, size, frames) {
  const payload = patternPayload(0, size);
  const rates = [];
  for (let round = 0; round < rounds; round += 1) {
    const start = performance.now();
    const drained = pair.run({ op: 'drain', tag: `one-way-${round}`, count: frames });
    for (let i = 0; i < frames; i += 1) await pair.local.send(1, `one-way-${round}`, { seq: 0 }, payload);
    const seen = await drained;
    rates.push((frames * size) / (performance.now() - start) / 1e6);
    if (seen.some((seq) => seq !== 0)) throw new Error('one-way frames arrived corrupted');
  }
  return median(rates);
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
