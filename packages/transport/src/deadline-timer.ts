/** setTimeout's longest delay; a later deadline is re-armed for when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * One timer for many deadlines (performance.now() times): the receive waiters of a mailbox. It only counts them;
 * their owner keeps them and, when the timer fires, `sweep(now)` expires those due and returns the earliest
 * left (Infinity for none). A timer per `recv` cost every frame of a ping-pong a setTimeout and a clearTimeout,
 * and a set of the pending ones a hash per new waiter and a shrink per emptied set; here adding a deadline that
 * falls after the armed one, as each new equal timeout does, touches no timer, and a settled one is a decrement.
 * The timer may then fire early, finds nothing due and re-arms for the earliest left. With nothing pending it
 * stays armed but unreferenced (it must not keep the process alive), so a ping-pong's one waiter at a time does
 * not clear and re-create it per frame either.
 */
export class DeadlineTimer {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private referenced = false;

  constructor(private readonly sweep: (now: number) => number) {}

  add(at: number): void {
    this.pending += 1;
    if (at < this.armedAt) this.arm(at);
    else if (!this.referenced) this.reference(true);
  }

  /** One deadline added before settled (it was met, or it expired). */
  settled(): void {
    this.pending -= 1;
    if (!this.pending && this.referenced) this.reference(false);
  }

  /** Forgets every deadline without expiring it. */
  stop(): void {
    this.pending = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    this.referenced = false;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(this.fire, Math.min(MAX_DELAY_MS, Math.max(0, Math.ceil(at - performance.now()))));
    this.referenced = true;
  }

  private reference(on: boolean): void {
    this.referenced = on;
    if (on) this.timer?.ref();
    else this.timer?.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = Infinity;
    this.referenced = false;
    if (!this.pending) return;
    const next = this.sweep(performance.now());
    if (next < Infinity) this.arm(next);
  };
}
