import type { Tensor } from '@seqpar/core';

/** Stands in for the position of a row not yet written: later than any query, so the causal rule hides it. */
const UNWRITTEN = 0x7fffffff;

/**
 * One layer's share of the KV cache on one rank: K and V rows [P, Hkv, Dh] with their global positions, grown
 * by appending (prefill writes the rank's prompt tokens, decode the new tokens the rank owns). Sized up front for
 * the whole generation, the view keeps one shape from step to step, so decode reuses one attention session
 * instead of building a graph for every new cache length.
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
    this.positionList = new Int32Array(capacity).fill(UNWRITTEN);
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

  /** The whole reserved cache as pass-Q decode reads it; rows not yet written carry a position no query sees. */
  view(): { k: Tensor; v: Tensor; positions: Int32Array } {
    const shape = [this.positionList.length, this.heads, this.headDim];
    return { k: { data: this.keys, shape }, v: { data: this.values, shape }, positions: this.positionList };
  }

  get length(): number {
    return this.rows;
  }

  /** Memory held for K, V and positions, reserved rows included. */
  get bytes(): number {
    return this.keys.byteLength + this.values.byteLength + this.positionList.byteLength;
  }

  private grow(capacity: number): void {
    const rowSize = this.heads * this.headDim;
    const [keys, values, positions] = [new Float32Array(capacity * rowSize), new Float32Array(capacity * rowSize), new Int32Array(capacity).fill(UNWRITTEN)];
    keys.set(this.keys.subarray(0, this.rows * rowSize));
    values.set(this.values.subarray(0, this.rows * rowSize));
    positions.set(this.positionList.subarray(0, this.rows));
    [this.keys, this.values, this.positionList] = [keys, values, positions];
  }
}
