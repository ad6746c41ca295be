import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DECLARED_PROFILES, loadProfile, PROFILE_SCHEMA, writeProfileFile } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-profile-'));
const write = (name: string, value: unknown): string => {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
};

describe('loadProfile', () => {
  it('finds declared profiles by name and alias', () => {
    expect(loadProfile('h100-nvlink')).toBe(DECLARED_PROFILES['h100-nvlink']);
    expect(loadProfile('h800').name).toBe('h800-nvlink');
    for (const name of ['a100-nvlink', 'a100-pcie', 'local']) expect(loadProfile(name).attentionFlops).toBeGreaterThan(0);
  });

  it('reads a calibrated profile file round trip', () => {
    const { name: _name, source: _source, ...fields } = DECLARED_PROFILES['local']!;
    const path = write('mine.json', { schema: PROFILE_SCHEMA, name: 'mine', source: 'calibrated here', ...fields });
    expect(loadProfile(path)).toEqual({ name: 'mine', source: 'calibrated here', ...fields });
    const written = join(dir, 'nested', 'written.json');
    writeProfileFile(written, DECLARED_PROFILES['local']!);
    expect(loadProfile(written)).toEqual(DECLARED_PROFILES['local']);
  });

  it('gives typed errors for unknown names, missing files and bad contents', () => {
    expect(() => loadProfile('tpu-v9')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_PROFILE', exitCode: 2 }));
    expect(() => loadProfile(join(dir, 'absent.json'))).toThrow(expect.objectContaining({ code: 'ERR_FILE_NOT_FOUND' }));
    expect(() => loadProfile(write('broken.json', '{'))).toThrow(expect.objectContaining({ code: 'ERR_PROFILE_FORMAT' }));
    expect(() => loadProfile(write('noschema.json', { name: 'x' }))).toThrow(expect.objectContaining({ code: 'ERR_PROFILE_FORMAT' }));
    const badBandwidth = { ...DECLARED_PROFILES['local'], schema: PROFILE_SCHEMA, linkBandwidth: 0 };
    expect(() => loadProfile(write('zero.json', badBandwidth))).toThrow(/linkBandwidth/);
    expect(() => loadProfile(write('causal.json', { ...badBandwidth, linkBandwidth: 1, causalAttentionFlops: -1 }))).toThrow(/causalAttentionFlops/);
    const table = DECLARED_PROFILES['local']!.kernelTable!;
    const ragged = { ...badBandwidth, linkBandwidth: 1, kernelTable: { ...table, sharedMs: table.sharedMs.map((row) => row.slice(1)) } };
    expect(() => loadProfile(write('ragged.json', ragged))).toThrow(/kernelTable.sharedMs\[0\]/);
    const falling = { ...badBandwidth, linkBandwidth: 1, kernelTable: { ...table, keyRows: [...table.keyRows].reverse() } };
    expect(() => loadProfile(write('falling.json', falling))).toThrow(/kernelTable.keyRows.*rising/);
    expect(() => loadProfile(write('threads.json', { ...badBandwidth, linkBandwidth: 1, hostThreads: 0.5 }))).toThrow(/hostThreads/);
  });

  it('says how to calibrate when no calibrated profile exists', () => {
    process.env['SEQPAR_PROFILE'] = join(dir, 'never-written.json');
    try {
      expect(() => loadProfile('calibrated')).toThrow(/seqpar plan --calibrate/);
    } finally {
      delete process.env['SEQPAR_PROFILE'];
    }
  });
});
