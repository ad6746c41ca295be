/**
 * `seqpar serve`: the OpenAI HTTP API over a cluster, cut like vLLM's entrypoints/openai: protocol.ts (the wire
 * types), validate-request.ts (checks), engine.ts (admission, queue, per-prompt plan), routes/ (HTTP).
 */
export { buildServer, DEFAULT_PREFILL_CHUNK, startServer, type RunningServer, type ServeOptions } from './server.js';
export { ApiError } from './api-error.js';
