import { defineConfig } from 'vitest/config';

// Tests import the workspace packages' TypeScript sources (the `@seqpar/source` export condition),
// so no build is needed before a unit test; processes that tests spawn run the built `dist/`.
export function packageTestConfig(root: string) {
  const conditions = ['@seqpar/source', 'node', 'import', 'default'];
  return defineConfig({
    root,
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@seqpar/source'] } },
    test: {
      watch: false,
      include: ['test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 60_000,
      pool: 'forks',
      passWithNoTests: true,
    },
  });
}
