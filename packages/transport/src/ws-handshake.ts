import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SeqparError, UsageError } from '@seqpar/core';
import { pack, unpack } from 'msgpackr';
import type { RawData, WebSocket } from 'ws';
import { allowMessagesUpTo, PRE_AUTH_MAX_PAYLOAD } from './ws-limits.js';

/**
 * Mutual HMAC challenge run on a fresh WebSocket before any frame is accepted; the token never crosses the wire.
 *
 *   dialer -> acceptor : { nonce: Nd, rank: D, role?, worldSize? }
 *   acceptor -> dialer : { nonce: Na, rank: A, mac: HMAC(token, "acceptor" | Na | Nd | A | D) }
 *   dialer -> acceptor : {                     mac: HMAC(token, "dialer"   | Na | Nd | A | D) }
 *
 * The dialer speaks first so that no message can arrive before its listener exists; both nonces are fresh, and
 * the role string keeps one side's proof from being reflected as the other's.
 *
 * Until it completes, a socket reads messages of at most PRE_AUTH_MAX_PAYLOAD bytes (ws-limits.ts), and the
 * whole exchange must finish within HANDSHAKE_TIMEOUT_MS. Each side raises its socket's limit to `maxPayload`
 * synchronously, in the same event as the message that proves the peer: the peer may send large frames right
 * behind its proof, and ws parses them without yielding. Failures are typed: ERR_AUTH (wrong token, unexpected
 * rank, malformed message), ERR_FRAME_TOO_LARGE (an oversize message), ERR_TIMEOUT (too slow); the caller
 * closes the socket with {@link AUTH_FAILED_CLOSE_CODE}.
 *
 * Ranks are integers; the rendezvous server uses rank -1.
 *
 * The hello may declare the world the dialer means to join (`role`, `worldSize`), so that a port serving
 * another one refuses it with {@link WRONG_WORLD_CLOSE_CODE} and what it serves as the close reason, before
 * anything is authenticated: a client at the workers' port, or a worker started with another world size, is
 * told exactly that. An unauthenticated dialer learns the port's role and world size, nothing else.
 */
export const AUTH_FAILED_CLOSE_CODE = 4001;
export const WRONG_WORLD_CLOSE_CODE = 4002;
export const HANDSHAKE_TIMEOUT_MS = 5_000;

export type Token = string | Uint8Array;

/** The world a dialer means to join, declared in its hello. */
export interface WorldDeclaration {
  /** What the world's ranks are ('worker', 'client'). */
  readonly role?: string;
  readonly worldSize?: number;
}

/** A port refused a dialer whose hello declared another world than the one it serves. */
export class WrongWorldError extends UsageError {
  constructor(
    message: string,
    readonly serves: WorldDeclaration,
    readonly declared: WorldDeclaration,
  ) {
    super(message);
    this.name = 'WrongWorldError';
  }

  /** The close reason that tells the dialer what the port serves: "role/worldSize". */
  get closeReason(): string {
    return `${this.serves.role ?? ''}/${this.serves.worldSize ?? ''}`;
  }

  static fromCloseReason(reason: string, declared: WorldDeclaration, message: (serves: WorldDeclaration) => string): WrongWorldError {
    const [role = '', size = ''] = reason.split('/');
    const serves = { ...(role ? { role } : {}), ...(/^\d+$/.test(size) ? { worldSize: Number(size) } : {}) };
    return new WrongWorldError(message(serves), serves, declared);
  }
}

/** Who is on the other end, and messages that arrived right behind the handshake (the caller processes them first). */
export interface HandshakeResult {
  peer: number;
  early: RawData[];
}

/**
 * Acceptor side. `admit(rank, declared)` says whether a dialer of that rank is expected (it may throw a
 * WrongWorldError for a dialer that declared another world); `maxPayload` is the socket's limit once authenticated.
 */
export async function acceptHandshake(
  ws: WebSocket,
  token: Token,
  rank: number,
  admit: (rank: number, declared: WorldDeclaration) => boolean,
  maxPayload = PRE_AUTH_MAX_PAYLOAD,
): Promise<HandshakeResult> {
  const ourNonce = randomBytes(32);
  let theirNonce: Uint8Array;
  let dialer: number;
  return exchange(ws, [
    (hello) => {
      theirNonce = bytesField(hello, 'nonce');
      const claimed = hello.rank;
      if (typeof claimed !== 'number' || !Number.isInteger(claimed) || !admit(claimed, declaredWorld(hello))) throw authError(`unexpected dialer rank ${String(claimed)}`);
      dialer = claimed;
      ws.send(pack({ nonce: ourNonce, rank, mac: mac(token, 'acceptor', ourNonce, theirNonce, rank, dialer) }));
    },
    (proof) => {
      checkMac(bytesField(proof, 'mac'), mac(token, 'dialer', ourNonce, theirNonce, rank, dialer));
      allowMessagesUpTo(ws, maxPayload);
      return dialer;
    },
  ]);
}

/** Dialer side. Resolves once the acceptor proved it knows the token, after proving it ourselves. */
export async function dialHandshake(ws: WebSocket, token: Token, rank: number, maxPayload = PRE_AUTH_MAX_PAYLOAD, declared: WorldDeclaration = {}): Promise<HandshakeResult> {
  const ourNonce = randomBytes(32);
  const result = exchange(ws, [
    (reply) => {
      const theirNonce = bytesField(reply, 'nonce');
      const acceptor = reply.rank;
      if (typeof acceptor !== 'number' || !Number.isInteger(acceptor)) throw authError('reply without a rank');
      checkMac(bytesField(reply, 'mac'), mac(token, 'acceptor', theirNonce, ourNonce, acceptor, rank));
      allowMessagesUpTo(ws, maxPayload);
      ws.send(pack({ mac: mac(token, 'dialer', theirNonce, ourNonce, acceptor, rank) }));
      return acceptor;
    },
  ]);
  ws.send(pack({ nonce: ourNonce, rank, ...declared }));
  return result;
}

/** A step handles one handshake message synchronously; the last one returns the peer's rank. */
type Step = (message: Record<string, unknown>) => number | void;

/**
 * Feeds the socket's next messages to `steps`, in order, within one deadline. Messages ws emits in the same
 * socket read right behind the last step are kept as `early`; nothing else can arrive before the caller, a
 * microtask later, attaches its own listener.
 */
function exchange(ws: WebSocket, steps: Step[]): Promise<HandshakeResult> {
  return new Promise<HandshakeResult>((resolve, reject) => {
    const early: RawData[] = [];
    let next = 0;
    let peer = -1;
    let wsError: (Error & { code?: string }) | undefined;
    const stop = () => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const fail = (error: SeqparError) => (stop(), reject(error));
    const onMessage = (data: RawData) => {
      if (next === steps.length) return void early.push(data);
      try {
        const result = steps[next++]!(parse(data));
        if (typeof result === 'number') peer = result;
      } catch (error) {
        return fail(error instanceof SeqparError ? error : authError(String(error)));
      }
      if (next === steps.length) {
        clearTimeout(timer);
        resolve({ peer, early });
        queueMicrotask(stop); // after the messages ws emits in this same read
      }
    };
    const onError = (error: Error & { code?: string }) => (wsError = error);
    const onClose = () =>
      fail(
        wsError?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? new SeqparError('ERR_FRAME_TOO_LARGE', `authentication failed: a handshake message exceeded ${PRE_AUTH_MAX_PAYLOAD} bytes`)
          : authError('connection closed during the handshake'),
      );
    const timer = setTimeout(() => fail(new SeqparError('ERR_TIMEOUT', `authentication failed: no handshake within ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
  });
}

function parse(data: RawData): Record<string, unknown> {
  if (!Buffer.isBuffer(data) || data.byteLength > PRE_AUTH_MAX_PAYLOAD) throw authError('oversized or fragmented handshake message');
  let message: unknown;
  try {
    message = unpack(data);
  } catch {
    throw authError('handshake message is not msgpack');
  }
  if (typeof message !== 'object' || message === null) throw authError('handshake message is not an object');
  return message as Record<string, unknown>;
}

function declaredWorld(hello: Record<string, unknown>): WorldDeclaration {
  const { role, worldSize } = hello;
  if (role !== undefined && (typeof role !== 'string' || role.length > 32)) throw authError('malformed role in the hello');
  if (worldSize !== undefined && (typeof worldSize !== 'number' || !Number.isInteger(worldSize) || worldSize < 1)) throw authError('malformed world size in the hello');
  return { ...(role !== undefined ? { role } : {}), ...(worldSize !== undefined ? { worldSize } : {}) };
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
