import { describe, expect, it } from 'vitest';
import { launcherEnv } from '../src/worker/launcher-env.js';

describe('launcherEnv', () => {
  it('reads the torchrun variables, with MASTER_ADDR:MASTER_PORT as the coordinator', () => {
    const env = { RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1', MASTER_ADDR: '10.0.0.2', MASTER_PORT: '29500' };
    expect(launcherEnv(env)).toEqual({ launcher: 'torchrun', rank: 3, worldSize: 8, localRank: 1, coordinator: '10.0.0.2:29500' });
  });

  it('reads SLURM', () => {
    expect(launcherEnv({ SLURM_PROCID: '5', SLURM_NTASKS: '16', SLURM_LOCALID: '1' })).toEqual({ launcher: 'slurm', rank: 5, worldSize: 16, localRank: 1 });
  });

  it('reads a Kubernetes indexed Job (one worker per pod)', () => {
    expect(launcherEnv({ JOB_COMPLETION_INDEX: '2' })).toEqual({ launcher: 'kubernetes', rank: 2, localRank: 0 });
  });

  it('prefers torchrun over SLURM when both are set', () => {
    expect(launcherEnv({ RANK: '0', WORLD_SIZE: '2', SLURM_PROCID: '7' }).launcher).toBe('torchrun');
  });

  it('leaves out what is not set', () => {
    expect(launcherEnv({})).toEqual({ launcher: 'none' });
    expect(launcherEnv({ RANK: '1' })).toEqual({ launcher: 'torchrun', rank: 1 });
  });

  it('refuses malformed numbers with a usage error', () => {
    expect(() => launcherEnv({ RANK: 'one' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => launcherEnv({ RANK: '-1' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => launcherEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '0' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});
