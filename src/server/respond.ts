/**
 * The gateway's own answers (errors, 404s): short, with the stable code and the site, as JSON when
 * the client asked for JSON (wx.request sends `content-type: application/json` by default).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, type GatewayError } from '../core/errors.js';

/**
 * What the pipeline reads of a request. node:http's IncomingMessage, HTTP/2's compatibility
 * request and the fast path's FastRequest (server/h1-front.ts) all have it.
 */
export interface RequestView {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly headers: IncomingHttpHeaders;
  /** The whole request body has been read (nothing of it is left on the connection). */
  readonly readableEnded: boolean;
}

/** What the pipeline writes to a response: the part of node:http's ServerResponse FastResponse has too. */
export interface ResponseView {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly statusCode: number;
  writeHead(status: number, fields: OutgoingHttpHeaders | string[]): unknown;
  writeHead(status: number, reason: string, fields: string[]): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): unknown;
  once(event: 'drain', listener: () => void): unknown;
  destroy(): unknown;
}

export function wantsJson(req: RequestView): boolean {
  const accept = req.headers.accept;
  if (accept !== undefined) return accept.includes('json');
  return (req.headers['content-type'] ?? '').includes('json');
}

/**
 * `detail` is only ever a sentence mpgate wrote itself (a limit, a refused relay path), never an
 * upstream's or a library's error text, so nothing internal leaks into answers.
 */
export function errorBody(err: GatewayError, site: string | undefined, json: boolean): string {
  const message = ERROR_CODES[err.code].message;
  const detail = err.message !== message ? err.message : undefined;
  if (json) {
    return JSON.stringify({ error: { status: err.status, code: err.code, message, ...(detail ? { detail } : {}), ...(site ? { site } : {}) } });
  }
  return `${err.status} ${message}${detail ? `: ${detail}` : ''} (${err.code}${site ? `, site ${site}` : ''})\n`;
}

/** Writes an error answer. `close` asks the client to drop the connection (unread body, framing). */
export function sendError(req: RequestView, res: ResponseView, err: GatewayError, site: string | undefined, close = false, json = wantsJson(req)): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = errorBody(err, site, json);
  const headers: Record<string, string | number> = {
    'content-type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-mpgate-error': err.code,
  };
  // HTTP/2 has no Connection field (it resets the stream instead); node refuses to send one.
  if (close && req.httpVersionMajor < 2) headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Same answer on a raw socket (client errors before a request object exists, failed upgrades). */
export function sendRawError(socket: Duplex, err: GatewayError, site?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = errorBody(err, site, false);
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-mpgate-error: ${err.code}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Content Too Large',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};
