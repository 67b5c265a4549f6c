/**
 * The operational log (pino, JSON on stderr: start, reload, failures) and the access log
 * (server/access-log.ts: one JSON line per request, stdout or a file).
 */
import { pino, type Logger } from 'pino';
import { AccessLog, type AccessEntry } from './access-log.js';

export type { AccessEntry } from './access-log.js';

export interface Loggers {
  log: Logger;
  access: ((entry: AccessEntry) => void) | undefined;
  /** Writes out what is buffered and closes the access log. Idempotent. */
  close(): void;
}

export function createLoggers(opts: { level: string; access: boolean | { path: string } }): Loggers {
  const log = pino({ level: opts.level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
  if (opts.access === false) return { log, access: undefined, close: () => {} };
  const accessLog = new AccessLog(opts.access === true ? '-' : opts.access.path);
  return { log, access: accessLog.write, close: () => accessLog.close() };
}
