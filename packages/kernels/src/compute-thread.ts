import { Worker } from 'node:worker_threads';
import { runnableEntry, SeqparError, threadExecArgv } from '@seqpar/core';
import { BufferPool } from './buffer-pool.js';
import { computePriority } from './compute-priority.js';
import { GraphBuilder } from './graph-builder.js';
import type { ChainFeed, ChainStep, ComputeReply, ComputeRequest, ComputeWorkerData, Feed, ResidentLayout, WireTensor } from './compute-protocol.js';
import { CUDA_INSTALL_HINT, FAST_SESSION_MEMORY, type ExecutionOptions, type SessionMemory } from './session-options.js';

type RequestBody = ComputeRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/**
 * One device's compute: a worker thread that owns ONNX Runtime sessions (loaded by key) and runs them in the
 * order asked. Feeds are copied into pooled buffers and transferred, so callers keep their arrays; outputs come
 * back transferred. Tensors that every run would otherwise copy again (a KV cache share) can stay resident on the
 * thread: `writeRows` sends only new rows, and a run names them as feeds. Requests run in the order sent, so a
 * run sent after a write sees it (at one priority: compute-priority.ts). The attention kernel and the model's layer graphs of a rank share one thread.
 */
export class ComputeThread {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: ComputeReply) => void; reject: (error: Error) => void }>();
  private readonly loaded = new Map<string, Promise<void>>();
  private readonly feedBuffers = new BufferPool(FEED_POOL_BYTES);
  private failure: SeqparError | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly options: ExecutionOptions,
  ) {
    worker.on('message', (reply: ComputeReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    worker.on('error', (error) => this.fail(new SeqparError('ERR_KERNEL', `compute thread crashed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.fail(new SeqparError('ERR_CLOSED', `compute thread exited (code ${code})`)));
  }

  /** Starts the thread and proves the execution provider loads (a missing CUDA provider fails here). */
  static async start(options: ExecutionOptions = {}): Promise<ComputeThread> {
    // ONNX Runtime's Linux build starts a telemetry client that writes every session's events to a SQLite store
    // under ~/.cache/Microsoft and leaves a /tmp/mat-debug-<pid>.log per process: disk that grows with every request
    // length a server sees. It reads this variable from the real environment, which the main thread sets (a worker
    // thread's process.env is its own copy). A user who sets it keeps their choice.
    process.env.ORT_DISABLE_TELEMETRY ??= '1';
    const workerData: ComputeWorkerData = { options };
    const worker = new Worker(runnableEntry(import.meta.url, 'compute-worker'), { workerData, execArgv: threadExecArgv() });
    const thread = new ComputeThread(worker, options);
    try {
      await thread.load('probe', probeModel);
    } catch (error) {
      await thread.close();
      const hint = options.device === 'cuda' ? CUDA_INSTALL_HINT : 'ONNX Runtime could not create a session';
      throw new SeqparError('ERR_DEVICE_UNAVAILABLE', `device ${options.device ?? 'cpu'}:${options.deviceIndex ?? 0} is unavailable (${(error as Error).message}). ${hint}`);
    }
    return thread;
  }

  /**
   * Loads the model under `key` once; `build` runs only the first time a key is seen. `memory` says how its session
   * holds its working memory (session-options.ts).
   */
  load(key: string, build: () => Uint8Array, memory: SessionMemory = FAST_SESSION_MEMORY): Promise<void> {
    let loading = this.loaded.get(key);
    if (!loading) {
      const model = build();
      loading = this.request({ kind: 'load', key, model, memory }, [model.buffer as ArrayBuffer]).then(() => undefined);
      loading.catch(() => this.loaded.delete(key));
      this.loaded.set(key, loading);
    }
    return loading;
  }

  /** Releases the session loaded under `key` (its memory goes back); a later `load` of it builds it again. */
  async unload(key: string): Promise<void> {
    if (!this.loaded.delete(key)) return;
    await this.request({ kind: 'unload', key }, []);
  }

  async run(key: string, feeds: Record<string, Feed>): Promise<Record<string, Float32Array>> {
    return this.chain([{ run: key, feeds }]);
  }

  /** Writes `rows` [t, groups, width] into the resident tensor `name` from row `at`, creating or growing it to `layout`. */
  async writeRows(name: string, layout: ResidentLayout, at: number, rows: WireTensor): Promise<void> {
    await this.chain([{ write: name, layout, at, rows }]);
  }

  /**
   * Runs `steps` in order on the thread in one round trip (feeds may name earlier steps' outputs) and returns
   * every run step's outputs by name (a later output of the same name wins).
   */
  async chain(steps: readonly ChainStep[]): Promise<Record<string, Float32Array>> {
    const transfer: ArrayBuffer[] = [];
    const send = <F extends ChainFeed>(feed: F): F => {
      if (!('data' in feed)) return feed;
      const copy = this.copy(feed);
      transfer.push(copy.data.buffer as ArrayBuffer);
      return copy as F;
    };
    const sent = steps.map((step): ChainStep =>
      'exchange' in step
        ? step
        : 'write' in step
          ? { ...step, rows: send(step.rows) }
          : { ...step, feeds: Object.fromEntries(Object.entries(step.feeds).map(([name, feed]) => [name, send(feed)])) },
    );
    const reply = await this.request({ kind: 'chain', steps: sent, priority: computePriority() }, transfer);
    for (const buffer of reply.spentFeeds) this.feedBuffers.give(buffer);
    return reply.outputs;
  }

  async drop(name: string): Promise<void> {
    await this.request({ kind: 'drop', name, priority: computePriority() }, []);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Terminating the thread in the middle of a native call (a run, a session's creation or release) can abort
      // the whole process from ONNX Runtime's side, so the thread first finishes what it has and releases its
      // sessions; the bound keeps a stuck call from holding up the close.
      if (!this.failure) await Promise.race([this.request({ kind: 'close' }, []).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref())]);
      this.fail(new SeqparError('ERR_CLOSED', 'compute thread closed'));
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private copy(t: WireTensor): WireTensor {
    return { type: t.type, data: copyInto(this.feedBuffers.take(t.data.byteLength), t.data), dims: t.dims };
  }

  private async request(body: RequestBody, transfer: ArrayBuffer[]): Promise<Extract<ComputeReply, { ok: true }>> {
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const reply = await new Promise<ComputeReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
    if (!reply.ok) throw new SeqparError(reply.code, reply.message);
    return reply;
  }

  private fail(error: SeqparError): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** How long a close waits for the thread to finish its calls and release its sessions. */
const CLOSE_GRACE_MS = 5000;

/**
 * Bytes of returned feed buffers kept for reuse: a few calls' q, k and v pieces and row tiles (~0.5-8 MB each).
 * It was 128 MB, which a 16k-token prefill on 2 ranks filled: 30 MB of each worker's peak.
 */
const FEED_POOL_BYTES = 32 * 2 ** 20;

function copyInto(buffer: ArrayBuffer, source: WireTensor['data']): WireTensor['data'] {
  new Uint8Array(buffer).set(new Uint8Array(source.buffer, source.byteOffset, source.byteLength));
  const View = source.constructor as new (buffer: ArrayBuffer) => WireTensor['data'];
  return new View(buffer);
}

/** The smallest model there is, y = Identity(x), to check that sessions can be created on the device at all. */
function probeModel(): Uint8Array {
  const g = new GraphBuilder('probe');
  g.op('Identity', [g.input('x', 'float', [1])], {}, { outputName: 'y' });
  g.output('y', 'float', [1]);
  return g.toModelBytes();
}
