import { RankRecorder, SeqparError, UsageError, type BlockAttentionKernel } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';
import type { Logger } from '../logger.js';
import { serveCalls, type CallResult, type CallScope, type IncomingCall, type ServeOutcome } from '../rpc/rpc-server.js';
import { answerClockPings } from './clock-sync.js';
import { ResultMemory } from './result-memory.js';
import { releaseAllSessions } from './generation-sessions.js';
import { SubgroupTransport } from './subgroup-transport.js';
import { OP_TRAITS, WORKER_OPS } from './worker-ops.js';

export interface WorkerLoopOptions {
  readonly rank: number;
  /** Workers in the cluster; the coordinator is rank `workers` of every world. */
  readonly workers: number;
  readonly kernel: BlockAttentionKernel;
  /** Joins the next world (a fresh transport group with the coordinator and every worker), within `timeoutMs` if given. */
  readonly join: (timeoutMs?: number) => Promise<Transport>;
  readonly log: Logger;
  /** Stops serving: the current world is closed and the loop returns. */
  readonly signal?: AbortSignal;
  /** After losing the coordinator, keep trying to rejoin this long before giving up. Default 30 s. */
  readonly rejoinTimeoutMs?: number;
}

/**
 * One worker's life: join a world, serve calls from the coordinator until it says reset (a request failed or was
 * cancelled somewhere: drop everything, since frames of a dropped request may still sit in queues) or shutdown,
 * then join the next world. The first join failing is fatal (e.g. a wrong token); later ones are retried while
 * the coordinator may still come back.
 */
export async function serveWorker(options: WorkerLoopOptions): Promise<void> {
  const rejoinTimeoutMs = options.rejoinTimeoutMs ?? 30_000;
  // Set when a world ends (reset or lost): every join attempt until the next world shares what is left of the
  // rejoin bound, so a coordinator that went away is given up on after that long, whatever the connect timeout.
  let lostAt: number | undefined;
  for (let first = true; !options.signal?.aborted; first = false) {
    let world: Transport;
    try {
      world = await options.join(lostAt === undefined ? undefined : Math.max(1, lostAt + rejoinTimeoutMs - Date.now()));
    } catch (error) {
      if (first || options.signal?.aborted) throw error;
      lostAt ??= Date.now();
      if (Date.now() - lostAt >= rejoinTimeoutMs) {
        throw new SeqparError('ERR_PEER_LOST', `rank ${options.rank}: the coordinator did not come back within ${rejoinTimeoutMs} ms: ${(error as Error).message}`, {
          cause: error,
        });
      }
      options.log.warn({ code: (error as SeqparError).code, reason: (error as Error).message }, 'rejoin failed, retrying');
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    lostAt = undefined;
    options.log.info('joined the cluster');
    const outcome = await serveWorld(world, options);
    await releaseAllSessions(options.kernel); // a reset drops every generation session this rank held
    await world.close();
    options.log.info({ outcome }, 'left the world');
    if (outcome === 'shutdown') return;
    lostAt = Date.now();
  }
}

function serveWorld(world: Transport, options: WorkerLoopOptions): Promise<ServeOutcome> {
  void answerClockPings(world, options.workers, options.signal); // ends when the world closes
  const resultMemory = new ResultMemory();
  return serveCalls(world, options.workers, (call, scope) => runOp(world, call, scope, resultMemory, options), {
    log: options.log,
    lendsTensors: (op, args) => OP_TRAITS[op]?.inPlaceInputs?.(args) ?? [],
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * One rank's part of a request: the op runs over a transport limited to the request's ranks, with tags of its
 * own (a dropped request's frames can never be taken for the next one's).
 */
async function runOp(world: Transport, call: IncomingCall, scope: CallScope, resultMemory: ResultMemory, options: WorkerLoopOptions): Promise<CallResult> {
  const op = WORKER_OPS[call.op];
  if (!op) throw new UsageError(`unknown operation '${call.op}'`);
  const { flight, degree, traced, members } = call.args;
  if (!Number.isInteger(flight) || !Number.isInteger(degree) || (degree as number) < 1 || (degree as number) > options.workers) {
    throw new SeqparError('ERR_BAD_FRAME', `call ${call.id} lacks a valid flight and degree`);
  }
  const ranks = Array.isArray(members) ? members.map(Number) : Array.from({ length: degree as number }, (_, rank) => rank);
  if (ranks.length !== degree) throw new SeqparError('ERR_BAD_FRAME', `call ${call.id} names ${ranks.length} members for degree ${String(degree)}`);
  const transport = new SubgroupTransport(world, ranks);
  const recorder = new RankRecorder(options.rank, traced === true, OP_TRAITS[call.op]?.measured ?? true);
  const ctx = {
    rank: transport.rank,
    worldSize: transport.worldSize,
    transport,
    kernel: options.kernel,
    recorder,
    tagPrefix: `r${String(flight)}/`,
    timeoutMs: scope.timeoutMs,
    signal: scope.signal,
    resultMemory,
  };
  const reply = await op(ctx, { args: call.args, tensors: call.tensors }, scope.emit);
  return {
    header: reply.header,
    tensors: reply.tensors,
    stats: recorder.stats(transport.stats()),
    ...(traced === true ? { spans: recorder.spans } : {}),
    ...(reply.sent ? { sent: reply.sent } : {}),
  };
}
