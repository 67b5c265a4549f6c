/**
 * One proxied HTTP request: picks an upstream, streams the request body up and the response down
 * with backpressure in both directions, retries another upstream when a connection could not be
 * made (the request never left), and records the outcome once, when the client response closes.
 *
 * It drives undici's dispatcher with the handler interface undici's own client calls natively
 * (onConnect/onHeaders/onData/onComplete): response headers arrive as raw Buffers and go out as a
 * flat list, so no header object is built on either side.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyError, GatewayError, isConnectFailure } from '../core/errors.js';
import { applyUpstreamHost, downstreamHeaders } from '../core/headers.js';
import type { AccessEntry } from '../server/logging.js';
import { sendError } from '../server/respond.js';
import type { Route, Upstream } from '../server/routing-table.js';

export interface ExchangeHooks {
  access: ((entry: AccessEntry) => void) | undefined;
  /** Called once per exchange when the client response has closed. */
  done(): void;
  onUpstreamDown(upstream: Upstream, err: GatewayError): void;
}

export class HttpExchange implements Dispatcher.DispatchHandler {
  #upstream: Upstream | undefined;
  #tried: Set<Upstream> | undefined;
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #bytes = 0;
  #code: string | undefined;
  #clientGone = false;

  constructor(
    readonly hooks: ExchangeHooks,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly route: Route,
    readonly host: string,
    readonly clientIp: string,
    readonly path: string,
    readonly headers: string[],
    readonly body: Readable | null,
    readonly started: number,
  ) {
    res.once('close', this.#onClose);
  }

  start(): void {
    const upstream = this.route.upstreams.pick(Date.now(), this.#tried);
    if (upstream === undefined) return this.#fail(new GatewayError('MPG_UPSTREAM_REFUSED', 'no upstream left to try'));
    this.#upstream = upstream;
    if (!this.route.preserveHost) applyUpstreamHost(this.headers, upstream.authority);
    upstream.dispatcher.dispatch(
      { path: upstream.basePath + this.path, method: this.req.method!, headers: this.headers, body: this.body },
      this,
    );
  }

  // ---- undici handler ------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.#clientGone) abort(new GatewayError('MPG_CLIENT_GONE'));
    else this.#abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx (100 Continue, 103 Early Hints) are not relayed; node:http answers Expect itself.
    if (status < 200) return true;
    const upstream = this.#upstream!;
    if (upstream.health.fails !== 0) upstream.health.succeed();
    this.#resume = resume;
    const res = this.res;
    if (res.destroyed) return false;
    res.statusMessage = statusText;
    try {
      res.writeHead(status, downstreamHeaders(rawHeaders));
    } catch (err) {
      // node:http refuses header values it considers invalid; never pass those on.
      this.#abort?.(new GatewayError('MPG_UPSTREAM_BAD_RESPONSE', 'invalid response header', { cause: err }));
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#bytes += chunk.length;
    const ok = this.res.write(chunk);
    if (!ok) this.res.once('drain', this.#onDrain);
    return ok;
  }

  onComplete(): void {
    this.res.end();
  }

  onError(err: Error): void {
    const gerr = classifyError(err);
    const upstream = this.#upstream;
    if (upstream !== undefined && isConnectFailure(gerr)) {
      this.hooks.onUpstreamDown(upstream, gerr);
      // Another upstream may take the request as long as none of the body has been consumed.
      if (this.route.upstreams.items.length > 1 && !this.#clientGone && (this.body === null || !this.req.readableDidRead)) {
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

  #fail(err: GatewayError): void {
    if (this.#clientGone) return;
    this.#code = err.code;
    // An unread request body (413) must not be parsed as the next request: close the connection.
    const close = err.code === 'MPG_BODY_TOO_LARGE' || (this.body !== null && !this.req.readableEnded);
    sendError(this.req, this.res, err, this.route.site.name, close);
  }

  #onDrain = (): void => {
    this.#resume?.();
  };

  #onClose = (): void => {
    const res = this.res;
    if (!res.writableFinished) {
      // The client went away (or the response was cut): stop the upstream side at once.
      this.#clientGone = true;
      this.#code ??= 'MPG_CLIENT_GONE';
      this.#abort?.(new GatewayError('MPG_CLIENT_GONE'));
    }
    this.hooks.done();
    const access = this.hooks.access;
    if (access !== undefined) {
      access({
        host: this.host,
        method: this.req.method!,
        path: this.req.url!,
        status: this.#clientGone && !res.headersSent ? 499 : res.statusCode,
        bytes: this.#bytes,
        upstream: this.#upstream?.origin ?? '',
        ms: Math.round((performance.now() - this.started) * 100) / 100,
        site: this.route.site.name,
        ip: this.clientIp,
        ...(this.#code !== undefined ? { code: this.#code } : {}),
      });
    }
  };
}
