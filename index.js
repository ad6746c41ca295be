// The library surface lives in the CLI package (apps/cli/src/library.ts), bundled inside this package.
export * from '@seqpar/cli/library';
