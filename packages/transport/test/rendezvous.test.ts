import { afterEach, describe, expect, it } from 'vitest';
import { joinRendezvous, startRendezvous } from '../src/rendezvous.js';

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
});
