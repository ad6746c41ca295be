import { SeqparError } from '@seqpar/core';

/** host and port of a HOST:PORT (IPv6 hosts in brackets or bare); a malformed one is a usage error. */
export function splitListen(listen: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!match || Number(match[2]) > 65_535) throw new SeqparError('ERR_USAGE', `expected HOST:PORT, got '${listen}'`, { exitCode: 2 });
  return { host: match[1]!, port: Number(match[2]) };
}

/**
 * Where clients reach a coordinator listening for workers on `listen`, unless told otherwise: the same host, the
 * next port (port 0, any free port, stays 0).
 */
export function defaultClientListen(listen: string): string {
  const { host, port } = splitListen(listen);
  return `${host.includes(':') ? `[${host}]` : host}:${port === 0 ? 0 : port + 1}`;
}
