import type { ComputeThread } from './compute-thread.js';
import type { Feed } from './compute-protocol.js';
import { FAST_SESSION_MEMORY } from './session-options.js';

/**
 * Sessions a caller can rebuild (one per block shape), kept on a ComputeThread up to a byte budget and released
 * least recently used first. Each session holds ONNX Runtime's CPU arena at its peak working memory and its
 * folded constants until released, so caching every shape a server meets grows without end. The few most recent
 * sessions stay whatever they weigh, so the blocks of one request at long lengths (each over the budget alone) do
 * not evict each other on every call; a session in use is never released. So the cache holds at most
 * max(budget, KEEP_RECENT largest sessions), however many shapes it meets.
 */
export class SessionCache {
  /** Entries in the order last used, oldest first. */
  private readonly entries = new Map<string, { readonly bytes: number; users: number }>();
  private cachedBytes = 0;

  constructor(
    private readonly thread: ComputeThread,
    readonly budgetBytes: number,
  ) {}

  /** Runs the session `key` (built by `build` with `memory` if not cached, weighing `bytes`) on `feeds`. */
  async run(key: string, bytes: number, build: () => Uint8Array, feeds: Record<string, Feed>, memory = FAST_SESSION_MEMORY): Promise<Record<string, Float32Array>> {
    const entry = this.entries.get(key) ?? { bytes, users: 0 };
    if (!this.entries.delete(key)) this.cachedBytes += bytes;
    this.entries.set(key, entry);
    entry.users++;
    try {
      // Release first, so the new session's arena can reuse what the evicted ones give back.
      await this.evictOverBudget();
      await this.thread.load(key, build, memory);
      return await this.thread.run(key, feeds);
    } finally {
      entry.users--;
    }
  }

  /** How many sessions are cached and what they weigh (estimated). */
  get size(): { readonly sessions: number; readonly bytes: number } {
    return { sessions: this.entries.size, bytes: this.cachedBytes };
  }

  private async evictOverBudget(): Promise<void> {
    const evicted: string[] = [];
    for (const [key, entry] of this.entries) {
      if (this.cachedBytes <= this.budgetBytes || this.entries.size <= KEEP_RECENT) break;
      if (entry.users > 0) continue;
      this.entries.delete(key);
      this.cachedBytes -= entry.bytes;
      evicted.push(key);
    }
    await Promise.all(evicted.map((key) => this.thread.unload(key)));
  }
}

/**
 * Sessions kept past the budget: one request's block shapes (a strategy's diagonal and off-diagonal blocks, or
 * zigzag's three, and an unmasked block's exact fallback).
 */
export const KEEP_RECENT = 4;
