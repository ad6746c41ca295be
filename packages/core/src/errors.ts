/**
 * Every failure seqpar reports carries a stable `code` (like Node's `ERR_*` and ws's `WS_ERR_*`), so scripts and
 * tests can branch on it without parsing messages. `exitCode` is what the CLI exits with: 2 for usage errors
 * (the caller asked for something malformed), 1 for everything else.
 */
export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_NPY_FORMAT'
  | 'ERR_NPY_DTYPE'
  | 'ERR_NPY_FORTRAN_ORDER'
  | 'ERR_NPY_TRUNCATED'
  | 'ERR_DEVICE_UNAVAILABLE'
  | 'ERR_KERNEL'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_CLOSED'
  | 'ERR_PEER_LOST'
  | 'ERR_UNREACHABLE'
  | 'ERR_AUTH'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_BAD_FRAME'
  | 'ERR_CORRUPT_FRAME'
  | 'ERR_FRAME_SEQUENCE'
  | 'ERR_TRANSPORT_UNAVAILABLE'
  | 'ERR_BUSY'
  | 'ERR_MODEL_CONFIG'
  | 'ERR_MODEL_FORMAT'
  | 'ERR_UNSUPPORTED_MODEL'
  | 'ERR_PROMPT'
  | 'ERR_UNKNOWN_PROFILE'
  | 'ERR_PROFILE_FORMAT'
  | 'ERR_NO_FEASIBLE_PLAN'
  | 'ERR_INTERNAL';

export class SeqparError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: 1 | 2;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: 1 | 2 }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SeqparError';
    this.code = code;
    this.exitCode = options?.exitCode ?? (code === 'ERR_USAGE' ? 2 : 1);
  }

  /** One line for a terminal: `seqpar: ERR_CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Bad arguments or inputs that contradict each other: the CLI exits with 2. */
export class UsageError extends SeqparError {
  constructor(message: string, code: ErrorCode = 'ERR_USAGE') {
    super(code, message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

export function isSeqparError(error: unknown): error is SeqparError {
  return error instanceof SeqparError;
}
