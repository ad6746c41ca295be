import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds buckets from a fast decode step to a long prefill. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120];

/**
 * The server's Prometheus metrics (`GET /metrics`), all named `seqpar_*`. A request's `status` is the HTTP code
 * of a refusal (400, 401, 404, 413, 429, 503), or how an admitted request ended: ok (its last token, or a stop
 * string), cancelled (the client went away), failed.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'seqpar_requests_total',
    help: 'Requests by outcome: ok, cancelled, failed, or the HTTP code of a refusal',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'seqpar_queue_depth', help: 'Admitted requests waiting for the cluster', registers: [this.registry] });
  readonly running = new Gauge({ name: 'seqpar_requests_running', help: 'Requests running on the cluster', registers: [this.registry] });
  readonly ttft = new Histogram({
    name: 'seqpar_time_to_first_token_seconds',
    help: 'From admission to the first generated token',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly interToken = new Histogram({
    name: 'seqpar_inter_token_latency_seconds',
    help: 'Between consecutive tokens of a request',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({ name: 'seqpar_prompt_tokens_total', help: 'Prompt tokens of admitted requests', registers: [this.registry] });
  readonly generatedTokens = new Counter({ name: 'seqpar_generated_tokens_total', help: 'Tokens generated', registers: [this.registry] });
  readonly kvCacheBytes = new Gauge({
    name: 'seqpar_kv_cache_bytes',
    help: 'KV cache the running requests hold, by rank',
    labelNames: ['rank'] as const,
    registers: [this.registry],
  });
  readonly clusterUp = new Gauge({ name: 'seqpar_cluster_up', help: '1 while the cluster serves, 0 while it recovers from a lost worker', registers: [this.registry] });

  constructor(workers: number) {
    for (let rank = 0; rank < workers; rank++) this.kvCacheBytes.set({ rank: String(rank) }, 0);
    this.clusterUp.set(1);
  }

  /** Adds (or, negative, removes) a request's KV shares, index = rank. */
  addKv(bytes: readonly number[], sign: 1 | -1): void {
    bytes.forEach((b, rank) => this.kvCacheBytes.inc({ rank: String(rank) }, sign * b));
  }
}
