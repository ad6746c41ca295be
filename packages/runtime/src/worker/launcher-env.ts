import { UsageError } from '@seqpar/core';

/** What a launcher told this process about its place in the job. Absent fields were not set. */
export interface LauncherEnv {
  /** Which launcher's variables were found. */
  readonly launcher: 'torchrun' | 'slurm' | 'kubernetes' | 'none';
  readonly rank?: number;
  readonly worldSize?: number;
  /** Index among the workers on this host: the device index to drive. */
  readonly localRank?: number;
  /** host:port of the coordinator (torchrun's MASTER_ADDR:MASTER_PORT). */
  readonly coordinator?: string;
}

/**
 * Reads rank and world from the environment the usual launchers set, in this order: torchrun (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT), SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), a Kubernetes indexed
 * Job (JOB_COMPLETION_INDEX; one worker per pod, so local rank 0). Pure: pass `process.env`.
 */
export function launcherEnv(env: Readonly<Record<string, string | undefined>>): LauncherEnv {
  if (env.RANK !== undefined) {
    const coordinator = env.MASTER_ADDR && env.MASTER_PORT ? `${env.MASTER_ADDR}:${count(env, 'MASTER_PORT')}` : undefined;
    return definedFields({
      launcher: 'torchrun',
      rank: count(env, 'RANK'),
      worldSize: positive(env, 'WORLD_SIZE'),
      localRank: count(env, 'LOCAL_RANK'),
      coordinator,
    });
  }
  if (env.SLURM_PROCID !== undefined) {
    return definedFields({ launcher: 'slurm', rank: count(env, 'SLURM_PROCID'), worldSize: positive(env, 'SLURM_NTASKS'), localRank: count(env, 'SLURM_LOCALID') });
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    return { launcher: 'kubernetes', rank: count(env, 'JOB_COMPLETION_INDEX'), localRank: 0 };
  }
  return { launcher: 'none' };
}

function count(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`environment variable ${name}='${text}' is not a non-negative integer`);
  return Number(text);
}

function positive(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const value = count(env, name);
  if (value === 0) throw new UsageError(`environment variable ${name} must be at least 1`);
  return value;
}

function definedFields(env: { [K in keyof LauncherEnv]: LauncherEnv[K] | undefined }): LauncherEnv {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined)) as unknown as LauncherEnv;
}
