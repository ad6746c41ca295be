import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { buildAttentionGraph } from './attention-graph.js';
import type { AttendRequest, KernelReply, KernelWorkerData } from './kernel-protocol.js';
import { sessionOptions } from './session-options.js';

/**
 * The compute thread of an AttentionKernel. onnxruntime-node's `run` blocks its thread for the whole kernel, so it
 * runs here and the owner's event loop stays free for transport I/O. Sessions are cached per shape and mask.
 */
const { options } = workerData as KernelWorkerData;
ort.env.logLevel = 'fatal';
const sessions = new Map<string, Promise<ort.InferenceSession>>();
const MAX_SESSIONS = 64;

function sessionFor(shape: AttendRequest['shape']): Promise<ort.InferenceSession> {
  const key = `${shape.mask}:${shape.sq}:${shape.sk}:${shape.hq}:${shape.hkv}:${shape.d}`;
  let session = sessions.get(key);
  if (!session) {
    if (sessions.size >= MAX_SESSIONS) {
      const [oldest] = sessions.keys();
      void sessions.get(oldest!)!.then((s) => s.release());
      sessions.delete(oldest!);
    }
    session = ort.InferenceSession.create(buildAttentionGraph(shape), sessionOptions(options));
    sessions.set(key, session);
  }
  return session;
}

async function attend(request: AttendRequest): Promise<KernelReply> {
  const { sq, sk, hq, hkv, d, mask } = request.shape;
  const session = await sessionFor(request.shape);
  const feeds: Record<string, ort.Tensor> = {
    q: new ort.Tensor('float32', request.q, [sq, hq, d]),
    k: new ort.Tensor('float32', request.k, [sk, hkv, d]),
    v: new ort.Tensor('float32', request.v, [sk, hkv, d]),
  };
  if (mask === 'positions') {
    feeds['q_pos'] = new ort.Tensor('int32', request.queryPositions!, [sq]);
    feeds['k_pos'] = new ort.Tensor('int32', request.keyPositions!, [sk]);
  }
  const results = await session.run(feeds);
  return { id: request.id, ok: true, out: results['out']!.data as Float32Array, lse: results['lse']!.data as Float32Array };
}

parentPort!.on('message', (request: AttendRequest | 'probe') => {
  if (request === 'probe') {
    // Creating one tiny session proves the execution provider loads.
    sessionFor({ sq: 1, sk: 1, hq: 1, hkv: 1, d: 1, mask: 'none' }).then(
      () => parentPort!.postMessage({ id: -1, ok: true, out: new Float32Array(0), lse: new Float32Array(0) }),
      (error: Error) => parentPort!.postMessage({ id: -1, ok: false, code: 'ERR_DEVICE_UNAVAILABLE', message: error.message }),
    );
    return;
  }
  attend(request).then(
    (reply) => parentPort!.postMessage(reply, reply.ok ? [reply.out.buffer as ArrayBuffer, reply.lse.buffer as ArrayBuffer] : []),
    (error: Error) => parentPort!.postMessage({ id: request.id, ok: false, code: 'ERR_KERNEL', message: error.message } satisfies KernelReply),
  );
});
