import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { joinRendezvous, startRendezvous } from '../src/rendezvous.js';
import type { ConnectRetry } from '../src/ws-connect.js';
import { WrongWorldError } from '../src/ws-handshake.js';

const token = 'rendezvous-token';
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((step) => step()));
  cleanup = [];
});

async function rendezvous(openRounds?: number) {
  const server = await startRendezvous({ worldSize: 2, token, ...(openRounds ? { openRounds } : {}) });
  cleanup.push(() => server.close());
  return (rank: number, address: string) => joinRendezvous({ rendezvous: server.address, token, rank, worldSize: 2, address, timeoutMs: 3000 });
}

describe('rendezvous', () => {
  it('refuses a rank registered twice in its one round, and the round still completes', async () => {
    const join = await rendezvous();
    const first = join(1, 'first:1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(join(1, 'second:1')).rejects.toMatchObject({ code: 'ERR_AUTH' });
    expect(await join(0, 'zero:1')).toEqual(['zero:1', 'first:1']);
    expect(await first).toEqual(['zero:1', 'first:1']);
  });

  it('fills several rounds at once, each rank joining the oldest round that lacks it', async () => {
    const join = await rendezvous(4);
    const ones = [join(1, 'a:1'), join(1, 'b:1'), join(1, 'c:1')];
    await new Promise((resolve) => setTimeout(resolve, 100));
    const zeros = [join(0, 'x:1'), join(0, 'y:1'), join(0, 'z:1')];
    const rounds = await Promise.all([...ones, ...zeros]);
    expect(new Set(rounds.map((round) => round.join(' '))).size).toBe(3);
    expect(
      rounds
        .slice(0, 3)
        .map((round) => round[1])
        .sort(),
    ).toEqual(['a:1', 'b:1', 'c:1']);
  });

  it('refuses a dialer that declared another role or world size before it authenticates, telling it what the port serves', async () => {
    const server = await startRendezvous({ worldSize: 3, token, role: 'worker' });
    cleanup.push(() => server.close());
    const join = (role: string, worldSize: number, dialToken = token) =>
      joinRendezvous({ rendezvous: server.address, token: dialToken, rank: 0, worldSize, role, address: 'me:1', timeoutMs: 3000 });
    // The wrong token too: the refusal comes from the hello, before any proof.
    for (const refused of [join('client', 2), join('worker', 4, 'not-the-token')]) {
      const error = await refused.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(WrongWorldError);
      expect(error).toMatchObject({ code: 'ERR_USAGE', exitCode: 2, serves: { role: 'worker', worldSize: 3 } });
      expect((error as Error).message).toBe(
        `${server.address} serves worker ranks of a world of 3, not ${(error as WrongWorldError).declared.role} ranks of a world of ${(error as WrongWorldError).declared.worldSize}`,
      );
    }
  });

  it('gives up on an address where nothing listens after reachWithinMs, with ERR_UNREACHABLE naming it, telling each retry', async () => {
    const port = await closedPort();
    const retries: ConnectRetry[] = [];
    const started = performance.now();
    const joining = joinRendezvous({
      rendezvous: `127.0.0.1:${port}`,
      token,
      rank: 0,
      worldSize: 2,
      address: 'me:1',
      timeoutMs: 30_000,
      reachWithinMs: 1500,
      onRendezvousRetry: (retry) => retries.push(retry),
    });
    await expect(joining).rejects.toMatchObject({ code: 'ERR_UNREACHABLE', message: `cannot connect to 127.0.0.1:${port}: connection refused (nothing listens there)` });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(retries.length).toBeGreaterThanOrEqual(3);
    expect(retries[0]).toMatchObject({ address: `127.0.0.1:${port}`, reason: 'connection refused (nothing listens there)', delayMs: 50 });
    expect(retries.map((retry) => retry.delayMs).slice(1, 4)).toEqual([100, 200, 400]);
  });

  it('names an unknown host', async () => {
    const joining = joinRendezvous({ rendezvous: 'no-such-host.invalid:29500', token, rank: 0, worldSize: 2, address: 'me:1', timeoutMs: 30_000, reachWithinMs: 500 });
    await expect(joining).rejects.toMatchObject({ code: 'ERR_UNREACHABLE', message: "cannot connect to no-such-host.invalid:29500: unknown host 'no-such-host.invalid'" });
  });
});

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
