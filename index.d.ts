export * from '@seqpar/cli/library';
