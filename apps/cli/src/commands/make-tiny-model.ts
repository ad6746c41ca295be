import { Command, Option } from 'commander';
import { makeTinyModel, type WeightDtype } from '@seqpar/model';
import { log, printJson } from '../output.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { examples } from '../help-examples.js';

const DTYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const satisfies Record<string, WeightDtype>;

interface MakeTinyModelOptions {
  out: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  intermediate?: number;
  seed: number;
  dtype: keyof typeof DTYPES;
  modelType: 'llama' | 'mistral' | 'qwen2';
  shards: number;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('make-tiny-model')
    .summary('write a random Llama-family model (Hugging Face layout) for tests and demos')
    .description('Writes config.json, model.safetensors (or shards + index) and a byte-level tokenizer.json.')
    .requiredOption('--out <dir>', 'directory to write the model into')
    .option('--layers <n>', 'decoder layers', positiveInt, 2)
    .option('--hidden <n>', 'hidden size', positiveInt, 64)
    .option('--heads <n>', 'attention heads', positiveInt, 4)
    .option('--kv-heads <n>', 'key/value heads (GQA)', positiveInt, 2)
    .option('--vocab <n>', 'vocabulary size (>= 258: 256 bytes + <s> + </s>)', positiveInt, 320)
    .option('--intermediate <n>', 'MLP size (default 2 x hidden)', positiveInt)
    .option('--seed <k>', 'random seed', nonNegativeInt, 0)
    .addOption(new Option('--dtype <dtype>', 'weight storage type').choices(Object.keys(DTYPES)).default('f32'))
    .addOption(new Option('--model-type <type>', 'config model_type').choices(['llama', 'mistral', 'qwen2']).default('llama'))
    .option('--shards <n>', 'split weights over n safetensors files with an index', positiveInt, 1)
    .option('--json', 'print a JSON summary on stdout', false)
    .addHelpText(
      'after',
      examples(
        'seqpar make-tiny-model --out tiny-model',
        'seqpar make-tiny-model --out tiny-bf16 --layers 4 --hidden 128 --heads 8 --kv-heads 2 --dtype bf16 --shards 2',
        'seqpar generate --model tiny-model --prompt "Hello" --max-new-tokens 8 --workers 2',
      ),
    )
    .action(async (options: MakeTinyModelOptions) => {
      await makeTinyModel(options.out, {
        layers: options.layers,
        hidden: options.hidden,
        heads: options.heads,
        kvHeads: options.kvHeads,
        vocab: options.vocab,
        seed: options.seed,
        dtype: DTYPES[options.dtype],
        modelType: options.modelType,
        shards: options.shards,
        ...(options.intermediate === undefined ? {} : { intermediate: options.intermediate }),
      });
      if (options.json)
        printJson({ out: options.out, layers: options.layers, hidden: options.hidden, heads: options.heads, kvHeads: options.kvHeads, vocab: options.vocab, dtype: options.dtype });
      else log(`wrote a ${options.layers}-layer ${options.modelType} model (hidden ${options.hidden}, ${options.dtype}) to ${options.out}`);
    });
}
