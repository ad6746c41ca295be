// The host's side of a calibration: memory bandwidth, and one link between two ranks of a transport.
import { createInprocGroup, createTransport, runPeerCommand, spawnPeerProcess, startRendezvous, type PeerCommand, type Transport, type TransportKind } from '@seqpar/transport';

const LINK_FRAME_BYTES = 8 * 2 ** 20;
const LINK_FRAMES = 16;

/**
 * A 64 MiB memcpy into a buffer already touched (memory bandwidth), and copies into fresh Float32Arrays as the
 * strategies make them when they pack frames (the new pages cost more than the copy: ~0.43 ms per fresh MiB, measured).
 */
export function measureMemcpy(): { memoryBandwidth: number; freshCopyMsPerMiB: number } {
  const bytes = 64 * 2 ** 20;
  const [src, dst] = [Buffer.alloc(bytes, 1), Buffer.alloc(bytes)];
  src.copy(dst);
  let start = performance.now();
  for (let i = 0; i < 4; i++) src.copy(dst);
  const memoryBandwidth = (4 * bytes) / ((performance.now() - start) / 1000);
  const floats = new Float32Array(src.buffer, src.byteOffset, bytes / 4 / 4);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    start = performance.now();
    new Float32Array(floats.length).set(floats);
    best = Math.min(best, performance.now() - start);
  }
  return { memoryBandwidth, freshCopyMsPerMiB: best / (floats.byteLength / 2 ** 20) };
}

/**
 * One direction of a rank-0 -> rank-1 link, one frame at a time as a ring step sends it: the time for rank 1 to
 * drain an 8 MiB frame less the time to drain a 1-byte one (the command round trip) gives the bandwidth; half a
 * 1-byte echo over the transport gives the latency.
 */
export async function measureLink(kind: TransportKind): Promise<{ bandwidth: number; latencyMs: number }> {
  const pair = await openPair(kind);
  try {
    const big = new Uint8Array(LINK_FRAME_BYTES).fill(7);
    const drainMs = async (payload: Uint8Array): Promise<number> => {
      const start = performance.now();
      const drained = pair.run({ op: 'drain', tag: 'calibrate', count: 1 });
      await pair.local.send(1, 'calibrate', { seq: 0 }, payload);
      await drained;
      return performance.now() - start;
    };
    const echoMs = async (): Promise<number> => {
      const start = performance.now();
      const echoed = pair.run({ op: 'echo', tag: 'calibrate', count: 1 });
      await pair.local.send(1, 'calibrate', { seq: 0 }, tinyPayload);
      (await pair.local.recv(1, 'calibrate', { timeoutMs: 30_000 })).release?.();
      await echoed;
      return performance.now() - start;
    };
    const bigMs = await repeatMedian(LINK_FRAMES, () => drainMs(big));
    const tinyMs = await repeatMedian(LINK_FRAMES, () => drainMs(tinyPayload));
    const rttMs = await repeatMedian(LINK_FRAMES, echoMs);
    return { bandwidth: LINK_FRAME_BYTES / (Math.max(bigMs - tinyMs, 1e-3) / 1000), latencyMs: rttMs / 2 };
  } finally {
    await pair.dispose();
  }
}

/** Median of `runs` results of `measure` after one warm-up. */
async function repeatMedian(runs: number, measure: () => Promise<number>): Promise<number> {
  await measure();
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await measure());
  return values.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

const tinyPayload = new Uint8Array(1);

interface Pair {
  readonly local: Transport;
  run(command: PeerCommand): Promise<unknown>;
  dispose(): Promise<unknown>;
}

/** Rank 0 here and rank 1 in-process (inproc) or in a child process (ws, shm), as @seqpar/transport's bench does. */
async function openPair(kind: TransportKind): Promise<Pair> {
  if (kind === 'inproc') {
    const [local, peer] = createInprocGroup(2);
    return { local: local!, run: (command) => runPeerCommand(peer!, command), dispose: () => Promise.all([local!.close(), peer!.close()]) };
  }
  const token = `calibrate-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address };
  const peer = spawnPeerProcess(kind, { ...options, rank: 1 });
  try {
    const local = await createTransport(kind, { ...options, rank: 0 });
    await peer.ready;
    return { local, run: (command) => peer.run(command), dispose: () => Promise.all([local.close(), peer.kill(), rendezvous.close()]) };
  } catch (error) {
    await Promise.all([peer.kill(), rendezvous.close()]);
    throw error;
  }
}
