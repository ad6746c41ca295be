/**
 * One peer's decode lane as a compute thread uses it for one exchange: the transport (transport decode-lane.ts)
 * owns the files, the compute thread (kernels lane-exchange.ts) writes and reads them. Plain data, posted to the
 * thread; the descriptors are the process's, valid on every thread of it.
 */
export interface LaneEnds {
  readonly sendFd: number;
  readonly recvFd: number;
  /** LANE_OPEN, LANE_PEER_LOST or LANE_CLOSED, over a SharedArrayBuffer: a waiting thread sleeps on it, so a change wakes it at once. */
  readonly state: Int32Array;
  /** This exchange's number on the lane: both ends count their exchanges with each other in the same order. */
  readonly seq: number;
}

export const LANE_OPEN = 0;
export const LANE_PEER_LOST = 1;
export const LANE_CLOSED = 2;
