import { RankRecorder, SeqparError, UsageError, type BlockAttentionKernel } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import { answerClockPings } from './clock-sync.js';
import { CONTROL_POLL_MS, DOWN_DATA_TAG, DOWN_TAG, UP_DATA_TAG, UP_TAG, type DownMessage } from '../rpc/control-messages.js';
import type { Logger } from '../logger.js';
import { SubgroupTransport } from './subgroup-transport.js';
import { receiveTensors, sendTensors } from '../rpc/tensor-payload.js';
import { WORKER_OPS } from './worker-ops.js';

export interface WorkerLoopOptions {
  readonly rank: number;
  /** Workers in the cluster; the coordinator is rank `workers` of every world. */
  readonly workers: number;
  readonly kernel: BlockAttentionKernel;
  /** Joins the next world (a fresh transport group with the coordinator and every worker). */
  readonly join: () => Promise<Transport>;
  readonly log: Logger;
  /** Stops serving: the current world is closed and the loop returns. */
  readonly signal?: AbortSignal;
  /** After losing the coordinator, keep trying to rejoin this long before giving up. Default 30 s. */
  readonly rejoinTimeoutMs?: number;
}

type WorldOutcome = 'reset' | 'shutdown' | 'lost';

/**
 * One worker's life: join a world, serve calls from the coordinator until it says reset (a request failed or was
 * cancelled somewhere: drop everything, since frames of a dropped request may still sit in queues) or shutdown,
 * then join the next world. The first join failing is fatal (e.g. a wrong token); later ones are retried while
 * the coordinator may still come back.
 */
export async function serveWorker(options: WorkerLoopOptions): Promise<void> {
  let lostSince: number | undefined;
  for (let first = true; !options.signal?.aborted; first = false) {
    let world: Transport;
    try {
      world = await options.join();
    } catch (error) {
      if (first || options.signal?.aborted) throw error;
      lostSince ??= Date.now();
      if (Date.now() - lostSince > (options.rejoinTimeoutMs ?? 30_000)) {
        throw new SeqparError('ERR_PEER_LOST', `rank ${options.rank}: the coordinator did not come back: ${(error as Error).message}`, { cause: error });
      }
      options.log.warn({ err: error }, 'rejoin failed, retrying');
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    lostSince = undefined;
    options.log.info('joined the cluster');
    const outcome = await serveWorld(world, options);
    await world.close();
    options.log.info({ outcome }, 'left the world');
    if (outcome === 'shutdown') return;
  }
}

async function serveWorld(world: Transport, options: WorkerLoopOptions): Promise<WorldOutcome> {
  const active = new Map<number, { controller: AbortController; done: Promise<void> }>();
  void answerClockPings(world, options.workers, options.signal); // ends when the world closes
  try {
    for (;;) {
      let frame: Frame;
      try {
        frame = await world.recv(options.workers, DOWN_TAG, { timeoutMs: CONTROL_POLL_MS, ...(options.signal ? { signal: options.signal } : {}) });
      } catch (error) {
        if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
        if (options.signal?.aborted) return 'shutdown';
        options.log.warn({ err: error }, 'lost the coordinator');
        return 'lost';
      }
      const message = frame.header as DownMessage;
      if (message.kind !== 'call') return message.kind === 'shutdown' ? 'shutdown' : 'reset';
      const controller = new AbortController();
      const done = runCall(world, message, controller.signal, options).finally(() => active.delete(message.id));
      active.set(message.id, { controller, done });
    }
  } finally {
    // Dropped requests unwind at their next receive; a kernel call already running finishes first (the
    // kernel thread must not be torn down mid-run), then their buffers are garbage.
    for (const call of active.values()) call.controller.abort();
    await Promise.all([...active.values()].map((call) => call.done));
  }
}

async function runCall(world: Transport, call: Extract<DownMessage, { kind: 'call' }>, signal: AbortSignal, options: WorkerLoopOptions): Promise<void> {
  const coordinator = options.workers;
  try {
    const tensors = await receiveTensors(world, coordinator, DOWN_DATA_TAG, call, { timeoutMs: call.timeoutMs, signal });
    const op = WORKER_OPS[call.op];
    if (!op) throw new UsageError(`unknown operation '${call.op}'`);
    const transport = new SubgroupTransport(world, call.degree);
    const recorder = new RankRecorder(options.rank, call.traced);
    const ctx = { rank: options.rank, worldSize: call.degree, transport, kernel: options.kernel, recorder, tagPrefix: `r${call.id}/`, timeoutMs: call.timeoutMs, signal };
    // Partial replies go out in order, all before the result; a failed send surfaces with the result's send.
    let partials = Promise.resolve();
    const emit = (header: Record<string, unknown>) => {
      partials = partials.then(() => world.send(coordinator, UP_TAG, { kind: 'partial', id: call.id, header })).catch(() => undefined);
    };
    const reply = await op(ctx, { args: call.args, tensors }, emit);
    await partials;
    const stats = recorder.stats(transport.stats());
    const header = { kind: 'result', id: call.id, header: reply.header, stats, ...(call.traced ? { spans: recorder.spans } : {}) };
    await sendTensors(world, coordinator, UP_TAG, UP_DATA_TAG, header, reply.tensors);
  } catch (error) {
    if (signal.aborted) return; // dropped by a reset: nobody waits for this answer
    const { code = 'ERR_INTERNAL', message } = error as SeqparError;
    options.log.warn({ err: error, request: call.id }, 'request failed');
    await world.send(coordinator, UP_TAG, { kind: 'error', id: call.id, code, message }).catch(() => undefined);
  }
}
