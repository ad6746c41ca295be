import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster, runCoordinator, runWorker, type CoordinatorHandle, type RemoteCluster, type WorkerHandle } from '@seqpar/runtime';
import { startServer, type RunningServer } from '../src/index.js';
import { byteIds, clusterTokens, tinyModels } from './fixtures.js';

const models = tinyModels();
const TOKEN = 'serve-remote-token';

describe('seqpar serve on a running coordinator (--coordinator)', () => {
  let coordinator: CoordinatorHandle;
  const workers: WorkerHandle[] = [];
  let remote: RemoteCluster;
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = await models.make('remote');
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 2, token: TOKEN, healthTimeoutMs: 2000 });
    for (let rank = 0; rank < 2; rank++) workers.push(await runWorker({ coordinator: coordinator.address, rank, worldSize: 2, token: TOKEN, env: {} }));
    await coordinator.ready;
    remote = await connectCluster({ coordinator: coordinator.clientAddress, token: TOKEN });
    server = await startServer({ cluster: remote, modelDir: dir, port: 0, strategy: 'ring' });
  });
  afterAll(async () => {
    await server?.close();
    await remote?.close();
    await coordinator?.stop();
    await Promise.all(workers.map((worker) => worker.stop()));
    models.cleanup();
  });

  it('streams the tokens the remote cluster gives a single request', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const prompt = 'Remote clusters serve the same answers. '.repeat(4);
    const stream = await client.completions.create({
      model: 'remote',
      prompt,
      max_tokens: 6,
      temperature: 0,
      stream: true,
      return_token_ids: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const ids: number[] = [];
    for await (const chunk of stream) ids.push(...((chunk.choices[0] as unknown as { token_ids?: number[] }).token_ids ?? []));
    expect(ids).toEqual(await clusterTokens(remote, dir, byteIds(prompt), { strategy: 'ring', maxNewTokens: 6, greedy: true }));
  });
});
