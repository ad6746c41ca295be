import { epochNow } from '@seqpar/core';
import type { GenerateEvent } from './generate.js';

/** Timings of a generation as its consumer sees the tokens arrive. */
export interface GenerationTimings {
  /** From the start of the stream to the first token. */
  readonly ttftMs: number;
  readonly prefillTokensPerSec: number;
  /** Tokens after the first, over the time from the first token to the last. */
  readonly decodeTokensPerSec: number;
  readonly decodeMsPerToken: number;
}

export interface StreamedGeneration<R> {
  readonly result: R;
  readonly tokens: number[];
  readonly timings: GenerationTimings;
}

/**
 * Bridges tokens produced by callbacks (ranks in this process, or partial replies from worker processes) to an
 * async generator: `work` pushes each token once, from wherever it is sampled, and they are yielded in index
 * order. Tokens sampled by different ranks reach this process over different connections, so token i + 1 can
 * arrive before token i: it waits for it. The stream returns `work`'s result with the timings. A failure of `work`
 * ends the stream with its error, even while the consumer waits for a token.
 */
export async function* streamGeneration<R>(promptLength: number, work: (push: (event: GenerateEvent) => void) => Promise<R>): AsyncGenerator<GenerateEvent, StreamedGeneration<R>> {
  const started = epochNow();
  const arrived = new Map<number, GenerateEvent>();
  let wake: (() => void) | undefined;
  let outcome: { ok: true; result: R } | { ok: false; error: unknown } | undefined;
  const settle = (value: NonNullable<typeof outcome>) => {
    outcome = value;
    wake?.();
  };
  void work((event) => {
    arrived.set(event.index, event);
    wake?.();
  }).then(
    (result) => settle({ ok: true, result }),
    (error: unknown) => settle({ ok: false, error }),
  );
  const tokens: number[] = [];
  let firstAt = 0;
  let lastAt = 0;
  for (;;) {
    const event = arrived.get(tokens.length);
    if (event) {
      arrived.delete(event.index);
      lastAt = epochNow();
      if (tokens.length === 0) firstAt = lastAt;
      tokens.push(event.token);
      yield event;
      continue;
    }
    if (outcome) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
  if (!outcome.ok) throw outcome.error;
  const ttftMs = firstAt - started;
  const decoded = tokens.length - 1;
  const decodeMs = lastAt - firstAt;
  return {
    result: outcome.result,
    tokens,
    timings: {
      ttftMs,
      prefillTokensPerSec: promptLength / (ttftMs / 1000),
      decodeTokensPerSec: decoded > 0 ? decoded / (decodeMs / 1000) : 0,
      decodeMsPerToken: decoded > 0 ? decodeMs / decoded : 0,
    },
  };
}
