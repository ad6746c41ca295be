import { SeqparError, type RankStats, type Tensor, type TraceSpan } from '@seqpar/core';
import type { TensorSegments } from '../rpc/tensor-payload.js';

/** What the coordinator sends one rank: the same shape for every operation. */
export interface RankCall {
  readonly args: Record<string, unknown>;
  readonly tensors: readonly (Tensor | TensorSegments)[];
}

/** One rank's answer, in rank order in the request's result. */
export interface RankReply {
  readonly rank: number;
  readonly header: Record<string, unknown>;
  /** Undefined where the tensor was written into the job's `replyInto` target instead. */
  readonly tensors: (Tensor | undefined)[];
  readonly stats: RankStats;
  readonly spans?: TraceSpan[];
}

export interface JobOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly traced?: boolean;
  /** Partial replies a rank streams before its result (in order per rank), e.g. generated tokens. */
  readonly onPartial?: (rank: number, header: Record<string, unknown>) => void;
  /** Where a rank's reply tensors go (by index) instead of fresh tensors, e.g. its rows of the gathered out. */
  readonly replyInto?: (rank: number) => readonly (TensorSegments | undefined)[];
}

/**
 * A request from submission to its one answer. `settle` is idempotent, so a late reply, a timeout and an abort
 * racing each other still answer the caller exactly once. The deadline covers queueing and running; the abort
 * and the deadline call `onExpire` so the coordinator can take the job off its queue or reset the workers.
 */
export class RequestJob {
  readonly promise: Promise<RankReply[]>;
  private resolveFn!: (replies: RankReply[]) => void;
  private rejectFn!: (error: Error) => void;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly deadline: number;
  private readonly onAbort: () => void;

  constructor(
    readonly op: string,
    readonly calls: readonly RankCall[],
    readonly options: JobOptions,
    onExpire: (job: RequestJob, error: SeqparError) => void,
  ) {
    this.deadline = Date.now() + options.timeoutMs;
    this.promise = new Promise((resolve, reject) => ((this.resolveFn = resolve), (this.rejectFn = reject)));
    this.timer = setTimeout(() => onExpire(this, new SeqparError('ERR_TIMEOUT', `${op} request did not finish within ${options.timeoutMs} ms`)), options.timeoutMs);
    this.onAbort = () => onExpire(this, new SeqparError('ERR_ABORTED', `${op} request was aborted`));
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** What is left of the deadline (at least 1 ms, so a call always carries a positive bound). */
  remainingMs(): number {
    return Math.max(1, this.deadline - Date.now());
  }

  resolve(replies: RankReply[]): void {
    if (this.finish()) this.resolveFn(replies);
  }

  reject(error: Error): void {
    if (this.finish()) this.rejectFn(error);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }
}
