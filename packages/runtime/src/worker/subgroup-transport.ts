import { UsageError } from '@seqpar/core';
import type { DecodeLane, Frame, FrameHeader, RecvOptions, SendOptions, Transport, TransportStats } from '@seqpar/transport';

/**
 * The data plane one request runs on: the cluster's world ranks `members` (its ranks 0..size-1 by default; a
 * generation session placed on one worker, or on a group of them, names its own), renumbered 0..size-1 in that
 * order, with counters of its own so each request reports only its own traffic. The world also holds the
 * coordinator as its last rank. Closing the view leaves the world open: the worker owns that.
 */
export class SubgroupTransport implements Transport {
  readonly rank: number;
  readonly worldSize: number;
  readonly kind: Transport['kind'];
  private readonly counters: TransportStats = { bytesSent: 0, bytesRecv: 0, framesSent: 0, framesRecv: 0 };

  constructor(
    private readonly world: Transport,
    private readonly members: readonly number[],
  ) {
    const rank = members.indexOf(world.rank);
    if (rank < 0 || members.some((member) => !Number.isInteger(member) || member < 0 || member >= world.worldSize) || new Set(members).size !== members.length) {
      throw new UsageError(`rank ${world.rank} cannot join a subgroup of ranks ${members.join(', ')} out of ${world.worldSize}`);
    }
    this.rank = rank;
    this.worldSize = members.length;
    this.kind = world.kind;
  }

  async send(to: number, tag: string, header: FrameHeader, payload?: ArrayBufferView, options?: SendOptions): Promise<void> {
    this.checkPeer(to);
    await this.world.send(this.members[to]!, tag, header, payload, options);
    this.counters.framesSent += 1;
    this.counters.bytesSent += payload?.byteLength ?? 0;
  }

  async recv(from: number, tag: string, options?: RecvOptions): Promise<Frame> {
    this.checkPeer(from);
    const frame = await this.world.recv(this.members[from]!, tag, options);
    this.counters.framesRecv += 1;
    this.counters.bytesRecv += frame.payload.byteLength;
    return frame;
  }

  decodeLane(peer: number): DecodeLane | undefined {
    this.checkPeer(peer);
    return this.world.decodeLane?.(this.members[peer]!);
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {}

  private checkPeer(peer: number): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.worldSize) {
      throw new UsageError(`rank ${peer} is outside this request's ranks 0..${this.worldSize - 1}`);
    }
  }
}
