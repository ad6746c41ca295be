import { PeakWindow, peakRssMb } from './resident-peak.js';

/** What `--json` reports for each rank of a request. */
export interface RankStats {
  readonly rank: number;
  readonly computeMs: number;
  /** Time blocked on communication that compute did not hide. */
  readonly commMs: number;
  /** The rest of the rank's wall time: waiting on peers, bookkeeping. */
  readonly idleMs: number;
  readonly bytesSent: number;
  readonly bytesRecv: number;
  readonly peakRssMb: number;
  /**
   * The most this request added to the rank's resident memory (its peak minus the resident set when it began):
   * kernel workspace, the request's tensors and KV cache. In-process ranks share one process, so each reports it.
   */
  readonly workspacePeakMb: number;
  /** Query-key pairs this rank's attention kernels computed that the mask leaves visible: how balanced the work is. */
  readonly visiblePairs: number;
}

export type TraceTrack = 'compute' | 'send' | 'recv';

/**
 * One timed span on a rank, in epoch milliseconds of the rank's own clock; the coordinator shifts a worker's spans
 * into its clock (runtime clock-sync.ts) before they leave the cluster.
 */
export interface TraceSpan {
  readonly name: string;
  readonly track: TraceTrack;
  readonly startMs: number;
  readonly durationMs: number;
  /** A hop between ranks: the send and the matching receive carry the same flow id. */
  readonly flowId?: string;
  readonly args?: Readonly<Record<string, number | string>>;
}

/**
 * Added to this process's clock, for tests of the cross-process clock correction only: processes on one host
 * share a clock, so a test skews a worker's on purpose (SEQPAR_TEST_CLOCK_SKEW_MS) to stand in for another host's.
 */
const TEST_CLOCK_SKEW_MS = Number(process.env.SEQPAR_TEST_CLOCK_SKEW_MS ?? 0) || 0;

export const epochNow = (): number => performance.timeOrigin + performance.now() + TEST_CLOCK_SKEW_MS;

/**
 * Times what one rank does during a request: compute (kernel calls, merges), exposed communication, and the
 * spans of a trace. Wall time minus compute minus communication is idle.
 */
export class RankRecorder {
  readonly spans: TraceSpan[] = [];
  private readonly startedMs = epochNow();
  private computeMs = 0;
  private commMs = 0;
  private pairs = 0;
  private readonly memory: PeakWindow | undefined;

  /** `measured`: whether the request's memory is watched (workspacePeakMb); opening the window reads /proc. */
  constructor(
    readonly rank: number,
    private readonly traced = false,
    measured = true,
  ) {
    this.memory = measured ? PeakWindow.open() : undefined;
  }

  /** Runs `work` and charges its duration to `track` (send and recv count as communication). */
  async time<T>(track: TraceTrack, name: string, work: () => Promise<T> | T, extra?: Pick<TraceSpan, 'flowId' | 'args'>): Promise<T> {
    const startMs = epochNow();
    try {
      return await work();
    } finally {
      const durationMs = epochNow() - startMs;
      if (track === 'compute') this.computeMs += durationMs;
      else this.commMs += durationMs;
      if (this.traced) this.spans.push({ name, track, startMs, durationMs, ...extra });
    }
  }

  /** Counts query-key pairs of attention this rank computes (visible ones, not the masked padding of a block). */
  countPairs(pairs: number): void {
    this.pairs += pairs;
  }

  /** Records a span without charging time, e.g. an asynchronous send that overlapped compute. */
  mark(span: TraceSpan): void {
    if (this.traced) this.spans.push(span);
  }

  /** The request's figures; the memory window closes here, so call it once, when the request is done. */
  stats(traffic: { bytesSent: number; bytesRecv: number }): RankStats {
    const wallMs = epochNow() - this.startedMs;
    this.memory?.close();
    return {
      rank: this.rank,
      computeMs: this.computeMs,
      commMs: this.commMs,
      idleMs: Math.max(0, wallMs - this.computeMs - this.commMs),
      bytesSent: traffic.bytesSent,
      bytesRecv: traffic.bytesRecv,
      peakRssMb: peakRssMb(),
      workspacePeakMb: this.memory?.addedMb() ?? 0,
      visiblePairs: this.pairs,
    };
  }
}
