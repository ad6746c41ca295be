import { SeqparError } from '@seqpar/core';
import { WebSocket, type ClientOptions } from 'ws';

/** Zero masks make ws skip XOR-ing payloads; links are authenticated point-to-point, no proxy to protect. */
const noMask = (mask: Uint8Array) => mask.fill(0);

/** Open a WebSocket to `address` (host:port), retrying refused connections until `deadline` (the peer may still be starting). */
export async function connectWithRetry(address: string, deadline: number, options: ClientOptions = {}): Promise<WebSocket> {
  for (;;) {
    const ws = new WebSocket(`ws://${address}`, { perMessageDeflate: false, generateMask: noMask, ...options });
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
