/**
 * ArrayBuffers by exact size, for feeds that are copied every call. A fresh multi-MiB buffer costs ~0.4 ms per MiB
 * in page faults on first touch; a reused one is only the memcpy. Holds at most `capacity` bytes; when a buffer
 * does not fit, the pool starts over, so sizes that stopped coming (another block shape) do not hold it forever.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private bytes = 0;

  constructor(private readonly capacity: number) {}

  take(byteLength: number): ArrayBuffer {
    const buffer = this.free.get(byteLength)?.pop();
    if (!buffer) return new ArrayBuffer(byteLength);
    this.bytes -= byteLength;
    return buffer;
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength > this.capacity) return;
    if (this.bytes + buffer.byteLength > this.capacity) {
      this.free.clear();
      this.bytes = 0;
    }
    this.bytes += buffer.byteLength;
    const sameSize = this.free.get(buffer.byteLength) ?? [];
    sameSize.push(buffer);
    this.free.set(buffer.byteLength, sameSize);
  }
}
