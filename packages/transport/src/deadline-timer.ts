/** Something with a deadline (performance.now() time) that `expire` ends once it has passed. */
export interface Deadline {
  readonly at: number;
  expire(): void;
}

/** setTimeout's longest delay; a later deadline is re-armed for when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * One timer for many deadlines: the receive waiters of a mailbox. A timer per `recv` cost every frame of a
 * ping-pong a setTimeout and a clearTimeout (each a trip into libuv, and a re-sort of its timer heap whenever a
 * list empties). Here adding a deadline that falls after the armed one, as each new equal timeout does, touches no
 * timer, and a settled deadline is just removed from the set; the timer may then fire early, finds nothing due and
 * re-arms for the earliest left. With nothing pending the timer stays armed but unreferenced (it must not keep
 * the process alive), so a ping-pong's one waiter at a time does not clear and re-create it per frame either.
 */
export class DeadlineTimer<T extends Deadline> {
  private readonly pending = new Set<T>();
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private referenced = false;

  add(deadline: T): void {
    this.pending.add(deadline);
    if (deadline.at < this.armedAt) this.arm(deadline.at);
    else if (!this.referenced) this.reference(true);
  }

  delete(deadline: T): void {
    this.pending.delete(deadline);
    if (!this.pending.size && this.referenced) this.reference(false);
  }

  /** Forgets every deadline without expiring it. */
  stop(): void {
    this.pending.clear();
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
    const now = performance.now();
    let next = Infinity;
    for (const deadline of this.pending) {
      if (deadline.at <= now) deadline.expire();
      else next = Math.min(next, deadline.at);
    }
    if (next < Infinity) this.arm(next);
  };
}
