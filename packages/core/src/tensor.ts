/** A dense float32 tensor in C (row-major) order. Views share `data`; nothing here copies unless it says so. */
export interface Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

export function tensor(data: Float32Array, shape: readonly number[]): Tensor {
  if (data.length !== elementCount(shape)) {
    throw new RangeError(`tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${elementCount(shape)}`);
  }
  return { data, shape: [...shape] };
}

/** The bytes of a typed array (or any view), as a view: what a transport or a file write takes. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Rows [start, end) of `t` along its first axis, as a view. */
export function rowSlice(t: Tensor, start: number, end: number): Tensor {
  const rowSize = elementCount(t.shape.slice(1));
  return { data: t.data.subarray(start * rowSize, end * rowSize), shape: [end - start, ...t.shape.slice(1)] };
}
