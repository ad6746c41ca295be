// Round trip of one 64-byte frame between two processes over each transport, measured interleaved (every round
// runs every transport of its group in turn, so load on the shared host hits them alike), next to what it is made of: the
// floor of two processes busy-polling one word of shared memory, the same frame between two endpoints of one
// process (inproc: the promise and mailbox path), one event-loop turn, and msgpack of a frame's meta. Then the
// exchange a sharded decode pays per layer: gatherDecodePartials between two shm worker processes, with the tiny
// generation model's shape (1 query row, 8 heads, head dim 32: out and lse of all heads in one frame).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createPartial, RankRecorder } from '@seqpar/core';
import { gatherDecodePartials } from '@seqpar/strategies';
import { createTransport, startRendezvous } from '@seqpar/transport';
import { pack, unpack } from 'msgpackr';
import { writeReport } from './bench-report.mjs';
import { median } from './bench-util.mjs';
import { openPair, openRawWsPair, roundTrips } from './transport-pairs.mjs';

const SPIN_PEER = 'spin-floor-peer';
const DECODE_PEER = 'decode-exchange-peer';
/** The decode step of tools/bench-generate.mjs's model: one new token's rows, query heads, head dim. */
const DECODE_SHAPE = { rows: 1, heads: 8, dim: 32 };
const DECODE_WARM_UP = 4000;
const DECODE_EXCHANGES = DECODE_WARM_UP + 2000;
const BYTES = 64;
const rounds = 10;
const perRound = 200;
const WARM_UP = 6000;

/**
 * Transports measured side by side, interleaved, with no other pair open: an open shm pair wakes this process
 * every 20 ms to poll for a while, which moved the ws median here from ~36-41 to ~56 us (raw ws 28-34).
 */
const groups = [
  ['raw-ws', 'ws'],
  ['shm', 'inproc'],
];

export async function run(args = []) {
  if (args[0] === 'decode') return void console.table([{ transport: 'shm decode exchange', ...percentiles(await decodeExchanges(DECODE_EXCHANGES)) }]);
  const only = args.length ? args : undefined;
  const samples = new Map();
  for (const group of only ? [only] : groups) for (const [kind, rtts] of await interleaved(group)) samples.set(kind, rtts);
  const rows = [...samples].map(([transport, rtts]) => ({ transport, ...percentiles(rtts) }));
  if (!only) rows.push({ transport: 'spin-floor', ...percentiles(await spinFloor(rounds * perRound)) });
  if (!only) rows.push({ transport: 'shm decode exchange', ...percentiles(await decodeExchanges(DECODE_EXCHANGES)) });
  rows.push({ transport: 'event-loop turn', p50Us: await eventLoopTurnUs() });
  rows.push({ transport: 'msgpack meta', p50Us: msgpackUs() });
  if (only) return void console.table(rows);
  const at = (transport) => rows.find((row) => row.transport === transport).p50Us;
  const wsRatio = at('ws') / at('raw-ws');
  writeReport('latency', {
    title: `seqpar transports: ${BYTES}-byte round trip between two processes`,
    columns: ['transport', 'samples', 'p10Us', 'p50Us', 'p90Us', 'p99Us'],
    rows,
    notes: [
      `${rounds} interleaved rounds of ${perRound} sequential round trips per transport (after ${WARM_UP} untimed ones); one frame out, the peer's echo back, timed on rank 0. Interleaved in groups (${groups.map((group) => group.join(' + ')).join('; ')}), each with only its own pairs open: an open shm pair polls in this process.`,
      `shm round trip median ${at('shm').toFixed(1)} us (target <= 30); ws ${at('ws').toFixed(1)} us = ${wsRatio.toFixed(2)}x raw ws ${at('raw-ws').toFixed(1)} us (target <= 1.3x); shm decode exchange median ${at('shm decode exchange').toFixed(1)} us (target <= 60).`,
      `shm decode exchange: ${DECODE_EXCHANGES - DECODE_WARM_UP} calls (after ${DECODE_WARM_UP} untimed ones) of gatherDecodePartials (strategies) between two shm worker processes, a fresh tag prefix per call as a decode's layers use, partials of ${DECODE_SHAPE.rows} row x ${DECODE_SHAPE.heads} heads x ${DECODE_SHAPE.dim} dims (out + lse, one frame each way), timed on rank 0 from the call to the merged result.`,
      'ws against raw ws: the same syscalls per round trip (one epoll_pwait, read and writev per frame on each side, strace -c) and no timer due within milliseconds; what is left is per-frame CPU in both processes (tag, header, mailbox, credit, a microtask hop), which adds to the round trip whether the two processes share a core or wake each other across two.',
      'raw-ws: plain ws binary messages (bufferutil, no deflate, zero masks), no seqpar framing, credit or mailbox. spin-floor: two processes ping-pong one Int32 of a shared-memory segment, both spinning; the floor of any shared-memory signalling here.',
      'inproc: both endpoints in one process, the transport path without any wire. event-loop turn: one setImmediate round. msgpack meta: pack + unpack of a frame meta [tag, header].',
      'shm polls its rings on every event-loop turn within an adaptive spin budget (default 1 ms), then sleeps until a ws wake: where both processes hold a core it answers within a few event-loop turns, where they share one it falls back to the wake. The spin floor runs for under a millisecond in all, often inside one time slice; a longer spin meets the scheduler (its p90 and p99).',
      `Load average when the run ended: ${loadavg()
        .map((load) => load.toFixed(2))
        .join(', ')} (1, 5, 15 min). On a shared host a process that waits for a time slice adds its wait to a sample; compare within one run.`,
    ],
    extra: { raw: Object.fromEntries([...samples].map(([kind, rtts]) => [kind, median(rtts)])) },
  });
}

/** Round trips (us) of each kind in `kinds`: their pairs open together, warmed up, then timed in turn per round. */
async function interleaved(kinds) {
  const pairs = new Map();
  for (const kind of kinds) pairs.set(kind, kind === 'raw-ws' ? await openRawWsPair() : await openPair(kind));
  const payload = new Uint8Array(BYTES).fill(5);
  const samples = new Map(kinds.map((kind) => [kind, []]));
  try {
    // Untimed: the JIT takes thousands of frames to settle (a seqpar ws round trip fell from ~400 to ~75 us over
    // its first 6,000 here, raw ws's from ~110 to ~35), and a transport lives for millions.
    for (const pair of pairs.values()) await roundTrips(pair, payload, WARM_UP);
    for (let round = 0; round < rounds; round += 1) {
      for (const [kind, pair] of pairs) samples.get(kind).push(...(await roundTrips(pair, payload, perRound)));
    }
  } finally {
    await Promise.all([...pairs.values()].map((pair) => pair.dispose()));
  }
  return samples;
}

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { samples: sorted.length, p10Us: at(0.1), p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99) };
}

function eventLoopTurnUs() {
  const turns = 20_000;
  return new Promise((resolve) => {
    let left = turns;
    const start = performance.now();
    const next = () => (--left > 0 ? setImmediate(next) : resolve(((performance.now() - start) * 1000) / turns));
    setImmediate(next);
  });
}

function msgpackUs() {
  const count = 100_000;
  const start = performance.now();
  for (let i = 0; i < count; i += 1) unpack(pack(['rtt', { i }]));
  return ((performance.now() - start) * 1000) / count;
}

/** Microseconds per gatherDecodePartials call between this process (rank 0) and a child (rank 1), both on shm. */
async function decodeExchanges(count) {
  const token = `bench-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address };
  const child = fork(fileURLToPath(import.meta.url), [DECODE_PEER, JSON.stringify({ ...options, rank: 1 }), String(count)], { execArgv: [] });
  const transport = await createTransport('shm', { ...options, rank: 0 });
  try {
    return await exchangeLoop(transport, count);
  } finally {
    await once(child, 'exit');
    await transport.close();
    await rendezvous.close();
  }
}

/** Both ranks run this: `count` exchanges of a partial, each timed (us) from the call to the merged result. */
async function exchangeLoop(transport, count) {
  const { rows, heads, dim } = DECODE_SHAPE;
  const local = createPartial(rows, heads, dim);
  local.out.data.fill(transport.rank + 1);
  local.lse.data.fill(transport.rank);
  const recorder = new RankRecorder(transport.rank);
  const timings = [];
  for (let i = 0; i < count; i += 1) {
    const ctx = { rank: transport.rank, worldSize: 2, transport, kernel: undefined, recorder, tagPrefix: `d${i}/`, timeoutMs: 30_000 };
    const start = performance.now();
    await gatherDecodePartials(ctx, local);
    timings.push((performance.now() - start) * 1000);
  }
  return timings.slice(DECODE_WARM_UP);
}

const loadShm = () => createRequire(import.meta.url)('shm-typed-array');
/** Int32 words of the spin floor's segment: rank 0 writes PING, rank 1 answers with the same value in PONG. */
const PING = 0;
const PONG = 16;

/** Round trips (us) of two processes that each spin on a word of one shared-memory segment. */
async function spinFloor(count) {
  const shm = loadShm();
  const name = `/seqpar-bench-spin-${process.pid}`;
  const memory = shm.create(4096, 'Buffer', name);
  const words = new Int32Array(memory.buffer, memory.byteOffset, 64);
  const child = fork(fileURLToPath(import.meta.url), [SPIN_PEER, name, String(count)], { execArgv: [] });
  try {
    await once(child, 'message');
    const rtts = [];
    for (let i = 1; i <= count; i += 1) {
      const t = performance.now();
      Atomics.store(words, PING, i);
      while (Atomics.load(words, PONG) !== i) if (child.exitCode !== null) throw new Error('spin-floor peer exited');
      rtts.push((performance.now() - t) * 1000);
    }
    await once(child, 'exit');
    return rtts;
  } finally {
    shm.destroy(name);
  }
}

if (process.argv[2] === DECODE_PEER) {
  const transport = await createTransport('shm', JSON.parse(process.argv[3]));
  await exchangeLoop(transport, Number(process.argv[4]));
  await transport.close();
  process.exit(0);
}

if (process.argv[2] === SPIN_PEER) {
  const memory = loadShm().get(process.argv[3], 'Buffer');
  const words = new Int32Array(memory.buffer, memory.byteOffset, 64);
  const count = Number(process.argv[4]);
  process.send('ready');
  const giveUpAt = Date.now() + 60_000; // the parent died mid-run: do not spin forever
  for (let seen = 0, spins = 0; seen < count; spins += 1) {
    if ((spins & 0xfffff) === 0 && Date.now() > giveUpAt) process.exit(1);
    const ping = Atomics.load(words, PING);
    if (ping !== seen) Atomics.store(words, PONG, (seen = ping));
  }
  process.exit(0);
}
