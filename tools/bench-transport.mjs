// Throughput and round-trip time of each transport between two real processes (inproc: one process), at 64 B,
// 64 KiB and 8 MiB, next to memcpy of the bigger sizes. Throughput is an echo stream: rank 0 sends N frames while
// the peer sends each back, so every frame crosses the link twice; GB/s counts both crossings. After one untimed
// round (JIT, socket buffers) each size runs three timed rounds and reports the median round.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInprocGroup, createTransport, patternPayload, runPeerCommand, spawnPeerProcess, startRendezvous } from '@seqpar/transport';
import { WebSocket, WebSocketServer } from 'ws';
import { writeReport } from './bench-report.mjs';

const KiB = 1024;
const sizes = [64, 64 * KiB, 8 * 1024 * KiB];
const framesFor = (size) => (size <= 64 * KiB ? 512 : 48);
const rounds = 3;
/** argv[2] of the child that answers the raw-ws reference (plain ws messages, none of seqpar's framing). */
const RAW_WS_PEER = 'raw-ws-peer';
const wsOptions = { perMessageDeflate: false, maxPayload: 64 * 1024 * KiB };

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

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Microseconds of `count` sequential frames out and back, within one peer command (no IPC in the timing). */
async function roundTrips(pair, payload, count) {
  const peerDone = pair.run({ op: 'echo', tag: 'rtt', count });
  const rtts = [];
  for (let i = 0; i < count; i += 1) {
    const t = performance.now();
    await pair.local.send(1, 'rtt', { i }, payload);
    const frame = await pair.local.recv(1, 'rtt', { timeoutMs: 30_000 });
    rtts.push((performance.now() - t) * 1000);
    frame.release?.();
  }
  await peerDone;
  return rtts;
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

/**
 * The raw-ws reference behind the same pair interface: rank 0 sends plain binary messages; the child echoes
 * them, or for a drain takes `count` messages and answers with the text "done". Tags and headers are not sent.
 */
async function openRawWsPair() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, ...wsOptions });
  await once(server, 'listening');
  const child = fork(fileURLToPath(import.meta.url), [RAW_WS_PEER, String(server.address().port)], { execArgv: [] });
  const [ws] = await once(server, 'connection');
  const arrived = [];
  const waiting = [];
  ws.on('message', (data) => (waiting.length ? waiting.shift()(data) : arrived.push(data)));
  const next = () => (arrived.length ? Promise.resolve(arrived.shift()) : new Promise((resolve) => waiting.push(resolve)));
  const local = {
    send: (_to, _tag, _header, payload) => new Promise((resolve, reject) => ws.send(payload, (error) => (error ? reject(error) : resolve()))),
    recv: async () => ({ payload: await next() }),
  };
  const run = async (command) => {
    if (command.op === 'echo') return command.count;
    ws.send(String(command.count));
    await next();
    return new Array(command.count).fill(0);
  };
  const dispose = async () => {
    const exited = once(child, 'exit');
    ws.terminate();
    await exited;
    await new Promise((resolve) => server.close(resolve));
  };
  return { local, run, dispose };
}

if (process.argv[2] === RAW_WS_PEER) {
  const ws = new WebSocket(`ws://127.0.0.1:${process.argv[3]}`, { ...wsOptions, generateMask: (mask) => mask.fill(0) });
  let draining = 0;
  ws.on('message', (data, isBinary) => {
    if (!isBinary) draining = Number(data);
    else if (draining > 0) (draining -= 1) === 0 && ws.send('done');
    else ws.send(data);
  });
  ws.on('close', () => process.exit(0));
}
