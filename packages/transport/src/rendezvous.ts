import { SeqparError } from '@seqpar/core';
import { pack, unpack } from 'msgpackr';
import type { WebSocket } from 'ws';
import { listenForPeers } from './peer-listener.js';
import {
  acceptHandshake,
  AUTH_FAILED_CLOSE_CODE,
  dialHandshake,
  HANDSHAKE_TIMEOUT_MS,
  WRONG_WORLD_CLOSE_CODE,
  WrongWorldError,
  type Token,
  type WorldDeclaration,
} from './ws-handshake.js';
import { connectWithRetry, splitHostPort, type ConnectRetry } from './ws-connect.js';

/**
 * Ranks find each other here: each rank connects (authenticated with the shared token), registers the address
 * it listens on, and once all `worldSize` ranks of a round have registered every one receives the round's
 * address list. The round then closes, so a group can close and reopen against the same rendezvous.
 *
 * `openRounds` rounds may fill at once; a registration joins the oldest open round that lacks its rank, or
 * opens a new one. With the default of 1 a rank registered twice is refused (a cluster has one rank of each);
 * the client door keeps several, so that clients arriving together each complete a round of their own.
 *
 * A `role` names what the ranks of this world are; a dialer whose hello declares another role or world size is
 * refused before it authenticates, and told what this port serves (ws-handshake.ts).
 */
export interface RendezvousServer {
  /** host:port to pass as `rendezvous` to the transports. */
  readonly address: string;
  close(): Promise<void>;
}

export interface RendezvousOptions {
  worldSize: number;
  token: Token;
  /** What the ranks of this world are ('worker', 'client'): a dialer that declares another role is refused, saying so. */
  role?: string;
  host?: string;
  port?: number;
  /** Rounds that may fill at once. Default 1. */
  openRounds?: number;
}

export const RENDEZVOUS_RANK = -1;
/** Bound on a registration ({ address, worldSize }) and on the address list a joiner reads. */
const REGISTRATION_MAX_BYTES = 64 * 1024;
const ADDRESS_LIST_MAX_BYTES = 4 * 2 ** 20;

type Round = Map<number, { ws: WebSocket; address: string }>;

export async function startRendezvous(options: RendezvousOptions): Promise<RendezvousServer> {
  const { worldSize, token } = options;
  const openRounds = options.openRounds ?? 1;
  const rounds: Round[] = [];
  const hasRoomFor = (rank: number) => rounds.some((round) => !round.has(rank)) || rounds.length < openRounds;

  const register = (rank: number, ws: WebSocket, address: string): boolean => {
    if (!hasRoomFor(rank)) return false;
    let round = rounds.find((open) => !open.has(rank));
    if (!round) rounds.push((round = new Map()));
    const member = { ws, address };
    const joined = round;
    joined.set(rank, member);
    ws.once('close', () => {
      if (joined.get(rank) === member) joined.delete(rank);
      if (joined.size === 0 && rounds.includes(joined)) rounds.splice(rounds.indexOf(joined), 1);
    });
    if (joined.size === worldSize) {
      rounds.splice(rounds.indexOf(joined), 1);
      const addresses = [...joined.keys()].sort((a, b) => a - b).map((r) => joined.get(r)!.address);
      for (const { ws: peer } of joined.values()) peer.send(pack({ addresses }), () => peer.close(1000));
    }
    return true;
  };

  const serves = { ...(options.role ? { role: options.role } : {}), worldSize };
  const admit = (rank: number, declared: WorldDeclaration) => {
    const otherRole = declared.role !== undefined && serves.role !== undefined && declared.role !== serves.role;
    if (otherRole || (declared.worldSize !== undefined && declared.worldSize !== worldSize)) {
      throw new WrongWorldError(`a dialer declared ${describeWorld(declared)}; this port serves ${describeWorld(serves)}`, serves, declared);
    }
    return rank >= 0 && rank < worldSize && hasRoomFor(rank);
  };

  const host = options.host ?? '127.0.0.1';
  const name = options.role ? `${options.role} rendezvous` : 'rendezvous';
  const listener = await listenForPeers({ host, port: options.port ?? 0, maxPeers: worldSize * openRounds, name }, async (ws) => {
    const { peer, early } = await acceptHandshake(ws, token, RENDEZVOUS_RANK, admit, REGISTRATION_MAX_BYTES);
    const registration = (early[0] ? unpack(early[0] as Buffer) : await nextMessage(ws, HANDSHAKE_TIMEOUT_MS)) as { address?: unknown; worldSize?: unknown } | undefined;
    if (typeof registration?.address !== 'string' || registration.worldSize !== worldSize) {
      throw new SeqparError('ERR_AUTH', 'bad registration or worldSize mismatch');
    }
    if (!register(peer, ws, registration.address)) throw new SeqparError('ERR_AUTH', `rank ${peer} is already registered`);
  });
  return { address: listener.address, close: () => listener.close() };
}

/** How a rank reaches the rendezvous: the world its hello declares, and how long it tries an address that does not answer. */
export interface RendezvousDialOptions {
  /** Declared in the hello with the world size: a rendezvous of another role or size refuses the rank saying so (WrongWorldError). */
  role?: string;
  /** Give up on a rendezvous that refuses, does not resolve or does not answer after this long (ERR_UNREACHABLE). Default: the whole bound. */
  reachWithinMs?: number;
  /** Told before each new try at a rendezvous that refused, did not resolve or did not answer. */
  onRendezvousRetry?: (retry: ConnectRetry) => void;
}

/** Register `address` for `rank` and wait for every rank's address (index = rank). */
export async function joinRendezvous(
  options: RendezvousDialOptions & { rendezvous: string; token: Token; rank: number; worldSize: number; address: string; timeoutMs: number },
): Promise<string[]> {
  splitHostPort(options.rendezvous);
  const deadline = Date.now() + options.timeoutMs;
  const ws = await connectWithRetry(options.rendezvous, Math.min(deadline, Date.now() + (options.reachWithinMs ?? Infinity)), {
    failCode: 'ERR_UNREACHABLE',
    ...(options.onRendezvousRetry ? { onRetry: options.onRendezvousRetry } : {}),
  });
  ws.on('error', () => {});
  const declared = { ...(options.role ? { role: options.role } : {}), worldSize: options.worldSize };
  try {
    const closed = new Promise<never>((_, reject) =>
      ws.once('close', (code, reason) =>
        reject(
          code === WRONG_WORLD_CLOSE_CODE
            ? WrongWorldError.fromCloseReason(reason.toString(), declared, (serves) => `${options.rendezvous} serves ${describeWorld(serves)}, not ${describeWorld(declared)}`)
            : code === AUTH_FAILED_CLOSE_CODE
              ? new SeqparError('ERR_AUTH', `rendezvous ${options.rendezvous} rejected rank ${options.rank}`)
              : new SeqparError('ERR_PEER_LOST', `rendezvous ${options.rendezvous} closed the connection (code ${code})`),
        ),
      ),
    );
    closed.catch(() => {});
    const { peer, early } = await Promise.race([dialHandshake(ws, options.token, options.rank, ADDRESS_LIST_MAX_BYTES, declared), closed]);
    if (peer !== RENDEZVOUS_RANK) throw new SeqparError('ERR_AUTH', `${options.rendezvous} is not a rendezvous server`);
    ws.send(pack({ address: options.address, worldSize: options.worldSize }));
    const reply = (early[0] ? unpack(early[0] as Buffer) : await Promise.race([nextMessage(ws, deadline - Date.now()), closed])) as { addresses?: unknown };
    const addresses = reply.addresses;
    if (!Array.isArray(addresses) || addresses.length !== options.worldSize || !addresses.every((a) => typeof a === 'string')) {
      throw new SeqparError('ERR_BAD_FRAME', 'rendezvous sent a malformed address list');
    }
    return addresses as string[];
  } finally {
    ws.removeAllListeners('close');
    ws.close();
  }
}

function describeWorld({ role, worldSize }: WorldDeclaration): string {
  return `${role ? `${role} ranks` : 'ranks'} of a world of ${worldSize ?? '?'}`;
}

function nextMessage(ws: WebSocket, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new SeqparError('ERR_TIMEOUT', `rendezvous: no reply within ${timeoutMs} ms`)), Math.max(1, timeoutMs));
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      try {
        resolve(unpack(data));
      } catch {
        reject(new SeqparError('ERR_BAD_FRAME', 'rendezvous message is not msgpack'));
      }
    });
  });
}
