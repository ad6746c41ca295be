import { describe, expect, it } from 'vitest';
import { SeqparError } from '@seqpar/core';
import { discardFrame, withFrame, type Frame } from '../src/index.js';

/** A frame that counts its releases, as a shm frame hands its slot back. */
function slotFrame(): Frame & { releases: number } {
  const frame = {
    tag: 't',
    header: {},
    payload: new Uint8Array(8),
    releases: 0,
    release() {
      frame.releases++;
    },
  };
  return frame;
}

describe('withFrame', () => {
  it('releases the frame once the scope returns, after the scope has read it', async () => {
    const frame = slotFrame();
    const seen = await withFrame(Promise.resolve(frame), async (f) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(frame.releases).toBe(0);
      return f.payload.byteLength;
    });
    expect(seen).toBe(8);
    expect(frame.releases).toBe(1);
  });

  it('releases the frame when the scope throws, and passes the error on', async () => {
    const frame = slotFrame();
    await expect(withFrame(frame, () => Promise.reject(new SeqparError('ERR_BAD_FRAME', 'bad')))).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    expect(frame.releases).toBe(1);
  });

  it('takes frames without a slot (socket, inproc) and does not run the scope when the receive fails', async () => {
    await expect(withFrame({ tag: 't', header: {}, payload: new Uint8Array(1) }, (f) => f.payload.length)).resolves.toBe(1);
    let ran = false;
    await expect(withFrame(Promise.reject(new SeqparError('ERR_TIMEOUT', 'late')), () => (ran = true))).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(ran).toBe(false);
  });
});

describe('discardFrame', () => {
  it('releases a frame that arrives after its reader gave up, and swallows a failed receive', async () => {
    const frame = slotFrame();
    let arrive!: (f: Frame) => void;
    discardFrame(new Promise<Frame>((resolve) => (arrive = resolve)));
    discardFrame(Promise.reject(new SeqparError('ERR_ABORTED', 'gone')));
    expect(frame.releases).toBe(0);
    arrive(frame);
    await new Promise((resolve) => setImmediate(resolve));
    expect(frame.releases).toBe(1);
  });
});
