import type { HardwareProfile } from './profiles.js';

/**
 * Devices spread over hosts: the profile's link fields describe the fast link between devices of one host
 * (NVLink), `interHost` the slower one between hosts (InfiniBand). Ranks are placed on hosts in order (rank r
 * on host floor(r / devicesPerHost)), so a group of consecutive ranks stays on one host where it fits.
 */
export interface Topology {
  readonly hosts: number;
  readonly devicesPerHost: number;
  readonly interHost: InterHostLink;
}

export interface InterHostLink {
  /** Bytes/s per direction. */
  readonly bandwidth: number;
  /** One-way latency, ms. */
  readonly latencyMs: number;
  /**
   * 'device': each device has its own port to the other hosts (one NIC per GPU, a rail), shared by all its peers
   * there. 'pair': each pair of devices on different hosts has a link of its own (the shaped links of a local
   * two-group run, LinkSpec.links).
   */
  readonly port: 'device' | 'pair';
}

/** What a message between two ranks crosses: its link's speed, and the ports it holds at the sender and the receiver. */
export interface Route {
  readonly bandwidth: number;
  readonly latencyMs: number;
  readonly egress: string;
  readonly ingress: string;
}

export const hostOf = (profile: HardwareProfile, rank: number): number => (profile.topology ? Math.floor(rank / profile.topology.devicesPerHost) : 0);

/** The route of a message from rank `from` to rank `to`: within a host on the device's port, between hosts on the inter-host link. */
export function routeOf(profile: HardwareProfile, from: number, to: number): Route {
  const inter = profile.topology?.interHost;
  if (!inter || hostOf(profile, from) === hostOf(profile, to))
    return { bandwidth: profile.linkBandwidth, latencyMs: profile.linkLatencyMs, egress: `out ${from}`, ingress: `in ${to}` };
  const link = inter.port === 'pair' ? ` ${from}->${to}` : '';
  return { bandwidth: inter.bandwidth, latencyMs: inter.latencyMs, egress: `out ${from} between hosts${link}`, ingress: `in ${to} between hosts${link}` };
}

/** Wire time of `bytes` on the route's link, ms. */
export const routeMs = (route: Route, bytes: number): number => (1000 * bytes) / route.bandwidth;
