import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SeqparError } from '@seqpar/core';
import { formatLogRecord } from '../src/logger.js';

/** The records a pino logger of `rank` writes, as createLogger configures it, each formatted for a person. */
function formatted(rank: number | 'coordinator', write: (log: pino.Logger) => void): string[] {
  const records: string[] = [];
  const log = pino({ level: 'info', base: { rank, pid: process.pid } }, { write: (record: string) => void records.push(record) });
  write(log);
  return records.map(formatLogRecord);
}

describe('log lines', () => {
  it('a typed error is one line with its code, no stack; other fields follow as name=value', () => {
    const lost = new SeqparError('ERR_PEER_LOST', 'lost rank 1: connection closed (code 1006)');
    expect(
      formatted('coordinator', (log) => {
        log.error({ err: lost }, 'could not rebuild the cluster, retrying');
        log.warn({ lost: 1, code: lost.code, reason: lost.message }, 'worker lost');
        log.warn('coordinator 127.0.0.1:29500 not reachable yet');
      }),
    ).toEqual([
      'seqpar[coordinator]: could not rebuild the cluster, retrying: lost rank 1: connection closed (code 1006) (ERR_PEER_LOST)\n',
      'seqpar[coordinator]: worker lost: lost rank 1: connection closed (code 1006) [lost=1] (ERR_PEER_LOST)\n',
      'seqpar[coordinator]: coordinator 127.0.0.1:29500 not reachable yet\n',
    ]);
  });

  it('an error without a code (a bug) keeps its stack; levels below warn are named', () => {
    const [bug, info] = formatted(0, (log) => {
      log.error({ err: new TypeError('x is undefined') }, 'request failed');
      log.info({ outcome: 'reset' }, 'left the world');
    });
    expect(bug).toMatch(/^seqpar\[0\]: request failed: x is undefined\n {4}TypeError: x is undefined\n {8}at /);
    expect(info).toBe('seqpar[0] info: left the world [outcome=reset]\n');
  });
});
