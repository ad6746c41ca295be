import { SeqparError } from '@seqpar/core';

/** FIFO of requests waiting for the cluster, refusing new ones with ERR_BUSY once `maxDepth` are waiting. */
export class RequestQueue<T> {
  private readonly items: T[] = [];

  constructor(readonly maxDepth: number) {
    if (!Number.isInteger(maxDepth) || maxDepth < 0) throw new SeqparError('ERR_USAGE', `maxQueue must be a non-negative integer, got ${maxDepth}`, { exitCode: 2 });
  }

  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.items.length >= this.maxDepth) {
      throw new SeqparError('ERR_BUSY', `the cluster is busy: ${this.items.length} requests already wait (maxQueue ${this.maxDepth})`);
    }
    this.items.push(item);
  }

  /** The next item, left in the queue. */
  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Takes `item` out if it still waits; false once it was dispatched. */
  remove(item: T): boolean {
    const index = this.items.indexOf(item);
    if (index >= 0) this.items.splice(index, 1);
    return index >= 0;
  }

  drain(): T[] {
    return this.items.splice(0);
  }
}
