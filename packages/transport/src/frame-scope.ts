import type { Frame } from './transport.js';

/**
 * A received frame's lifetime as a scope: `fn` reads the frame, and the frame is released when `fn` settles,
 * also when it throws. A shm frame's payload is a view of a slot the sender can lend only a few of; a frame that
 * is never released costs that sender a slot for good, and once its ring has none free every later frame on the
 * link falls back to the socket. Nothing `fn` returns may still point into `frame.payload`: copy what must
 * outlive the scope. A receive that fails leaves nothing to release.
 */
export async function withFrame<T>(pending: Promise<Frame> | Frame, fn: (frame: Frame) => T | Promise<T>): Promise<T> {
  const frame = await pending;
  try {
    return await fn(frame);
  } finally {
    frame.release?.();
  }
}

/**
 * For a receive that was started ahead of need (to overlap compute) and will now never be read because the work
 * that would read it failed: the frame is released as soon as it arrives. The receive's own failure is ignored,
 * the caller is already failing for its reason.
 */
export function discardFrame(pending: Promise<Frame>): void {
  pending.then(
    (frame) => frame.release?.(),
    () => undefined,
  );
}
