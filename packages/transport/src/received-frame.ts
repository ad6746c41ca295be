import type { Frame, FrameHeader } from './transport.js';

/**
 * A frame as a transport hands it to `recv`. Disposing it releases its shared-memory slot, if it has one, so
 * `using frame = await t.recv(...)` gives the slot back however the scope ends; releasing twice does nothing.
 */
export function receivedFrame(tag: string, header: FrameHeader, payload: Uint8Array, release?: () => void): Frame {
  if (!release) return { tag, header, payload, [Symbol.dispose]: nothingToRelease };
  let released = false;
  const releaseOnce = () => {
    if (released) return;
    released = true;
    release();
  };
  return { tag, header, payload, release: releaseOnce, [Symbol.dispose]: releaseOnce };
}

function nothingToRelease(): void {}
