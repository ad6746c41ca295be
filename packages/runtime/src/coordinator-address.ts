import { SeqparError, UsageError } from '@seqpar/core';
import { WrongWorldError } from '@seqpar/transport';

/**
 * A coordinator has two doors, each a rendezvous whose hello declares the world behind it: workers join a
 * world of `workers + 1` ranks (the coordinator is the last) at its worker address, clients a 2-rank session
 * at its client address. These name the roles, and turn a refusal at the wrong door into what to change.
 */
export const WORKER_ROLE = 'worker';
export const CLIENT_ROLE = 'client';

/** What a worker (`side` 'worker', `workers` its world size) or a client is told when `coordinator` does not lead to its world. */
export function explainJoinFailure(error: unknown, coordinator: string, side: typeof WORKER_ROLE | typeof CLIENT_ROLE, workers?: number): unknown {
  if (error instanceof WrongWorldError) {
    if (side === WORKER_ROLE && error.serves.role === CLIENT_ROLE) {
      return new UsageError(`${coordinator} is a coordinator's client address: workers connect to its worker address (the one given to --listen)`);
    }
    if (side === CLIENT_ROLE && error.serves.role === WORKER_ROLE) {
      return new UsageError(
        `${coordinator} is a coordinator's worker address: clients connect to its client address ('clients to HOST:PORT' in its first line; by default the next port)`,
      );
    }
    if (side === WORKER_ROLE && error.serves.worldSize !== undefined) {
      return new UsageError(
        `the coordinator at ${coordinator} runs ${error.serves.worldSize - 1} worker(s); this worker was given a world size of ${workers} (--world-size or WORLD_SIZE)`,
      );
    }
    return error;
  }
  if (error instanceof SeqparError && error.code === 'ERR_UNREACHABLE') {
    return new SeqparError('ERR_UNREACHABLE', `${error.message}; is \`seqpar coordinator\` running there, and is this its ${side} address?`, { cause: error });
  }
  return error;
}
