import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SeqparError } from '@seqpar/core';
import { pack, unpack } from 'msgpackr';
import type { RawData, WebSocket } from 'ws';

/**
 * Mutual HMAC challenge run on a fresh WebSocket before any frame is accepted; the token never crosses the wire.
 *
 *   dialer -> acceptor : { nonce: Nd, rank: D }
 *   acceptor -> dialer : { nonce: Na, rank: A, mac: HMAC(token, "acceptor" | Na | Nd | A | D) }
 *   dialer -> acceptor : {                     mac: HMAC(token, "dialer"   | Na | Nd | A | D) }
 *
 * The dialer speaks first so that no message can arrive before its listener exists; both nonces are fresh, and
 * the role string keeps one side's proof from being reflected as the other's.
 *
 * Ranks are integers; the rendezvous server uses rank -1. Handshake messages above 1 KiB, late or malformed ones
 * fail with ERR_AUTH and the caller closes the socket with {@link AUTH_FAILED_CLOSE_CODE}.
 */
export const AUTH_FAILED_CLOSE_CODE = 4001;
const MAX_HANDSHAKE_MESSAGE = 1024;
export const HANDSHAKE_TIMEOUT_MS = 5_000;

export type Token = string | Uint8Array;

/** Who is on the other end, and messages that arrived right behind the handshake (the caller processes them first). */
export interface HandshakeResult {
  peer: number;
  early: RawData[];
}

/** Acceptor side. `admit(rank)` says whether a dialer of that rank is expected. */
export async function acceptHandshake(ws: WebSocket, token: Token, rank: number, admit: (rank: number) => boolean): Promise<HandshakeResult> {
  const messages = messageQueue(ws);
  const hello = await messages.next();
  const theirNonce = bytesField(hello, 'nonce');
  const dialer = hello.rank;
  if (typeof dialer !== 'number' || !Number.isInteger(dialer) || !admit(dialer)) throw authError(`unexpected dialer rank ${String(dialer)}`);
  const ourNonce = randomBytes(32);
  ws.send(pack({ nonce: ourNonce, rank, mac: mac(token, 'acceptor', ourNonce, theirNonce, rank, dialer) }));
  const proof = await messages.next();
  checkMac(bytesField(proof, 'mac'), mac(token, 'dialer', ourNonce, theirNonce, rank, dialer));
  return { peer: dialer, early: messages.stop() };
}

/** Dialer side. Resolves once the acceptor proved it knows the token, after proving it ourselves. */
export async function dialHandshake(ws: WebSocket, token: Token, rank: number): Promise<HandshakeResult> {
  const messages = messageQueue(ws);
  const ourNonce = randomBytes(32);
  ws.send(pack({ nonce: ourNonce, rank }));
  const reply = await messages.next();
  const theirNonce = bytesField(reply, 'nonce');
  const acceptor = reply.rank;
  if (typeof acceptor !== 'number' || !Number.isInteger(acceptor)) throw authError('reply without a rank');
  checkMac(bytesField(reply, 'mac'), mac(token, 'acceptor', theirNonce, ourNonce, acceptor, rank));
  ws.send(pack({ mac: mac(token, 'dialer', theirNonce, ourNonce, acceptor, rank) }));
  return { peer: acceptor, early: messages.stop() };
}

function mac(token: Token, role: string, acceptorNonce: Uint8Array, dialerNonce: Uint8Array, acceptor: number, dialer: number): Buffer {
  const ranks = Buffer.alloc(8);
  ranks.writeInt32LE(acceptor, 0);
  ranks.writeInt32LE(dialer, 4);
  return createHmac('sha256', token).update(`seqpar-v1|${role}|`).update(acceptorNonce).update(dialerNonce).update(ranks).digest();
}

function checkMac(received: Uint8Array, expected: Buffer): void {
  if (received.byteLength !== expected.byteLength || !timingSafeEqual(received, expected)) throw authError('wrong token (HMAC mismatch)');
}

function bytesField(message: Record<string, unknown>, name: string): Uint8Array {
  const value = message[name];
  if (!(value instanceof Uint8Array)) throw authError(`handshake message lacks ${name}`);
  return value;
}

function authError(message: string): SeqparError {
  return new SeqparError('ERR_AUTH', `authentication failed: ${message}`);
}

/** Handshake messages in arrival order, each bounded in size and time. */
function messageQueue(ws: WebSocket) {
  const arrived: RawData[] = [];
  let wake: (() => void) | undefined;
  let ended: SeqparError | undefined;
  const onMessage = (data: RawData) => (arrived.push(data), wake?.());
  const onClose = () => ((ended = authError('connection closed during the handshake')), wake?.());
  ws.on('message', onMessage);
  ws.on('close', onClose);
  return {
    async next(): Promise<Record<string, unknown>> {
      const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS;
      while (!arrived.length) {
        if (ended) throw ended;
        const left = deadline - Date.now();
        if (left <= 0) throw authError(`no handshake message within ${HANDSHAKE_TIMEOUT_MS} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => (clearTimeout(timer), resolve());
        });
        wake = undefined;
      }
      const data = arrived.shift()!;
      if (!Buffer.isBuffer(data) || data.byteLength > MAX_HANDSHAKE_MESSAGE) throw authError('oversized or fragmented handshake message');
      let message: unknown;
      try {
        message = unpack(data);
      } catch {
        throw authError('handshake message is not msgpack');
      }
      if (typeof message !== 'object' || message === null) throw authError('handshake message is not an object');
      return message as Record<string, unknown>;
    },
    stop(): RawData[] {
      ws.off('message', onMessage);
      ws.off('close', onClose);
      return arrived.splice(0);
    },
  };
}
