import { SeqparError } from '@seqpar/core';

/**
 * The sender's view of how many bytes it has queued at one receiver. `acquire` waits while the window is full
 * (backpressure) and lets one frame through when nothing is in flight, so a frame bigger than the window still
 * moves. The receiver returns credit as its caller takes frames (mailbox.ts).
 */
export class CreditWindow {
  private inFlight = 0;
  private failure: SeqparError | undefined;
  private readonly waiting: { cost: number; resolve(): void; reject(error: SeqparError): void }[] = [];

  /** `onStarved` runs when a send starts to wait, and after each release that leaves one waiting. */
  constructor(
    private readonly limit: number,
    private readonly onStarved: () => void = () => {},
  ) {}

  /** Takes `cost` at once if nothing waits and it fits; false when the caller must `acquire` (and wait) instead. */
  tryAcquire(cost: number): boolean {
    if (this.failure || this.waiting.length || !this.fits(cost)) return false;
    this.inFlight += cost;
    return true;
  }

  acquire(cost: number, signal?: AbortSignal): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (signal?.aborted) return Promise.reject(new SeqparError('ERR_ABORTED', 'send aborted'));
    if (!this.waiting.length && this.fits(cost)) {
      this.inFlight += cost;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        cost,
        resolve: () => (signal?.removeEventListener('abort', onAbort), resolve()),
        reject: (error: SeqparError) => (signal?.removeEventListener('abort', onAbort), reject(error)),
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        entry.reject(new SeqparError('ERR_ABORTED', 'send aborted while waiting for the receiver'));
        this.admit();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      if (this.waiting.length === 1) this.onStarved();
    });
  }

  /** True while a send waits for credit. */
  get blocked(): boolean {
    return this.waiting.length > 0;
  }

  release(cost: number): void {
    this.inFlight = Math.max(0, this.inFlight - cost);
    this.admit();
    if (this.waiting.length && !this.failure) this.onStarved();
  }

  fail(error: SeqparError): void {
    this.failure ??= error;
    for (const entry of this.waiting.splice(0)) entry.reject(error);
  }

  private fits(cost: number): boolean {
    return this.inFlight === 0 || this.inFlight + cost <= this.limit;
  }

  private admit(): void {
    while (this.waiting.length && this.fits(this.waiting[0]!.cost)) {
      const entry = this.waiting.shift()!;
      this.inFlight += entry.cost;
      entry.resolve();
    }
  }
}
