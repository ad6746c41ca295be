/**
 * One peer's decode lane as a compute thread uses it for one exchange: the transport (transport decode-lane.ts)
 * owns the files, the compute thread (kernels lane-exchange.ts) writes and reads them. Plain data, posted to the
 * thread; the descriptors are the process's, valid on every thread of it.
 */
export interface LaneEnds {
  /** The file this rank writes its partials to the peer into, and the one the peer writes into for this rank. */
  readonly sendFd: number;
  readonly recvFd: number;
  /** FIFOs: a byte on the peer's bell says "my partial is written"; a reader with nothing to read sleeps on its own. */
  readonly sendBell: number;
  readonly recvBell: number;
  /** LANE_OPEN until the lane fails (then `laneState` of why), over a SharedArrayBuffer the waiting thread reads after each wake. */
  readonly state: Int32Array;
  /** This exchange's number on the lane: both ends count their exchanges with each other in the same order. */
  readonly seq: number;
}

export const LANE_OPEN = 0;
/** Why a lane failed: a waiting exchange fails with the matching error code, and so does every later one. */
export const LANE_FAILURES = ['ERR_PEER_LOST', 'ERR_CLOSED', 'ERR_TIMEOUT', 'ERR_ABORTED'] as const;
export type LaneFailure = (typeof LANE_FAILURES)[number];
/** The state word's value for `failure` (LANE_OPEN + 1 + its index). */
export const laneState = (failure: LaneFailure): number => 1 + LANE_FAILURES.indexOf(failure);
