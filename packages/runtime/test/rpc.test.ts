import { SeqparError, UsageError, type Tensor } from '@seqpar/core';
import { createInprocGroup, createTransport, startRendezvous, type InprocGroupOptions, type Transport } from '@seqpar/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { RpcCaller } from '../src/rpc/rpc-caller.js';
import { serveCalls, type CallHandler, type ServeOutcome } from '../src/rpc/rpc-server.js';

const log = createLogger('coordinator');

interface Pair {
  caller: RpcCaller;
  served: Promise<ServeOutcome>;
  ends: Transport[];
}

let open: Pair[] = [];
afterEach(async () => {
  await Promise.all(open.flatMap((pair) => pair.ends.map((end) => end.close())));
  open = [];
});

/** Rank 0 calls, rank 1 serves with `handler`. */
function pair(handler: CallHandler, graceMs = 300, options: InprocGroupOptions = {}): Pair {
  const ends = createInprocGroup(2, options);
  const caller = new RpcCaller(ends[0]!, { peers: [1], describe: () => 'the callee', graceMs });
  const served = serveCalls(ends[1]!, 0, handler, { log });
  const made = { caller, served, ends };
  open.push(made);
  return made;
}

const floats = (n: number, start = 0): Tensor => ({ data: Float32Array.from({ length: n }, (_, i) => start + i), shape: [n] });

describe('the request path (RpcCaller + serveCalls)', () => {
  it('answers concurrent calls with their own tensors, partials first and in order', async () => {
    const { caller } = pair(async (call, scope) => {
      const input = call.tensors[0]!;
      for (let i = 0; i < 3; i++) scope.emit({ step: i });
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      return { header: { sum: input.data.reduce((a, b) => a + b, 0) }, tensors: [{ data: input.data.map((x) => x * 2), shape: input.shape }] };
    });
    const partials = new Map<number, number[]>();
    const sizes = [1, 1000, 70_000, 5, 300_000, 0];
    const replies = await Promise.all(
      sizes.map((n, i) =>
        caller.call(1, 'double', { i }, [floats(n, i)], { timeoutMs: 10_000, onPartial: (header) => partials.set(i, [...(partials.get(i) ?? []), Number(header.step)]) }),
      ),
    );
    replies.forEach((reply, i) => {
      const n = sizes[i]!;
      expect(reply.tensors[0]!.data).toEqual(floats(n, i).data.map((x) => x * 2));
      expect(reply.header.sum).toBe(floats(n, i).data.reduce((a, b) => a + b, 0));
      expect(partials.get(i)).toEqual([0, 1, 2]);
    });
  });

  it("lends a call's tensors until its answer is sent: the next call of the same size reuses their memory, a running call's never", async () => {
    const seen: Tensor[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { caller } = pair(async (call) => {
      seen.push(call.tensors[0]!);
      if (call.args.hold === true) await held;
      return { header: { first: call.tensors[0]!.data[0] } };
    });
    await caller.call(1, 'a', {}, [floats(1000, 1)], { timeoutMs: 10_000 });
    const running = caller.call(1, 'b', { hold: true }, [floats(1000, 2)], { timeoutMs: 10_000 });
    await expect(caller.call(1, 'c', {}, [floats(1000, 3)], { timeoutMs: 10_000 })).resolves.toMatchObject({ header: { first: 3 } });
    release();
    await expect(running).resolves.toMatchObject({ header: { first: 2 } });
    expect(seen[1]!.data.buffer).toBe(seen[0]!.data.buffer); // a's memory, given back once a was answered
    expect(seen[2]!.data.buffer).not.toBe(seen[1]!.data.buffer); // b still ran: c got its own
    expect(seen[1]!.data[0]).toBe(2);
  });

  it("gives the callee's typed error back with its code and exit code", async () => {
    const { caller } = pair(async () => {
      throw new UsageError('q and k disagree', 'ERR_SHAPE_MISMATCH');
    });
    const error = await caller.call(1, 'attention', {}, [], { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SeqparError);
    expect(error).toMatchObject({ code: 'ERR_SHAPE_MISMATCH', exitCode: 2 });
    expect((error as Error).message).toBe('the callee: q and k disagree');
  });

  it('cancels an aborted call at the callee', async () => {
    let calleeAborted!: () => void;
    const aborted = new Promise<void>((resolve) => (calleeAborted = resolve));
    const { caller } = pair(
      (_, scope) =>
        new Promise((_resolve, reject) =>
          scope.signal.addEventListener('abort', () => {
            calleeAborted();
            reject(new SeqparError('ERR_ABORTED', 'dropped'));
          }),
        ),
    );
    const stop = new AbortController();
    const call = caller.call(1, 'wait', {}, [], { timeoutMs: 10_000, signal: stop.signal });
    setTimeout(() => stop.abort(), 50);
    await expect(call).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await aborted;
  });

  it('gives a slow reply the time its call has left, not the grace period (a slow link once failed large replies)', async () => {
    // 12 MiB over 8 MB/s takes ~1.6 s, far past the 300 ms grace; the call allows 10 s.
    const { caller } = pair(async () => ({ tensors: [floats(3 * 2 ** 20)] }), 300, { links: { bytesPerSecond: 8e6 } });
    const started = Date.now();
    const reply = await caller.call(1, 'big', {}, [], { timeoutMs: 10_000 });
    expect(Date.now() - started).toBeGreaterThan(1000);
    expect(reply.tensors[0]!.data[3 * 2 ** 20 - 1]).toBe(3 * 2 ** 20 - 1);
  });

  it('bounds a callee that never answers by the deadline plus the grace', async () => {
    const { caller } = pair(() => new Promise(() => undefined), 200);
    const started = Date.now();
    await expect(caller.call(1, 'hang', {}, [], { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects pending calls with ERR_PEER_LOST naming the peer when the callee goes away', async () => {
    const { caller, ends } = pair(() => new Promise(() => undefined));
    const call = caller.call(1, 'hang', {}, [], { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await ends[1]!.close();
    await expect(call).rejects.toMatchObject({ code: expect.stringMatching(/ERR_PEER_LOST|ERR_CLOSED/) });
    await expect(caller.call(1, 'next', {}, [], { timeoutMs: 1000 })).rejects.toBeInstanceOf(SeqparError);
  });
});

describe('the request path over a real ws session', () => {
  it('carries a 1.1 GiB request and a 1.15 GiB reply (each once one frame over the 1 GiB cap) in bounded chunks', async () => {
    const token = 'rpc-test-token';
    const rendezvous = await startRendezvous({ worldSize: 2, token });
    const ends = await Promise.all([0, 1].map((rank) => createTransport('ws', { rank, worldSize: 2, token, rendezvous: rendezvous.address, heartbeatMs: 2000 })));
    open.push({ caller: undefined as never, served: Promise.resolve('lost'), ends });
    const caller = new RpcCaller(ends[0]!, { peers: [1], describe: () => 'the callee', graceMs: 5000 });
    void serveCalls(
      ends[1]!,
      0,
      async (call) => {
        const [request] = call.tensors;
        const reply = new Float32Array(288 * 2 ** 20); // 1.15 GiB
        reply[0] = request!.data.length;
        reply[reply.length - 1] = request!.data[request!.data.length - 1]!;
        return { tensors: [{ data: reply, shape: [reply.length] }] };
      },
      { log },
    );
    const request = new Float32Array(275 * 2 ** 20); // 1.07 GiB
    request[request.length - 1] = 42;
    const reply = await caller.call(1, 'echo-ends', {}, [{ data: request, shape: [request.length] }], { timeoutMs: 120_000 });
    const out = reply.tensors[0]!.data;
    expect(out.length).toBe(288 * 2 ** 20);
    expect([out[0], out[out.length - 1]]).toEqual([request.length, 42]);
    await rendezvous.close();
  }, 120_000);
});
