import { SeqparError } from '@seqpar/core';
import { receivedFrame } from './received-frame.js';
import { resolveLimits, TransportBase, type LinkConditions, type TransportLimits } from './transport-base.js';
import { DEFAULT_MAX_QUEUED_BYTES, type FrameHeader, type Transport } from './transport.js';

export interface InprocGroupOptions extends LinkConditions {
  maxPayload?: number;
  maxQueuedBytes?: number;
}

/**
 * All `n` endpoints of a group that lives in one thread (tests, single-process runs). `send` copies the
 * payload (so the caller may reuse its buffer at once, as with every transport) and the receiver owns the copy.
 */
export function createInprocGroup(n: number, options: InprocGroupOptions = {}): Transport[] {
  const limits = resolveLimits(options, DEFAULT_MAX_QUEUED_BYTES);
  const group: InprocTransport[] = [];
  for (let rank = 0; rank < n; rank += 1) group.push(new InprocTransport(rank, n, limits, group));
  return group;
}

class InprocTransport extends TransportBase {
  constructor(
    rank: number,
    worldSize: number,
    limits: TransportLimits,
    private readonly group: InprocTransport[],
  ) {
    super(rank, worldSize, 'inproc', limits);
  }

  protected transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): void {
    this.group[to]!.mailbox.deliver(this.rank, receivedFrame(tag, structuredClone(header), payload.slice()));
  }

  protected returnCredit(from: number, cost: number): void {
    this.group[from]!.credit[this.rank]!.release(cost);
  }

  protected async shutdown(): Promise<void> {
    for (const peer of this.group) {
      if (peer === this) continue;
      const error = this.killed
        ? new SeqparError('ERR_PEER_LOST', `lost rank ${this.rank}: killed by its fault plan`)
        : new SeqparError('ERR_CLOSED', `rank ${this.rank} closed its transport`);
      peer.failPeer(this.rank, error);
    }
  }
}
