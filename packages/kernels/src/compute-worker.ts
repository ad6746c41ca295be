import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { isSeqparError } from '@seqpar/core';
import type { ChainFeed, ChainStep, ComputeReply, ComputeRequest, ComputeWorkerData, OutputFeed, WireTensor } from './compute-protocol.js';
import { ComputeQueue } from './compute-queue.js';
import { exchangePartials } from './lane-exchange.js';
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
const isWire = (feed: ChainFeed): feed is WireTensor => 'data' in feed;
const isOutput = (feed: ChainFeed): feed is OutputFeed => 'output' in feed;

async function handle(request: ComputeRequest): Promise<Record<string, Float32Array>> {
  switch (request.kind) {
    case 'load':
      if (!sessions.has(request.key)) sessions.set(request.key, await ort.InferenceSession.create(request.model, sessionOptions(options, request.memory)));
      return {};
    case 'unload': {
      // Out of the map before releasing, so a load of the same key queued behind this builds a fresh session.
      const session = sessions.get(request.key);
      sessions.delete(request.key);
      await session?.release();
      return {};
    }
    case 'drop':
      residents.drop(request.name);
      return {};
    case 'chain':
      return runChain(request.steps);
    case 'close':
      await closeAll();
      return {};
  }
}

/** Requests being handled: a close waits for them, so nothing native is cut off mid-call. */
const inflight = new Set<Promise<unknown>>();

/** Lets every request in flight finish, then releases every session, before the owner terminates this thread. */
async function closeAll(): Promise<void> {
  await Promise.allSettled([...inflight]);
  const open = [...sessions.values()];
  sessions.clear();
  await Promise.allSettled(open.map((session) => session.release()));
}

/** Runs the steps in order; a step's feeds may be outputs of earlier steps. Returns every run step's outputs. */
async function runChain(steps: readonly ChainStep[]): Promise<Record<string, Float32Array>> {
  const outputs = new Map<string, ort.Tensor>();
  const produced = (feed: OutputFeed): ort.Tensor => {
    const tensor = outputs.get(feed.output);
    if (!tensor) throw new Error(`no earlier step of the chain produced '${feed.output}'`);
    return feed.rows ? rowsOf(tensor, feed.rows) : tensor;
  };
  for (const step of steps) {
    if ('exchange' in step) {
      const [out, lse] = [produced({ output: 'out' }), produced({ output: 'lse' })];
      exchangePartials(step.exchange, out.data as Float32Array, lse.data as Float32Array, out.dims[1]!, out.dims[2]!);
      continue;
    }
    if ('write' in step) {
      const rows = isOutput(step.rows) ? asWire(produced(step.rows)) : step.rows;
      residents.writeRows(step.write, step.layout, step.at, rows);
      continue;
    }
    const session = sessions.get(step.run);
    if (!session) throw new Error(`no session '${step.run}' is loaded`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(step.feeds)) {
      // A resident tensor is wrapped in place: ORT reads the thread's own buffer, nothing is copied.
      feeds[name] = isOutput(t) ? produced(t) : isWire(t) ? new ort.Tensor(t.type, t.data, t.dims) : new ort.Tensor(residents.feed(t.resident, t.dims), t.dims);
    }
    for (const [name, t] of Object.entries(await session.run(feeds))) outputs.set(step.outputs?.[name] ?? name, t);
  }
  return Object.fromEntries([...outputs].map(([name, t]) => [name, t.data as Float32Array]));
}

/** Rows [from, to) of `t` along its first axis, copied (a few decode rows). */
function rowsOf(t: ort.Tensor, [from, to]: readonly [number, number]): ort.Tensor {
  const rows = t.dims[0] ?? 0;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= rows)) throw new Error(`rows [${from}, ${to}) are outside a tensor of ${rows} rows`);
  const size = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = (t.data as Float32Array | Int32Array).slice(from * size, to * size);
  return new ort.Tensor(t.type as 'float32' | 'int32', data, [to - from, ...t.dims.slice(1)]);
}

const asWire = (t: ort.Tensor): WireTensor => ({ type: t.type as WireTensor['type'], data: t.data as WireTensor['data'], dims: t.dims });

/** The sent tensors of a request, whose buffers go back to the owner's pool. */
function sentTensors(request: ComputeRequest): WireTensor[] {
  if (request.kind !== 'chain') return [];
  return request.steps.flatMap((step) => ('exchange' in step ? [] : 'write' in step ? [step.rows] : Object.values(step.feeds)).filter(isWire));
}

/** Chains and drops wait here for their turn (compute-queue.ts); loads and closes do not queue. */
const queue = new ComputeQueue();

parentPort!.on('message', (request: ComputeRequest) => {
  const handled = request.kind === 'chain' || request.kind === 'drop' ? queue.run(request.priority, () => handle(request)) : handle(request);
  if (request.kind !== 'close') {
    inflight.add(handled);
    void handled.catch(() => undefined).finally(() => inflight.delete(handled));
  }
  handled.then(
    (outputs) => {
      // Feed buffers go back too, so the owner refills warm pages next time instead of faulting in fresh ones.
      const spentFeeds = sentTensors(request).map((t) => t.data.buffer as ArrayBuffer);
      const reply: ComputeReply = { id: request.id, ok: true, outputs, spentFeeds };
      parentPort!.postMessage(reply, [...Object.values(outputs).map((data) => data.buffer as ArrayBuffer), ...spentFeeds]);
    },
    (error: Error) => {
      const code = isSeqparError(error) ? error.code : request.kind === 'load' && /provider|CUDA|shared library/i.test(error.message) ? 'ERR_DEVICE_UNAVAILABLE' : 'ERR_KERNEL';
      parentPort!.postMessage({ id: request.id, ok: false, code, message: error.message } satisfies ComputeReply);
    },
  );
});
