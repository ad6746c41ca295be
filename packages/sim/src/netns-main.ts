/**
 * `node packages/sim/dist/netns-main.js [options]`: one request on a cluster of real `seqpar` processes in network
 * namespaces (netns-cluster.ts). Prints one JSON object on stdout (the client's summary, link byte counts and the
 * namespaces used), writes the merged trace with --trace. Needs root and iproute2. Exit 0 ok, 1 failure (or not
 * permitted here, with the reason), 2 usage error. SIGINT/SIGTERM tear the cluster down before exiting.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SeqparError } from '@seqpar/core';
import { runNetnsCluster } from './netns-cluster.js';

const USAGE = `usage: netns-main [--workers N] [--strategy ring] [--seq S] [--heads H] [--kv-heads K] [--head-dim D] [--causal]
                  [--delay-ms MS] [--jitter-ms MS] [--rate-mbit R] [--trace FILE] [--seqpar PATH_TO_BIN]`;

const count = (text: string | undefined, fallback: number, name: string): number => {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new SeqparError('ERR_USAGE', `--${name} must be a non-negative number, got '${text}'\n${USAGE}`, { exitCode: 2 });
  return value;
};

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(
          ['workers', 'strategy', 'seq', 'heads', 'kv-heads', 'head-dim', 'delay-ms', 'jitter-ms', 'rate-mbit', 'trace', 'seqpar'].map((name) => [
            name,
            { type: 'string' as const },
          ]),
        ),
        causal: { type: 'boolean' },
      },
    }).values as Record<string, string | undefined> & { causal?: boolean };
  } catch (error) {
    throw new SeqparError('ERR_USAGE', `${(error as Error).message}\n${USAGE}`, { exitCode: 2 });
  }
  const shape = {
    ...(parsed['delay-ms'] !== undefined ? { delayMs: count(parsed['delay-ms'], 0, 'delay-ms') } : {}),
    ...(parsed['jitter-ms'] !== undefined ? { jitterMs: count(parsed['jitter-ms'], 0, 'jitter-ms') } : {}),
    ...(parsed['rate-mbit'] !== undefined ? { rateMbit: count(parsed['rate-mbit'], 0, 'rate-mbit') } : {}),
  };
  const seqpar = parsed.seqpar ?? fileURLToPath(new URL('../../../apps/cli/bin/seqpar.js', import.meta.url));
  const result = await runNetnsCluster({
    workers: count(parsed.workers, 2, 'workers'),
    seqpar: [process.execPath, seqpar],
    request: {
      seq: count(parsed.seq, 1024, 'seq'),
      heads: count(parsed.heads, 4, 'heads'),
      kvHeads: count(parsed['kv-heads'], 2, 'kv-heads'),
      headDim: count(parsed['head-dim'], 32, 'head-dim'),
      strategy: parsed.strategy ?? 'ring',
      causal: parsed.causal === true,
    },
    ...(Object.keys(shape).length ? { shape } : {}),
  });
  if (parsed.trace) await writeFile(parsed.trace, JSON.stringify(result.trace));
  process.stdout.write(`${JSON.stringify({ ...result.summary, links: result.links, namespaces: [result.plan.coordinatorNs, ...result.plan.workerNs] })}\n`);
}

// The harness's 'exit' handler deletes the namespaces; a signal must end the process through exit to run it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
try {
  await main(process.argv.slice(2));
} catch (error) {
  const { code = 'ERR_INTERNAL', message, exitCode = 1 } = error as SeqparError;
  process.stderr.write(`netns-main: ${code}: ${message}\n`);
  process.exitCode = exitCode;
}
