import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr; BERTH_LOG_LEVEL picks the level (default info). */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.BERTH_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
