import type { Tensor } from '@seqpar/core';

/**
 * One layer's share of the KV cache on one rank: K and V rows [P, Hkv, Dh] with their global positions, grown
 * by appending (prefill writes the rank's prompt tokens, decode the new tokens the rank owns).
 */
export class KvCacheShare {
  private keys: Float32Array;
  private values: Float32Array;
  private positionList: Int32Array;
  private rows = 0;

  constructor(
    private readonly heads: number,
    private readonly headDim: number,
    capacity = 16,
  ) {
    this.keys = new Float32Array(capacity * heads * headDim);
    this.values = new Float32Array(capacity * heads * headDim);
    this.positionList = new Int32Array(capacity);
  }

  append(k: Tensor, v: Tensor, positions: ArrayLike<number>): void {
    const added = positions.length;
    const rowSize = this.heads * this.headDim;
    if (this.rows + added > this.positionList.length) this.grow(Math.max(2 * this.positionList.length, this.rows + added));
    this.keys.set(k.data, this.rows * rowSize);
    this.values.set(v.data, this.rows * rowSize);
    this.positionList.set(Array.from(positions), this.rows);
    this.rows += added;
  }

  /** Views of the filled rows, as pass-Q decode reads them. */
  view(): { k: Tensor; v: Tensor; positions: Int32Array } {
    const rowSize = this.heads * this.headDim;
    const shape = [this.rows, this.heads, this.headDim];
    return {
      k: { data: this.keys.subarray(0, this.rows * rowSize), shape },
      v: { data: this.values.subarray(0, this.rows * rowSize), shape },
      positions: this.positionList.subarray(0, this.rows),
    };
  }

  get length(): number {
    return this.rows;
  }

  private grow(capacity: number): void {
    const rowSize = this.heads * this.headDim;
    const [keys, values, positions] = [new Float32Array(capacity * rowSize), new Float32Array(capacity * rowSize), new Int32Array(capacity)];
    keys.set(this.keys.subarray(0, this.rows * rowSize));
    values.set(this.values.subarray(0, this.rows * rowSize));
    positions.set(this.positionList.subarray(0, this.rows));
    [this.keys, this.values, this.positionList] = [keys, values, positions];
  }
}
