import { isSeqparError } from '@seqpar/core';

/** OpenAI's error types, by HTTP status. */
const TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  499: 'request_cancelled',
  500: 'internal_server_error',
  503: 'service_unavailable',
};

/** What a client gets back for a refused or failed request: OpenAI's `{"error": {"message", "type", "code"}}`, with a stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get type(): string {
    return TYPES[this.status] ?? 'internal_server_error';
  }

  toJSON(): { error: { message: string; type: string; code: string } } {
    return { error: { message: this.message, type: this.type, code: this.code } };
  }
}

export const badRequest = (message: string, code = 'invalid_request'): ApiError => new ApiError(400, code, message);

/** Cluster failures the cluster comes back from by itself: its coordinator resets the world and replaces lost workers. */
export const RECOVERABLE_CODES: ReadonlySet<string> = new Set(['ERR_PEER_LOST', 'ERR_TIMEOUT', 'ERR_CLOSED']);

/** The HTTP error for anything thrown while serving: typed errors by their code, the rest as 500s. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (!isSeqparError(error)) return new ApiError(500, 'internal_error', error instanceof Error ? error.message : String(error));
  if (error.code === 'ERR_BUSY') return new ApiError(429, 'queue_full', error.message);
  if (error.code === 'ERR_ABORTED') return new ApiError(499, 'cancelled', error.message);
  if (RECOVERABLE_CODES.has(error.code)) return new ApiError(503, 'cluster_recovering', `the cluster lost a worker and is recovering: ${error.message}`);
  if (error.exitCode === 2) return new ApiError(400, error.code.toLowerCase(), error.message);
  return new ApiError(500, error.code.toLowerCase(), error.message);
}
