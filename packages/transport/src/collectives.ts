import { UsageError } from '@seqpar/core';
import type { Frame, FrameHeader, RecvOptions, Transport } from './transport.js';

/**
 * Collectives built only on point-to-point send/recv, so they run on every transport. Each is a direct
 * exchange with every peer (world sizes here are small); `tag` keeps concurrent collectives apart and
 * `options` bounds every receive.
 */
export type CollectiveOptions = RecvOptions;

/** Every rank sends to every other rank and receives from each, all concurrently. */
async function exchange(
  transport: Transport,
  tag: string,
  outgoing: (peer: number) => { header: FrameHeader; payload?: ArrayBufferView } | undefined,
  incoming: (peer: number) => boolean,
  options: CollectiveOptions,
): Promise<Map<number, Frame>> {
  const peers = [...Array(transport.worldSize).keys()].filter((peer) => peer !== transport.rank);
  const received = new Map<number, Frame>();
  await Promise.all([
    ...peers.map(async (peer) => {
      const message = outgoing(peer);
      if (message) await transport.send(peer, tag, message.header, message.payload, { signal: options.signal });
    }),
    ...peers.filter(incoming).map(async (peer) => received.set(peer, await transport.recv(peer, tag, options))),
  ]);
  return received;
}

export async function barrier(transport: Transport, tag = 'barrier', options: CollectiveOptions = {}): Promise<void> {
  await exchange(
    transport,
    tag,
    () => ({ header: {} }),
    () => true,
    options,
  );
}

/** `root`'s frame to everyone; returns the payload (root gets its own back). */
export async function broadcast(
  transport: Transport,
  root: number,
  tag: string,
  message: { header: FrameHeader; payload?: Uint8Array } | undefined,
  options: CollectiveOptions = {},
): Promise<{ header: FrameHeader; payload: Uint8Array }> {
  if (transport.rank === root) {
    if (!message) throw new UsageError('broadcast: the root must supply the message');
    await exchange(
      transport,
      tag,
      () => message,
      () => false,
      options,
    );
    return { header: message.header, payload: message.payload ?? new Uint8Array(0) };
  }
  const frames = await exchange(
    transport,
    tag,
    () => undefined,
    (peer) => peer === root,
    options,
  );
  return frames.get(root)!;
}

/** Every rank contributes one frame; each gets all of them, index = rank. */
export async function allGather(
  transport: Transport,
  tag: string,
  mine: { header: FrameHeader; payload?: Uint8Array },
  options: CollectiveOptions = {},
): Promise<{ header: FrameHeader; payload: Uint8Array }[]> {
  const frames = await exchange(
    transport,
    tag,
    () => mine,
    () => true,
    options,
  );
  return byRank(transport, mine, frames);
}

/** `parts[p]` goes to rank p; returns what each rank sent here, index = source rank. */
export async function allToAll(
  transport: Transport,
  tag: string,
  parts: { header: FrameHeader; payload?: Uint8Array }[],
  options: CollectiveOptions = {},
): Promise<{ header: FrameHeader; payload: Uint8Array }[]> {
  const own = parts[transport.rank]!;
  const frames = await exchange(
    transport,
    tag,
    (peer) => parts[peer],
    () => true,
    options,
  );
  return byRank(transport, own, frames);
}

/** The same frame to every other rank (no receive). */
export async function sendToAll(transport: Transport, tag: string, message: { header: FrameHeader; payload?: Uint8Array }, options: CollectiveOptions = {}): Promise<void> {
  await exchange(
    transport,
    tag,
    () => message,
    () => false,
    options,
  );
}

/** Every rank's frame in rank order: this rank's own message, the others' as received. */
function byRank(
  transport: Transport,
  own: { header: FrameHeader; payload?: Uint8Array },
  frames: Map<number, { header: FrameHeader; payload: Uint8Array }>,
): { header: FrameHeader; payload: Uint8Array }[] {
  return [...Array(transport.worldSize).keys()].map((rank) => (rank === transport.rank ? { header: own.header, payload: own.payload ?? new Uint8Array(0) } : frames.get(rank)!));
}
