import { describe, expect, it } from 'vitest';
import { randomTensor, seededRandom } from '../src/index.js';

describe('seededRandom', () => {
  it('repeats for a seed, differs across seeds and stays in range', () => {
    const a = randomTensor([4, 3], seededRandom(7));
    const b = randomTensor([4, 3], seededRandom(7));
    const c = randomTensor([4, 3], seededRandom(8));
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
    expect(a.data.every((x) => x >= -1 && x < 1)).toBe(true);
    expect(a.shape).toEqual([4, 3]);
  });
});
