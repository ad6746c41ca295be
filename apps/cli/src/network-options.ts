import { InvalidArgumentError } from 'commander';
import type { Fault, LinkOverride, LinkProfile, LinkSpec } from '@seqpar/transport';

/** Help text of `--link` and `--fault`, shown by `seqpar attention --help`. */
export const LINK_HELP =
  'shape links between workers: latency=MS,bandwidth=RATE,jitter=MS (RATE in bytes/s, suffix K/M/G, e.g. 100M); ' +
  'prefix FROM-TO: for one direction only (e.g. 1-0:latency=5); repeatable';
export const FAULT_HELP =
  "inject a fault: KIND:RANK@K[:MS] at rank RANK's K-th send (kill, stall:MS, drop, duplicate, delay:MS, corrupt) " + 'or partition:A-B[@K]; repeatable; turns frame checksums on';

/** Commander collector for repeated `--link`: the first plain one sets the defaults, `FROM-TO:` ones override. */
export function collectLink(value: string, previous: LinkSpec | undefined): LinkSpec {
  const spec: LinkSpec = previous ?? {};
  const match = /^(\d+)-(\d+):(.*)$/.exec(value);
  if (!match) return { ...spec, ...parseProfile(value) };
  const override: LinkOverride = { from: Number(match[1]), to: Number(match[2]), ...parseProfile(match[3]!) };
  return { ...spec, links: [...(spec.links ?? []), override] };
}

function parseProfile(text: string): LinkProfile {
  const profile: { -readonly [K in keyof LinkProfile]: LinkProfile[K] } = {};
  for (const item of text.split(',')) {
    const [key, raw = ''] = item.split('=').map((part) => part.trim());
    if (key === 'latency') profile.latencyMs = number(raw.replace(/ms$/, ''), 'latency');
    else if (key === 'jitter') profile.jitterMs = number(raw.replace(/ms$/, ''), 'jitter');
    else if (key === 'bandwidth') profile.bytesPerSecond = rate(raw);
    else throw new InvalidArgumentError(`unknown link setting '${key}' (latency, bandwidth, jitter)`);
  }
  return profile;
}

const SUFFIX: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9 };

function rate(raw: string): number {
  const match = /^([\d.]+)([KMG]?)(?:B\/s)?$/i.exec(raw);
  const value = match ? Number(match[1]) * SUFFIX[match[2]!.toUpperCase()]! : NaN;
  if (!(value > 0)) throw new InvalidArgumentError(`bandwidth '${raw}' is not a rate like 100M or 1.5G (bytes/s)`);
  return value;
}

function number(raw: string, what: string): number {
  const value = Number(raw);
  if (raw === '' || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${what} '${raw}' is not a number of ms >= 0`);
  return value;
}

/** Commander collector for repeated `--fault`. */
export function collectFault(value: string, previous: Fault[] = []): Fault[] {
  return [...previous, parseFault(value)];
}

function parseFault(text: string): Fault {
  const partition = /^partition:(\d+)-(\d+)(?:@(\d+))?$/.exec(text);
  if (partition) return { kind: 'partition', ranks: [Number(partition[1]), Number(partition[2])], ...(partition[3] ? { at: Number(partition[3]) } : {}) };
  const match = /^(kill|stall|drop|duplicate|delay|corrupt):(\d+)@(\d+)(?::([\d.]+))?$/.exec(text);
  if (!match) throw new InvalidArgumentError(`fault '${text}' is not KIND:RANK@K[:MS] or partition:A-B[@K]`);
  const [, kind, rank, at, ms] = match;
  if (kind === 'stall' || kind === 'delay') {
    if (ms === undefined) throw new InvalidArgumentError(`${kind} needs a duration: ${kind}:RANK@K:MS`);
    return { kind, rank: Number(rank), at: Number(at), ms: Number(ms) };
  }
  if (ms !== undefined) throw new InvalidArgumentError(`${kind} takes no duration`);
  return { kind: kind as 'kill' | 'drop' | 'duplicate' | 'corrupt', rank: Number(rank), at: Number(at) };
}
