import { describe, expect, it } from 'vitest';
import { RequestQueue } from '../src/coordinator/request-queue.js';

describe('RequestQueue', () => {
  it('is FIFO and refuses beyond its depth with ERR_BUSY', () => {
    const queue = new RequestQueue<number>(2);
    queue.push(1);
    queue.push(2);
    expect(() => queue.push(3)).toThrow(expect.objectContaining({ code: 'ERR_BUSY' }));
    expect(queue.shift()).toBe(1);
    queue.push(3);
    expect(queue.drain()).toEqual([2, 3]);
  });

  it('removes a waiting item once', () => {
    const queue = new RequestQueue<string>(3);
    queue.push('a');
    expect(queue.remove('a')).toBe(true);
    expect(queue.remove('a')).toBe(false);
    expect(queue.length).toBe(0);
  });

  it('rejects a bad depth', () => {
    expect(() => new RequestQueue(-1)).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});
