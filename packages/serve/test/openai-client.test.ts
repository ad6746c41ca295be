import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '@seqpar/runtime';
import type { StrategyName } from '@seqpar/core';
import { loadProfile } from '@seqpar/planner';
import { startServer, type RunningServer } from '../src/index.js';
import { byteIds, CHAT_TEMPLATE, clusterTokens, eventually, metric, renderedChat, tinyModels } from './fixtures.js';

const models = tinyModels();
const sentence = 'Sequence parallelism shards a long context across workers. ';

describe('seqpar serve with the official openai client (shm workers)', () => {
  let cluster: Cluster;
  let server: RunningServer;
  let client: OpenAI;
  let dir: string;
  const greedy = (strategy: string, maxNewTokens: number) => ({ strategy: strategy as StrategyName, maxNewTokens, greedy: true });

  beforeAll(async () => {
    dir = await models.make('tiny-chat', { chatTemplate: CHAT_TEMPLATE });
    cluster = await createCluster({ workers: 2, transport: 'shm', healthTimeoutMs: 2000 });
    // The declared profile, not a calibrated one this host may have saved, and prompts from 1000 tokens up left to
    // the planner: the plans below are fixed.
    server = await startServer({ cluster, modelDir: dir, port: 0, profile: loadProfile('local-shm'), shardFrom: 1000 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await cluster?.close();
    models.cleanup();
  });

  it('lists the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny-chat']);
  });

  it('completions, whole and streamed, equal cluster.generate token for token (greedy), for a short and a sharded prompt', async () => {
    const strategies: string[] = [];
    for (const prompt of [sentence, sentence.repeat(20)]) {
      const { data, response } = await client.completions
        .create({ model: 'tiny-chat', prompt, max_tokens: 12, temperature: 0, return_token_ids: true } as OpenAI.CompletionCreateParamsNonStreaming)
        .withResponse();
      const strategy = response.headers.get('x-seqpar-strategy')!;
      strategies.push(strategy);
      const expected = await clusterTokens(cluster, dir, byteIds(prompt), greedy(strategy, 12));
      const choice = data.choices[0] as OpenAI.CompletionChoice & { token_ids: number[] };
      expect(choice.token_ids).toEqual(expected);
      expect(data.usage).toMatchObject({ prompt_tokens: byteIds(prompt).length, completion_tokens: expected.length });
      expect(choice.finish_reason).toBe(expected.length === 12 ? 'length' : 'stop');

      const stream = await client.completions.create({
        model: 'tiny-chat',
        prompt,
        max_tokens: 12,
        temperature: 0,
        stream: true,
        return_token_ids: true,
      } as OpenAI.CompletionCreateParamsStreaming);
      const ids: number[] = [];
      let text = '';
      for await (const chunk of stream) {
        ids.push(...((chunk.choices[0] as unknown as { token_ids?: number[] }).token_ids ?? []));
        text += chunk.choices[0]?.text ?? '';
      }
      expect(ids).toEqual(expected);
      expect(text).toBe(choice.text);
    }
    // The short prompt (60 tokens) runs on one rank; the planner shards the long one (1200).
    expect(strategies).toEqual(['single', 'zigzag']);
  });

  it('chat renders the model template (whole and streamed) and generates from it', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Say something.' },
    ];
    const { data, response } = await client.chat.completions
      .create({ model: 'tiny-chat', messages, max_tokens: 8, temperature: 0, return_token_ids: true } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    const expected = await clusterTokens(cluster, dir, byteIds(renderedChat(messages)), greedy(response.headers.get('x-seqpar-strategy')!, 8));
    expect((data.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(expected);
    expect(data.choices[0]!.message.role).toBe('assistant');
    expect(data.usage?.prompt_tokens).toBe(byteIds(renderedChat(messages)).length);

    const stream = await client.chat.completions.create({ model: 'tiny-chat', messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let content = '';
    let roles = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.delta.role) roles++;
      usage = chunk.usage ?? usage;
    }
    expect(content).toBe(data.choices[0]!.message.content);
    expect(roles).toBe(1);
    expect(usage?.completion_tokens).toBe(expected.length);
  });

  it('serves concurrent requests, each with its own greedy tokens', async () => {
    const prompts = Array.from({ length: 6 }, (_, i) => `${i}: ${sentence.repeat(1 + i)}`);
    const answers = await Promise.all(
      prompts.map((prompt) =>
        client.completions
          .create({ model: 'tiny-chat', prompt, max_tokens: 6, temperature: 0, return_token_ids: true } as OpenAI.CompletionCreateParamsNonStreaming)
          .withResponse(),
      ),
    );
    for (const [i, { data, response }] of answers.entries()) {
      const expected = await clusterTokens(cluster, dir, byteIds(prompts[i]!), greedy(response.headers.get('x-seqpar-strategy')!, 6));
      expect((data.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(expected);
    }
  });

  it('a seed reproduces a sampled completion', async () => {
    const ask = async () => {
      const params = { model: 'tiny-chat', prompt: sentence, max_tokens: 10, temperature: 0.8, top_p: 0.9, seed: 42, return_token_ids: true };
      const answer = await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
      return (answer.choices[0] as unknown as { token_ids: number[] }).token_ids;
    };
    expect(await ask()).toEqual(await ask());
  });

  it('runs two short requests at once, one on each worker (KV bytes by rank show it), and frees both when their clients go', async () => {
    const params = { model: 'tiny-chat', prompt: sentence, max_tokens: 3000, ignore_eos: true, stream: true } as unknown as OpenAI.CompletionCreateParamsStreaming;
    const streams = await Promise.all([client.completions.create(params), client.completions.create(params)]);
    const readers = streams.map((stream) => stream[Symbol.asyncIterator]());
    await Promise.all(readers.map((reader) => reader.next())); // each has its first token
    expect(await metric(server.url, 'seqpar_requests_running')).toBe(2);
    expect(await metric(server.url, 'seqpar_kv_cache_bytes{rank="0"}')).toBeGreaterThan(0);
    expect(await metric(server.url, 'seqpar_kv_cache_bytes{rank="1"}')).toBeGreaterThan(0);
    await Promise.all(readers.map((reader) => reader.return?.()));
    await eventually(async () => (await metric(server.url, 'seqpar_requests_running')) === 0);
    expect(await metric(server.url, 'seqpar_kv_cache_bytes{rank="0"}')).toBe(0);
    expect(await metric(server.url, 'seqpar_kv_cache_bytes{rank="1"}')).toBe(0);
  });
});
