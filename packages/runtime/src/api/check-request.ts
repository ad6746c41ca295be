import { attentionShape, checkSequenceMask, UsageError, type AttentionShape, type SequenceMask, type Tensor } from '@seqpar/core';
import { STRATEGIES, type Strategy, type StrategyName, type StrategyOptions } from '@seqpar/strategies';
import type { AttentionOptions } from './cluster-client.js';

/** An attention request that passed the door: its strategy, how many ranks take part, and its shape. */
export interface CheckedAttention {
  readonly strategy: Strategy;
  readonly name: StrategyName;
  readonly degree: number;
  readonly shape: AttentionShape;
  /** Which pairs the request leaves visible, as every rank receives it. */
  readonly mask: SequenceMask;
  /** What the ranks need beyond the shape (usp's ulysses degree). */
  readonly strategyOptions: StrategyOptions;
}

/**
 * Every attention request is checked here before any work or transfer, for local and remote clusters alike, so
 * a bad request is a typed usage error (exit 2) for its caller and never reaches the workers.
 */
export function checkAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions, workers: number): CheckedAttention {
  checkTensor('q', q);
  checkTensor('k', k);
  checkTensor('v', v);
  const shape = attentionShape(q, k, v);
  if (shape.sq !== shape.sk) throw new UsageError(`q has ${shape.sq} rows and k, v have ${shape.sk}: sharded attention needs one sequence for both`, 'ERR_SHAPE_MISMATCH');
  if (shape.sq < 1 || shape.hq < 1 || shape.d < 1) throw new UsageError(`q [${q.shape.join(', ')}] has an empty dimension`, 'ERR_SHAPE_MISMATCH');
  if (options.causal !== undefined && typeof options.causal !== 'boolean') throw new UsageError(`causal must be true or false, got ${String(options.causal)}`);
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0))
    throw new UsageError(`timeoutMs must be a positive number, got ${String(options.timeoutMs)}`);
  const name = options.strategy ?? (workers === 1 ? 'single' : 'ring');
  const strategy = Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name] : undefined;
  if (!strategy) throw new UsageError(`unknown strategy '${String(name)}' (${Object.keys(STRATEGIES).join(', ')})`);
  const degree = name === 'single' ? 1 : workers;
  if (options.ulyssesDegree !== undefined && name !== 'usp') throw new UsageError(`ulyssesDegree applies to the usp strategy, not ${name}`);
  const strategyOptions = options.ulyssesDegree === undefined ? {} : { ulyssesDegree: options.ulyssesDegree };
  const mask = checkMask(shape.sq, options);
  strategy.check(shape.hq, shape.hkv, degree, { ...strategyOptions, ...mask });
  return { strategy, name, degree, shape, mask, strategyOptions };
}

function checkMask(seq: number, { causal, documents, window }: AttentionOptions): SequenceMask {
  if (documents !== undefined && !Array.isArray(documents)) throw new UsageError(`documents must be an array of lengths, got ${String(documents)}`);
  const mask = { causal: causal ?? false, ...(documents !== undefined ? { documents: [...documents] } : {}), ...(window !== undefined ? { window } : {}) };
  checkSequenceMask(seq, mask);
  return mask;
}

function checkTensor(name: string, t: Tensor): void {
  if (!t || !(t.data instanceof Float32Array) || !Array.isArray(t.shape))
    throw new UsageError(`${name} must be a tensor { data: Float32Array, shape: number[] }`, 'ERR_SHAPE_MISMATCH');
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new UsageError(`${name} has an invalid shape [${t.shape.join(', ')}]`, 'ERR_SHAPE_MISMATCH');
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) throw new UsageError(`${name} has shape [${t.shape.join(', ')}] (${size} values) but holds ${t.data.length}`, 'ERR_SHAPE_MISMATCH');
}
