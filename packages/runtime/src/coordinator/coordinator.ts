import { SeqparError, type RankStats, type TraceSpan } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';
import type { Executor } from '../executors/executor.js';
import type { Logger } from '../logger.js';
import { RpcCaller, type CallReply } from '../rpc/rpc-caller.js';
import { GenerationBatch } from './generation-batch.js';
import { RequestJob, type JobOptions, type RankCall, type RankReply } from './request-job.js';
import { RequestQueue } from './request-queue.js';
import { WorkerClocks } from './worker-clocks.js';

export interface CoordinatorOptions {
  readonly maxQueue: number;
  /** Bound on a failure being noticed; also how long a worker's peer-loss report waits for our own verdict. */
  readonly healthTimeoutMs: number;
  readonly log: Logger;
  /** Generations decoded together as one batch (continuous batching); default 16. */
  readonly maxBatch?: number;
  /** Decode steps one call of that batch may run (generation-batch.ts); default there. */
  readonly maxBurstSteps?: number;
}

/** The world the workers are in now: its transport and the caller that reaches them through it. */
interface World {
  readonly transport: Transport;
  readonly caller: RpcCaller;
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
 * Drives the workers of an executor: a bounded queue of requests, one in flight (or a batch of generations,
 * generation-batch.ts, which later generations join while other requests wait for it to drain), results
 * gathered from every rank, and health. Any request that ends abnormally (a lost rank, an error, a timeout, an
 * abort) resets the world: the workers drop whatever they hold for it, every endpoint closes, lost local workers
 * are replaced, and all ranks join a fresh world before the next request runs. A generation of a batch that is
 * aborted or expires frees only its own session. The epoch number tells a stale event (from a
 * world already torn down) from a live one.
 */
export class Coordinator {
  private readonly queue: RequestQueue<RequestJob>;
  private world: World | undefined;
  private epoch = 0;
  private nextId = 0;
  private flight: Flight | undefined;
  /** The generations running as one batch; other requests wait until it drains. */
  private batch: GenerationBatch | undefined;
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
    const world = this.enter(await this.executor.join());
    if (this.closed) {
      this.world = undefined;
      await this.tellWorkers(world, 'shutdown');
      return void (await world.transport.close());
    }
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
    this.batch?.failAll(error);
    this.batch = undefined;
    await this.recovering?.catch(() => undefined);
    const world = this.world;
    this.world = undefined;
    if (world) {
      await this.tellWorkers(world, 'shutdown');
      await world.transport.close();
    }
    await this.executor.close();
  }

  private enter(transport: Transport): World {
    const epoch = ++this.epoch;
    const caller = new RpcCaller(transport, {
      peers: Array.from({ length: this.workers }, (_, rank) => rank),
      describe: (rank) => `rank ${rank}`,
      graceMs: this.options.healthTimeoutMs,
      onLost: (rank, error) => this.onLost(rank, error, epoch),
    });
    this.world = { transport, caller };
    this.options.log.info({ epoch }, 'world ready');
    return this.world;
  }

  private pump(): void {
    if (this.closed || this.flight || !this.world || this.recovering) return;
    // Generations join the running batch while it takes them; any other request waits for it to drain.
    const head = this.queue.peek();
    if (!this.batch && head && batchable(head)) this.batch = this.startBatch(this.world, head);
    if (this.batch) {
      for (let next = head; next && batchable(next) && this.batch.accepts(next); next = this.queue.peek()) this.batch.add(this.queue.shift()!);
      return;
    }
    const job = this.queue.shift();
    if (!job) return;
    const flight: Flight = { id: this.nextId++, job, replies: new Map() };
    this.flight = flight;
    const world = this.world;
    // A traced request's spans are put on our clock, measured just before it runs (worker-clocks.ts).
    const clocksMeasured = job.options.traced ? this.clocks.refresh(world.transport, job.calls.length) : Promise.resolve();
    void clocksMeasured.then(() =>
      job.calls.forEach((call, rank) => {
        // Every rank's deadline is what the request has left: a rank's own receives then give up with the request.
        const args = { ...call.args, flight: flight.id, degree: job.calls.length, traced: job.options.traced ?? false };
        const replyInto = job.options.replyInto?.(rank);
        world.caller
          .call(rank, job.op, args, call.tensors, {
            timeoutMs: job.remainingMs(),
            ...(job.options.onPartial ? { onPartial: (header: Record<string, unknown>) => job.options.onPartial!(rank, header) } : {}),
            ...(replyInto ? { replyInto } : {}),
          })
          .then(
            (reply) => this.onReply(flight, rank, reply),
            (error: SeqparError) => this.onRankError(flight, error),
          );
      }),
    );
  }

  private startBatch(world: World, job: RequestJob): GenerationBatch {
    const batch = new GenerationBatch(String(job.calls[0]!.args.modelDir), {
      caller: world.caller,
      workers: this.workers,
      maxBatch: this.options.maxBatch ?? 16,
      ...(this.options.maxBurstSteps === undefined ? {} : { maxBurstSteps: this.options.maxBurstSteps }),
      nextFlight: () => this.nextId++,
      onError: (error) => {
        if (this.batch !== batch) return;
        // As for a flight: a peer failure seen by a worker waits briefly for our own verdict naming the rank.
        if (!PEER_CODES.has(error.code)) this.fail(error);
        else setTimeout(() => this.batch === batch && this.fail(error), this.options.healthTimeoutMs);
      },
      onDrained: () => {
        if (this.batch !== batch) return;
        this.batch = undefined;
        this.pump();
      },
    });
    return batch;
  }

  private onReply(flight: Flight, rank: number, reply: CallReply): void {
    if (this.flight !== flight) return; // an answer to a request already ended (its world is being reset)
    flight.replies.set(rank, {
      rank,
      header: reply.header,
      tensors: reply.tensors,
      stats: reply.stats as RankStats,
      ...(reply.spans ? { spans: reply.spans as TraceSpan[] } : {}),
    });
    if (flight.replies.size < flight.job.calls.length) return;
    this.endFlight();
    const replies = [...flight.replies.values()].sort((a, b) => a.rank - b.rank);
    flight.job.resolve(flight.job.options.traced ? this.clocks.align(replies) : replies);
    this.pump();
  }

  /** A rank's call failed; the caller's error already names the rank (`describe` in enter). */
  private onRankError(flight: Flight, error: SeqparError): void {
    if (this.flight !== flight) return;
    // A peer failure seen by a worker: our own heartbeat verdict names the rank at fault, so wait for it briefly.
    if (!PEER_CODES.has(error.code)) this.fail(error);
    else flight.grace ??= setTimeout(() => this.flight === flight && this.fail(error), this.options.healthTimeoutMs);
  }

  private onLost(rank: number, error: SeqparError, epoch: number): void {
    if (epoch !== this.epoch || this.closed) return;
    this.options.log.warn({ lost: rank, code: error.code, reason: error.message }, 'worker lost');
    this.lostRanks.add(rank);
    const code = error.code === 'ERR_TIMEOUT' ? 'ERR_TIMEOUT' : 'ERR_PEER_LOST';
    const id = this.flight ? `request ${this.flight.id}` : 'idle';
    this.fail(new SeqparError(code, `rank ${rank} was lost (${id}): ${error.message}`));
  }

  private expire(job: RequestJob, error: SeqparError): void {
    if (this.queue.remove(job)) return job.reject(error);
    if (this.batch?.has(job)) return this.batch.cancel(job, error); // frees its session only
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
    this.batch?.failAll(error);
    this.batch = undefined;
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
      old.caller.failAll(new SeqparError('ERR_CLOSED', 'the world was reset'));
      await this.tellWorkers(old, 'reset');
      await old.transport.close();
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
  private async tellWorkers(world: World, kind: 'reset' | 'shutdown'): Promise<void> {
    const sends = Array.from({ length: this.workers }, (_, rank) => world.caller.notify(rank, { kind }).catch(() => undefined));
    await Promise.race([Promise.all(sends), new Promise((resolve) => setTimeout(resolve, this.options.healthTimeoutMs).unref())]);
  }
}

/** A generation that can join a batch: not traced, no prompt logits wanted (those run as one request of their own). */
function batchable(job: RequestJob): boolean {
  return job.op === 'generate' && job.options.traced !== true && job.calls[0]?.args.allLogits !== true;
}
