import { SeqparError, UsageError, type Tensor } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import type { Transport } from '@seqpar/transport';
import type { Cluster } from '../api/cluster.js';
import type { Logger } from '../logger.js';
import type { AttentionArgs, GenerateArgs, HelloReply } from '../rpc/client-protocol.js';
import { CLIENT_SESSION_RANK } from '../rpc/client-protocol.js';
import { serveCalls, type CallResult, type CallScope, type IncomingCall } from '../rpc/rpc-server.js';

/**
 * The coordinator's side of one client: every call the client makes goes to the cluster (so through its checks,
 * bounded queue, timeouts and failure handling) and its answer goes back. When the client leaves, whatever it
 * still had queued or running is aborted, so the workers drop it.
 */
export class ClientSession {
  /** Settles when the client has gone (or the session was closed). */
  readonly done: Promise<void>;
  private readonly stop = new AbortController();

  constructor(
    private readonly transport: Transport,
    private readonly cluster: Cluster,
    log: Logger,
  ) {
    this.done = serveCalls(transport, CLIENT_SESSION_RANK, (call, scope) => this.handle(call, scope), { log, signal: this.stop.signal })
      .then((outcome) => log.info({ outcome }, 'client session ended'))
      .finally(() => transport.close());
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.transport.close();
    await this.done;
  }

  private handle(call: IncomingCall, scope: CallScope): Promise<CallResult> {
    if (call.op === 'hello') return Promise.resolve({ header: { workers: this.cluster.workers, transport: this.cluster.transport } satisfies HelloReply });
    if (call.op === 'attention') return this.attention(call.args as Partial<AttentionArgs>, call.tensors, scope);
    if (call.op === 'generate') return this.generate(call.args as Partial<GenerateArgs>, call.tensors, scope);
    return Promise.reject(new SeqparError('ERR_BAD_FRAME', `unknown client request '${call.op}'`));
  }

  private async attention(args: Partial<AttentionArgs>, tensors: Tensor[], scope: CallScope): Promise<CallResult> {
    const [q, k, v, ...extra] = tensors;
    if (!q || !k || !v || extra.length) throw new UsageError('an attention request carries exactly q, k and v');
    const { out, lse, stats } = await this.cluster.attention(q, k, v, {
      causal: args.causal === true,
      ...(args.documents === undefined ? {} : { documents: args.documents }),
      ...(args.window === undefined ? {} : { window: args.window }),
      trace: args.trace === true,
      timeoutMs: scope.timeoutMs,
      signal: scope.signal,
      ...(args.strategy === undefined ? {} : { strategy: args.strategy as StrategyName }),
      ...(args.ulyssesDegree === undefined ? {} : { ulyssesDegree: args.ulyssesDegree }),
    });
    return { header: { stats }, tensors: [out, lse] };
  }

  /** Runs a generation on the cluster, streaming its tokens and prefill progress to the client as partial replies. */
  private async generate(args: Partial<GenerateArgs>, tensors: Tensor[], scope: CallScope): Promise<CallResult> {
    const [ids, ...extra] = tensors;
    if (!ids || extra.length || typeof args.modelDir !== 'string' || typeof args.options !== 'object' || args.options === null) {
      throw new UsageError('a generate request carries a model directory, its options and exactly the prompt ids');
    }
    const run = this.cluster.generate(args.modelDir, Array.from(ids.data), {
      ...args.options,
      timeoutMs: scope.timeoutMs,
      signal: scope.signal,
      onPrefillProgress: (done, total) => scope.emit({ done, total }),
    });
    for (;;) {
      const next = await run.next();
      if (next.done) {
        const { promptLogits, ...summary } = next.value;
        return { header: { summary }, tensors: promptLogits ? [promptLogits] : [] };
      }
      scope.emit({ ...next.value });
    }
  }
}
