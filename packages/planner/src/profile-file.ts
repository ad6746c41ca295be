import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { SeqparError, UsageError } from '@seqpar/core';
import type { KernelTable } from './kernel-table.js';
import { DECLARED_PROFILES, PROFILE_ALIASES, type HardwareProfile } from './profiles.js';

/**
 * A profile on disk is one JSON object, the HardwareProfile fields plus a schema tag:
 *
 *   { "schema": "seqpar-profile/1", "name": "my-host", "source": "calibrated on my-host 2025-01-01",
 *     "attentionFlops": 9.1e10, "kernelLaunchMs": 0.05, "stepOverheadMs": 0.1, "memoryBandwidth": 1.5e10,
 *     "linkBandwidth": 2.5e9, "linkLatencyMs": 0.05, "deviceMemoryBytes": 8589934592, "bytesPerElement": 4,
 *     "shardingOverheadMs": 2, "computeUnits": 2, "causalAttentionFlops": 4.5e10, "requestMsPerMiB": 1,
 *     "mergeMsPerMiB": 0.5, "hostThreads": 1,
 *     "kernelTable": { "heads": 8, "headDim": 64, "launchMs": 0.4, "queryRows": [64, ...], "keyRows": [64, ...],
 *                      "aloneMs": [[...], ...], "sharedMs": [[...], ...], "causalRows": [64, ...],
 *                      "causalAloneMs": [...], "causalSharedMs": [...], "inRequestFactor": 1.1 } }
 *
 * Every field is one number a calibration run can measure: time a large block kernel (attentionFlops), a tiny
 * one (kernelLaunchMs), an empty ring step (stepOverheadMs), a large memcpy (memoryBandwidth), a large and a tiny
 * transport frame (linkBandwidth, linkLatencyMs); the fields after bytesPerElement are optional (profiles.ts). `seqpar plan --calibrate` writes
 * it to calibratedProfilePath() (calibrate.ts).
 */
export const PROFILE_SCHEMA = 'seqpar-profile/1';

const NUMERIC_FIELDS = [
  'attentionFlops',
  'kernelLaunchMs',
  'stepOverheadMs',
  'memoryBandwidth',
  'linkBandwidth',
  'linkLatencyMs',
  'deviceMemoryBytes',
  'bytesPerElement',
] as const satisfies ReadonlyArray<keyof HardwareProfile>;

/** Where a calibration run saves its profile (SEQPAR_PROFILE overrides). */
export function calibratedProfilePath(): string {
  return process.env['SEQPAR_PROFILE'] ?? join(homedir(), '.config', 'seqpar', 'profile.json');
}

export function profileNames(): string[] {
  return [...Object.keys(DECLARED_PROFILES), 'calibrated'];
}

/** A declared profile by name or alias, `calibrated`, or a path to a profile JSON file. */
export function loadProfile(nameOrPath: string): HardwareProfile {
  const declared = DECLARED_PROFILES[PROFILE_ALIASES[nameOrPath] ?? nameOrPath];
  if (declared) return declared;
  if (nameOrPath === 'calibrated') {
    const path = calibratedProfilePath();
    if (!existsSync(path)) {
      throw new UsageError(`no calibrated profile at ${path}: run \`seqpar plan --calibrate\` or name a declared profile`, 'ERR_UNKNOWN_PROFILE');
    }
    return readProfileFile(path);
  }
  if (nameOrPath.endsWith('.json')) return readProfileFile(nameOrPath);
  throw new UsageError(`unknown profile "${nameOrPath}"; expected one of ${profileNames().join(', ')} or a .json file`, 'ERR_UNKNOWN_PROFILE');
}

function readProfileFile(path: string): HardwareProfile {
  if (!existsSync(path)) throw new SeqparError('ERR_FILE_NOT_FOUND', `profile file ${path} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new SeqparError('ERR_PROFILE_FORMAT', `profile file ${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseProfile(json, path);
}

/** Checks a parsed profile object against the schema above. */
export function parseProfile(json: unknown, origin = 'profile'): HardwareProfile {
  const fail = (why: string): never => {
    throw new SeqparError('ERR_PROFILE_FORMAT', `${origin}: ${why}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('expected a JSON object');
  const record = json as Record<string, unknown>;
  if (record['schema'] !== PROFILE_SCHEMA) fail(`"schema" must be "${PROFILE_SCHEMA}"`);
  if (typeof record['name'] !== 'string' || record['name'] === '') fail('"name" must be a non-empty string');
  for (const field of NUMERIC_FIELDS) {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`"${field}" must be a finite number >= 0`);
  }
  for (const field of ['attentionFlops', 'memoryBandwidth', 'linkBandwidth', 'bytesPerElement'] as const) {
    if (record[field] === 0) fail(`"${field}" must be positive`);
  }
  const optional: Partial<Mutable<HardwareProfile>> = {};
  for (const [field, check] of Object.entries(OPTIONAL_FIELDS) as [keyof typeof OPTIONAL_FIELDS, (value: number) => boolean][]) {
    const value = record[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) fail(`"${field}" must be ${OPTIONAL_RULES[field]}`);
    optional[field] = value as number;
  }
  if (record['kernelTable'] !== undefined) optional.kernelTable = parseKernelTable(record['kernelTable'], fail);
  const numbers = Object.fromEntries(NUMERIC_FIELDS.map((field) => [field, record[field] as number])) as Pick<HardwareProfile, (typeof NUMERIC_FIELDS)[number]>;
  return { name: record['name'] as string, source: typeof record['source'] === 'string' ? record['source'] : origin, ...numbers, ...optional };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const OPTIONAL_FIELDS = {
  shardingOverheadMs: (x: number) => x >= 0,
  requestMsPerMiB: (x: number) => x >= 0,
  freshCopyMsPerMiB: (x: number) => x >= 0,
  causalAttentionFlops: (x: number) => x > 0,
  mergeMsPerMiB: (x: number) => x >= 0,
  computeUnits: (x: number) => Number.isInteger(x) && x >= 1,
  hostThreads: (x: number) => Number.isInteger(x) && x >= 1,
} as const satisfies Partial<Record<keyof HardwareProfile, (value: number) => boolean>>;

const OPTIONAL_RULES: Readonly<Record<keyof typeof OPTIONAL_FIELDS, string>> = {
  shardingOverheadMs: 'a finite number >= 0',
  requestMsPerMiB: 'a finite number >= 0',
  freshCopyMsPerMiB: 'a finite number >= 0',
  causalAttentionFlops: 'a positive number',
  mergeMsPerMiB: 'a finite number >= 0',
  computeUnits: 'a positive integer',
  hostThreads: 'a positive integer',
};

/** kernelTable (kernel-table.ts): rising positive axes and a positive time for every shape on them. */
function parseKernelTable(value: unknown, fail: (why: string) => never): KernelTable {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('"kernelTable" must be an object');
  const t = value as Record<string, unknown>;
  const positive = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;
  const numbers = (xs: unknown, label: string, length?: number, rising = false): number[] => {
    const ok =
      Array.isArray(xs) && xs.length > 0 && (length === undefined || xs.length === length) && xs.every(positive) && (!rising || xs.every((x, i) => i === 0 || x > xs[i - 1]));
    return ok ? (xs as number[]) : fail(`"kernelTable.${label}" must be ${rising ? 'rising ' : ''}positive numbers${length === undefined ? '' : ` (${length})`}`);
  };
  for (const name of ['heads', 'headDim', 'launchMs', 'inRequestFactor']) if (!positive(t[name])) fail(`"kernelTable.${name}" must be a positive number`);
  const [queryRows, keyRows, causalRows] = (['queryRows', 'keyRows', 'causalRows'] as const).map((name) => numbers(t[name], name, undefined, true)) as [
    number[],
    number[],
    number[],
  ];
  const grid = (name: string): number[][] => {
    const rows = t[name];
    if (!Array.isArray(rows) || rows.length !== queryRows.length) return fail(`"kernelTable.${name}" must have one row per query size`);
    return rows.map((row, i) => numbers(row, `${name}[${i}]`, keyRows.length));
  };
  if (t['headsExponent'] !== undefined && !positive(t['headsExponent'])) fail('"kernelTable.headsExponent" must be a positive number');
  return {
    heads: t['heads'] as number,
    headDim: t['headDim'] as number,
    ...(t['headsExponent'] === undefined ? {} : { headsExponent: t['headsExponent'] as number }),
    launchMs: t['launchMs'] as number,
    inRequestFactor: t['inRequestFactor'] as number,
    queryRows,
    keyRows,
    aloneMs: grid('aloneMs'),
    sharedMs: grid('sharedMs'),
    causalRows,
    causalAloneMs: numbers(t['causalAloneMs'], 'causalAloneMs', causalRows.length),
    causalSharedMs: numbers(t['causalSharedMs'], 'causalSharedMs', causalRows.length),
  };
}

/** Saves `profile` in the schema above (creating the folder), so loadProfile(path) reads it back. */
export function writeProfileFile(path: string, profile: HardwareProfile): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify({ schema: PROFILE_SCHEMA, ...profile }, null, 2) + '\n');
  } catch (error) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `cannot write profile file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** This host's calibrated profile where `seqpar plan --calibrate` saved one, else the transport's declared local one. */
export function hostProfile(transport: string): HardwareProfile {
  return loadProfile(existsSync(calibratedProfilePath()) ? 'calibrated' : transport === 'inproc' ? 'local' : `local-${transport}`);
}
