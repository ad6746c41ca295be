import { seededRandom, UsageError } from '@seqpar/core';

/** How one direction of a link behaves. Omitted fields cost nothing. */
export interface LinkProfile {
  /** One-way delay added to every frame, in ms. */
  readonly latencyMs?: number;
  /** Serialisation rate of the direction in bytes per second: a frame occupies the port for bytes / rate. */
  readonly bytesPerSecond?: number;
  /** Extra delay per frame, uniform in [0, jitterMs); frames on one link still arrive in order. */
  readonly jitterMs?: number;
}

/** A profile for one directed link (from -> to): set both directions for a symmetric override. */
export interface LinkOverride extends LinkProfile {
  readonly from: number;
  readonly to: number;
}

/**
 * The simulated network: the top-level profile applies to every directed link, `links` override single
 * directions (so a link can be asymmetric). JSON-serialisable, so it travels to worker processes as is.
 */
export interface LinkSpec extends LinkProfile {
  readonly links?: readonly LinkOverride[];
  /** Only links among ranks 0..ranks-1 are shaped (the runtime leaves its coordinator's control links alone). */
  readonly ranks?: number;
  /** Seed of the jitter; the same seed and traffic give the same delays. Default 0. */
  readonly seed?: number;
}

/**
 * One direction's port, as in a store-and-forward switch:
 *
 *   send ──► [ busy until: frames serialise one after another at bytesPerSecond ] ──► latency + jitter ──► deliver
 *              (the sender's send() resolves when its bytes are on the wire)          (in order, by a chain)
 *
 * so two 1 MB frames sent at once over 100 MB/s arrive ~10 ms apart, while the opposite direction is free.
 */
interface Port {
  readonly profile: Required<LinkProfile>;
  readonly random: () => number;
  busyUntil: number;
  lastArrival: number;
  tail: Promise<void>;
}

const UNSHAPED: Required<LinkProfile> = { latencyMs: 0, bytesPerSecond: Infinity, jitterMs: 0 };

/**
 * The sending side of the simulated network for one rank: each frame passes through the port of its direction
 * before the transport transmits it. Deliveries run in send order per direction; a failed one is reported
 * through `onError` (the caller's send has already resolved by then, as with a real socket).
 */
export class LinkShaper {
  private readonly ports = new Map<number, Port>();

  constructor(
    private readonly spec: LinkSpec,
    private readonly rank: number,
    private readonly signal: AbortSignal,
    private readonly onError: (to: number, error: unknown) => void,
  ) {
    checkLinkSpec(spec);
  }

  /**
   * Queues a frame of `bytes` to `to`; `deliver` runs when it arrives. It starts serialising no earlier than
   * `notBefore` (a stalled sender) and arrives `delayMs` later than the link alone would have it (a delayed
   * frame holds up the ones behind it, as on a TCP stream). Resolves once the frame has left the sender's port.
   */
  async send(to: number, bytes: number, deliver: () => Promise<void>, extra: { delayMs?: number; notBefore?: number } = {}): Promise<void> {
    const port = this.port(to);
    const { latencyMs, bytesPerSecond, jitterMs } = port.profile;
    const start = Math.max(performance.now(), port.busyUntil, extra.notBefore ?? 0);
    port.busyUntil = start + (bytes / bytesPerSecond) * 1000;
    const arrival = Math.max(port.lastArrival, port.busyUntil + latencyMs + jitterMs * port.random() + (extra.delayMs ?? 0));
    port.lastArrival = arrival;
    port.tail = port.tail
      .then(() => sleepUntil(arrival, this.signal))
      .then(() => (this.signal.aborted ? undefined : deliver()))
      .catch((error: unknown) => this.onError(to, error));
    await sleepUntil(port.busyUntil, this.signal);
  }

  private port(to: number): Port {
    let port = this.ports.get(to);
    if (!port) {
      const profile = this.profileOf(to);
      const random = seededRandom(((this.spec.seed ?? 0) ^ Math.imul(this.rank + 1, 0x9e3779b1) ^ Math.imul(to + 1, 0x85ebca6b)) >>> 0);
      port = { profile, random, busyUntil: 0, lastArrival: 0, tail: Promise.resolve() };
      this.ports.set(to, port);
    }
    return port;
  }

  private profileOf(to: number): Required<LinkProfile> {
    const { ranks } = this.spec;
    if (ranks !== undefined && (this.rank >= ranks || to >= ranks)) return UNSHAPED;
    const override = this.spec.links?.find((link) => link.from === this.rank && link.to === to);
    return {
      latencyMs: override?.latencyMs ?? this.spec.latencyMs ?? 0,
      bytesPerSecond: override?.bytesPerSecond ?? this.spec.bytesPerSecond ?? Infinity,
      jitterMs: override?.jitterMs ?? this.spec.jitterMs ?? 0,
    };
  }
}

/** Bad numbers are usage errors up front, not NaN delays later. */
export function checkLinkSpec(spec: LinkSpec): void {
  checkProfile(spec, 'link');
  for (const link of spec.links ?? []) {
    if (!isRank(link.from) || !isRank(link.to) || link.from === link.to) {
      throw new UsageError(`link override needs two distinct ranks 'from' and 'to', got ${JSON.stringify(link)}`);
    }
    checkProfile(link, `link ${link.from}->${link.to}`);
  }
  if (spec.ranks !== undefined && !isRank(spec.ranks)) throw new UsageError(`links 'ranks' must be a non-negative integer, got ${spec.ranks}`);
}

function checkProfile(profile: LinkProfile, what: string): void {
  for (const key of ['latencyMs', 'jitterMs'] as const) {
    const value = profile[key];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new UsageError(`${what} ${key} must be a finite number >= 0, got ${value}`);
  }
  const rate = profile.bytesPerSecond;
  if (rate !== undefined && !(rate > 0)) throw new UsageError(`${what} bytesPerSecond must be > 0, got ${rate}`);
}

function isRank(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** Resolves at `at` (performance.now() time; timers may fire a little early, so it re-arms), or when `signal` aborts. */
function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || performance.now() >= at) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = () => (clearTimeout(timer), signal.removeEventListener('abort', done), resolve());
    const arm = () => {
      const ms = at - performance.now();
      if (ms <= 0) done();
      else timer = setTimeout(arm, Math.ceil(ms));
    };
    signal.addEventListener('abort', done, { once: true });
    arm();
  });
}
