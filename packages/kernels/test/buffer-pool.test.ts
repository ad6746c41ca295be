import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/buffer-pool.js';

describe('BufferPool', () => {
  it('hands back a returned buffer of the same size, and a fresh one otherwise', () => {
    const pool = new BufferPool(1024);
    const first = pool.take(256);
    pool.give(first);
    expect(pool.take(128)).not.toBe(first);
    expect(pool.take(256)).toBe(first);
    expect(pool.take(256)).not.toBe(first);
  });

  it('never holds more than its capacity, starting over for sizes that do not fit', () => {
    const pool = new BufferPool(1000);
    const [a, b, c] = [new ArrayBuffer(400), new ArrayBuffer(400), new ArrayBuffer(300)];
    pool.give(a);
    pool.give(b);
    pool.give(c); // 1100 > 1000: the 400s go, the 300 stays
    expect(pool.take(400)).not.toBe(a);
    expect(pool.take(300)).toBe(c);
    pool.give(new ArrayBuffer(2000)); // larger than the whole pool: dropped
    expect(pool.take(2000).byteLength).toBe(2000);
  });
});
