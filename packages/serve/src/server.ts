import { createHash, timingSafeEqual } from 'node:crypto';
import { totalmem } from 'node:os';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { epochNow, UsageError, type StrategyName } from '@seqpar/core';
import { hostProfile, type HardwareProfile } from '@seqpar/planner';
import { checkPrefillChunk, type ClusterClient } from '@seqpar/runtime';
import { ApiError, toApiError } from './api-error.js';
import { Engine } from './engine.js';
import { ServerMetrics } from './metrics.js';
import { chatCompletionsRoute } from './routes/chat-completions.js';
import { completionsRoute } from './routes/completions.js';
import { infoRoutes } from './routes/info.js';
import type { ServeContext } from './serve-context.js';
import { ServedModel } from './served-model.js';

export interface ServeOptions {
  /** The cluster that runs the requests (local or remote); the caller owns it and closes it after the server. */
  readonly cluster: ClusterClient;
  readonly modelDir: string;
  /** The id `/v1/models` lists. Default: the model directory's name. */
  readonly modelId?: string;
  /** Default 127.0.0.1: the server answers only this host unless told otherwise. */
  readonly host?: string;
  /** Default 8000; 0 picks a free port. */
  readonly port?: number;
  /** Requests to /v1/* must carry `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /** Requests that may wait; more get 429. Default 64. */
  readonly maxQueue?: number;
  /**
   * Requests running at once, their decode steps batched; more wait in the queue. Default 16 (the coordinator's
   * own bound, `ClusterOptions.maxBatch`, also applies).
   */
  readonly maxBatch?: number;
  /**
   * Query rows one compute call of a prefill takes at most (a multiple of 64): a request arriving while a long
   * prompt prefills waits for at most one such call on each worker. Default DEFAULT_PREFILL_CHUNK.
   */
  readonly prefillChunk?: number;
  /** Default 'auto': the planner picks per prompt. */
  readonly strategy?: StrategyName | 'auto';
  /** With 'auto', prompts shorter than this many tokens run unsharded on one worker (request-plan.ts). Default 8192. */
  readonly shardFrom?: number;
  /** KV cache bytes one rank may hold; a longer request gets 413, and running requests together hold at most this times the workers. Default: a quarter of this host's memory, split over the workers. */
  readonly kvBudgetBytes?: number;
  /** The planner's hardware profile. Default: this host's calibrated one, else the declared local profile of the cluster's transport. */
  readonly profile?: HardwareProfile;
}

export interface RunningServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** Stops taking requests and ends the open ones (their clients see the connection close). */
  close(): Promise<void>;
}

/**
 * Below 8k tokens sharding saves a request little (bench model, 2 shm workers, one loaded 2-core host: TTFT of 2k
 * tokens 416 ms unsharded, 520 ms zigzag; 8k 5.6 s against 4.7 s; 16k 18.5 s against 15.2 s) and costs the batch.
 */
const DEFAULT_SHARD_FROM = 8192;

/**
 * Chosen by measurement (`npm run bench -- serve` part (b), bench model on 2 shm workers, four runs): a 512-token
 * request sent into a 32k prefill waited 96-257 ms at 2048 rows, within its TTFT alone plus one piece in 3 runs of
 * 4, and no less at 256-1024 rows (102-269 ms, within that bound in none of 11), whose smaller pieces cost the 32k
 * prompt 1.04-1.25x. Its wait here is its own prefill beside a busy core more than the piece ahead of it. A model whose rows are wider gets smaller row
 * tiles from the workspace budget whatever this says.
 */
export const DEFAULT_PREFILL_CHUNK = 2048;

/** Request bodies up to this size: a 128k-token prompt as JSON ids is about 1 MB. */
const BODY_LIMIT = 32 * 2 ** 20;

/** Builds the server (not listening): protocol in protocol.ts, checks in validate-request.ts, the engine in engine.ts. */
export async function buildServer(options: ServeOptions): Promise<{ app: FastifyInstance; engine: Engine }> {
  const model = await ServedModel.load(options.modelDir, options.modelId);
  const workers = options.cluster.workers;
  const maxQueue = options.maxQueue ?? 64;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new UsageError(`maxQueue must be a non-negative integer, got ${maxQueue}`);
  const maxBatch = options.maxBatch ?? 16;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new UsageError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const prefillChunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  checkPrefillChunk(prefillChunk);
  const metrics = new ServerMetrics(workers);
  const engine = new Engine(
    options.cluster,
    model,
    {
      workers,
      maxQueue,
      maxBatch,
      prefillChunk,
      strategy: options.strategy ?? 'auto',
      shardFrom: options.shardFrom ?? DEFAULT_SHARD_FROM,
      kvBudgetBytes: options.kvBudgetBytes ?? Math.floor(totalmem() / 4 / workers),
      profile: options.profile ?? hostProfile(options.cluster.transport),
    },
    metrics,
  );
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, forceCloseConnections: true });
  const context: ServeContext = { engine, model, metrics, started: epochNow() };
  if (options.apiKey !== undefined) requireKey(app, options.apiKey);
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const failure = fromFramework(error);
    metrics.requests.inc({ status: String(failure.status) });
    return reply.code(failure.status).send(failure.toJSON());
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send(new ApiError(404, 'not_found', `no route ${request.method} ${request.url}`).toJSON()));
  completionsRoute(app, context);
  chatCompletionsRoute(app, context);
  infoRoutes(app, context);
  return { app, engine };
}

/** Builds the server and listens; resolves once it takes requests. */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const { app, engine } = await buildServer(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 8000 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8000);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: async () => {
      engine.close();
      await app.close();
    },
  };
}

/** Bearer key on every /v1 route, compared in constant time. */
function requireKey(app: FastifyInstance, key: string): void {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expected = digest(key);
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1/')) return;
    const given = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (given === undefined || !timingSafeEqual(digest(given), expected)) throw new ApiError(401, 'invalid_api_key', 'a valid API key is required: Authorization: Bearer <key>');
  });
}

/** The framework's own refusals (unparsable JSON, a body too large, a wrong content type) in OpenAI's shape. */
function fromFramework(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
    return new ApiError(400, 'invalid_json', `the body is not valid JSON: ${error.message}`);
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'body_too_large', error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
    return new ApiError(error.statusCode, error.code?.toLowerCase() ?? 'bad_request', error.message);
  return toApiError(error);
}
