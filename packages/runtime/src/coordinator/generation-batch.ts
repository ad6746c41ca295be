import { SeqparError, type RankStats, type Tensor } from '@seqpar/core';
import type { RpcCaller } from '../rpc/rpc-caller.js';
import type { BurstTokens } from '../worker/decode-burst.js';
import type { SessionPrefillArgs, StepRow } from '../worker/generation-sessions.js';
import { burstSize } from './burst-size.js';
import type { RankReply, RequestJob } from './request-job.js';

export interface GenerationBatchOptions {
  readonly caller: RpcCaller;
  readonly workers: number;
  /** Sessions running at once; more jobs wait in the coordinator's queue. */
  readonly maxBatch: number;
  /** Bound on a burst's steps; default burst-size.ts MAX_BURST_STEPS. */
  readonly maxBurstSteps?: number;
  /** A call id unique in the world (the workers' tag prefixes). */
  readonly nextFlight: () => number;
  /** A call failed for another reason than a cancel: the coordinator fails the batch and resets the world. */
  readonly onError: (error: SeqparError) => void;
  /** Every session ended and was released: the cluster is free for other requests. */
  readonly onDrained: () => void;
}

/** One job's generation: its session on the workers and where its tokens stand. */
interface Session {
  readonly id: number;
  readonly job: RequestJob;
  /** World ranks holding its KV shares, in session rank order. */
  readonly members: readonly number[];
  readonly promptLength: number;
  readonly maxNewTokens: number;
  readonly eos: ReadonlySet<number>;
  readonly tokens: number[];
  readonly prefill: AbortController;
  state: 'waiting' | 'prefilling' | 'decoding' | 'done';
  /** Tokens of a burst that came ahead of an earlier one (a sharded session's ranks stream them apart): by index. */
  readonly early: Map<number, number>;
  replies: RankReply[];
  /** What its prefill call carries. */
  readonly args: SessionPrefillArgs;
  readonly prompt: Tensor;
}

/**
 * Prefills a rank runs at once. A compute thread runs one at a time anyway, so more only make each finish later
 * (and hold their activations meanwhile); two let a short prompt start beside a long one, whose pieces it then
 * passes (compute priorities by prompt length).
 */
const PREFILLS_PER_RANK = 2;

/**
 * Continuous batching of generations on the cluster: the coordinator is the scheduler and the workers execute
 * steps (worker/generation-sessions.ts). Each job gets a session on its ranks (one worker, the least loaded, for
 * an unsharded prompt; every worker for a sharded one); its prefill starts once its ranks run fewer than
 * PREFILLS_PER_RANK, side by side with the running sessions' decode steps (the workers' compute threads serve
 * steps first, then shorter prompts' prefills). A decode step runs every decoding session as one batch of rows.
 * One call runs a burst of steps (burstSteps): a call costs a round trip to every rank, more than the ranks' own
 * exchanges, so the ranks run the steps back to back, share a sharded session's tokens among themselves and
 * stream every token here as it is sampled; a finished prefill joins at the next call. A session leaves at EOS,
 * at its token budget (its ranks drop its row at the same step), or when its job is aborted or expires (only its
 * KV shares are released and its tokens still in flight dropped; the other sessions go on). Any other failure
 * fails every job in the batch and the coordinator resets the world, as for any request.
 */
export class GenerationBatch {
  private readonly sessions = new Map<RequestJob, Session>();
  private nextSession = 0;
  /** Sessions ended since the last call to each rank, to free there: by world rank. */
  private readonly released = new Map<number, number[]>();
  private wake: (() => void) | undefined;
  /** Wall ms per decode step in the last burst (the coordinator's round trip included), which sizes the next. */
  private stepMs: number | undefined;
  private looping = false;
  private draining = false;
  private failed = false;

  constructor(
    private readonly modelDir: string,
    private readonly options: GenerationBatchOptions,
  ) {}

  /** Whether `job` may join now (the same model, room left, the batch still running). */
  accepts(job: RequestJob): boolean {
    return !this.draining && !this.failed && this.sessions.size < this.options.maxBatch && job.calls[0]?.args.modelDir === this.modelDir;
  }

  has(job: RequestJob): boolean {
    return this.sessions.has(job);
  }

  /** Starts `job`'s session: its prefill on its ranks; the step loop runs while any session lives. */
  add(job: RequestJob): void {
    const call = job.calls[0]!;
    const prompt = call.tensors[0] as Tensor;
    const degree = job.calls.length;
    const members = degree === 1 ? [this.leastLoaded()] : Array.from({ length: degree }, (_, rank) => rank);
    const args = call.args as unknown as SessionPrefillArgs & { ignoreEos?: boolean; eos?: number[] };
    const session: Session = {
      id: this.nextSession++,
      job,
      members,
      promptLength: prompt.shape[0]!,
      maxNewTokens: args.maxNewTokens,
      eos: new Set(args.ignoreEos ? [] : (args.eos ?? [])),
      tokens: [],
      prefill: new AbortController(),
      state: 'waiting',
      early: new Map(),
      replies: [],
      args,
      prompt,
    };
    this.sessions.set(job, session);
    this.startPrefills();
    if (!this.looping) void this.loop();
  }

  /** Ends `job` with `error` (its client went away or its deadline passed), freeing only its session. */
  cancel(job: RequestJob, error: SeqparError): void {
    const session = this.sessions.get(job);
    if (!session || session.state === 'done') return;
    session.prefill.abort(); // cancels a prefill still running on the ranks
    this.finish(session, error);
  }

  /** Ends every job with `error`; the coordinator resets the world, which frees every session on the workers. */
  failAll(error: SeqparError): void {
    this.failed = true;
    for (const session of this.sessions.values()) {
      session.prefill.abort();
      if (session.state !== 'done') session.job.reject(error);
      session.state = 'done';
    }
    this.sessions.clear();
    this.wake?.();
  }

  /** Starts the prefills of waiting sessions, in arrival order, whose ranks have room (PREFILLS_PER_RANK). */
  private startPrefills(): void {
    const running = new Array<number>(this.options.workers).fill(0);
    const sessions = [...this.sessions.values()];
    for (const session of sessions) if (session.state === 'prefilling') for (const rank of session.members) running[rank]!++;
    for (const session of sessions) {
      if (session.state !== 'waiting' || session.members.some((rank) => running[rank]! >= PREFILLS_PER_RANK)) continue;
      for (const rank of session.members) running[rank]!++;
      session.state = 'prefilling';
      void this.prefill(session);
    }
  }

  private async prefill(session: Session): Promise<void> {
    const { job, members, args, prompt } = session;
    const flight = this.options.nextFlight();
    try {
      const replies = await Promise.all(
        members.map((rank, index) =>
          this.options.caller.call(rank, 'session.prefill', { ...args, session: session.id, flight, degree: members.length, members, stop: [...session.eos] }, [prompt], {
            timeoutMs: job.remainingMs(),
            signal: session.prefill.signal,
            ...(job.options.onPartial ? { onPartial: (header: Record<string, unknown>) => job.options.onPartial!(index, header) } : {}),
          }),
        ),
      );
      if (session.state === 'done') return;
      session.replies = replies.map((reply, rank) => ({ rank, header: { kvCacheMb: reply.header.kvCacheMb }, tensors: [], stats: reply.stats as RankStats }));
      const first = replies.find((reply) => typeof reply.header.token === 'number');
      if (!first) throw new SeqparError('ERR_INTERNAL', `no rank of session ${session.id} sampled its first token`);
      session.state = 'decoding';
      this.accept(session, Number(first.header.token));
    } catch (error) {
      if (session.state === 'done' || this.failed) return; // cancelled: the abort ended the calls
      this.options.onError(error as SeqparError);
    } finally {
      if (!this.failed) this.startPrefills();
      this.wake?.();
    }
  }

  /** Runs decode steps while any session decodes, waits while sessions only prefill, and drains when none is left. */
  private async loop(): Promise<void> {
    this.looping = true;
    while (!this.failed && this.sessions.size > 0) {
      const decoding = [...this.sessions.values()].filter((session) => session.state === 'decoding');
      if (decoding.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      try {
        await this.step(decoding);
      } catch (error) {
        this.looping = false;
        if (!this.failed) this.options.onError(error as SeqparError);
        return;
      }
    }
    this.looping = false;
    if (this.failed) return;
    this.draining = true;
    try {
      await this.release();
    } catch (error) {
      if (!this.failed) this.options.onError(error as SeqparError);
      return;
    }
    this.options.onDrained();
  }

  /**
   * One burst of decode steps of `decoding` on every rank that holds one of them (decode-burst.ts); sessions
   * released since ride along. Tokens stream in as each step samples them.
   */
  private async step(decoding: readonly Session[]): Promise<void> {
    const steps = this.burstSteps(decoding);
    const rows: StepRow[] = decoding.map((session) => [
      session.id,
      session.tokens.at(-1)!,
      session.promptLength + session.tokens.length - 1,
      session.maxNewTokens - session.tokens.length,
    ]);
    const byId = new Map(decoding.map((session) => [session.id, { session, before: session.tokens.length }]));
    const onPartial = (header: Record<string, unknown>) => {
      const { step, tokens } = header as unknown as BurstTokens;
      for (const [id, token] of tokens) {
        const row = byId.get(id);
        if (row) this.receive(row.session, row.before + step, token);
      }
    };
    const ranks = [...new Set(decoding.flatMap((session) => session.members))].sort((a, b) => a - b);
    const flight = this.options.nextFlight();
    const { workers } = this.options;
    const all = Array.from({ length: workers }, (_, rank) => rank);
    const timeoutMs = Math.max(...decoding.map((session) => session.job.remainingMs()));
    const started = performance.now();
    const replies = await Promise.all(
      ranks.map((rank) =>
        this.options.caller.call(rank, 'session.step', { rows, steps, release: this.takeReleased(rank), flight, degree: workers, members: all }, [], { timeoutMs, onPartial }),
      ),
    );
    this.stepMs = (performance.now() - started) / Math.max(...replies.map((reply) => Number(reply.header.steps)), 1);
    // A session still decoding ran every step of the burst, and all its tokens have come (a rank replies after its partials).
    for (const { session, before } of byId.values()) {
      if (session.state === 'decoding' && session.tokens.length !== before + steps) {
        throw new SeqparError('ERR_INTERNAL', `session ${session.id} got ${session.tokens.length - before} of its ${steps} tokens of a burst`);
      }
    }
  }

  /** Steps in the next burst (burst-size.ts). */
  private burstSteps(decoding: readonly Session[]): number {
    return burstSize({
      prefillPending: [...this.sessions.values()].some((session) => session.state === 'waiting' || session.state === 'prefilling'),
      stepMs: this.stepMs,
      budgets: decoding.map((session) => session.maxNewTokens - session.tokens.length),
      remainingMs: decoding.map((session) => session.job.remainingMs()),
      ...(this.options.maxBurstSteps === undefined ? {} : { maxSteps: this.options.maxBurstSteps }),
    });
  }

  /** Takes a token of a burst: the session's next one is accepted at once, with any that came ahead of it. */
  private receive(session: Session, index: number, token: number): void {
    if (session.state !== 'decoding') return; // ended (cancelled, failed): what its ranks still send is dropped
    session.early.set(index, token);
    for (let next = session.early.get(session.tokens.length); next !== undefined && session.state === 'decoding'; next = session.early.get(session.tokens.length)) {
      session.early.delete(session.tokens.length);
      this.accept(session, next);
    }
  }

  /** Streams a session's new token to its job and ends the job at EOS or its token budget. */
  private accept(session: Session, token: number): void {
    const first = session.tokens.length === 0;
    session.job.options.onPartial?.(0, { token, index: session.tokens.length, ...(first ? { ranks: session.members } : {}) });
    session.tokens.push(token);
    if (session.eos.has(token) || session.tokens.length >= session.maxNewTokens) this.finish(session);
  }

  private finish(session: Session, error?: SeqparError): void {
    session.state = 'done';
    this.sessions.delete(session.job);
    for (const rank of session.members) this.released.set(rank, [...(this.released.get(rank) ?? []), session.id]);
    if (error) session.job.reject(error);
    else session.job.resolve(session.replies);
    this.wake?.();
  }

  private takeReleased(rank: number): number[] {
    const ids = this.released.get(rank) ?? [];
    this.released.delete(rank);
    return ids;
  }

  /** Sends the pending releases (the batch is ending: no step will carry them). */
  private async release(): Promise<void> {
    const { workers } = this.options;
    await Promise.all(
      [...this.released.keys()].map((rank) =>
        this.options.caller.call(rank, 'session.release', { ids: this.takeReleased(rank), flight: this.options.nextFlight(), degree: workers }, [], {
          timeoutMs: RELEASE_TIMEOUT_MS,
        }),
      ),
    );
  }

  /** The worker holding the fewest live sessions (the lowest rank among equals). */
  private leastLoaded(): number {
    const load = new Array<number>(this.options.workers).fill(0);
    for (const session of this.sessions.values()) if (session.state !== 'done') for (const rank of session.members) load[rank]!++;
    return load.indexOf(Math.min(...load));
  }
}

/** Bound on freeing sessions at the end of a batch (a drop per KV share on each compute thread). */
const RELEASE_TIMEOUT_MS = 30_000;
