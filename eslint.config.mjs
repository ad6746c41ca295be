import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The layer order of docs/ARCHITECTURE.md: each project's tag (the "nx" field of its package.json) may import only
// the tags listed here. Imports point down; a package never reaches up to one that runs it.
const layers = {
  'layer:core': [],
  'layer:kernels': ['layer:core'],
  'layer:transport': ['layer:core'],
  'layer:strategies': ['layer:core', 'layer:kernels', 'layer:transport'],
  'layer:model': ['layer:core', 'layer:kernels', 'layer:transport', 'layer:strategies'],
  'layer:runtime': ['layer:core', 'layer:kernels', 'layer:transport', 'layer:strategies', 'layer:model'],
  'layer:planner': ['layer:core', 'layer:strategies'],
  'layer:sim': ['layer:core', 'layer:planner'],
  // the OpenAI server drives a cluster and asks the planner for each prompt's sharding.
  'layer:serve': ['layer:core', 'layer:strategies', 'layer:model', 'layer:runtime', 'layer:planner'],
  'layer:cli': ['layer:*'],
};

// The native binding and the socket library each stay behind one package, so everything above them runs on the
// interfaces in core and most tests need neither.
const onnxRuntime = { name: 'onnxruntime-node', message: 'Only packages/kernels imports onnxruntime-node: use its kernels.' };
const ws = { name: 'ws', message: 'Only packages/transport imports ws: use a Transport.' };

export default defineConfig(
  { ignores: ['**/dist/', '**/node_modules/', '.nx/', 'coverage/', 'tmp/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names are deliberately unused (positional callback parameters, destructured leftovers).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
    },
  },
  {
    // A project's own code; its vitest.config.ts shares the root's vitest.shared.ts, which belongs to no project.
    files: ['{packages,apps}/*/{src,test,bin}/**'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        { depConstraints: Object.entries(layers).map(([sourceTag, onlyDependOnLibsWithTags]) => ({ sourceTag, onlyDependOnLibsWithTags })) },
      ],
      'no-restricted-imports': ['error', { paths: [onnxRuntime, ws] }],
    },
  },
  { files: ['packages/kernels/**'], rules: { 'no-restricted-imports': ['error', { paths: [ws] }] } },
  { files: ['packages/transport/**'], rules: { 'no-restricted-imports': ['error', { paths: [onnxRuntime] }] } },
  // The whole-model reference runs one monolithic ONNX graph on purpose: it must not share the kernels it checks.
  { files: ['packages/model/test/monolithic-reference.ts'], rules: { 'no-restricted-imports': ['error', { paths: [ws] }] } },
);
