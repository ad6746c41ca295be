import { destination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Logs on stderr (stdout belongs to `--json`), tagged with who writes them: a rank number or 'coordinator'. The
 * level comes from SEQPAR_LOG_LEVEL, default 'warn' so tests and CLI output stay quiet. Each record is one line,
 * `seqpar[rank]: message: reason (CODE)`, as the CLI prints its own errors; only an error without a code (a bug,
 * not a known failure) adds its stack. SEQPAR_LOG_FORMAT=json gives pino's JSON records instead, for collectors.
 */
export function createLogger(rank: number | 'coordinator'): Logger {
  const json = process.env.SEQPAR_LOG_FORMAT === 'json';
  return pino({ level: process.env.SEQPAR_LOG_LEVEL ?? 'warn', base: { rank, pid: process.pid } }, json ? destination(2) : lineStream);
}

const lineStream: DestinationStream = { write: (record: string) => void process.stderr.write(formatLogRecord(record)) };

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const WARN = 40;

interface SerializedError {
  message?: string;
  code?: string;
  stack?: string;
}

/** One pino JSON record as a line for a person; fields other than the message, error and reason follow as name=value. */
export function formatLogRecord(record: string): string {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(record) as Record<string, unknown>;
  } catch {
    return record.endsWith('\n') ? record : `${record}\n`;
  }
  const { level, rank, msg, err, code, reason, pid: _pid, time: _time, hostname: _hostname, ...rest } = parsed;
  const error = err as SerializedError | undefined;
  const levelName = typeof level === 'number' && level < WARN ? ` ${LEVEL_NAMES[level] ?? level}` : '';
  const text = [msg, error?.message ?? reason].filter((part) => typeof part === 'string' && part !== '').join(': ');
  const fields = Object.entries(rest).map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const errorCode = error?.code ?? code;
  const line = `seqpar[${String(rank)}]${levelName}: ${text}${fields.length ? ` [${fields.join(', ')}]` : ''}${errorCode ? ` (${String(errorCode)})` : ''}\n`;
  return error && !error.code && error.stack ? `${line}${error.stack.replace(/^/gm, '    ')}\n` : line;
}
