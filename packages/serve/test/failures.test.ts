import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '@seqpar/runtime';
import { startServer, type RunningServer } from '../src/index.js';
import { eventually, metric, postJson, survivors, tinyModels } from './fixtures.js';

const models = tinyModels();
const prompt = 'Sequence parallelism shards a long context across workers. '.repeat(20);

describe('cancellation and lost workers (shm workers)', () => {
  let cluster: Cluster;
  let server: RunningServer;
  let client: OpenAI;
  const pids: number[] = [];
  const params = { model: 'tiny', prompt, max_tokens: 3000, ignore_eos: true, stream: true } as unknown as OpenAI.CompletionCreateParamsStreaming;

  beforeAll(async () => {
    const dir = await models.make('tiny');
    cluster = await createCluster({ workers: 2, transport: 'shm', healthTimeoutMs: 2000 });
    pids.push(...cluster.pids());
    server = await startServer({ cluster, modelDir: dir, port: 0, strategy: 'zigzag' });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await cluster?.close();
    expect(await survivors(pids)).toEqual([]);
    models.cleanup();
  }, 30_000);

  it('a client that disconnects mid-stream cancels its request and frees its KV shares', async () => {
    const base = server.url;
    const stream = await client.completions.create(params);
    let seen = 0;
    for await (const _ of stream) if (++seen === 5) break; // leaving the loop closes the connection
    await eventually(async () => (await metric(base, 'seqpar_requests_total{status="cancelled"}')) === 1);
    expect(await metric(base, 'seqpar_requests_running')).toBe(0);
    expect(await metric(base, 'seqpar_kv_cache_bytes{rank="0"}')).toBe(0);
    expect(await metric(base, 'seqpar_kv_cache_bytes{rank="1"}')).toBe(0);
    // Far fewer than the 3000 asked for were generated.
    expect(await metric(base, 'seqpar_generated_tokens_total')).toBeLessThan(1000);
    const next = await postJson(`${base}/v1/completions`, { prompt: 'next', max_tokens: 3, temperature: 0 });
    expect(next.status).toBe(200);
  });

  it('a worker killed mid-stream ends that stream with an error event; 503 while the cluster recovers, then it serves again', async () => {
    const base = server.url;
    const victim = cluster.pids()[1]!;
    const stream = await client.completions.create(params);
    let seen = 0;
    const failure = await (async () => {
      for await (const _ of stream) if (++seen === 3) process.kill(victim, 'SIGKILL');
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as OpenAI.APIError).error).toMatchObject({ type: 'service_unavailable', code: 'cluster_recovering', message: expect.stringMatching(/rank 1/) });
    const during = await postJson(`${base}/v1/completions`, { prompt: 'during', max_tokens: 2 });
    expect(during).toMatchObject({ status: 503, body: { error: { code: 'cluster_recovering' } } });
    await eventually(async () => (await fetch(`${base}/health`)).status === 200, 30_000);
    pids.push(...cluster.pids());
    const after = await client.completions.create({ model: 'tiny', prompt, max_tokens: 4, temperature: 0 });
    expect(after.choices[0]!.finish_reason).toMatch(/length|stop/);
    expect(await metric(base, 'seqpar_requests_total{status="failed"}')).toBe(1);
    expect(await metric(base, 'seqpar_cluster_up')).toBe(1);
  });
});
