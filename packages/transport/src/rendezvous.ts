import { SeqparError } from '@seqpar/core';
import { pack, unpack } from 'msgpackr';
import { WebSocketServer, type AddressInfo, type WebSocket } from 'ws';
import { acceptHandshake, AUTH_FAILED_CLOSE_CODE, dialHandshake, type Token } from './ws-handshake.js';
import { connectWithRetry, splitHostPort } from './ws-connect.js';

/**
 * Ranks find each other here: each rank connects (authenticated with the shared token), registers the address
 * it listens on, and once all `worldSize` ranks have registered every one receives the full address list.
 * The server then starts a new round, so a group can close and reopen against the same rendezvous.
 */
export interface RendezvousServer {
  /** host:port to pass as `rendezvous` to the transports. */
  readonly address: string;
  close(): Promise<void>;
}

export const RENDEZVOUS_RANK = -1;

export async function startRendezvous(options: { worldSize: number; token: Token; host?: string; port?: number }): Promise<RendezvousServer> {
  const server = new WebSocketServer({ host: options.host ?? '127.0.0.1', port: options.port ?? 0, maxPayload: 64 * 1024, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  let round = new Map<number, { ws: WebSocket; address: string }>();

  server.on('connection', (ws) => {
    ws.on('error', () => ws.terminate());
    void (async () => {
      const { peer, early } = await acceptHandshake(ws, options.token, RENDEZVOUS_RANK, (rank) => rank >= 0 && rank < options.worldSize && !round.has(rank));
      const registration = early[0] ? (unpack(early[0] as Buffer) as unknown) : await nextMessage(ws);
      const address = (registration as { address?: unknown } | undefined)?.address;
      if (typeof address !== 'string' || (registration as { worldSize?: unknown }).worldSize !== options.worldSize) {
        ws.close(AUTH_FAILED_CLOSE_CODE, 'bad registration or worldSize mismatch');
        return;
      }
      round.set(peer, { ws, address });
      ws.once('close', () => round.get(peer)?.ws === ws && round.delete(peer));
      if (round.size === options.worldSize) {
        const complete = round;
        round = new Map();
        const addresses = [...complete.keys()].sort((a, b) => a - b).map((rank) => complete.get(rank)!.address);
        for (const { ws: member } of complete.values()) member.send(pack({ addresses }), () => member.close(1000));
      }
    })().catch((error: SeqparError) => ws.close(AUTH_FAILED_CLOSE_CODE, error.code ?? 'ERR_AUTH'));
  });

  const { port } = server.address() as AddressInfo;
  return {
    address: `${options.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise<void>((resolve) => {
      for (const client of server.clients) client.terminate();
      server.close(() => resolve());
    }),
  };
}

/** Register `address` for `rank` and wait for every rank's address (index = rank). */
export async function joinRendezvous(options: {
  rendezvous: string;
  token: Token;
  rank: number;
  worldSize: number;
  address: string;
  timeoutMs: number;
}): Promise<string[]> {
  splitHostPort(options.rendezvous);
  const deadline = Date.now() + options.timeoutMs;
  const ws = await connectWithRetry(options.rendezvous, deadline);
  try {
    const closed = new Promise<never>((_, reject) =>
      ws.once('close', (code) =>
        reject(code === AUTH_FAILED_CLOSE_CODE
          ? new SeqparError('ERR_AUTH', `rendezvous ${options.rendezvous} rejected rank ${options.rank}`)
          : new SeqparError('ERR_PEER_LOST', `rendezvous ${options.rendezvous} closed the connection (code ${code})`))));
    closed.catch(() => {});
    const { peer, early } = await Promise.race([dialHandshake(ws, options.token, options.rank), closed]);
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
