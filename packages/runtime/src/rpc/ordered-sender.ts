/**
 * Runs the sends to one peer one after another: a message and its tensor chunks go out before the next message
 * starts, so the receiver can read a message's chunks right after it (rpc-messages.ts).
 */
export class OrderedSender {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(send: () => Promise<T>): Promise<T> {
    const next = this.tail.then(send, send);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
