// `seqpar serve` under load: a tiny 4-layer model (hidden 256, 8/2 heads) on 2 shm worker processes, an HTTP
// server on 127.0.0.1, and streaming clients that time every token. In one run:
// (a) decode throughput of 1, 4, 8, 16 concurrent streams of 2k-token prompts (128 tokens each, ignore_eos): each
//     level a wave of that many streams started together, two interleaved rounds; decode tokens/s counts the
//     tokens after the wave's last first token over the time from then to its last token (the wave's prefills
//     done); end-to-end tokens/s (prefill included) next to it;
// (b) for each prefill chunk size (the server's --prefill-chunk; --chunks 256,512,1024,2048): a 512-token request's
//     TTFT alone, the 32k-token prompt's TTFT alone, and both with the 512-token request sent 1 s into the 32k
//     prefill; and the time of the largest prefill piece at that chunk size (below);
// (c) a mixed load: --requests (200) prompts of log-uniform lengths 256..--max-len (32768) at concurrency 32:
//     p50/p99 TTFT and inter-token latency, none lost, every refusal a typed 413/429.
// Flags: --requests N, --max-len L, --skip-b. Writes bench-results/serve.{json,md} and serve.svg.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '@seqpar/core';
import { attentionKeysWithin, ComputeThread, createAttentionKernel, withComputePriority } from '@seqpar/kernels';
import { loadModel, makeTinyModel, RankModel } from '@seqpar/model';
import { createCluster } from '@seqpar/runtime';
import { DEFAULT_PREFILL_CHUNK, startServer } from '@seqpar/serve';
import { planPieces } from '@seqpar/strategies';
import { writeReport } from './bench-report.mjs';

const MODEL = { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1 };
const CONCURRENCY = [1, 4, 8, 16];
const WORKERS = 2;
const LONG = 32768;
const DECODE_TOKENS = 128;
const CHUNKS = [256, 512, 1024, 2048];

/** One streamed completion: when each token arrived, or the refusal's status and code. */
async function stream(url, prompt, maxTokens) {
  const sent = performance.now();
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, return_token_ids: true }),
  });
  if (response.status !== 200) return { status: response.status, code: (await response.json()).error?.code, times: [] };
  const times = [];
  let error;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const bytes of response.body) {
    buffered += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end).replace(/^data: /, '');
      buffered = buffered.slice(end + 2);
      if (event === '[DONE]') continue;
      const body = JSON.parse(event);
      if (body.error) error = body.error.code;
      else for (const _ of body.choices[0]?.token_ids ?? []) times.push(performance.now() - sent);
    }
  }
  return { status: error ? 'error' : 200, code: error, times };
}

const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const gaps = (times) => times.slice(1).map((t, i) => t - times[i]);
const promptOf = (length, seed) => {
  const random = seededRandom(seed);
  return Array.from({ length }, () => Math.floor(random() * 256));
};

/** Runs `prompts` through `concurrency` clients, each taking the next prompt when its last one ends. */
async function load(url, prompts, concurrency, maxTokens) {
  const results = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < prompts.length) {
        const prompt = prompts[next++];
        results.push({ length: prompt.length, ...(await stream(url, prompt, maxTokens)) });
      }
    }),
  );
  return { results, wallMs: performance.now() - started };
}

/** Tokens a wave of streams decoded after its last first token, and over how long (to its last token). */
function decodeWindow(results) {
  const done = results.filter((r) => r.status === 200 && r.times.length > 0);
  const from = Math.max(...done.map((r) => r.times[0]));
  const to = Math.max(...done.map((r) => r.times.at(-1)));
  return { tokens: done.reduce((sum, r) => sum + r.times.filter((t) => t > from).length, 0), ms: to - from };
}

/**
 * One piece of a long prefill as a compute thread sees it: the longest single call the prefill of one worker's
 * shard makes, which the thread runs to its end before a decode step or a short prompt's work can go. Those calls
 * are the token-local graphs over one row tile (RankModel.tileRows, from the kernel workspace budget) and the
 * largest attention piece a shard's causal block is cut into (strategies' planPieces), both at most `chunk` rows
 * (the server's prefill chunk). Each timed alone on a compute thread of this process (one intra-op thread, as the
 * workers run), after a warm-up run; the piece is the longest.
 */
async function prefillPiece(modelDir, shard, chunk) {
  const thread = await ComputeThread.start();
  try {
    const kernel = await createAttentionKernel({}, thread);
    const loaded = await loadModel(modelDir);
    const model = await RankModel.load(loaded.config, loaded.weights, thread, 'piece');
    const random = seededRandom(3);
    const tile = Float32Array.from({ length: 1 << 16 }, () => random() - 0.5);
    const tensor = (...shape) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let at = 0; at < data.length; at += tile.length) data.set(tile.subarray(0, Math.min(tile.length, data.length - at)), at);
      return { data, shape };
    };
    const { hidden, heads, kvHeads } = MODEL;
    const dim = hidden / heads;
    const timed = async (run) => {
      await run();
      const started = performance.now();
      await run();
      return performance.now() - started;
    };
    const area = (piece) => (piece.query.end - piece.query.start) * (piece.key.end - piece.key.start);
    const largest = planPieces(shard, shard, { kind: 'causal-inclusive' }, attentionKeysWithin(heads, dim), chunk).reduce((a, b) => (area(b) > area(a) ? b : a));
    const [rows, keys] = [largest.query.end - largest.query.start, largest.key.end - largest.key.start];
    const tileRows = Math.min(model.tileRows, chunk);
    const [q, k, v] = [tensor(rows, heads, dim), tensor(keys, kvHeads, dim), tensor(keys, kvHeads, dim)];
    const [x, attended] = [tensor(tileRows, hidden), tensor(tileRows, heads, dim)];
    const positions = Array.from({ length: tileRows }, (_, i) => i);
    // Inside the chunk's compute scope, as the workers run a prefill: the layer graphs' row tiles follow it.
    const inChunk = (run) => withComputePriority(1, run, chunk);
    const pieces = {
      attentionMs: await timed(() => kernel.attend(q, k, v, largest.mask)),
      preAttentionMs: await timed(() => inChunk(() => model.preAttention(0, x, positions))),
      postAttentionMs: await timed(() => inChunk(() => model.postAttention(0, x, attended))),
    };
    return { chunk, ...pieces, ms: Math.max(...Object.values(pieces)), tileRows, attentionShape: `${rows} x ${keys} (${largest.mask.kind})` };
  } finally {
    await thread.close();
  }
}

/**
 * Part (b) at one prefill chunk size: a server with that chunk on the running cluster; the 512-token request alone,
 * the 32k prompt alone, then the 512-token request sent 1 s into the 32k prompt's prefill.
 */
async function beside(cluster, dir, piece) {
  const server = await startServer({ cluster, modelDir: dir, port: 0, prefillChunk: piece.chunk });
  try {
    const [short, longPrompt] = [promptOf(512, 7), promptOf(LONG, 8)];
    const shortAlone = await stream(server.url, short, 8);
    const longAlone = await stream(server.url, longPrompt, 8);
    const long = stream(server.url, longPrompt, 8);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the long prefill is under way
    const behind = await stream(server.url, short, 8);
    const longBeside = await long;
    const row = {
      chunk: piece.chunk,
      pieceMs: piece.ms,
      piece,
      tileRows: piece.tileRows,
      attentionShape: piece.attentionShape,
      shortAloneMs: shortAlone.times[0],
      longAloneMs: longAlone.times[0],
      shortBehindLongMs: behind.times[0],
      longBesideMs: longBeside.times[0],
    };
    process.stderr.write(
      `(b) chunk ${row.chunk}: 512 alone ${row.shortAloneMs.toFixed(0)} ms, behind the 32k prefill ${row.shortBehindLongMs.toFixed(0)} ms (piece ${row.pieceMs.toFixed(0)} ms); 32k alone ${row.longAloneMs.toFixed(0)} ms, beside ${row.longBesideMs.toFixed(0)} ms\n`,
    );
    return row;
  } finally {
    await server.close();
  }
}

/** Part (b)'s verdict per chunk size: the short request's wait against one piece, the long prompt against its unchunked TTFT. */
function chunkNote(row, unchunkedMs) {
  const bound = row.shortAloneMs + row.pieceMs;
  const ratio = row.longBesideMs / unchunkedMs;
  return `chunk ${row.chunk}: 512-token TTFT ${row.shortBehindLongMs.toFixed(0)} ms beside the 32k prefill, bound ${row.shortAloneMs.toFixed(0)} alone + ${row.pieceMs.toFixed(0)} piece = ${bound.toFixed(0)} ms (${row.shortBehindLongMs <= bound ? 'met' : 'not met'}); the 32k prompt ${(row.longAloneMs / 1000).toFixed(1)} s alone, ${(row.longBesideMs / 1000).toFixed(1)} s beside it = ${ratio.toFixed(3)}x unchunked alone (<= 1.15x: ${ratio <= 1.15 ? 'met' : 'not met'})`;
}

function summary(results, wallMs) {
  const done = results.filter((r) => r.status === 200);
  const tokens = done.reduce((sum, r) => sum + r.times.length, 0);
  return {
    tokensPerSec: tokens / (wallMs / 1000),
    ttftP50Ms: percentile(
      done.map((r) => r.times[0]),
      50,
    ),
    ttftP99Ms: percentile(
      done.map((r) => r.times[0]),
      99,
    ),
    itlP50Ms: percentile(
      done.flatMap((r) => gaps(r.times)),
      50,
    ),
    itlP99Ms: percentile(
      done.flatMap((r) => gaps(r.times)),
      99,
    ),
    completed: done.length,
    refused: results
      .filter((r) => r.status === 413 || r.status === 429)
      .map((r) => `${r.status} ${r.code}`)
      .join(', '),
    lost: results.filter((r) => r.status !== 200 && r.status !== 413 && r.status !== 429).length,
  };
}

/** Throughput against concurrency as a hand-drawn SVG line chart. */
function chart(points) {
  const [w, h, left, bottom, top, right] = [560, 340, 70, 50, 30, 20];
  const maxY = Math.max(...points.map((p) => p.y)) * 1.15;
  const maxX = Math.max(...points.map((p) => p.x));
  const x = (v) => left + (v / maxX) * (w - left - right);
  const y = (v) => h - bottom - (v / maxY) * (h - bottom - top);
  const ticks = Array.from({ length: 5 }, (_, i) => (maxY * i) / 4);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="18" text-anchor="middle" font-size="14">seqpar serve: decode tokens/s against concurrent streams (2k-token prompts)</text>`,
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="black"/>`,
    ...ticks.map(
      (t) => `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(0)}</text><line x1="${left}" y1="${y(t)}" x2="${w - right}" y2="${y(t)}" stroke="#ddd"/>`,
    ),
    ...points.map((p) => `<text x="${x(p.x)}" y="${h - bottom + 18}" text-anchor="middle">${p.x}</text>`),
    `<text x="${(left + w - right) / 2}" y="${h - 10}" text-anchor="middle">concurrent streams</text>`,
    `<text x="16" y="${(top + h - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + h - bottom) / 2})">decode tokens/s</text>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points.map((p) => `${x(p.x)},${y(p.y)}`).join(' ')}"/>`,
    ...points.map((p) => `<circle cx="${x(p.x)}" cy="${y(p.y)}" r="4" fill="#1f77b4"/><text x="${x(p.x)}" y="${y(p.y) - 9}" text-anchor="middle">${p.y.toFixed(1)}</text>`),
    '</svg>',
    '',
  ].join('\n');
}

const option = (args, name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);

export async function run(args) {
  const requests = option(args, '--requests', 200);
  const maxLen = option(args, '--max-len', 32768);
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-bench-serve-'));
  await makeTinyModel(dir, MODEL);
  // Timed before the cluster is up: it keeps this process's cores busy, which the workers could take for a silent
  // coordinator.
  const chunks = args.includes('--chunks') ? args[args.indexOf('--chunks') + 1].split(',').map(Number) : CHUNKS;
  const pieces = [];
  if (!args.includes('--skip-b')) for (const chunk of chunks) pieces.push(await prefillPiece(dir, LONG / WORKERS, chunk));
  const cluster = await createCluster({ workers: WORKERS, transport: 'shm', requestTimeoutMs: 600_000 });
  const server = await startServer({ cluster, modelDir: dir, port: 0, maxQueue: 64 });
  const rows = [];
  const log = (message) => process.stderr.write(`${message}\n`);
  try {
    await stream(server.url, promptOf(2048, 0), 4); // the workers load the model and build their graphs
    // Two interleaved rounds over the levels, each level's waves pooled: this host's speed drifts within a run.
    const runs = new Map(CONCURRENCY.map((c) => [c, { results: [], wallMs: 0, decodeTokens: 0, decodeMs: 0 }]));
    for (let round = 0; round < 2; round++) {
      for (const concurrency of CONCURRENCY) {
        const prompts = Array.from({ length: concurrency }, (_, i) => promptOf(2048, 100 + 20 * round + i));
        const { results, wallMs } = await load(server.url, prompts, concurrency, DECODE_TOKENS);
        const window = decodeWindow(results);
        const run = runs.get(concurrency);
        run.results.push(...results);
        run.wallMs += wallMs;
        run.decodeTokens += window.tokens;
        run.decodeMs += window.ms;
        log(`(a) round ${round + 1}, ${concurrency} streams: ${((1000 * window.tokens) / window.ms).toFixed(1)} decode tokens/s`);
      }
    }
    const throughput = [];
    for (const [concurrency, { results, wallMs, decodeTokens, decodeMs }] of runs) {
      const decodeTokensPerSec = (1000 * decodeTokens) / decodeMs;
      throughput.push({ x: concurrency, y: decodeTokensPerSec });
      rows.push({
        part: 'a',
        case: `${concurrency} concurrent streams, 2k-token prompts, ${DECODE_TOKENS} tokens`,
        requests: results.length,
        concurrency,
        decodeTokensPerSec,
        ...summary(results, wallMs),
      });
    }
    const ratio = throughput[2].y / throughput[0].y;

    const interference = [];
    let unchunked, unchunkedMs;
    if (!args.includes('--skip-b')) {
      for (const piece of pieces) interference.push(await beside(cluster, dir, piece));
      unchunked = interference.reduce((a, b) => (b.chunk > a.chunk ? b : a));
      const again = await startServer({ cluster, modelDir: dir, port: 0, prefillChunk: unchunked.chunk });
      unchunkedMs = (unchunked.longAloneMs + (await stream(again.url, promptOf(LONG, 8), 8)).times[0]) / 2;
      await again.close();
      for (const row of interference) {
        const label = `chunk ${row.chunk}`;
        rows.push({ part: 'b', case: `${label}: 512-token prompt alone`, requests: 1, concurrency: 1, ttftP50Ms: row.shortAloneMs });
        rows.push({ part: 'b', case: `${label}: 32k-token prompt alone`, requests: 1, concurrency: 1, ttftP50Ms: row.longAloneMs });
        rows.push({ part: 'b', case: `${label}: 512-token prompt sent 1 s into the 32k prefill`, requests: 1, concurrency: 2, ttftP50Ms: row.shortBehindLongMs });
        rows.push({ part: 'b', case: `${label}: 32k-token prompt with the 512-token request beside it`, requests: 1, concurrency: 2, ttftP50Ms: row.longBesideMs });
        rows.push({
          part: 'b',
          case: `${label}: largest prefill piece alone (${row.tileRows}-row layer graph, ${row.attentionShape} attention)`,
          requests: 1,
          concurrency: 1,
          ttftP50Ms: row.pieceMs,
        });
      }
    }

    const random = seededRandom(2026);
    const lengths = Array.from({ length: requests }, () => Math.round(256 * Math.pow(maxLen / 256, random())));
    const { results, wallMs } = await load(
      server.url,
      lengths.map((length, i) => promptOf(length, 1000 + i)),
      32,
      16,
    );
    const mixed = summary(results, wallMs);
    log(`(c) ${requests} requests: ${mixed.completed} completed, ${mixed.lost} lost, refused: ${mixed.refused || 'none'}`);
    rows.push({ part: 'c', case: `${requests} prompts of 256..${maxLen} tokens, 16 tokens each`, requests, concurrency: 32, ...mixed });

    writeFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results', 'serve.svg'), chart(throughput));
    writeReport('serve', {
      title: 'seqpar serve: 4 layers, hidden 256, 8/2 heads, 2 shm workers, streaming HTTP clients on 127.0.0.1',
      columns: ['part', 'case', 'requests', 'concurrency', 'decodeTokensPerSec', 'tokensPerSec', 'ttftP50Ms', 'ttftP99Ms', 'itlP50Ms', 'itlP99Ms', 'completed', 'refused', 'lost'],
      rows,
      notes: [
        `(a) 8 streams decode ${ratio.toFixed(2)}x the tokens/s of 1 (target >= 4x: ${ratio >= 4 ? 'met' : 'not met'}): continuous batching, every running request's decode step one batch of rows per layer (one attention run per layer over every row's own cache share; a worker's whole step one compute-thread chain); a 2k prompt runs unsharded on the least-loaded worker, so each worker decodes its own rows. tokensPerSec is end to end (the waves' prefills included).`,
        ...(interference.length
          ? [
              `(b) ${interference.map((row) => chunkNote(row, unchunkedMs)).join('; ')}. Unchunked: the pieces the kernel workspace budget allows (chunk ${unchunked.chunk} for this model: ${unchunked.tileRows}-row layer graphs, ${unchunked.attentionShape} attention pieces), ${(unchunkedMs / 1000).toFixed(1)} s alone (mean of its run in the sweep and one after). A piece is one call of the long prefill on a worker's compute thread (a layer graph over one row tile, or one attention piece), timed alone before the cluster started; the thread finishes it, then runs decode steps and shorter prompts' work first (priorities by prompt length). The server's default is --prefill-chunk ${DEFAULT_PREFILL_CHUNK}.`,
            ]
          : []),
        '(c) lengths log-uniform; TTFT counts from the request to its first token (queueing included); ITL between consecutive tokens of a stream. "lost" counts requests that neither completed nor were refused with 413/429.',
        'Chart: bench-results/serve.svg (decode tokens/s against concurrent streams).',
        `Load average of this shared host at the end of the run: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(', ')} (1, 5, 15 min) on ${cpus().length} cores; absolute times move with it, ratios less.`,
      ],
      extra: { throughputRatio8vs1: ratio, interference, unchunkedMs, lengths: { min: Math.min(...lengths), max: Math.max(...lengths) } },
    });
  } finally {
    await server.close();
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}
