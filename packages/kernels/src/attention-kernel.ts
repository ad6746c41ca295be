import { Worker } from 'node:worker_threads';
import {
  attentionShape,
  compiledExecArgv,
  MASKED_SCORE,
  runnableEntry,
  SeqparError,
  type BlockAttentionKernel,
  type MaskSpec,
  type PartialAttention,
  type Tensor,
} from '@seqpar/core';
import type { AttendRequest, KernelReply, KernelWorkerData } from './kernel-protocol.js';
import { CUDA_INSTALL_HINT, type ExecutionOptions } from './session-options.js';

/**
 * Block attention with LSE on ONNX Runtime, computed on a worker thread of its own. Inputs are copied into fresh
 * buffers that are transferred to the thread, so callers keep (and may forward) their tensors; outputs come back
 * transferred. Calls queue on the thread in order.
 */
export class AttentionKernel implements BlockAttentionKernel {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: KernelReply) => void; reject: (error: Error) => void }>();
  private failure: SeqparError | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: KernelReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    worker.on('error', (error) => this.fail(new SeqparError('ERR_KERNEL', `kernel thread crashed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.fail(new SeqparError('ERR_CLOSED', `kernel thread exited (code ${code})`)));
  }

  /** Starts the compute thread and checks that the execution provider loads (CUDA fails here when missing). */
  static async create(options: ExecutionOptions = {}): Promise<AttentionKernel> {
    const workerData: KernelWorkerData = { options };
    const worker = new Worker(runnableEntry(import.meta.url, 'kernel-worker'), { workerData, execArgv: compiledExecArgv() });
    const kernel = new AttentionKernel(worker);
    const probe = await kernel.request(-1, 'probe');
    if (!probe.ok) {
      await kernel.close();
      const hint = options.device === 'cuda' ? CUDA_INSTALL_HINT : 'ONNX Runtime could not create a session';
      throw new SeqparError('ERR_DEVICE_UNAVAILABLE', `device ${options.device ?? 'cpu'}:${options.deviceIndex ?? 0} is unavailable (${probe.message}). ${hint}`);
    }
    return kernel;
  }

  async attend(q: Tensor, k: Tensor, v: Tensor, mask: MaskSpec): Promise<PartialAttention> {
    const { sq, sk, hq, hkv, d } = attentionShape(q, k, v);
    if (mask.kind === 'positions' && (mask.queryPositions.length !== sq || mask.keyPositions.length !== sk)) {
      throw new SeqparError('ERR_SHAPE_MISMATCH', `positions mask has ${mask.queryPositions.length} query and ${mask.keyPositions.length} key positions for a ${sq}x${sk} block`, { exitCode: 2 });
    }
    if (sq === 0 || sk === 0) return emptyResult(sq, hq, d);
    const id = this.nextId++;
    const request: AttendRequest = {
      id,
      shape: { sq, sk, hq, hkv, d, mask: mask.kind },
      q: q.data.slice(),
      k: k.data.slice(),
      v: v.data.slice(),
      ...(mask.kind === 'positions' ? { queryPositions: mask.queryPositions.slice(), keyPositions: mask.keyPositions.slice() } : {}),
    };
    const transfer = [request.q.buffer, request.k.buffer, request.v.buffer, ...(request.queryPositions ? [request.queryPositions.buffer, request.keyPositions!.buffer] : [])];
    const reply = await this.request(id, request, transfer as ArrayBuffer[]);
    if (!reply.ok) throw new SeqparError(reply.code === 'ERR_KERNEL' ? 'ERR_KERNEL' : 'ERR_DEVICE_UNAVAILABLE', reply.message);
    return { out: { data: reply.out, shape: [sq, hq, d] }, lse: { data: reply.lse, shape: [hq, sq] } };
  }

  async close(): Promise<void> {
    this.fail(new SeqparError('ERR_CLOSED', 'kernel closed'));
    await this.worker.terminate();
  }

  private request(id: number, message: AttendRequest | 'probe', transfer: ArrayBuffer[] = []): Promise<KernelReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }

  private fail(error: SeqparError): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** A block with no queries or no keys: nothing to compute, every lse masked. */
function emptyResult(sq: number, hq: number, d: number): PartialAttention {
  return { out: { data: new Float32Array(sq * hq * d), shape: [sq, hq, d] }, lse: { data: new Float32Array(hq * sq).fill(MASKED_SCORE), shape: [hq, sq] } };
}

export function createAttentionKernel(options: ExecutionOptions = {}): Promise<AttentionKernel> {
  return AttentionKernel.create(options);
}
