import { spawn, spawnSync } from 'node:child_process';
import { SeqparError } from '@seqpar/core';
import { NETNS_PREFIX } from './netns-plan.js';

/** Runs one command (no shell) within `timeoutMs`; rejects with its stderr when it fails. */
export function execCommand(argv: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const failed = (why: string) => new SeqparError('ERR_TRANSPORT_UNAVAILABLE', `\`${argv.join(' ')}\` ${why}`);
    child.once('error', (error) => (clearTimeout(timer), reject(failed(`could not start: ${error.message}`))));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(failed(signal ? `was killed (${signal}) after ${timeoutMs} ms` : `failed (${code}): ${stderr.trim()}`));
    });
  });
}

export type NetnsSupport = { readonly ok: true; readonly netem: boolean } | { readonly ok: false; readonly reason: string };

/**
 * Whether this process may build namespaced clusters: Linux, root, iproute2's `ip`, and `ip netns add` allowed
 * (containers often refuse it). `netem` says whether tc can delay packets (CONFIG_NET_SCH_NETEM); rates alone use
 * tbf. The probe namespace is deleted again.
 */
export async function netnsSupport(): Promise<NetnsSupport> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces are Linux only (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN' };
  if (
    !(await execCommand(['ip', '-V']).then(
      () => true,
      () => false,
    ))
  )
    return { ok: false, reason: "no 'ip' command (Debian: apt-get install -y iproute2)" };
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  try {
    await execCommand(['ip', 'netns', 'add', probe]);
  } catch (error) {
    return { ok: false, reason: `'ip netns add' was refused: ${(error as Error).message}` };
  }
  try {
    const netem = await execCommand(['tc', '-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).then(
      () => true,
      () => false,
    );
    return { ok: true, netem };
  } finally {
    await execCommand(['ip', 'netns', 'del', probe]).catch(() => undefined);
  }
}

/** Names of this host's network namespaces that a seqpar harness created. */
export async function seqparNamespaces(): Promise<string[]> {
  const listing = await execCommand(['ip', 'netns', 'list']);
  return listing
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name.startsWith(NETNS_PREFIX));
}

/**
 * Deletes namespaces left by a harness process that no longer runs (killed before it could clean up): their
 * names start with the creator's pid. Returns the names deleted.
 */
export async function sweepOrphanNamespaces(): Promise<string[]> {
  const orphans = (await seqparNamespaces()).filter((name) => !isAlive(Number(name.slice(NETNS_PREFIX.length).split('-')[0])));
  for (const name of orphans) await execCommand(['ip', 'netns', 'del', name]).catch(() => undefined);
  return orphans;
}

/** Last-resort teardown from an 'exit' handler, where nothing asynchronous runs any more. */
export function deleteNamespacesSync(teardown: readonly string[][]): void {
  for (const argv of teardown) spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 5000 });
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
