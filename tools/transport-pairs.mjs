// Two-process transport pairs for the benchmarks: rank 0 is the calling process, rank 1 a child that runs
// conformance peer commands (seqpar transports) or echoes plain ws messages (the raw-ws reference).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInprocGroup, createTransport, runPeerCommand, spawnPeerProcess, startRendezvous } from '@seqpar/transport';
import { WebSocket, WebSocketServer } from 'ws';

/** argv[2] of the child that answers the raw-ws reference (plain ws messages, none of seqpar's framing). */
const RAW_WS_PEER = 'raw-ws-peer';
const wsOptions = { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 };

/** Microseconds of `count` sequential frames out and back, within one peer command (no IPC in the timing). */
export async function roundTrips(pair, payload, count) {
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

export async function openPair(kind) {
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
export async function openRawWsPair() {
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
