import { describe, expect, it } from 'vitest';
import { streamGeneration } from '../src/token-stream.js';

describe('streamGeneration', () => {
  it('yields tokens in index order when ranks deliver them out of order', async () => {
    // Ranks take turns sampling; their partial replies travel on different connections and can overtake each other.
    const stream = streamGeneration(4, async (push) => {
      for (const index of [1, 0, 3, 2, 4]) {
        push({ token: 100 + index, index });
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return 'done';
    });
    const yielded: number[] = [];
    let next = await stream.next();
    while (!next.done) {
      yielded.push(next.value.index);
      next = await stream.next();
    }
    expect(yielded).toEqual([0, 1, 2, 3, 4]);
    expect(next.value.tokens).toEqual([100, 101, 102, 103, 104]);
    expect(next.value.result).toBe('done');
  });
});
