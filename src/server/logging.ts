/**
 * Two pino loggers: the operational log (stderr: start, reload, failures) and the access log (one
 * JSON line per request, stdout or a file). The access log writes asynchronously in 4 KiB batches
 * so the request path never waits on the disk; `flush()` runs at shutdown.
 */
import { pino, type Logger } from 'pino';

export interface AccessEntry {
  host: string;
  method: string;
  path: string;
  status: number;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** Upstream origin the request went to ('' when it went nowhere). */
  upstream: string;
  /** Milliseconds from the request head to the end of the response. */
  ms: number;
  site: string;
  ip: string;
  /** Error code, when the gateway answered or cut the exchange. */
  code?: string;
}

export interface Loggers {
  log: Logger;
  access: ((entry: AccessEntry) => void) | undefined;
  flush(): void;
}

export function createLoggers(opts: { level: string; access: boolean | { path: string }; quiet?: boolean }): Loggers {
  const log = pino({ level: opts.quiet ? 'silent' : opts.level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
  if (opts.access === false || opts.quiet) return { log, access: undefined, flush: () => {} };
  const path = opts.access === true ? '-' : opts.access.path;
  const dest = pino.destination({ dest: path === '-' ? 1 : path, sync: false, minLength: 4096, mkdir: true, append: true });
  const access = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: () => ({}) } }, dest);
  return {
    log,
    access: (entry) => access.info(entry),
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        // Nothing buffered yet, or the stream is already closed.
      }
    },
  };
}
