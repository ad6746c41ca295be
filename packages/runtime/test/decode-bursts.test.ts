import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generate, loadModel } from '@seqpar/model';
import type { ClusterGenerateOptions } from '../src/api/cluster-generate.js';
import { createCluster, type ClusterOptions } from '../src/api/cluster.js';
import { streamedTokens, useModelCluster } from './model-cluster.js';
import { expectAllGone, killAll } from './processes.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-bursts-'));
const MODEL = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 7 };
const promptOf = (length: number, salt: number) => Array.from({ length }, (_, i) => (i * 31 + salt * 13) % 290);

/** The same generation on one process, every rank a task of it, one step at a time: the reference. */
async function alone(prompt: number[], options: ClusterGenerateOptions, workers: number): Promise<number[]> {
  const model = await loadModel(dir);
  return (await generate(model, prompt, { ...options, workers: options.strategy === 'single' ? 1 : workers })).tokens;
}

const greedy = { greedy: true, ignoreEos: true } as const;

describe('decode bursts: one coordinator call runs several decode steps on the workers (worker processes, shm)', () => {
  const cluster = useModelCluster(dir, MODEL, { workers: 2, transport: 'shm', healthTimeoutMs: 2000, requestTimeoutMs: 60_000 });

  it('gives the tokens of single steps and of the one-process reference, sharded and unsharded sessions in one batch, on 1 and 2 workers', async () => {
    const requests: Array<{ prompt: number[]; options: ClusterGenerateOptions }> = [
      { prompt: promptOf(41, 1), options: { strategy: 'single', maxNewTokens: 30, ...greedy } },
      { prompt: promptOf(70, 2), options: { strategy: 'zigzag', maxNewTokens: 27, ...greedy } },
      { prompt: promptOf(9, 3), options: { strategy: 'single', maxNewTokens: 33, temperature: 0.9, topP: 0.9, seed: 4, ignoreEos: true } },
      { prompt: promptOf(52, 4), options: { strategy: 'ring', maxNewTokens: 25, temperature: 1.1, seed: 9, ignoreEos: true } },
    ];
    for (const workers of [1, 2]) {
      const batch = requests.filter(({ options }) => workers > 1 || options.strategy === 'single');
      const expected = await Promise.all(batch.map(({ prompt, options }) => alone(prompt, options, workers)));
      for (const maxBurstSteps of [undefined, 1]) {
        const options: ClusterOptions = { workers, transport: 'shm', requestTimeoutMs: 60_000, ...(maxBurstSteps ? { maxBurstSteps } : {}) };
        const own = workers === 2 && maxBurstSteps === undefined ? cluster() : await createCluster(options);
        const pids = own.pids();
        try {
          const got = await Promise.all(batch.map(({ prompt, options }) => streamedTokens(own.generate(dir, prompt, options))));
          expect(got, `${workers} workers, bursts of ${maxBurstSteps ?? 'up to 16'}`).toEqual(expected);
        } finally {
          if (own !== cluster()) {
            await own.close();
            await expectAllGone(pids).finally(() => killAll(pids));
          }
        }
      }
    }
  });

  it('a job aborted mid-burst ends with its typed error and is released; the other session completes, and the cluster serves the next', async () => {
    const long: ClusterGenerateOptions = { strategy: 'ring', maxNewTokens: 60, ...greedy };
    const kept: ClusterGenerateOptions = { strategy: 'single', maxNewTokens: 60, ...greedy };
    const [expectedKept, expectedNext] = await Promise.all([alone(promptOf(33, 5), kept, 2), alone(promptOf(20, 6), long, 2)]);
    const stop = new AbortController();
    const aborted = streamedTokens(cluster().generate(dir, promptOf(45, 7), { ...long, signal: stop.signal }), (index) => {
      if (index === 20) stop.abort(); // both sessions long past their prefills: the batch is in bursts
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const keptTokens = streamedTokens(cluster().generate(dir, promptOf(33, 5), kept));
    expect(await aborted).toMatchObject({ code: 'ERR_ABORTED' });
    expect(await keptTokens).toEqual(expectedKept);
    expect(await streamedTokens(cluster().generate(dir, promptOf(20, 6), long))).toEqual(expectedNext);
  });

  it('a session that joins while others run in bursts gets its first token and all its tokens while they go on', async () => {
    const running: ClusterGenerateOptions = { strategy: 'zigzag', maxNewTokens: 400, ...greedy };
    const joining: ClusterGenerateOptions = { strategy: 'single', maxNewTokens: 3, ...greedy };
    const expected = await alone(promptOf(17, 9), joining, 2);
    let joined!: () => void;
    const bursting = new Promise<void>((resolve) => (joined = resolve));
    let longAt = 0;
    const long = streamedTokens(cluster().generate(dir, promptOf(60, 8), running), (index) => {
      longAt = index;
      if (index === 30) joined();
    });
    await bursting;
    expect(await streamedTokens(cluster().generate(dir, promptOf(17, 9), joining))).toEqual(expected);
    expect(longAt).toBeLessThan(399); // the long session was still decoding when the joining one finished
    expect(await long).toHaveLength(400);
  });

  it('a deadline reached mid-burst ends that job with ERR_TIMEOUT; the other session decodes on to its last token', async () => {
    const kept: ClusterGenerateOptions = { strategy: 'single', maxNewTokens: 600, ...greedy };
    const expected = await alone(promptOf(28, 13), kept, 2);
    const expiring = streamedTokens(cluster().generate(dir, promptOf(40, 14), { strategy: 'ring', maxNewTokens: 20_000, ...greedy, timeoutMs: 600 })).then(
      () => undefined,
      (error: unknown) => error,
    );
    const keptTokens = streamedTokens(cluster().generate(dir, promptOf(28, 13), kept));
    expect(await expiring).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(await keptTokens).toEqual(expected);
  });

  describe('with an end-of-sequence token the greedy streams reach mid-burst', () => {
    const eosDir = mkdtempSync(join(tmpdir(), 'seqpar-bursts-eos-'));
    afterAll(() => rmSync(eosDir, { recursive: true, force: true }));

    it('EOS mid-burst ends that session alone (sharded and unsharded); the others decode on', async () => {
      const unsharded = { prompt: promptOf(25, 10), options: { strategy: 'single', maxNewTokens: 40, greedy: true } satisfies ClusterGenerateOptions };
      const sharded = { prompt: promptOf(90, 14), options: { strategy: 'zigzag', maxNewTokens: 40, greedy: true } satisfies ClusterGenerateOptions };
      const bystander = { prompt: promptOf(30, 12), options: { strategy: 'single', maxNewTokens: 40, ...greedy } satisfies ClusterGenerateOptions };
      const streams = await Promise.all([unsharded, sharded].map(({ prompt, options }) => alone(prompt, { ...options, ignoreEos: true }, 2)));
      // A token both streams first reach a few tokens in (the tiny model's streams settle into loops): EOS for both.
      const [first, second] = streams as [number[], number[]];
      const eos = second.find((token) => second.indexOf(token) >= 4 && first.indexOf(token) >= 4);
      expect(eos, 'a token fit to serve as EOS').toBeDefined();
      const upToEos = (tokens: number[]) => tokens.slice(0, tokens.indexOf(eos!) + 1);
      cpSync(dir, eosDir, { recursive: true });
      const configFile = join(eosDir, 'config.json');
      writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), eos_token_id: eos }));
      const expectedBystander = await alone(bystander.prompt, bystander.options, 2);
      const got = await Promise.all([unsharded, sharded, bystander].map(({ prompt, options }) => streamedTokens(cluster().generate(eosDir, prompt, options))));
      expect(got[0]).toEqual(upToEos(first));
      expect(got[1]).toEqual(upToEos(second));
      expect(got[2]).toEqual(expectedBystander);
    });
  });

  it('a worker killed mid-burst fails the batch with typed errors naming the rank; the next generation runs on its successor', async () => {
    const victim = cluster().pids()[1]!;
    const failed = (error: unknown) => error;
    const errors = await Promise.all([
      streamedTokens(
        cluster().generate(dir, promptOf(50, 15), { strategy: 'zigzag', maxNewTokens: 2000, ...greedy }),
        (index) => index === 30 && process.kill(victim, 'SIGKILL'),
      ).then(() => undefined, failed),
      streamedTokens(cluster().generate(dir, promptOf(20, 16), { strategy: 'single', maxNewTokens: 2000, ...greedy })).then(() => undefined, failed),
    ]);
    for (const error of errors) expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_(PEER_LOST|TIMEOUT)$/), message: expect.stringMatching(/\brank 1\b/) });
    await expectAllGone([victim]);
    expect(await streamedTokens(cluster().generate(dir, promptOf(20, 6), { strategy: 'ring', maxNewTokens: 5, ...greedy }))).toHaveLength(5);
  });
});
