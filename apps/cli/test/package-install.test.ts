import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeBlock } from './readme-blocks.js';

// `npm pack` at the repo root, installed into an empty project as a user would: the CLI through npx, the library
// through `import ... from 'seqpar'`, type-checked against the shipped declarations, worker processes on shm.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
// A cache of our own: the first run downloads the third-party dependencies once; later runs install offline-first.
const NPM_CACHE = join(REPO, 'node_modules/.cache/seqpar-pack-test-npm');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const rootPackage = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));

const dir = mkdtempSync(join(tmpdir(), 'seqpar-pack-'));
const project = join(dir, 'project');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a user's shell: none of the npm_* settings that `npm test` passes down to its children. */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'NODE_OPTIONS'));

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: userEnv, timeout: 150_000, maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function succeed(command: string, args: string[], cwd = project): Promise<string> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

const LIBRARY_CHECK = `
import { connectCluster, createCluster, isSeqparError, makeTinyModel, randomTensor, referenceAttention, seededRandom, SeqparError, type ClusterClient, type Tensor } from 'seqpar';

const random = seededRandom(7);
const [seq, heads, kvHeads, headDim] = [96, 4, 2, 16];
const q: Tensor = randomTensor([seq, heads, headDim], random);
const k: Tensor = randomTensor([seq, kvHeads, headDim], random);
const v: Tensor = randomTensor([seq, kvHeads, headDim], random);

const cluster: ClusterClient = await createCluster({ workers: 2, transport: 'shm' });
try {
  const { out, lse, stats } = await cluster.attention(q, k, v, { strategy: 'zigzag', causal: true });
  const reference = referenceAttention(q, k, v, { kind: 'causal-inclusive' });
  let outDiff = 0;
  let lseDiff = 0;
  out.data.forEach((x, i) => (outDiff = Math.max(outDiff, Math.abs(x - reference.out[i]!))));
  lse.data.forEach((x, i) => (lseDiff = Math.max(lseDiff, Math.abs(x - reference.lse[i]!))));

  await makeTinyModel('tiny-model', { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 320, seed: 1 });
  const tokens: number[] = [];
  const generation = cluster.generate('tiny-model', [1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100], { strategy: 'zigzag', maxNewTokens: 5, greedy: true, ignoreEos: true });
  for await (const event of generation) tokens.push(event.token);

  let refused: unknown;
  try {
    await connectCluster({ coordinator: '127.0.0.1:1', token: 'x'.repeat(32), timeoutMs: 2000 });
  } catch (error) {
    refused = error;
  }
  console.log(JSON.stringify({ workers: stats.workers, transport: stats.transport, outDiff, lseDiff, tokens, refusedIsTyped: isSeqparError(refused) && refused instanceof SeqparError }));
} finally {
  await cluster.close();
}
`;

describe('the npm package', () => {
  beforeAll(async () => {
    await succeed('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--loglevel=error'], REPO);
    await succeed('mkdir', [project], dir);
    // What the README tells a user to put in package.json: build the native helpers (shm, ws masking, msgpackr),
    // and skip onnxruntime-node's download of CUDA binaries (the CPU provider ships in its package).
    const allowScripts = { 'shm-typed-array': true, bufferutil: true, 'msgpackr-extract': true, protobufjs: true, 'onnxruntime-node': false };
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module', allowScripts }));
    const tarball = join(dir, `seqpar-${rootPackage.version}.tgz`);
    await succeed('npm', ['install', tarball, '--cache', NPM_CACHE, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
  }, 180_000);

  it('is one tarball named seqpar-<version>.tgz that bundles every workspace package', () => {
    expect(readdirSync(dir).filter((name) => name.endsWith('.tgz'))).toEqual([`seqpar-${rootPackage.version}.tgz`]);
    const workspaces = ['packages', 'apps'].flatMap((folder) =>
      readdirSync(join(REPO, folder)).map((name) => JSON.parse(readFileSync(join(REPO, folder, name, 'package.json'), 'utf8')).name as string),
    );
    expect([...rootPackage.bundleDependencies].sort()).toEqual(workspaces.sort());
    // Nothing resolves back into the monorepo: the installed copy holds its own compiled packages.
    const installed = join(project, 'node_modules/seqpar/node_modules/@seqpar');
    expect(readdirSync(installed).sort()).toEqual(workspaces.map((name) => name.replace('@seqpar/', '')).sort());
  });

  it('runs `npx seqpar attention --random` on worker processes', async () => {
    const stdout = await succeed('npx', [
      'seqpar',
      'attention',
      '--random',
      '--seq',
      '256',
      '--heads',
      '4',
      '--kv-heads',
      '2',
      '--head-dim',
      '16',
      '--causal',
      '--workers',
      '2',
      '--strategy',
      'striped',
      '--transport',
      'shm',
      '--json',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ strategy: 'striped', workers: 2, transport: 'shm', seq: 256 });
  });

  it("type-checks and runs a program that imports 'seqpar': attention on a 2-worker shm cluster and a generation", async () => {
    writeFileSync(join(project, 'check.mts'), LIBRARY_CHECK);
    const tsconfig = {
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmitOnError: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(REPO, 'node_modules/@types')],
      },
      files: ['check.mts'],
    };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    await succeed(process.execPath, [TSC, '-p', '.']);
    const report = JSON.parse(await succeed(process.execPath, ['check.mjs']));
    expect(report).toMatchObject({ workers: 2, transport: 'shm', refusedIsTyped: true });
    expect(report.outDiff).toBeLessThanOrEqual(1e-4);
    expect(report.lseDiff).toBeLessThanOrEqual(1e-3);
    expect(report.tokens).toHaveLength(5);
  });

  it("runs the README's library example as written", async () => {
    writeFileSync(join(project, 'attention.mjs'), readmeBlock('## From a program', 'js'));
    // console.log colours the arrays when the runner forces colour (FORCE_COLOR): compare the text.
    expect(stripVTControlCharacters(await succeed(process.execPath, ['attention.mjs']))).toMatch(/^\[ 1024, 8, 64 \] \[ 8, 1024 \] [\d.]+ ms on 2 workers$/m);
  });

  it('makes a tiny model with `npx seqpar make-tiny-model` and generates from it', async () => {
    await succeed('npx', ['seqpar', 'make-tiny-model', '--out', 'cli-model']);
    const stdout = await succeed('npx', [
      'seqpar',
      'generate',
      '--model',
      'cli-model',
      '--prompt',
      'hello',
      '--max-new-tokens',
      '4',
      '--workers',
      '2',
      '--strategy',
      'zigzag',
      '--greedy',
      '--json',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ strategy: 'zigzag', workers: 2 });
  });
});
