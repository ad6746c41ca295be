import { describe, expect, it } from 'vitest';
import { attentionKeysWithin, rowsWithin } from '../src/index.js';

describe('the workspace budget', () => {
  it('sizes row tiles in multiples of 64 rows, never fewer', () => {
    expect(rowsWithin(16 * 1024, 32 * 2 ** 20)).toBe(2048);
    expect(rowsWithin(10_000, 1_000_000)).toBe(64);
    expect(rowsWithin(1000, 1_000_000)).toBe(960);
  });

  it('gives attention calls a power of two of keys from 512 to 32768, fewer as the heads widen', () => {
    expect(attentionKeysWithin(8, 64)).toBe(2048);
    expect(attentionKeysWithin(32, 128)).toBe(512);
    expect(attentionKeysWithin(1, 16)).toBe(32768);
    expect(attentionKeysWithin(8, 64, 256 * 2 ** 20)).toBe(16384);
  });
});
