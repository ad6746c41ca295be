import { describe, expect, it } from 'vitest';
import type { ResidentLayout } from '../src/compute-protocol.js';
import { ResidentTensors } from '../src/resident-tensors.js';

const layout = (capacity: number): ResidentLayout => ({ type: 'float32', groups: 2, width: 3, capacity, fill: -1 });
/** t rows [t, 2, 3] whose values encode (row, group, channel) as row·100 + group·10 + channel. */
const rows = (first: number, t: number) => ({
  type: 'float32' as const,
  data: Float32Array.from({ length: t * 6 }, (_, i) => (first + Math.floor(i / 6)) * 100 + (Math.floor(i / 3) % 2) * 10 + (i % 3)),
  dims: [t, 2, 3],
});

describe('ResidentTensors', () => {
  it('scatters sequence-major rows into [groups, capacity, width], grows keeping rows, fills the rest', () => {
    const store = new ResidentTensors();
    store.writeRows('k', layout(3), 0, rows(0, 2));
    store.writeRows('k', layout(5), 2, rows(2, 2)); // grows from 3 to 5 rows per group
    const data = store.feed('k', [2, 5, 3]);
    const expected = [0, 1].flatMap((g) => [0, 1, 2, 3, 4].flatMap((r) => [0, 1, 2].map((c) => (r < 4 ? r * 100 + g * 10 + c : -1))));
    expect(Array.from(data)).toEqual(expected);
  });

  it('refuses rows that do not fit or do not match, and a failed write makes the tensor unusable until dropped', () => {
    const store = new ResidentTensors();
    store.writeRows('k', layout(2), 0, rows(0, 1));
    expect(() => store.writeRows('k', layout(2), 1, rows(1, 2))).toThrow(/do not fit/);
    expect(() => store.feed('k', [2, 2, 3])).toThrow(/unusable/);
    store.drop('k');
    expect(() => store.feed('k', [2, 2, 3])).toThrow(/no resident tensor/);
    store.writeRows('k', layout(2), 0, rows(0, 2));
    expect(() => store.feed('k', [2, 3, 3])).toThrow(/12 elements/);
    expect(() => store.writeRows('k', { ...layout(2), width: 4 }, 0, rows(0, 1))).toThrow(/float32 \[2, \*, 3\]/);
    expect(() => store.writeRows('v', layout(2), 0, { type: 'float32', data: new Float32Array(5), dims: [1, 2, 3] })).toThrow(/must be float32/);
  });
});
