import { UsageError } from '@seqpar/core';
import { createShmTransport, type ShmTransportOptions } from './shm-transport.js';
import type { LinkConditions } from './transport-base.js';
import type { Transport, TransportKind } from './transport.js';
import { createWsTransport } from './ws-transport.js';

/**
 * One rank's endpoint of a multi-process transport, by name. `inproc` needs every endpoint in one process:
 * use createInprocGroup(n) for it. `LinkConditions` (checksum, links, faults) apply to either kind.
 */
export function createTransport(kind: TransportKind, options: ShmTransportOptions & LinkConditions): Promise<Transport> {
  switch (kind) {
    case 'ws':
      return createWsTransport(options);
    case 'shm':
      return createShmTransport(options);
    case 'inproc':
      throw new UsageError('the inproc transport lives in one process: use createInprocGroup(n)');
    default:
      throw new UsageError(`unknown transport '${String(kind)}' (inproc, ws or shm)`);
  }
}
