import { fork, type ChildProcess } from 'node:child_process';
import { runnableEntry, SeqparError } from '@seqpar/core';
import type { PeerCommand } from './conformance-commands.js';
import type { ShmTransportOptions } from './shm-transport.js';
import type { TransportKind } from './transport.js';

/** A conformance peer running in its own process (conformance-peer.ts), driven over IPC; used by tests and bench. */
export interface PeerProcess {
  readonly child: ChildProcess;
  /** Resolves once the child's transport is connected. */
  readonly ready: Promise<void>;
  run(command: PeerCommand, timeoutMs?: number): Promise<unknown>;
  /** The child exits at once (no goodbye on the transport). */
  exitAbruptly(): void;
  kill(): Promise<void>;
}

export function spawnPeerProcess(kind: TransportKind, options: ShmTransportOptions): PeerProcess {
  const child = fork(runnableEntry(import.meta.url, 'conformance-peer'), [JSON.stringify({ kind, ...options })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The child runs compiled JS: drop the test runner's flags (e.g. the @seqpar/source condition).
    execArgv: [],
    env: { ...process.env, NODE_OPTIONS: (process.env.NODE_OPTIONS ?? '').replace(/(--conditions|-C)[= ]\S+/g, '') },
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { id?: number; ready?: boolean; result?: unknown; error?: { code: string; message: string } }) => {
      if (message.ready !== undefined) return message.ready ? resolve() : reject(toError(message.error!));
      const entry = pending.get(message.id!);
      pending.delete(message.id!);
      if (message.error) entry?.reject(toError(message.error));
      else entry?.resolve(message.result);
    });
    child.once('exit', (code) => {
      const error = new SeqparError('ERR_PEER_LOST', `peer process exited with ${code}`);
      reject(error);
      for (const entry of pending.values()) entry.reject(error);
    });
  });
  ready.catch(() => {});
  return {
    child,
    ready,
    run(command, timeoutMs = 30_000) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new SeqparError('ERR_TIMEOUT', `peer command ${command.op} timed out`)), timeoutMs);
        pending.set(id, { resolve: (v) => (clearTimeout(timer), resolve(v)), reject: (e) => (clearTimeout(timer), reject(e)) });
        child.send({ id, command });
      });
    },
    exitAbruptly() {
      child.send({ id: -1, command: { op: 'exit' } });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function toError(error: { code: string; message: string }): SeqparError {
  return new SeqparError((error.code as SeqparError['code']) ?? 'ERR_INTERNAL', error.message);
}
