import { describe, expect, it } from 'vitest';
import { createInprocGroup, type Frame } from '@seqpar/transport';
import { receiveTensors, rowSegments, sendTensors, SpareBuffer, TENSOR_CHUNK_BYTES } from '../src/rpc/tensor-payload.js';

describe('tensor chunks', () => {
  it('sends tensors larger than a chunk in slot-sized pieces and receives them bit for bit', async () => {
    const [a, b] = createInprocGroup(2);
    const big = Float32Array.from({ length: TENSOR_CHUNK_BYTES / 4 + 3 }, (_, i) => i * 0.5);
    const small = Float32Array.from([1, -2, 3]);
    const empty = new Float32Array(0);
    const sent = sendTensors(a!, 1, 'ctl', 'data', { id: 7, kind: 'call' }, [
      { data: big, shape: [big.length] },
      { data: small, shape: [3, 1] },
      { data: empty, shape: [0, 4] },
    ]);
    const header = (await b!.recv(0, 'ctl', { timeoutMs: 5000 })).header as { id: number; shapes: number[][]; chunks: number };
    expect(header.chunks).toBe(3); // big in 2 pieces, small in 1, empty in none
    const [gotBig, gotSmall, gotEmpty] = await receiveTensors(b!, 0, 'data', header, { timeoutMs: 5000 });
    await sent;
    const bytes = (t: Float32Array) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);
    expect(gotBig!.shape).toEqual([big.length]);
    expect(bytes(gotBig!.data).equals(bytes(big))).toBe(true); // toEqual walks 4M elements for seconds
    expect(gotSmall).toEqual({ data: small, shape: [3, 1] });
    expect(gotEmpty!.shape).toEqual([0, 4]);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('ships scattered rows (striped: one segment per row) in gathered chunks and writes them into scattered rows of a target', async () => {
    const [a, b] = createInprocGroup(2);
    const rowFloats = 1024; // 4 KiB rows: a 16 MiB chunk gathers 4096 of them
    const rows = TENSOR_CHUNK_BYTES / 4 / rowFloats + 5;
    const source = Float32Array.from({ length: 2 * rows * rowFloats }, (_, i) => i);
    const odd = Array.from({ length: rows }, (_, i) => ({ start: 2 * i + 1, end: 2 * i + 2 }));
    const share = rowSegments({ data: source, shape: [2 * rows, 4, rowFloats / 4] }, odd);
    expect(share.shape).toEqual([rows, 4, rowFloats / 4]);
    const sent = sendTensors(a!, 1, 'ctl', 'data', { id: 3 }, [share, { data: Float32Array.of(5), shape: [1] }]);
    const header = (await b!.recv(0, 'ctl', { timeoutMs: 5000 })).header as { id: number; shapes: number[][]; chunks: number };
    expect(header.chunks).toBe(3);
    const target = new Float32Array(source.length);
    const [written, fresh] = await receiveTensors(b!, 0, 'data', header, { timeoutMs: 5000 }, { into: [rowSegments({ data: target, shape: [2 * rows, 4, rowFloats / 4] }, odd)] });
    await sent;
    expect(written).toBeUndefined();
    expect(fresh).toEqual({ data: Float32Array.of(5), shape: [1] });
    const expected = source.map((x, i) => (Math.floor(i / rowFloats) % 2 === 1 ? x : 0));
    expect(Buffer.from(target.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('ships long runs (zigzag halves, whole documents) as chunks of their own, gathers only short rows, and copies them together on arrival', async () => {
    const [a, b] = createInprocGroup(2);
    const rowFloats = 512; // 2 KiB rows, as H 8 x D 64
    const source = Float32Array.from({ length: 1200 * rowFloats }, (_, i) => i);
    // Two runs of 512 rows (1 MiB each) around four single rows: the runs go alone, the four rows in one chunk.
    const runs = [{ start: 0, end: 512 }, ...[600, 602, 604, 606].map((row) => ({ start: row, end: row + 1 })), { start: 650, end: 1162 }];
    const share = rowSegments({ data: source, shape: [1200, rowFloats] }, runs);
    const sent = sendTensors(a!, 1, 'ctl', 'data', { id: 5 }, [share]);
    const header = (await b!.recv(0, 'ctl', { timeoutMs: 5000 })).header as { id: number; shapes: number[][]; chunks: number };
    expect(header.chunks).toBe(3);
    const lent: Frame[] = [];
    const [got] = await receiveTensors(b!, 0, 'data', header, { timeoutMs: 5000 }, { lend: { frames: lent, indices: [0] } });
    await sent;
    expect(lent).toHaveLength(0); // three chunks: copied together, not lent
    const expected = Float32Array.from(runs.flatMap(({ start, end }) => [...source.subarray(start * rowFloats, end * rowFloats)]));
    expect(Buffer.from(got!.data.buffer, got!.data.byteOffset, got!.data.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('receives into the buffer given back to its spare when the size matches, and into a new one otherwise', async () => {
    const [a, b] = createInprocGroup(2);
    const spare = new SpareBuffer();
    const receive = async (id: number, tensors: Float32Array[]) => {
      const sent = sendTensors(
        a!,
        1,
        'ctl',
        'data',
        { id },
        tensors.map((data) => ({ data, shape: [data.length] })),
      );
      const header = (await b!.recv(0, 'ctl', { timeoutMs: 5000 })).header as { id: number; shapes: number[][]; chunks: number };
      const got = await receiveTensors(b!, 0, 'data', header, { timeoutMs: 5000 }, { spare });
      await sent;
      return got;
    };
    const first = await receive(1, [Float32Array.of(1, 2, 3), Float32Array.of(4)]);
    spare.give(first);
    const second = await receive(2, [Float32Array.of(5, 6), Float32Array.of(7, 8)]);
    expect(second[0]!.data.buffer).toBe(first[0]!.data.buffer); // the same 16 bytes, overwritten
    expect(second).toEqual([
      { data: Float32Array.of(5, 6), shape: [2] },
      { data: Float32Array.of(7, 8), shape: [2] },
    ]);
    const third = await receive(3, [Float32Array.of(9, 10, 11)]); // taken while the second still holds it
    expect(third[0]!.data.buffer).not.toBe(first[0]!.data.buffer);
    spare.give(second);
    const other = await receive(4, [Float32Array.of(1)]);
    expect(other[0]!.data.buffer).not.toBe(first[0]!.data.buffer);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('lends the tensors asked for that came as one chunk in their frames, copies the rest, and keeps lent memory out of the spare', async () => {
    const [a, b] = createInprocGroup(2);
    const spare = new SpareBuffer();
    const small = Float32Array.from([1, 2, 3]);
    const big = Float32Array.from({ length: TENSOR_CHUNK_BYTES / 4 + 2 }, (_, i) => i);
    const sent = sendTensors(a!, 1, 'ctl', 'data', { id: 4 }, [
      { data: small, shape: [3] },
      { data: big, shape: [big.length] },
      { data: small, shape: [1, 3] },
    ]);
    const header = (await b!.recv(0, 'ctl', { timeoutMs: 5000 })).header as { id: number; shapes: number[][]; chunks: number };
    const lent: Frame[] = [];
    const [gotSmall, gotBig, notAsked] = await receiveTensors(b!, 0, 'data', header, { timeoutMs: 5000 }, { spare, lend: { frames: lent, indices: [0, 1] } });
    await sent;
    expect(lent).toHaveLength(1);
    expect(gotSmall!.data.buffer).toBe(lent[0]!.payload.buffer); // a view of the frame, not a copy
    expect(gotSmall).toEqual({ data: small, shape: [3] });
    expect(notAsked!.data.buffer === gotBig!.data.buffer).toBe(true); // copied, back to back with the other copied tensor
    expect([...notAsked!.data, ...notAsked!.shape]).toEqual([1, 2, 3, 1, 3]); // toEqual on the view would walk its 16 MiB buffer
    expect(Buffer.from(gotBig!.data.buffer, gotBig!.data.byteOffset, gotBig!.data.byteLength).equals(Buffer.from(big.buffer))).toBe(true);
    spare.give([gotSmall!, gotBig!]);
    expect(spare.take(gotBig!.data.buffer.byteLength) === gotBig!.data.buffer).toBe(true); // the copied ones' buffer came back
    spare.give([gotSmall!]);
    expect(spare.take(gotSmall!.data.byteLength) === gotSmall!.data.buffer).toBe(false); // the frame's never does
    await Promise.all([a!.close(), b!.close()]);
  });

  it('refuses a reply whose shape differs from its target with ERR_BAD_FRAME', async () => {
    const [a, b] = createInprocGroup(2);
    const target = rowSegments({ data: new Float32Array(8), shape: [4, 2] }, [{ start: 0, end: 2 }]);
    await expect(receiveTensors(b!, 0, 'data', { id: 1, shapes: [[3, 2]], chunks: 1 }, { timeoutMs: 5000 }, { into: [target] })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await Promise.all([a!.close(), b!.close()]);
  });

  it('refuses a chunk of another request and a chunk count that does not match the shapes with ERR_BAD_FRAME', async () => {
    const [a, b] = createInprocGroup(2);
    await a!.send(1, 'data', { id: 8 }, new Uint8Array(12));
    await expect(receiveTensors(b!, 0, 'data', { id: 9, shapes: [[3]], chunks: 1 }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await a!.send(1, 'data', { id: 9 }, new Uint8Array(8));
    await expect(receiveTensors(b!, 0, 'data', { id: 9, shapes: [[3]], chunks: 1 }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await expect(receiveTensors(b!, 0, 'data', { id: 9, shapes: [[3]], chunks: -1 }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await Promise.all([a!.close(), b!.close()]);
  });
});
