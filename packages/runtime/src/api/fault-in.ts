/** Bytes touched per event-loop turn: small enough that the request's own sends and receives are not held up. */
const PIECE_BYTES = 2 ** 20;
const PAGE_BYTES = 4096;

/**
 * Maps in the pages of a freshly allocated result array while `pending` (the request it is for) runs, a piece per
 * event-loop turn. A fresh array's pages are mapped on first write (~1.5 us each: ~6 ms for the 16 MiB out of an
 * 8k-token request), which would otherwise happen while the reply is copied in, after the workers finished; here
 * it happens while they compute. Each touch writes back the value it read, so rows a reply already wrote are kept,
 * and it stops once `pending` settles (what is left then faults in during the copy, as before).
 */
export async function faultInWhile(data: Float32Array, pending: Promise<unknown>): Promise<void> {
  let settled = false;
  const stop = (): void => void (settled = true);
  pending.then(stop, stop);
  const [piece, page] = [PIECE_BYTES / data.BYTES_PER_ELEMENT, PAGE_BYTES / data.BYTES_PER_ELEMENT];
  for (let start = 0; start < data.length; start += piece) {
    // Yield first: the request's sends go out before any page is touched.
    await new Promise((resolve) => setImmediate(resolve));
    if (settled) return;
    const end = Math.min(data.length, start + piece);
    for (let i = start; i < end; i += page) data[i] = data[i]!;
  }
}
