import { UsageError } from '@seqpar/core';

export interface SamplingOptions {
  /** Pick the most likely token (ties go to the lowest id). Default when no temperature is given. */
  readonly greedy?: boolean;
  readonly temperature?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches topP. */
  readonly topP?: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * Chooses the next token from one row of logits. Sampling draws from `random` (seeded by the caller), so a seed
 * reproduces a whole generation.
 */
export function sampleToken(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  const temperature = options.temperature ?? 0;
  if (options.greedy || temperature === 0) return argmax(logits);
  if (!(temperature > 0)) throw new UsageError(`temperature must be positive, got ${temperature}`);
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`top-p must be in (0, 1], got ${topP}`);
  const max = logits[argmax(logits)]!;
  const weights = Array.from(logits, (logit, id) => ({ id, p: Math.exp((logit - max) / temperature) }));
  const total = weights.reduce((sum, w) => sum + w.p, 0);
  weights.sort((a, b) => b.p - a.p || a.id - b.id);
  let kept = 0;
  let mass = 0;
  while (kept < weights.length && mass < topP * total) mass += weights[kept++]!.p;
  let draw = random() * mass;
  for (let i = 0; i < kept; i++) {
    draw -= weights[i]!.p;
    if (draw <= 0) return weights[i]!.id;
  }
  return weights[kept - 1]!.id;
}
