/**
 * What one kernel call costs on a host whose kernel was timed call by call (`seqpar plan --calibrate`): a table of
 * measured calls at the shapes the strategies cut their blocks into (@seqpar/strategies' planPieces: at most 2048
 * query rows against up to a shard's keys, causal diagonals of at most 512 rows), each timed alone and while every
 * compute unit of the host runs one (ranks of one request compute at once). A call costs a round trip to the
 * compute thread with copies of its inputs and outputs (~0.3 ms measured at 16 x 16) on top of its arithmetic, so
 * splitting work into more, smaller calls costs more: the table prices that directly instead of a FLOP rate.
 */
export interface KernelTable {
  /** Heads and head dim the table was timed at: a call's time past `launchMs` scales with query heads x head dim. */
  readonly heads: number;
  readonly headDim: number;
  /**
   * How a call's time past `launchMs` grows with its query heads against the table's: as (heads / table heads) to
   * this power (absent: 1, proportional). Measured, because a call's per-call work beyond the round trip does not
   * halve with its heads (Ulysses' calls carry 1/N of the heads: priced as proportional, 1-head calls over 32k keys
   * ran 11-14% slower than predicted while 2-head calls of the same shapes were on the mark).
   */
  readonly headsExponent?: number;
  /** A 16 x 16 call: the fixed round trip every call pays. */
  readonly launchMs: number;
  /**
   * How much slower calls ran inside a two-worker request than two at once in isolation (traced call by call): the
   * ranks' merges and frames and the coordinator's copies share the host's cores with the kernels. Scales sharedMs.
   */
  readonly inRequestFactor: number;
  /** Unmasked calls: queryRows x keyRows grid (both rising), ms[i][j] for queryRows[i] x keyRows[j]. */
  readonly queryRows: readonly number[];
  readonly keyRows: readonly number[];
  readonly aloneMs: readonly (readonly number[])[];
  readonly sharedMs: readonly (readonly number[])[];
  /** Causal diagonal calls, square: rows rising, ms alone and shared. */
  readonly causalRows: readonly number[];
  readonly causalAloneMs: readonly number[];
  readonly causalSharedMs: readonly number[];
}

/** Identical kernel calls of a step: `count` calls of `queryRows` x `keyRows` with `heads` query and `kvHeads` kv heads. */
export interface KernelPieces {
  readonly queryRows: number;
  readonly keyRows: number;
  readonly masked: boolean;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly count: number;
}

/**
 * Milliseconds of one call of `piece`'s shape: log-log interpolation between measured shapes; past the largest
 * keys (or query rows) time grows with them (the arithmetic dominates there), past the largest causal side with
 * its area; below the smallest shapes the smallest one's time (the round trip and copies dominate there). Two at
 * once, a call loses time to the other streaming its keys and values through the shared caches and memory (512 x
 * 4096: 67 ms alone, 83 two at once): that loss follows the call's K/V bytes per unit of work, so calls with fewer
 * kv heads than query heads (GQA) lose less.
 */
export function pieceMs(table: KernelTable, piece: Omit<KernelPieces, 'count'>, shared: boolean): number {
  const at = (alone: boolean): number =>
    piece.masked
      ? along(table.causalRows, alone ? table.causalAloneMs : table.causalSharedMs, piece.queryRows, 2) * bandTriangles(piece)
      : grid(table, alone ? table.aloneMs : table.sharedMs, piece.queryRows, piece.keyRows);
  const alone = at(true);
  // K/V bytes per unit of work against the table's calls (timed with as many kv heads as query heads).
  const kvShare = piece.kvHeads / piece.heads;
  const ms = shared ? (alone + Math.max(0, at(false) - alone) * kvShare) * table.inRequestFactor : alone;
  const work = (piece.heads / table.heads) ** (table.headsExponent ?? 1) * (piece.headDim / table.headDim);
  return table.launchMs + Math.max(0, ms - table.launchMs) * work;
}

/**
 * A masked piece's time in causal triangles of its rows: 1 for a triangle (keys = rows), 1 + W / rows for a window
 * strip of rows x (rows + W) keys, whose tiles the kernel trims to the band's reach (measured at 16k, W 1024: a
 * 512 x 1536 strip ~22 ms, ~3x a 512-row triangle in the same run).
 */
const bandTriangles = ({ queryRows, keyRows }: Pick<KernelPieces, 'queryRows' | 'keyRows'>): number => Math.max(1, keyRows / queryRows);

function grid(table: KernelTable, ms: readonly (readonly number[])[], rows: number, keys: number): number {
  const row = (k: number): number => along(table.keyRows, ms[k]!, keys, 1);
  const last = table.queryRows.length - 1;
  if (rows > table.queryRows[last]!) return row(last) * (rows / table.queryRows[last]!);
  const [i, fi] = bracket(table.queryRows, rows);
  return fi === 0 ? row(i) : Math.exp((1 - fi) * Math.log(row(i)) + fi * Math.log(row(i + 1)));
}

/** Log-log interpolation of `ms` over `xs` at `x`; beyond the last point it grows as x^power, below the first it stays. */
function along(xs: readonly number[], ms: readonly number[], x: number, power: number): number {
  const last = xs.length - 1;
  if (x >= xs[last]!) return ms[last]! * (x / xs[last]!) ** power;
  const [i, f] = bracket(xs, x);
  return f === 0 ? ms[i]! : Math.exp((1 - f) * Math.log(ms[i]!) + f * Math.log(ms[i + 1]!));
}

/** Index of the point at or below x and the log-fraction towards the next (0 below the first or at a point). */
function bracket(xs: readonly number[], x: number): [number, number] {
  if (x <= xs[0]!) return [0, 0];
  const upper = xs.findIndex((p) => p >= x);
  if (upper === -1) return [xs.length - 1, 0];
  if (xs[upper] === x) return [upper, 0];
  return [upper - 1, Math.log(x / xs[upper - 1]!) / Math.log(xs[upper]! / xs[upper - 1]!)];
}
