import { destination, pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs on stderr (stdout belongs to `--json`), tagged with who writes them: a rank number or
 * 'coordinator'. The level comes from SEQPAR_LOG_LEVEL, default 'warn' so tests and CLI output stay quiet.
 */
export function createLogger(rank: number | 'coordinator'): Logger {
  return pino({ level: process.env.SEQPAR_LOG_LEVEL ?? 'warn', base: { rank, pid: process.pid } }, destination(2));
}
