/**
 * How a shared-memory endpoint notices what its peers wrote: while something waits (a recv, or a send short of
 * ring space, credit or a slot) it polls on every event-loop turn, so a frame is seen within microseconds and
 * sockets, timers and other work still run between turns. Past its spin budget without progress it goes to
 * sleep: it raises its asleep flags (shm-ring.ts), looks once more, and from then on relies on a wake over the
 * socket, plus a slow backstop timer. A process that waits long therefore costs one socket message, not a spinning
 * core; one that exchanges frames back to back never touches the socket.
 *
 * The budget adapts, as an adaptive mutex does: it doubles (up to `spinUs`) each time spinning found the frame and
 * halves (down to MIN_SPIN_US) each time it had to sleep. Where the peers have cores of their own, a spin finds
 * the frame within microseconds; where processes outnumber cores, a spinner only keeps its peer off the core it
 * is waiting for, so the budget shrinks and the socket wake (which lets the peer run) takes over. Two sleeping
 * peers answer each other only by wakes, slower than a small budget, so every PROBE_MS the budget starts over
 * at `spinUs`: once cores are free again, the spinning comes back.
 */
export interface PollTarget {
  /** Reads every ring and retries every waiting send; true when anything moved. */
  pump(): boolean;
  /** True while a recv or a send waits on a peer. */
  wanted(): boolean;
  /** Raise (true) or lower (false) the asleep flags of whatever waits. */
  setAsleep(asleep: boolean): void;
}

const MIN_SPIN_US = 16;
const PROBE_MS = 250;
/** While asleep, look anyway this often: a wake that never comes (a peer that died mid-write) is noticed by its socket. */
const BACKSTOP_MS = 20;

export class Poller {
  private turning = false;
  private asleep = false;
  private deadline = 0;
  private backstop: NodeJS.Timeout | undefined;
  private stopped = false;
  private budgetUs: number;
  private probedAt = 0;
  /** Set once a turn found nothing: progress after that was found by spinning (not handed to us by a wake). */
  private spun = false;

  constructor(
    private readonly target: PollTarget,
    private readonly spinUs: number,
  ) {
    this.budgetUs = spinUs;
  }

  /** Something may have changed or started waiting: poll now and keep polling for the spin budget. */
  kick(): void {
    if (this.stopped) return;
    const now = performance.now();
    if (now - this.probedAt > PROBE_MS) {
      this.probedAt = now;
      this.budgetUs = this.spinUs;
    }
    this.deadline = now + this.budgetUs / 1000;
    this.spun = false;
    if (this.asleep) this.wakeUp();
    if (this.turning) return;
    this.turning = true;
    setImmediate(this.turn);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.backstop);
  }

  private readonly turn = (): void => {
    if (this.stopped) return;
    if (this.target.pump()) {
      if (this.spun) this.budgetUs = Math.min(this.spinUs, this.budgetUs * 2);
      this.deadline = performance.now() + this.budgetUs / 1000;
      this.spun = false;
    } else {
      this.spun = true;
    }
    if (!this.target.wanted()) return void (this.turning = false);
    if (performance.now() < this.deadline) return void setImmediate(this.turn);
    this.turning = false;
    this.budgetUs = Math.max(MIN_SPIN_US, this.budgetUs / 2);
    this.asleep = true;
    this.target.setAsleep(true);
    // A record published before our flag was visible brought no wake: look once more after raising it.
    if (this.target.pump()) return void this.kick();
    this.backstop = setTimeout(() => this.kick(), BACKSTOP_MS).unref();
  };

  private wakeUp(): void {
    this.asleep = false;
    clearTimeout(this.backstop);
    this.target.setAsleep(false);
  }
}
