import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SeqparError } from '@seqpar/core';
import { WebSocketServer, type WebSocket } from 'ws';
import { AUTH_FAILED_CLOSE_CODE, HANDSHAKE_TIMEOUT_MS, WRONG_WORLD_CLOSE_CODE, WrongWorldError } from './ws-handshake.js';
import { PRE_AUTH_MAX_PAYLOAD } from './ws-limits.js';

export interface PeerListenerOptions {
  host: string;
  /** Default 0: any free port. */
  port?: number;
  /** Authenticated connections this port serves at once. */
  maxPeers: number;
  /** Connections still authenticating that it holds at once; more are refused (HTTP 503). Default 32. */
  maxPending?: number;
  /** Names the port in its log line ('rank 2', 'rendezvous', ...). */
  name: string;
}

export interface PeerListener {
  /** host:port, with the port resolved. */
  readonly address: string;
  /** Terminates every connection and stops listening. */
  close(): Promise<void>;
}

const DEFAULT_MAX_PENDING = 32;
/** A socket that failed its handshake gets this long to finish the close handshake, then it is cut. */
const CLOSE_GRACE_MS = 1000;

/**
 * A WebSocket port for peers that must authenticate (ws-handshake.ts) before anything but a small hello is read.
 * What an unauthenticated connection can cost is bounded by construction:
 *
 *   per connection   messages of at most PRE_AUTH_MAX_PAYLOAD bytes, HANDSHAKE_TIMEOUT_MS to authenticate
 *                    (HTTP headers included: a request that never upgrades is cut as well)
 *   per port         `maxPending` connections authenticating, `maxPeers + maxPending` TCP connections in all
 *
 * `authenticate(ws)` runs the handshake and resolves once the peer proved itself (its limits are then the
 * caller's); a rejection closes the socket with AUTH_FAILED_CLOSE_CODE, or WRONG_WORLD_CLOSE_CODE and what
 * the port serves for a dialer that declared another world. Refused and failed connections are
 * logged as one line per burst.
 */
export async function listenForPeers(options: PeerListenerOptions, authenticate: (ws: WebSocket) => Promise<void>): Promise<PeerListener> {
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const log = new RefusalLog(options.name);
  const http = createServer({ headersTimeout: HANDSHAKE_TIMEOUT_MS, requestTimeout: HANDSHAKE_TIMEOUT_MS, connectionsCheckingInterval: 1000 });
  http.maxConnections = options.maxPeers + maxPending;
  http.on('drop', () => log.refused(new SeqparError('ERR_BUSY', `more than ${http.maxConnections} connections`)));
  http.on('request', (_request, response) => response.writeHead(426).end()); // not a WebSocket upgrade
  let pending = 0;
  const wss = new WebSocketServer({
    server: http,
    maxPayload: PRE_AUTH_MAX_PAYLOAD,
    perMessageDeflate: false,
    verifyClient: (_info, accept) => {
      if (pending < maxPending) return accept(true);
      log.refused(new SeqparError('ERR_BUSY', `more than ${maxPending} connections authenticating`));
      accept(false, 503, 'too many unauthenticated connections');
    },
  });
  wss.on('connection', (ws) => {
    pending += 1;
    let counted = true;
    const settle = () => {
      if (counted) pending -= 1;
      counted = false;
    };
    ws.on('error', () => {});
    ws.once('close', settle);
    authenticate(ws).then(settle, (error: SeqparError) => {
      log.refused(error);
      if (error instanceof WrongWorldError) ws.close(WRONG_WORLD_CLOSE_CODE, error.closeReason);
      else ws.close(AUTH_FAILED_CLOSE_CODE, error.code ?? 'ERR_AUTH');
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    });
  });
  await new Promise<void>((resolve, reject) => http.once('error', reject).listen(options.port ?? 0, options.host, () => resolve()));
  http.on('error', () => {});
  const { port } = http.address() as AddressInfo;
  return {
    address: `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

const BURST_MS = 10_000;

/** One stderr line for the first refusal of a burst, and one that counts the rest when the burst is over. */
class RefusalLog {
  private more = 0;
  private burst: NodeJS.Timeout | undefined;

  constructor(private readonly name: string) {}

  refused(error: SeqparError): void {
    if (this.burst) return void (this.more += 1);
    write(`${this.name}: refused a connection: ${error.code}: ${error.message}`);
    this.burst = setTimeout(() => {
      if (this.more) write(`${this.name}: refused ${this.more} more connections in ${BURST_MS / 1000} s`);
      this.more = 0;
      this.burst = undefined;
    }, BURST_MS).unref();
  }
}

function write(line: string): void {
  if (process.env.SEQPAR_LOG_LEVEL === 'error' || process.env.SEQPAR_LOG_LEVEL === 'fatal' || process.env.SEQPAR_LOG_LEVEL === 'silent') return;
  process.stderr.write(`seqpar: ${line}\n`);
}
