import { describe, expect, it } from 'vitest';
import { seededRandom } from '@seqpar/core';
import { argmax, sampleToken } from '../src/sampling.js';

const logits = Float32Array.from([0.1, 2, 1.9, -1, 2]);

describe('sampleToken', () => {
  it('is greedy by default and breaks ties toward the lowest id', () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, {}, seededRandom(1))).toBe(1);
  });

  it('reproduces a draw for a seed and keeps only the nucleus', () => {
    const draws = (seed: number) =>
      Array.from(
        { length: 50 },
        (
          (random) => () =>
            sampleToken(logits, { temperature: 1, topP: 0.7 }, random)
        )(seededRandom(seed)),
      );
    expect(draws(3)).toEqual(draws(3));
    // Probabilities ∝ e^logit: ids 1 and 4 hold 0.64 of the mass, adding id 2 reaches 0.93 >= 0.7, so 0 and 3 are cut.
    expect(new Set(draws(3)).size).toBeGreaterThan(1);
    expect(draws(3).every((id) => [1, 2, 4].includes(id))).toBe(true);
  });

  it('rejects a negative temperature', () => {
    expect(() => sampleToken(logits, { temperature: -1 }, seededRandom(1))).toThrow(/temperature/);
  });
});
