import { join } from 'node:path';
import { Command } from 'commander';
import { writeNpyFile } from '@seqpar/core';
import { log, printJson } from '../output.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { checkWritable } from '../output-paths.js';
import { randomQkv } from '../random-qkv.js';
import { checkRequestFits } from '../request-memory.js';
import { examples } from '../help-examples.js';

interface MakeQkvOptions {
  outDir: string;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  seed: number;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('make-qkv')
    .summary('write random q.npy, k.npy and v.npy to try `seqpar attention` on files')
    .description('Writes seeded random float32 tensors: q [S, Hq, D], k and v [S, Hkv, D] (the tensors `attention --random` makes with the same seed).')
    .option('--out-dir <dir>', 'folder to write q.npy, k.npy and v.npy into', '.')
    .requiredOption('--seq <n>', 'sequence length S', positiveInt)
    .option('--heads <n>', 'query heads Hq', positiveInt, 8)
    .option('--kv-heads <n>', 'key/value heads Hkv (divides Hq)', positiveInt, 2)
    .option('--head-dim <n>', 'head dimension D', positiveInt, 64)
    .option('--seed <k>', 'random seed', nonNegativeInt, 0)
    .option('--json', 'print one JSON object (the files and shapes) on stdout', false)
    .addHelpText(
      'after',
      examples(
        'seqpar make-qkv --seq 2048 --heads 8 --kv-heads 2 --head-dim 64 --out-dir .',
        'seqpar attention --q q.npy --k k.npy --v v.npy --causal --out out.npy --strategy zigzag --workers 2',
      ),
    )
    .action(async (options: MakeQkvOptions) => {
      const files = { q: join(options.outDir, 'q.npy'), k: join(options.outDir, 'k.npy'), v: join(options.outDir, 'v.npy') };
      await checkWritable({ '--out-dir': files.q });
      const shape = { seq: options.seq, heads: options.heads, kvHeads: options.kvHeads, headDim: options.headDim };
      checkRequestFits({ ...shape, causal: false, workers: 1, transport: 'inproc', remote: true });
      const [q, k, v] = randomQkv(shape, options.seed);
      await Promise.all([writeNpyFile(files.q, q), writeNpyFile(files.k, k), writeNpyFile(files.v, v)]);
      if (options.json) printJson({ ...files, ...shape, seed: options.seed });
      else log(`wrote ${files.q} [${q.shape.join(', ')}], ${files.k} and ${files.v} [${k.shape.join(', ')}]`);
    });
}
