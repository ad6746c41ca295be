import { SeqparError, type RankStats, type TraceSpan } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import { CONTROL_POLL_MS, DOWN_DATA_TAG, DOWN_TAG, UP_DATA_TAG, UP_TAG, type UpMessage } from '../rpc/control-messages.js';
import type { Executor } from '../executors/executor.js';
import type { Logger } from '../logger.js';
import { RequestJob, type JobOptions, type RankCall, type RankReply } from './request-job.js';
import { RequestQueue } from './request-queue.js';
import { receiveTensors, sendTensors } from '../rpc/tensor-payload.js';
import { WorkerClocks } from './worker-clocks.js';

export interface CoordinatorOptions {
  readonly maxQueue: number;
  /** Bound on a failure being noticed; also how long a worker's peer-loss report waits for our own verdict. */
  readonly healthTimeoutMs: number;
  readonly log: Logger;
}

/** The request in flight: one at a time, since every rank takes part in every request. */
interface Flight {
  readonly id: number;
  readonly job: RequestJob;
  readonly replies: Map<number, RankReply>;
  grace?: NodeJS.Timeout;
}

const PEER_CODES = new Set(['ERR_PEER_LOST', 'ERR_TIMEOUT', 'ERR_CLOSED', 'ERR_ABORTED']);

/**
 * Drives the workers of an executor: a bounded queue of requests, one in flight, results gathered from every
 * rank, and health. Any request that ends abnormally (a lost rank, an error, a timeout, an abort) resets the
 * world: the workers drop whatever they hold for it, every endpoint closes, lost local workers are replaced,
 * and all ranks join a fresh world before the next request runs. The epoch number tells a stale event (from a
 * world already torn down) from a live one.
 */
export class Coordinator {
  private readonly queue: RequestQueue<RequestJob>;
  private world: Transport | undefined;
  private epoch = 0;
  private nextId = 0;
  private flight: Flight | undefined;
  private recovering: Promise<void> | undefined;
  private readonly lostRanks = new Set<number>();
  private readonly clocks: WorkerClocks;
  private closed = false;

  constructor(
    private readonly executor: Executor,
    private readonly options: CoordinatorOptions,
  ) {
    this.queue = new RequestQueue(options.maxQueue);
    this.clocks = new WorkerClocks(options.healthTimeoutMs, options.log);
    executor.onLost((rank, error) => this.onLost(rank, error, this.epoch));
  }

  get workers(): number {
    return this.executor.workers;
  }

  /** Launches the workers (or starts listening for them). */
  launch(): Promise<void> {
    return this.executor.start();
  }

  /** Waits for every worker to join the first world; requests submitted meanwhile queue. */
  async connect(): Promise<void> {
    const world = await this.executor.join();
    if (this.closed) {
      await this.tellWorkers(world, { kind: 'shutdown' });
      return void (await world.close());
    }
    this.enter(world);
    this.pump();
  }

  /** Runs `op` on ranks 0..calls.length-1 (one call each) and answers with their replies in rank order. */
  submit(op: string, calls: readonly RankCall[], options: JobOptions): Promise<RankReply[]> {
    const job = new RequestJob(op, calls, options, (expired, error) => this.expire(expired, error));
    if (this.closed) job.reject(new SeqparError('ERR_CLOSED', 'the cluster is closed'));
    else if (options.signal?.aborted) job.reject(new SeqparError('ERR_ABORTED', `${op} request was aborted before it started`));
    else {
      try {
        this.queue.push(job);
        this.pump();
      } catch (error) {
        job.reject(error as Error);
      }
    }
    return job.promise;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new SeqparError('ERR_CLOSED', 'the cluster is closed');
    for (const job of this.queue.drain()) job.reject(error);
    if (this.flight) this.endFlight(error);
    await this.recovering?.catch(() => undefined);
    const world = this.world;
    this.world = undefined;
    if (world) {
      await this.tellWorkers(world, { kind: 'shutdown' });
      await world.close();
    }
    await this.executor.close();
  }

  private enter(world: Transport): void {
    this.world = world;
    const epoch = ++this.epoch;
    for (let rank = 0; rank < this.workers; rank++) void this.readLoop(world, rank, epoch);
    this.options.log.info({ epoch }, 'world ready');
  }

  private async readLoop(world: Transport, rank: number, epoch: number): Promise<void> {
    while (epoch === this.epoch && !this.closed) {
      let frame: Frame;
      try {
        frame = await world.recv(rank, UP_TAG, { timeoutMs: CONTROL_POLL_MS });
      } catch (error) {
        if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
        this.onLost(rank, error as SeqparError, epoch);
        return;
      }
      await this.onReply(world, rank, frame);
    }
  }

  private pump(): void {
    if (this.closed || this.flight || !this.world || this.recovering) return;
    const job = this.queue.shift();
    if (!job) return;
    const flight: Flight = { id: this.nextId++, job, replies: new Map() };
    this.flight = flight;
    const world = this.world;
    // The ranks' receives give up before the request does, leaving time for their report and its grace period,
    // so a missing frame fails the request naming the frame and the rank that did not send it.
    const timeoutMs = Math.max(1, job.options.timeoutMs - 2 * this.options.healthTimeoutMs);
    // A traced request's spans are put on our clock, measured just before it runs (worker-clocks.ts).
    const clocksMeasured = job.options.traced ? this.clocks.refresh(world, job.calls.length) : Promise.resolve();
    void clocksMeasured.then(() => Promise.all(
      job.calls.map((call, rank) => {
        const header = { kind: 'call', id: flight.id, op: job.op, args: call.args, degree: job.calls.length, timeoutMs, traced: job.options.traced ?? false };
        return sendTensors(world, rank, DOWN_TAG, DOWN_DATA_TAG, header, call.tensors);
      }),
    )).catch((error: SeqparError) => this.flight === flight && this.fail(new SeqparError(error.code ?? 'ERR_PEER_LOST', `${job.op} request ${flight.id}: ${error.message}`)));
  }

  private async onReply(world: Transport, rank: number, frame: Frame): Promise<void> {
    const message = frame.header as UpMessage;
    const flight = this.flight;
    if (!flight || message.id !== flight.id) return; // an answer to a request already ended (its world is being reset)
    if (message.kind === 'partial') return flight.job.options.onPartial?.(rank, message.header);
    if (message.kind === 'error') {
      const error = new SeqparError(message.code as SeqparError['code'], `rank ${rank}: ${message.message}`);
      // A peer failure seen by a worker: our own heartbeat verdict names the rank at fault, so wait for it briefly.
      if (!PEER_CODES.has(message.code)) this.fail(error);
      else flight.grace ??= setTimeout(() => this.flight === flight && this.fail(error), this.options.healthTimeoutMs);
      return;
    }
    try {
      const tensors = await receiveTensors(world, rank, UP_DATA_TAG, message, { timeoutMs: this.options.healthTimeoutMs }, flight.job.options.replyInto?.(rank) ?? []);
      if (this.flight !== flight) return; // failed or timed out while its chunks came in
      flight.replies.set(rank, { rank, header: message.header, tensors, stats: message.stats as RankStats, ...(message.spans ? { spans: message.spans as TraceSpan[] } : {}) });
    } catch (error) {
      if (this.flight === flight) this.fail(error as SeqparError);
      return;
    }
    if (flight.replies.size === flight.job.calls.length) {
      this.endFlight();
      const replies = [...flight.replies.values()].sort((a, b) => a.rank - b.rank);
      flight.job.resolve(flight.job.options.traced ? this.clocks.align(replies) : replies);
      this.pump();
    }
  }

  private onLost(rank: number, error: SeqparError, epoch: number): void {
    if (epoch !== this.epoch || this.closed) return;
    this.options.log.warn({ lost: rank, err: error }, 'worker lost');
    this.lostRanks.add(rank);
    const code = error.code === 'ERR_TIMEOUT' ? 'ERR_TIMEOUT' : 'ERR_PEER_LOST';
    const id = this.flight ? `request ${this.flight.id}` : 'idle';
    this.fail(new SeqparError(code, `rank ${rank} was lost (${id}): ${error.message}`));
  }

  private expire(job: RequestJob, error: SeqparError): void {
    if (this.queue.remove(job)) return job.reject(error);
    const flight = this.flight;
    if (flight?.job !== job) return;
    // Say who kept the request waiting (e.g. a rank whose reply was lost).
    const silent = job.calls.map((_, rank) => rank).filter((rank) => !flight.replies.has(rank));
    this.fail(new SeqparError(error.code, `${error.message}: no answer from rank ${silent.join(', rank ')}`));
  }

  /** Ends the request in flight (if any) with `error` and resets the world. */
  private fail(error: SeqparError): void {
    const flight = this.flight;
    if (flight) {
      this.endFlight();
      flight.job.reject(error);
    }
    void this.recover();
  }

  private endFlight(error?: SeqparError): void {
    const flight = this.flight!;
    clearTimeout(flight.grace);
    this.flight = undefined;
    if (error) flight.job.reject(error);
  }

  private recover(): Promise<void> {
    this.recovering ??= this.rebuild().finally(() => {
      this.recovering = undefined;
      this.pump();
    });
    return this.recovering;
  }

  private async rebuild(): Promise<void> {
    this.epoch++; // events from the old world are stale from here on
    const old = this.world;
    this.world = undefined;
    if (old) {
      await this.tellWorkers(old, { kind: 'reset' });
      await old.close();
    }
    while (!this.closed) {
      try {
        for (const rank of this.lostRanks) await this.executor.replace(rank);
        this.lostRanks.clear();
        return await this.connect();
      } catch (error) {
        this.options.log.error({ err: error }, 'could not rebuild the cluster, retrying');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** Best effort, bounded: a worker that cannot hear this will see the world close instead. */
  private async tellWorkers(world: Transport, header: { kind: 'reset' | 'shutdown' }): Promise<void> {
    const sends = Array.from({ length: this.workers }, (_, rank) => world.send(rank, DOWN_TAG, header).catch(() => undefined));
    await Promise.race([Promise.all(sends), new Promise((resolve) => setTimeout(resolve, this.options.healthTimeoutMs).unref())]);
  }
}
