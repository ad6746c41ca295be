import type { TextTokenizer } from '@seqpar/model';

/**
 * The text of a generation as its tokens arrive: each `push` hands out only text that is final, holding back a
 * partly decoded character and any tail that could still grow into a stop string; a stop string ends the text
 * (it is not included). Without a tokenizer the text stays empty and the ids are the output.
 */
export class TextOutput {
  private readonly ids: number[] = [];
  private sent = 0;
  private ended = false;

  constructor(
    private readonly tokenizer: TextTokenizer | undefined,
    private readonly stop: readonly string[],
  ) {}

  /** True once a stop string was seen: the caller ends the generation. */
  get stopped(): boolean {
    return this.ended;
  }

  /** The text that `token` makes final. */
  push(token: number): string {
    if (!this.tokenizer || this.ended) return '';
    this.ids.push(token);
    const text = this.tokenizer.decode(this.ids);
    const hit = this.firstStop(text);
    if (hit !== undefined) {
      this.ended = true;
      return this.take(text, hit);
    }
    if (text.endsWith('\uFFFD')) return '';
    return this.take(text, text.length - this.heldTail(text));
  }

  /** What was held back, once the generation has ended without a stop string. */
  flush(): string {
    if (!this.tokenizer || this.ended) return '';
    return this.take(this.tokenizer.decode(this.ids), Infinity);
  }

  private take(text: string, end: number): string {
    const upTo = Math.min(end, text.length);
    if (upTo <= this.sent) return '';
    const fresh = text.slice(this.sent, upTo);
    this.sent = upTo;
    return fresh;
  }

  /** Where the earliest stop string starts in the text not yet sent. */
  private firstStop(text: string): number | undefined {
    const from = Math.max(0, this.sent - Math.max(0, ...this.stop.map((s) => s.length)));
    const starts = this.stop.map((s) => text.indexOf(s, from)).filter((at) => at >= 0);
    return starts.length ? Math.min(...starts) : undefined;
  }

  /** Length of the longest tail of `text` that is the start of a stop string. */
  private heldTail(text: string): number {
    let held = 0;
    for (const s of this.stop) for (let n = Math.min(s.length - 1, text.length); n > held; n--) if (text.endsWith(s.slice(0, n))) held = n;
    return held;
  }
}
