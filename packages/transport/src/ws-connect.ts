import { SeqparError } from '@seqpar/core';
import { WebSocket } from 'ws';
import { PRE_AUTH_MAX_PAYLOAD } from './ws-limits.js';

/** Zero masks make ws skip XOR-ing payloads; links are authenticated point-to-point, no proxy to protect. */
const noMask = (mask: Uint8Array) => mask.fill(0);

/**
 * Open a WebSocket to `address` (host:port), retrying refused connections until `deadline` (the peer may still
 * be starting, or its port may be busy with other connections). The socket reads only handshake-sized messages
 * until the handshake raises its limit (ws-handshake.ts).
 */
export async function connectWithRetry(address: string, deadline: number): Promise<WebSocket> {
  for (;;) {
    const ws = new WebSocket(`ws://${address}`, { perMessageDeflate: false, generateMask: noMask, maxPayload: PRE_AUTH_MAX_PAYLOAD });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('connect timeout')), Math.max(1, deadline - Date.now()));
        ws.once('open', () => (clearTimeout(timer), resolve()));
        ws.once('error', (error) => (clearTimeout(timer), reject(error)));
      });
      return ws;
    } catch (error) {
      ws.terminate();
      if (Date.now() >= deadline) {
        throw new SeqparError('ERR_PEER_LOST', `cannot connect to ${address}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!match) throw new SeqparError('ERR_USAGE', `expected HOST:PORT, got '${address}'`);
  return { host: match[1]!, port: Number(match[2]) };
}
