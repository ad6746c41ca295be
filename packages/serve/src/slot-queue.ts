import { SeqparError } from '@seqpar/core';

/** A place in the queue: wait for a slot with `acquire`, give it back (or the place, if never granted) with `release`. */
export interface Ticket {
  acquire(signal?: AbortSignal): Promise<void>;
  release(): void;
}

/**
 * Requests waiting for the cluster, first come first served, at most `slots` of them running at once and, past
 * the first, only while their weights (KV cache bytes) fit in `capacity`. A place is taken when the request is
 * admitted, so a full queue refuses it (ERR_BUSY) before any work; a request that leaves while waiting gives its
 * place back.
 */
export class SlotQueue {
  private readonly waiting: Array<{ readonly weight: number; grant: () => void }> = [];
  private reserved = 0;
  private running = 0;
  private used = 0;

  constructor(
    private readonly slots: number,
    private readonly maxWaiting: number,
    private readonly capacity = Infinity,
  ) {}

  /** Requests admitted and not yet running. */
  get depth(): number {
    return this.reserved;
  }

  get active(): number {
    return this.running;
  }

  /** Weight held while the requests run (e.g. their KV cache bytes). */
  get load(): number {
    return this.used;
  }

  enter(weight = 0): Ticket {
    // A free slot takes the request at once, whatever the queue's size.
    if (this.reserved + this.running >= this.slots + this.maxWaiting)
      throw new SeqparError('ERR_BUSY', `the server is busy: ${this.reserved} requests already wait (--max-queue ${this.maxWaiting})`);
    this.reserved++;
    let state: 'waiting' | 'running' | 'done' = 'waiting';
    let entry: { readonly weight: number; grant: () => void } | undefined;
    const leave = () => {
      if (state === 'running') {
        this.running--;
        this.used -= weight;
      } else if (state === 'waiting') {
        this.reserved--;
        const at = entry ? this.waiting.indexOf(entry) : -1;
        if (at >= 0) this.waiting.splice(at, 1);
      }
      state = 'done';
      this.next();
    };
    return {
      acquire: (signal) =>
        new Promise<void>((resolve, reject) => {
          if (state !== 'waiting') return reject(new SeqparError('ERR_INTERNAL', 'a ticket is acquired once'));
          const onAbort = () => {
            leave();
            reject(new SeqparError('ERR_ABORTED', 'the request was cancelled while it waited'));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          entry = {
            weight,
            grant: () => {
              signal?.removeEventListener('abort', onAbort);
              state = 'running';
              this.reserved--;
              this.running++;
              this.used += weight;
              resolve();
            },
          };
          this.waiting.push(entry);
          this.next();
        }),
      release: () => state !== 'done' && leave(),
    };
  }

  private next(): void {
    // The first request runs whatever its weight (admission refused what can never fit); the head waits for room.
    while (this.running < this.slots && this.waiting.length > 0 && (this.running === 0 || this.used + this.waiting[0]!.weight <= this.capacity)) this.waiting.shift()!.grant();
  }
}
