import { resolve } from 'node:path';
import { SeqparError, UsageError, type RankRecorder } from '@seqpar/core';
import type { ComputeThread } from '@seqpar/kernels';
import { loadModel, type LoadedModel } from './load-model.js';
import { modelIdentity } from './model-files.js';
import { RankModel } from './rank-model.js';
import type { ModelWeights } from './weights.js';

export interface ModelCacheOptions {
  /** Models kept loaded when none is in use (the least recently used go first). */
  readonly maxModels?: number;
  /**
   * Bytes of float32 weights kept loaded when none is in use; one model is kept whatever its size. The ONNX
   * sessions hold a second copy, so 8 GiB of weights (the default) is about 16 GiB of a worker's memory.
   */
  readonly maxBytes?: number;
}

/** One load of a model directory: its weights, and its graphs on every compute thread that ran it. */
interface Entry {
  readonly dir: string;
  readonly identity: string;
  /** Graph keys on the threads: unique per load, so a thread never reuses the graphs of a model since replaced. */
  readonly key: string;
  readonly model: Promise<LoadedModel>;
  readonly ranks: Map<ComputeThread, Promise<RankModel>>;
  bytes: number;
  users: number;
  evicted: boolean;
}

let loads = 0;

/**
 * Models loaded for generation, kept between requests so a worker reads and builds a model once, yet never
 * serves a stale one: each model is kept with the identity of every file it was built from (config.json, the
 * weights and their index: size, inode, change times) and is read again when any of them changed, e.g. a
 * model.safetensors overwritten in place. Bounded, so a server that sees many model directories does not grow:
 * past `maxModels` or `maxBytes` the least recently used model not in use is dropped, graphs included.
 */
export class ModelCache {
  private readonly entries = new Map<string, Entry>(); // by directory, least recently used first
  private readonly maxModels: number;
  private readonly maxBytes: number;

  constructor(options: ModelCacheOptions = {}) {
    this.maxModels = options.maxModels ?? 2;
    this.maxBytes = options.maxBytes ?? 8 * 2 ** 30;
    if (!(this.maxModels >= 1) || !(this.maxBytes >= 0))
      throw new UsageError(`a model cache keeps at least one model and no negative bytes, got maxModels ${this.maxModels}, maxBytes ${this.maxBytes}`);
  }

  /** Models held and their weights' bytes (in use or not). */
  get size(): { models: number; bytes: number } {
    let bytes = 0;
    for (const entry of this.entries.values()) bytes += entry.bytes;
    return { models: this.entries.size, bytes };
  }

  /**
   * Runs `use` with `dir`'s model loaded on `thread`. The model stays loaded while `use` runs even if the cache
   * drops it meanwhile; its graphs are released when the last user is done. With a `recorder`, reading and
   * building the model (or finding it loaded) is a 'load model' span of its trace.
   */
  async use<T>(dir: string, thread: ComputeThread, use: (model: RankModel) => Promise<T>, recorder?: RankRecorder): Promise<T> {
    const entry = await this.acquire(resolve(dir));
    try {
      const load = async () => {
        entry.bytes = weightBytes((await entry.model).weights);
        return this.rankModel(entry, thread);
      };
      return await use(await (recorder ? recorder.time('compute', 'load model', load) : load()));
    } finally {
      entry.users--;
      await this.trim(entry);
    }
  }

  /** Takes the directory's entry, made anew when it is missing or any of its files changed; the caller gives it back. */
  private async acquire(dir: string): Promise<Entry> {
    const identity = await modelIdentity(dir);
    let entry = this.entries.get(dir);
    if (entry?.identity !== identity) {
      if (entry) void this.evict(entry);
      const key = `${dir}#${loads++}`;
      entry = { dir, identity, key, model: this.read(dir, identity, key), ranks: new Map(), bytes: 0, users: 0, evicted: false };
    }
    this.entries.delete(dir);
    this.entries.set(dir, entry); // most recently used last
    entry.users++;
    return entry;
  }

  /** Loads the model and checks that no file changed while it was read (a half-copied model mixes two). */
  private async read(dir: string, identity: string, key: string): Promise<LoadedModel> {
    try {
      const model = await loadModel(dir);
      if ((await modelIdentity(dir)) !== identity) throw new SeqparError('ERR_MODEL_FORMAT', `${dir} changed while its model was being read: try again once it is written`);
      return model;
    } catch (error) {
      const entry = this.entries.get(dir);
      if (entry?.key === key) void this.evict(entry); // a failed read is not kept
      throw error;
    }
  }

  private rankModel(entry: Entry, thread: ComputeThread): Promise<RankModel> {
    let rank = entry.ranks.get(thread);
    if (!rank) {
      rank = entry.model.then(({ config, weights }) => RankModel.load(config, weights, thread, entry.key));
      rank.catch(() => entry.ranks.delete(thread));
      entry.ranks.set(thread, rank);
    }
    return rank;
  }

  /** Drops least recently used models not in use while over a bound, never `keep` (the model just used). */
  private async trim(keep: Entry): Promise<void> {
    if (keep.evicted && keep.users === 0) await release(keep);
    for (const entry of [...this.entries.values()]) {
      const { models, bytes } = this.size;
      if (models <= this.maxModels && bytes <= this.maxBytes) return;
      if (entry !== keep && entry.users === 0) await this.evict(entry);
    }
  }

  private async evict(entry: Entry): Promise<void> {
    if (this.entries.get(entry.dir) === entry) this.entries.delete(entry.dir);
    entry.evicted = true;
    if (entry.users === 0) await release(entry);
  }
}

/** Releases an evicted model's graphs on every thread that still runs (a closed thread has dropped them). */
async function release(entry: Entry): Promise<void> {
  const ranks = [...entry.ranks.values()];
  entry.ranks.clear();
  await Promise.all(ranks.map((rank) => rank.then((model) => model.unload()).catch(() => undefined)));
}

/** Bytes of float32 weights (a tied lm_head shares the embedding's). */
function weightBytes(weights: ModelWeights): number {
  const arrays = new Set([weights.embedTokens.data, weights.finalNorm.data, weights.lmHead.data]);
  for (const layer of weights.layers) for (const tensor of Object.values(layer)) if (tensor) arrays.add(tensor.data);
  let bytes = 0;
  for (const data of arrays) bytes += data.byteLength;
  return bytes;
}
