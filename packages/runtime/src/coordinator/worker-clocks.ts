import type { Transport } from '@seqpar/transport';
import { alignClocks, shiftSpans } from './align-clocks.js';
import { measureClock, type ClockBracket } from '../worker/clock-sync.js';
import type { Logger } from '../logger.js';
import type { RankReply } from './request-job.js';

/** Ping exchanges per worker and refresh; the bracket is their intersection (clock-sync.ts). */
const ROUNDS = 5;

/**
 * The coordinator's knowledge of its workers' clocks: measured right before each traced request (so a replaced
 * worker or a drifting host never leaves a stale offset), then used to put the request's spans on the
 * coordinator's clock.
 */
export class WorkerClocks {
  private brackets: (ClockBracket | undefined)[] = [];
  private nextSeq = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Measures ranks 0..ranks-1 concurrently. A rank that does not answer in time keeps its own clock in the trace. */
  async refresh(world: Transport, ranks: number): Promise<void> {
    const firstSeq = this.nextSeq;
    this.nextSeq += ROUNDS;
    this.brackets = await Promise.all(
      Array.from({ length: ranks }, (_, rank) =>
        measureClock(world, rank, ROUNDS, firstSeq, this.timeoutMs).catch((error: unknown) => {
          this.log.warn({ rank, err: error }, 'clock ping failed: this rank keeps its own clock in the trace');
          return undefined;
        }),
      ),
    );
  }

  /** The replies with their spans on the coordinator's clock (replies are in rank order, ranks 0..n-1). */
  align(replies: readonly RankReply[]): RankReply[] {
    const { offsetsMs, causal } = alignClocks(
      replies.map((reply) => reply.spans ?? []),
      this.brackets,
    );
    if (!causal) this.log.warn({ brackets: this.brackets }, 'no clock offsets keep every hop causal (clock drift?): using the ping estimates');
    this.log.debug({ offsetsMs }, 'trace clocks aligned');
    return replies.map((reply, rank) => (reply.spans ? { ...reply, spans: shiftSpans(reply.spans, offsetsMs[rank]!) } : reply));
  }
}
