import { SeqparError, type ErrorCode } from '@seqpar/core';
import { WebSocket } from 'ws';
import { PRE_AUTH_MAX_PAYLOAD } from './ws-limits.js';

/** Zero masks make ws skip XOR-ing payloads; links are authenticated point-to-point, no proxy to protect. */
const noMask = (mask: Uint8Array) => mask.fill(0);

/** Retries back off from 50 ms to 1 s: quick while a peer starts, a line a second at most for whoever is told. */
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1000;

/** A failed try at an address, before the next one. */
export interface ConnectRetry {
  readonly address: string;
  /** Why the try failed, in words ('connection refused (nothing listens there)', "unknown host 'x'", ...). */
  readonly reason: string;
  readonly delayMs: number;
  /** Until the caller's deadline. */
  readonly remainingMs: number;
}

export interface ConnectOptions {
  /** The code of the error thrown at the deadline. Default ERR_PEER_LOST. */
  readonly failCode?: ErrorCode;
  /** Told before each retry. */
  readonly onRetry?: (retry: ConnectRetry) => void;
}

/**
 * Open a WebSocket to `address` (host:port), retrying failed connections until `deadline` (the peer may still
 * be starting, or its port may be busy with other connections). The socket reads only handshake-sized messages
 * until the handshake raises its limit (ws-handshake.ts).
 */
export async function connectWithRetry(address: string, deadline: number, options: ConnectOptions = {}): Promise<WebSocket> {
  const started = Date.now();
  const deadlinePassed = new Error('the deadline passed');
  let reason: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const ws = new WebSocket(`ws://${address}`, { perMessageDeflate: false, generateMask: noMask, maxPayload: PRE_AUTH_MAX_PAYLOAD });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(deadlinePassed), Math.max(1, deadline - Date.now()));
        ws.once('open', () => (clearTimeout(timer), resolve()));
        ws.once('error', (error) => (clearTimeout(timer), reject(error)));
      });
      return ws;
    } catch (error) {
      ws.terminate();
      const remainingMs = deadline - Date.now();
      // A try cut short by the deadline says less than the refusal before it.
      reason =
        error === deadlinePassed ? (reason ?? `no answer within ${((Date.now() - started) / 1000).toFixed(1)} s`) : describeConnectError(error as NodeJS.ErrnoException, address);
      if (remainingMs <= 0) throw new SeqparError(options.failCode ?? 'ERR_PEER_LOST', `cannot connect to ${address}: ${reason}`, { cause: error });
      const delayMs = Math.min(FIRST_RETRY_MS * 2 ** attempt, MAX_RETRY_MS, remainingMs);
      options.onRetry?.({ address, reason, delayMs, remainingMs });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** What a failed connection means for the person who typed the address. */
function describeConnectError(error: NodeJS.ErrnoException, address: string): string {
  const host = splitHostPort(address).host;
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens there)';
    case 'ENOTFOUND':
      return `unknown host '${host}'`;
    case 'EAI_AGAIN':
      return `looking up '${host}' failed for now (DNS)`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to that host';
    default:
      return error.message;
  }
}

export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!match) throw new SeqparError('ERR_USAGE', `expected HOST:PORT, got '${address}'`);
  return { host: match[1]!, port: Number(match[2]) };
}
