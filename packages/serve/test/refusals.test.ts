import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '@seqpar/runtime';
import { startServer, type RunningServer } from '../src/index.js';
import { eventually, metric, postJson, tinyModels } from './fixtures.js';

const models = tinyModels();

describe('refusals over raw HTTP, in OpenAI error shape', () => {
  let cluster: Cluster;
  const servers: RunningServer[] = [];
  let plain: string; // the model with a tokenizer and no chat template
  let bare: string; // no tokenizer.json
  let short: string; // max_position_embeddings 64
  const start = async (modelDir: string, options: Partial<Parameters<typeof startServer>[0]> = {}) => {
    const server = await startServer({ cluster, modelDir, port: 0, ...options });
    servers.push(server);
    return server.url;
  };

  beforeAll(async () => {
    [plain, bare, short] = await Promise.all([models.make('plain'), models.make('bare', { tokenizer: false }), models.make('short', { maxPositionEmbeddings: 64 })]);
    cluster = await createCluster({ workers: 2 });
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    await cluster?.close();
    models.cleanup();
  });

  it('400 for bad JSON, wrong field types and out-of-range sampling, naming what is wrong', async () => {
    const url = `${await start(plain)}/v1/completions`;
    const cases: Array<[unknown, RegExp]> = [
      ['{"prompt": "hi", ', /not valid JSON/],
      [[1, 2], /JSON object/],
      [{ prompt: 'hi', max_tokens: '5' }, /max_tokens must be an integer/],
      [{ prompt: 'hi', max_tokens: 0 }, /max_tokens must be at least 1/],
      [{ prompt: 'hi', temperature: -0.5 }, /temperature must be >= 0/],
      [{ prompt: 'hi', top_p: 0 }, /top_p must be in \(0, 1\]/],
      [{ prompt: 'hi', top_p: 1.5 }, /top_p must be in \(0, 1\]/],
      [{ prompt: 'hi', stream: 'yes' }, /stream must be true or false/],
      [{ prompt: { text: 'hi' } }, /prompt must be/],
      [{ prompt: [1, -2] }, /prompt must be/],
      [{ prompt: 'hi', n: 3 }, /n must be 1/],
      [{ prompt: 'hi', stop: [1] }, /stop must be/],
    ];
    for (const [body, message] of cases) {
      const answer = await postJson(url, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body).toEqual({ error: { message: expect.stringMatching(message), type: 'invalid_request_error', code: expect.any(String) } });
    }
    const chat = await postJson(url.replace('completions', 'chat/completions'), { messages: [{ role: 'user', content: 'hi' }] });
    expect(chat).toMatchObject({ status: 400, body: { error: { code: 'no_chat_template', message: expect.stringMatching(/no chat template/) } } });
    expect(await metric(url.replace('/v1/completions', ''), 'seqpar_requests_total{status="400"}')).toBe(cases.length + 1);
  });

  it('a model without tokenizer.json serves token ids and refuses text with a 400 that says why', async () => {
    const url = `${await start(bare)}/v1/completions`;
    const ids = await postJson(url, { prompt: [5, 6, 7, 8], max_tokens: 3, temperature: 0, return_token_ids: true });
    expect(ids.status).toBe(200);
    expect((ids.body['choices'] as Array<{ token_ids: number[] }>)[0]!.token_ids).toHaveLength(3);
    const text = await postJson(url, { prompt: 'hello' });
    expect(text).toMatchObject({ status: 400, body: { error: { code: 'no_tokenizer', message: expect.stringMatching(/no tokenizer\.json.*token ids/) } } });
  });

  it('401 without the bearer key on /v1 routes; /health stays open', async () => {
    const base = await start(plain, { apiKey: 'sesame' });
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'sesame' }]) {
      const answer = await postJson(`${base}/v1/completions`, { prompt: 'hi', max_tokens: 1 }, headers);
      expect(answer).toMatchObject({ status: 401, body: { error: { type: 'authentication_error', code: 'invalid_api_key' } } });
    }
    expect((await postJson(`${base}/v1/completions`, { prompt: 'hi', max_tokens: 1 }, { authorization: 'Bearer sesame' })).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('413 before any work for a prompt beyond max_position_embeddings or the KV budget', async () => {
    const long = await postJson(`${await start(short)}/v1/completions`, { prompt: Array(60).fill(1), max_tokens: 10 });
    expect(long).toMatchObject({ status: 413, body: { error: { code: 'context_length_exceeded', message: expect.stringMatching(/max_position_embeddings \(64\)/) } } });
    // K and V rows of 2 KV heads x 16 dims in float32 and a position: 260 bytes a layer, 520 over both layers,
    // so 32 KiB holds 63 rows a rank.
    const base = await start(plain, { kvBudgetBytes: 32 * 1024 });
    const big = await postJson(`${base}/v1/completions`, { prompt: Array(200).fill(1), max_tokens: 16 });
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'kv_budget_exceeded', message: expect.stringMatching(/KV budget/) } } });
    // Sharding halves each rank's share: a prompt too big for one rank is run over both instead of refused.
    const sharded = await postJson(`${base}/v1/completions`, { prompt: Array(90).fill(1), max_tokens: 4, temperature: 0 });
    expect(sharded.status).toBe(200);
    expect(sharded.headers.get('x-seqpar-strategy')).not.toBe('single');
    expect(await metric(base, 'seqpar_generated_tokens_total')).toBe(4);
  });

  it('429 once the queue is full; the queued request still completes', async () => {
    const base = await start(plain, { maxQueue: 1, maxBatch: 1 });
    const running = fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a long one', max_tokens: 4000, ignore_eos: true, stream: true }),
    });
    await eventually(async () => (await metric(base, 'seqpar_requests_running')) === 1);
    const queued = postJson(`${base}/v1/completions`, { prompt: 'next', max_tokens: 2 });
    await eventually(async () => (await metric(base, 'seqpar_queue_depth')) === 1);
    const refused = await postJson(`${base}/v1/completions`, { prompt: 'one too many', max_tokens: 2 });
    expect(refused).toMatchObject({ status: 429, body: { error: { type: 'rate_limit_error', code: 'queue_full' } } });
    await (await running).body?.cancel();
    expect((await queued).status).toBe(200);
    expect(await metric(base, 'seqpar_requests_total{status="429"}')).toBe(1);
  });
});
