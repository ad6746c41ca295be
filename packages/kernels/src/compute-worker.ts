import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { ComputeReply, ComputeRequest, ComputeWorkerData, Feed, WireTensor } from './compute-protocol.js';
import { ResidentTensors } from './resident-tensors.js';
import { sessionOptions } from './session-options.js';

/**
 * A ComputeThread's worker: holds ONNX Runtime sessions by key and runs them. onnxruntime-node's `run` blocks its
 * thread for the whole computation, so it happens here and the owner's event loop stays free for transport I/O.
 */
const { options } = workerData as ComputeWorkerData;
ort.env.logLevel = 'fatal';
const sessions = new Map<string, ort.InferenceSession>();
const residents = new ResidentTensors();
const isWire = (feed: Feed): feed is WireTensor => 'data' in feed;

async function handle(request: ComputeRequest): Promise<Record<string, Float32Array>> {
  switch (request.kind) {
    case 'load':
      if (!sessions.has(request.key)) sessions.set(request.key, await ort.InferenceSession.create(request.model, sessionOptions(options)));
      return {};
    case 'unload':
      await sessions.get(request.key)?.release();
      sessions.delete(request.key);
      return {};
    case 'write-rows':
      residents.writeRows(request.name, request.layout, request.at, request.rows);
      return {};
    case 'drop':
      residents.drop(request.name);
      return {};
    case 'run': {
      const session = sessions.get(request.key);
      if (!session) throw new Error(`no session '${request.key}' is loaded`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(request.feeds)) {
        // A resident tensor is wrapped in place: ORT reads the thread's own buffer, nothing is copied.
        feeds[name] = isWire(t) ? new ort.Tensor(t.type, t.data, t.dims) : new ort.Tensor(residents.feed(t.resident, t.dims), t.dims);
      }
      const results = await session.run(feeds);
      return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, t.data as Float32Array]));
    }
  }
}

parentPort!.on('message', (request: ComputeRequest) => {
  handle(request).then(
    (outputs) => {
      // Feed buffers go back too, so the owner refills warm pages next time instead of faulting in fresh ones.
      const wires = request.kind === 'run' ? Object.values(request.feeds).filter(isWire) : request.kind === 'write-rows' ? [request.rows] : [];
      const spentFeeds = wires.map((t) => t.data.buffer as ArrayBuffer);
      const reply: ComputeReply = { id: request.id, ok: true, outputs, spentFeeds };
      parentPort!.postMessage(reply, [...Object.values(outputs).map((data) => data.buffer as ArrayBuffer), ...spentFeeds]);
    },
    (error: Error) => {
      const code = request.kind === 'load' && /provider|CUDA|shared library/i.test(error.message) ? 'ERR_DEVICE_UNAVAILABLE' : 'ERR_KERNEL';
      parentPort!.postMessage({ id: request.id, ok: false, code, message: error.message } satisfies ComputeReply);
    },
  );
});
