/**
 * Child process for the conformance tests and the benchmark: joins a transport group as `rank` (argv[2] is a
 * JSON of ShmTransportOptions plus `kind`) and runs PeerCommands that arrive over IPC, replying
 * `{ id, result }` or `{ id, error: { code, message } }`. `{ op: 'exit' }` exits at once, mid-transfer or not.
 */
import { runPeerCommand, type PeerCommand } from './conformance-commands.js';
import { createTransport } from './create-transport.js';
import type { ShmTransportOptions } from './shm-transport.js';
import type { TransportKind } from './transport.js';

const { kind, ...options } = JSON.parse(process.argv[2]!) as ShmTransportOptions & { kind: TransportKind };
const reply = (message: unknown) => process.send!(message);
process.on('disconnect', () => process.exit(0));

try {
  const transport = await createTransport(kind, options);
  reply({ ready: true });
  process.on('message', (message: { id: number; command: PeerCommand | { op: 'exit' } }) => {
    if (message.command.op === 'exit') process.exit(3);
    runPeerCommand(transport, message.command).then(
      (result) => reply({ id: message.id, result }),
      (error: { code?: string; message: string }) => reply({ id: message.id, error: { code: error.code, message: error.message } }),
    );
  });
} catch (error) {
  reply({ ready: false, error: { code: (error as { code?: string }).code, message: (error as Error).message } });
  process.exit(1);
}
