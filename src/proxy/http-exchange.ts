/**
 * One proxied HTTP request: picks an upstream, streams the request body up and the response down
 * with backpressure in both directions, retries another upstream when a connection could not be
 * made (the request never left), and records the outcome exactly once.
 *
 * It is the handler of the upstream client (proxy/h1-client.ts): response headers arrive as the
 * flat raw list node:http writes back out, so no header object is built on either side.
 */
import type { Readable } from 'node:stream';
import { classifyError, GatewayError, isConnectFailure } from '../core/errors.js';
import type { UpstreamHandler } from './h1-client.js';
import { applyUpstreamHost, downstreamHeaders, setField, type ResponseMeta } from '../core/headers.js';
import { elapsedMs, type AccessEntry } from '../server/access-log.js';
import type { ConnectionState, ConnectionUser } from '../server/connection.js';
import { sendError, wantsJson, type RequestView, type ResponseView } from '../server/respond.js';
import type { Route, Upstream } from '../server/routing-table.js';

export interface ExchangeHooks {
  access: ((entry: AccessEntry) => void) | undefined;
  /** Called once per exchange when it is over. */
  done(): void;
  onUpstreamDown(upstream: Upstream, err: GatewayError): void;
}

export class HttpExchange implements UpstreamHandler, ConnectionUser {
  #upstream: Upstream | undefined;
  #tried: Set<Upstream> | undefined;
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #bytes = 0;
  /** Response Content-Length, -1 when absent. */
  #expected = -1;
  #code: string | undefined;
  #clientGone = false;
  /** Status logged when the client side ended the exchange before a response went out. */
  #goneStatus = 499;
  #finished = false;
  #ended = false;
  readonly #meta: ResponseMeta = { contentLength: -1 };

  constructor(
    readonly hooks: ExchangeHooks,
    readonly conn: ConnectionState,
    readonly req: RequestView,
    readonly res: ResponseView,
    readonly route: Route,
    readonly host: string,
    readonly clientIp: string,
    readonly path: string,
    readonly headers: string[],
    readonly body: Readable | Buffer | null,
    readonly started: number,
  ) {
    conn.attach(this);
  }

  start(): void {
    const upstream = this.route.upstreams.pick(Date.now(), this.#tried);
    if (upstream === undefined) return this.#fail(new GatewayError('MPG_UPSTREAM_REFUSED', 'no upstream left to try'));
    this.#upstream = upstream;
    if (!this.route.preserveHost) applyUpstreamHost(this.headers, upstream.authority);
    upstream.pool.dispatch(
      { path: upstream.basePath + this.path, method: this.req.method!, headers: this.headers, body: this.body },
      this,
    );
  }

  // ---- upstream handler ----------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.#clientGone) abort(new GatewayError('MPG_CLIENT_GONE'));
    else this.#abort = abort;
  }

  onHeaders(status: number, rawHeaders: string[], resume: () => void, statusText: string): boolean {
    // 1xx (100 Continue, 103 Early Hints) are not relayed; node:http answers Expect itself.
    if (status < 200) return true;
    const upstream = this.#upstream!;
    if (upstream.health.fails !== 0) upstream.health.succeed();
    if (this.#clientGone) return false;
    this.#resume = resume;
    const res = this.res;
    const meta = this.#meta;
    try {
      const headers = downstreamHeaders(rawHeaders, meta);
      if (this.route.relay?.attachment) setField(headers, 'Content-Disposition', attachment(this.path));
      const hsts = this.route.site.hsts;
      if (hsts !== undefined && this.conn.secure) setField(headers, 'Strict-Transport-Security', hsts);
      // HTTP/2 has no reason phrase (RFC 9113 §8.3.2); node warns when given one.
      if (this.req.httpVersionMajor === 2) res.writeHead(status, headers);
      else res.writeHead(status, statusText, headers);
    } catch (err) {
      // node:http refuses header values it considers invalid; never pass those on.
      this.#abort?.(new GatewayError('MPG_UPSTREAM_BAD_RESPONSE', 'invalid response header', { cause: err }));
      return false;
    }
    this.#expected = meta.contentLength;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.res;
    if (this.#bytes === 0 && chunk.length === this.#expected) {
      // The whole body in one piece: head and body leave in one write.
      this.#bytes = chunk.length;
      this.#ended = true;
      res.end(chunk);
      return true;
    }
    this.#bytes += chunk.length;
    const ok = res.write(chunk);
    if (!ok) res.once('drain', this.#onDrain);
    return ok;
  }

  onComplete(): void {
    if (!this.#ended) this.res.end();
    this.#finish();
  }

  onError(err: Error): void {
    if (this.#finished) return;
    const gerr = classifyError(err);
    const upstream = this.#upstream;
    if (upstream !== undefined && isConnectFailure(gerr)) {
      this.hooks.onUpstreamDown(upstream, gerr);
      // Another upstream may take the request as long as none of the body has been consumed.
      // Ask the stream undici reads: a chunked body is piped from req into BodyLimit at once, so
      // req has always been read from, while BodyLimit still holds every byte.
      if (this.route.upstreams.items.length > 1 && (this.body === null || Buffer.isBuffer(this.body) || !this.body.readableDidRead)) {
        (this.#tried ??= new Set()).add(upstream);
        if (this.#tried.size < this.route.upstreams.items.length) {
          this.#abort = undefined;
          this.start();
          return;
        }
      }
    }
    this.#fail(gerr);
  }

  // ---- client side ---------------------------------------------------------------------------

  /**
   * The client connection closed, or node:http refused the rest of the request (`err`, already
   * answered on the socket): stop the upstream side at once.
   */
  clientGone(err?: GatewayError): void {
    if (this.#finished) return;
    this.#clientGone = true;
    this.#code = err?.code ?? 'MPG_CLIENT_GONE';
    this.#goneStatus = err?.status ?? 499;
    const abort = this.#abort;
    // Finished first: the client's onError for this abort then has nothing left to answer.
    this.#finish();
    abort?.(err ?? new GatewayError('MPG_CLIENT_GONE'));
  }

  #fail(err: GatewayError): void {
    this.#code = err.code;
    // An unread request body must not be parsed as the next request: close the connection.
    const close = err.code === 'MPG_BODY_TOO_LARGE' || (this.body !== null && !this.req.readableEnded);
    // Relay answers are always JSON: the mini-program parses them to show errmsg-like text.
    sendError(this.req, this.res, err, this.route.site.name, close, this.route.relay !== undefined || wantsJson(this.req));
    this.#finish();
  }

  #onDrain = (): void => {
    this.#resume?.();
  };

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.conn.detach(this);
    this.hooks.done();
    const access = this.hooks.access;
    if (access === undefined) return;
    const res = this.res;
    access({
      host: this.host,
      method: this.req.method!,
      path: this.req.url!,
      status: this.#clientGone && !res.headersSent ? this.#goneStatus : res.statusCode,
      bytes: this.#bytes,
      upstream: this.#upstream?.origin ?? '',
      ms: elapsedMs(this.started),
      site: this.route.site.name,
      ip: this.clientIp,
      code: this.#code,
    });
  }
}

/** `attachment; filename="a.png"` for the last path segment (ASCII-safe, RFC 6266 filename*). */
function attachment(path: string): string {
  const q = path.indexOf('?');
  const last = (q === -1 ? path : path.slice(0, q)).split('/').pop() || 'download';
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
