import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { STRATEGY_NAMES, type StrategyName } from '@seqpar/core';
import { loadProfile, profileNames, workloadOf } from '@seqpar/planner';
import { projectionTrace, simulate } from '@seqpar/sim';
import { log, printJson } from '../output.js';
import { commaList, positiveInt } from '../options.js';
import { addWorkloadOptions, formatMs, maskOf, requestOf, table, type WorkloadOptions } from './plan.js';
import { examples } from '../help-examples.js';

interface SimulateOptions extends WorkloadOptions {
  profile: string;
  workers: number;
  strategy: StrategyName[];
  ulyssesDegree?: number;
  json: boolean;
  trace?: string;
}

export function register(program: Command): void {
  const command = program
    .command('simulate')
    .summary('project strategies onto declared hardware with a discrete-event replay of their schedules')
    .description(
      'Replays each strategy step by step on N ranks of a hardware profile (compute from its FLOP/s, messages on\n' +
        'FIFO ports with its bandwidth and latency) and prints predicted wall time and per-rank utilisation.\n' +
        'Heads default to 8 query / 8 kv / head dim 64.',
    )
    .requiredOption('--profile <name|file.json>', `hardware profile: ${profileNames().join(', ')}, or a profile JSON file`)
    .requiredOption('--workers <n>', 'ranks to project onto', positiveInt)
    .requiredOption('--strategy <a,b,...>', `strategies to compare: ${STRATEGY_NAMES.join(', ')}`, commaList(STRATEGY_NAMES))
    .option('--ulysses-degree <u>', 'usp: ranks per all-to-all group (default: the most that fit one host of the profile)', positiveInt)
    .option('--json', 'print one JSON object {results: [{strategy, predictedMs, utilization, ...}]} on stdout', false)
    .option('--trace <file>', 'write a Chrome trace-event JSON of the projection (the first strategy; open in Perfetto)')
    .addHelpText(
      'after',
      examples(
        'seqpar simulate --profile h100-nvlink --workers 8 --seq 1048576 --causal --strategy ring,zigzag,ulysses',
        'seqpar simulate --profile a100-pcie --workers 4 --seq 131072 --kv-heads 2 --strategy ring,striped --trace sim.json',
        'seqpar simulate --profile calibrated --workers 2 --seq 16384 --strategy single,zigzag --json   # after plan --calibrate',
        'seqpar simulate --profile a100-nvlink --workers 2 --seq 16384 --causal --doc-lens 12288,2048,2048 --strategy single,zigzag',
      ),
    );
  addWorkloadOptions(command).action((options: SimulateOptions) => {
    const profile = loadProfile(options.profile);
    const w = workloadOf(requestOf(options), profile);
    const results = options.strategy.map((strategy) => simulate(strategy, w, options.workers, profile, strategy === 'usp' ? options.ulyssesDegree : undefined));
    if (options.trace) {
      const first = results[0]!;
      writeFileSync(options.trace, JSON.stringify(projectionTrace(first.projection, first.degree)));
      log(`trace of ${first.strategy} written to ${options.trace}`);
    }
    const rows = results.map(({ strategy, degree, ulyssesDegree, predictedMs, utilization, rankBusy, idealMs, peakMemoryBytes }) => ({
      strategy,
      degree,
      ...(ulyssesDegree === undefined ? {} : { ulyssesDegree }),
      predictedMs,
      utilization,
      rankBusy,
      idealMs,
      peakMemoryBytes,
    }));
    if (options.json) {
      printJson({ profile: profile.name, workers: options.workers, seq: options.seq, prefix: options.prefix, causal: options.causal, ...maskOf(options), results: rows });
      return;
    }
    log(`profile ${profile.name}: ${profile.source}`);
    process.stdout.write(
      table(
        ['strategy', 'ranks', 'predicted', 'ideal', 'utilisation'],
        rows.map((r) => [
          r.ulyssesDegree === undefined ? r.strategy : `usp U=${r.ulyssesDegree}`,
          String(r.degree),
          formatMs(r.predictedMs),
          formatMs(r.idealMs),
          `${(100 * r.utilization).toFixed(1)}%`,
        ]),
      ),
    );
  });
}
