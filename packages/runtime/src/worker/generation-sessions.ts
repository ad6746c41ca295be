import { SeqparError, type BlockAttentionKernel } from '@seqpar/core';
import { AttentionKernel, withComputePriority } from '@seqpar/kernels';
import { RankSession, type SessionOptions } from '@seqpar/model';
import { decodeBurst, type BurstRow } from './decode-burst.js';
import { models, type GenerateArgs } from './generate-op.js';
import type { WorkerOp } from './worker-ops.js';

/** What the coordinator's generation batch (coordinator/generation-batch.ts) tells each rank of a session at its start. */
export interface SessionPrefillArgs extends SessionOptions, Pick<GenerateArgs, 'modelDir' | 'prefillChunk'> {
  readonly session: number;
  /** Tokens that end the session (its EOS ids, none where EOS is ignored): a burst drops its row there. */
  readonly stop?: readonly number[];
}

/**
 * One row of a step as the coordinator sends it: the session, its last token, that token's position and the
 * tokens the session may still sample.
 */
export type StepRow = readonly [session: number, token: number, position: number, budget: number];

export interface SessionStepArgs {
  readonly rows: readonly StepRow[];
  /** Decode steps to run back to back (a burst, decode-burst.ts). */
  readonly steps: number;
  /** Sessions ended since the last call to this rank: freed before the step. */
  readonly release?: readonly number[];
}

interface Held {
  readonly session: RankSession;
  readonly stop: ReadonlySet<number>;
  /** Gives the model back to the cache (it stays loaded while a session uses it). */
  readonly done: () => void;
}

/**
 * Sessions a worker holds between calls, per rank (an in-process cluster runs every rank in one process; each
 * rank has its own kernel). A world reset frees them all.
 */
const stores = new WeakMap<BlockAttentionKernel, Map<number, Held>>();

const storeOf = (kernel: BlockAttentionKernel): Map<number, Held> => {
  let store = stores.get(kernel);
  if (!store) stores.set(kernel, (store = new Map()));
  return store;
};

/**
 * Compute priorities (compute-priority.ts): decode steps and releases first, then prefills, shorter prompts
 * first, so a short request's prefill and the running batch's steps pass a long prefill's queued pieces.
 */
const STEP_PRIORITY = 0;
const prefillPriority = (promptLength: number) => 1 + promptLength;

/**
 * Prefill of a new session on this rank (one of the session's ranks: the call's members). The session's KV
 * shares and sampling stream stay here until released; the rank holding the last prompt position replies with
 * the first token. Tensors: [prompt ids as float32].
 */
export const sessionPrefillOp: WorkerOp = async (ctx, { args, tensors }, emit) => {
  const options = args as unknown as SessionPrefillArgs;
  const prompt = tensors[0];
  if (!prompt || typeof options.modelDir !== 'string' || !Number.isInteger(options.session))
    throw new SeqparError('ERR_BAD_FRAME', 'session.prefill needs a session id, a model directory and the prompt');
  const kernel = ctx.kernel;
  if (!(kernel instanceof AttentionKernel)) throw new SeqparError('ERR_INTERNAL', 'a session needs an ONNX Runtime kernel to share its compute thread');
  const store = storeOf(kernel);
  if (store.has(options.session)) throw new SeqparError('ERR_INTERNAL', `session ${options.session} already exists on this rank`);
  const ids = Int32Array.from(prompt.data);
  const onLayer = ctx.rank === 0 ? (layer: number) => emit({ layer }) : undefined;
  // The model stays in use (loaded) from the prefill to the release: a `use` that ends when the session does.
  let done!: () => void;
  const released = new Promise<void>((resolve) => (done = resolve));
  const started = await new Promise<{ session: RankSession; token?: number }>((resolve, reject) => {
    models
      .use(
        options.modelDir,
        kernel.thread,
        async (model) => {
          const result = await withComputePriority(prefillPriority(ids.length), () => RankSession.prefill(ctx, model, ids, options, onLayer), options.prefillChunk).catch(
            (error: unknown) => {
              reject(error);
              throw error;
            },
          );
          resolve(result);
          await released;
        },
        ctx.recorder,
      )
      .catch(reject);
  });
  // A session cancelled while it prefilled is gone before its release can reach it: free it here.
  if (ctx.signal?.aborted) {
    done();
    await withComputePriority(STEP_PRIORITY, () => started.session.release());
    throw new SeqparError('ERR_ABORTED', `session ${options.session} was cancelled during its prefill`);
  }
  store.set(options.session, { session: started.session, stop: new Set(options.stop ?? []), done });
  return { header: { kvCacheMb: started.session.kvCacheMb, ...(started.token === undefined ? {} : { token: started.token }) }, tensors: [] };
};

/**
 * A burst of up to `steps` decode steps (decode-burst.ts) of every session this rank holds among `rows` (in the
 * coordinator's order, the same on every rank), each step as one batch (batched-decode.ts), after freeing the
 * sessions in `release`. Each step's tokens sampled here stream back as partial replies; the reply says how many
 * steps ran.
 */
export const sessionStepOp: WorkerOp = async (ctx, { args }, emit) => {
  const { rows, steps, release } = args as unknown as SessionStepArgs;
  if (!Array.isArray(rows) || !Number.isInteger(steps) || steps < 1) throw new SeqparError('ERR_BAD_FRAME', 'session.step needs its rows and a number of steps');
  const store = storeOf(ctx.kernel);
  if (Array.isArray(release)) await withComputePriority(STEP_PRIORITY, () => releaseSessions(ctx.kernel, release));
  const mine: BurstRow[] = [];
  for (const [id, token, position, budget] of rows) {
    const held = store.get(id);
    if (held) mine.push({ id, session: held.session, stop: held.stop, token, position, budget });
  }
  return { header: { steps: await decodeBurst(ctx, mine, steps, STEP_PRIORITY, emit) }, tensors: [] };
};

/** Frees the sessions `ids` (their KV shares) on this rank; ids it does not hold are skipped. */
export const sessionReleaseOp: WorkerOp = async (ctx, { args }) => {
  const ids = Array.isArray(args.ids) ? (args.ids as number[]) : [];
  await withComputePriority(STEP_PRIORITY, () => releaseSessions(ctx.kernel, ids));
  return { header: {}, tensors: [] };
};

/** Frees every session of the rank with `kernel` (a world reset). */
export async function releaseAllSessions(kernel: BlockAttentionKernel): Promise<void> {
  await releaseSessions(kernel, [...storeOf(kernel).keys()]);
}

async function releaseSessions(kernel: BlockAttentionKernel, ids: readonly number[]): Promise<void> {
  const store = storeOf(kernel);
  const held = ids.flatMap((id) => {
    const entry = store.get(id);
    store.delete(id);
    return entry ? [entry] : [];
  });
  await Promise.all(
    held.map(async ({ session, done }) => {
      await session.release();
      done();
    }),
  );
}
