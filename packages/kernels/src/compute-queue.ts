/**
 * The order a compute thread runs its chains in: one at a time, the lowest priority first (first come among
 * equals). A caller's chains come one after another with a little host work between them (a decode step's
 * layers, a short prompt's prefill), so after running a chain the queue waits up to `graceMs` for that caller's
 * next one before it starts less urgent work: otherwise every chain of a short request would wait for a piece of
 * a long prefill that slipped into the gap. The wait is granted only while urgent work has held the thread back
 * from waiting work for less than `streakMs`, so a stream of decode steps cannot starve a prefill.
 */
export class ComputeQueue {
  private readonly waiting: Array<{ readonly priority: number; readonly start: () => Promise<void> }> = [];
  private running = false;
  /** Ends the grace wait early: set while the queue waits for a task at least as urgent as `graceFor`. */
  private graceOver: (() => void) | undefined;
  private graceFor = -Infinity;

  constructor(
    private readonly graceMs = 2,
    private readonly streakMs = 100,
  ) {}

  /** Runs `task` when its turn comes; resolves or rejects with it. */
  run<T>(priority: number, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        priority,
        start: () =>
          task().then(
            (value) => resolve(value),
            (error: unknown) => reject(error as Error),
          ),
      });
      if (priority <= this.graceFor) this.graceOver?.();
      if (!this.running) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.running = true;
    let last = Infinity; // the priority of the task just run
    let streakSince: number | undefined; // since when more urgent tasks have run while others waited
    while (this.waiting.length > 0) {
      if (this.waiting[this.next()]!.priority > last && (streakSince === undefined || performance.now() - streakSince < this.streakMs)) {
        await this.grace(last);
      }
      const [task] = this.waiting.splice(this.next(), 1);
      const holdsBack = this.waiting.some((other) => other.priority > task!.priority);
      streakSince = holdsBack ? (streakSince ?? performance.now()) : undefined;
      last = task!.priority;
      await task!.start();
      // Let messages that arrived during the run join the queue before the next pick.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.running = false;
  }

  /** Waits up to `graceMs`, less if a task of priority `priority` or more urgent arrives. */
  private async grace(priority: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.graceFor = priority;
      this.graceOver = resolve;
      timer = setTimeout(resolve, this.graceMs);
    });
    clearTimeout(timer);
    this.graceOver = undefined;
    this.graceFor = -Infinity;
  }

  /** The index of the most urgent waiting task (the first among equals). */
  private next(): number {
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) if (this.waiting[i]!.priority < this.waiting[best]!.priority) best = i;
    return best;
  }
}
