import { setTimeout as sleep } from 'node:timers/promises';
import type { SeqparError } from '@seqpar/core';
import { createTransport, startRendezvous, type RendezvousServer, type Token, type Transport } from '@seqpar/transport';
import { CLIENT_SESSION_RANK, COORDINATOR_SESSION_RANK } from '../rpc/client-protocol.js';
import { ClientSession } from './client-session.js';
import { CLIENT_ROLE } from '../coordinator-address.js';
import type { Cluster } from '../api/cluster.js';
import { heartbeatFor } from '../executors/executor.js';
import { splitListen } from '../listen-address.js';
import type { Logger } from '../logger.js';

export interface ClientDoorOptions {
  /** host:port clients connect to. */
  readonly listen: string;
  readonly token: Token;
  readonly healthTimeoutMs: number;
  readonly log: Logger;
}

/**
 * How long one open slot for the next client waits before it is opened afresh. Short, because closing the door
 * can only cut the slot's wait, not its timer (which keeps a process alive until it fires).
 */
const SLOT_WINDOW_MS = 3000;
/** Slots the coordinator keeps open at once: clients arriving together each find one. */
const OPEN_SLOTS = 4;
/** Clients that may wait at the rendezvous for a slot at once (each round holds one). */
const WAITING_CLIENTS = 64;

/**
 * Where client processes reach a running coordinator: a rendezvous of world size 2 at which the coordinator
 * keeps OPEN_SLOTS rounds open, each with its rank 0 registered. A client that registers as rank 1 completes
 * the oldest of them (or opens a round of its own, which the next slot to reopen completes), the two ends
 * connect as a 2-rank ws world (authenticated by the shared token), and that world becomes a client session
 * while its slot opens again. Sessions run side by side; their requests meet in the cluster's queue.
 */
export class ClientDoor {
  private readonly sessions = new Set<ClientSession>();
  private closed = false;
  private readonly accepting: Promise<void[]>;

  private constructor(
    private readonly server: RendezvousServer,
    private readonly host: string,
    private readonly cluster: Cluster,
    private readonly options: ClientDoorOptions,
  ) {
    this.accepting = Promise.all(Array.from({ length: OPEN_SLOTS }, () => this.acceptLoop()));
  }

  static async open(cluster: Cluster, options: ClientDoorOptions): Promise<ClientDoor> {
    const { host, port } = splitListen(options.listen);
    const server = await startRendezvous({ worldSize: 2, token: options.token, host, port, role: CLIENT_ROLE, openRounds: OPEN_SLOTS + WAITING_CLIENTS });
    return new ClientDoor(server, host, cluster, options);
  }

  /** host:port to give `connectCluster`, with the port resolved. */
  get address(): string {
    return this.server.address;
  }

  /** Stops accepting and ends every session (their pending requests fail on the client's side). */
  async close(): Promise<void> {
    this.closed = true;
    await this.server.close();
    await this.accepting;
    await Promise.all([...this.sessions].map((session) => session.close()));
  }

  private async acceptLoop(): Promise<void> {
    while (!this.closed) {
      const transport = await this.nextClient();
      if (!transport) continue;
      if (this.closed) return void (await transport.close());
      const session = new ClientSession(transport, this.cluster, this.options.log);
      this.sessions.add(session);
      void session.done.then(() => this.sessions.delete(session));
    }
  }

  /** One slot: the next client's session world, or undefined when the slot passed without one (or the client failed to join). */
  private async nextClient(): Promise<Transport | undefined> {
    try {
      return await createTransport('ws', {
        rank: COORDINATOR_SESSION_RANK,
        worldSize: 2,
        token: this.options.token,
        rendezvous: this.address,
        role: CLIENT_ROLE,
        listenHost: this.host,
        heartbeatMs: heartbeatFor(this.options.healthTimeoutMs),
        // A client is its user's process, which may hold its event loop for seconds: only its closed connection
        // ends the session (its calls are bounded by their deadlines meanwhile).
        patientPeers: [CLIENT_SESSION_RANK],
        connectTimeoutMs: SLOT_WINDOW_MS,
      });
    } catch (error) {
      if (this.closed || (error as SeqparError).code === 'ERR_TIMEOUT') return undefined;
      this.options.log.warn({ err: error }, 'a client failed to join');
      await sleep(100); // not a hot loop if the door itself is broken
      return undefined;
    }
  }
}
