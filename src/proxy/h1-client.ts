/**
 * The upstream HTTP/1.1 client: one pool of keep-alive connections per upstream origin.
 *
 * Why not undici here: undici is a general client (its own request objects, a queue per client,
 * a WebAssembly parser called back per header field, a timer wheel); a proxy needs none of that.
 * A request here is one head string written to a socket, and the response is parsed once into the
 * flat list node:http writes back out (core/h1-response.ts). Measured here, that took mpgate's CPU
 * per small GET from 1.16× to about 0.92× of the undici-based Node anchor (paired runs, BENCHMARKS.md).
 *
 * What a proxy needs from its client, and this gives:
 *   - no pipelining: a connection carries one request at a time, so a slow response never holds
 *     up another one, and a response can never be matched to the wrong request;
 *   - request heads checked for CR/LF/NUL before they are written (no request splitting);
 *   - bodies streamed both ways with backpressure (chunked when the length is unknown);
 *   - deadlines (connect, response head, body idle, keep-alive) checked by one coarse sweep per
 *     pool instead of a timer per request;
 *   - a request that met a keep-alive connection the upstream had just closed is sent once more
 *     on a new connection, when that is safe (idempotent method, body still in hand: RFC 9112
 *     §9.3.1), instead of failing with 502;
 *   - `Keep-Alive: timeout=N` from the upstream honoured (reuse stops a second before).
 */
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { GatewayError } from '../core/errors.js';
import { ResponseError, ResponseParser, type ResponseEvents } from '../core/h1-response.js';

export interface UpstreamRequest {
  method: string;
  /** Origin-form target ("/a?b"), sent as is. */
  path: string;
  /** Flat list ["Name", "value", ...]; Host is added from the origin when absent. */
  headers: readonly string[];
  /** A Buffer is sent with Content-Length; a stream without one is sent chunked. */
  body: Readable | Buffer | null;
}

/**
 * Callbacks for one request. Exactly one of onComplete or onError ends it; after that nothing else
 * is called.
 */
export interface UpstreamHandler {
  /** Called at once by dispatch(): `abort` stops the request wherever it is (queued, sent, reading). */
  onConnect(abort: (err?: Error) => void): void;
  /** The final response head (1xx are not passed on). Return false to pause until `resume()`. */
  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean;
  /** A piece of the body. Return false to pause until `resume()`. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** Socket errors keep their errno code; the pool's own failures are GatewayErrors. */
  onError(err: Error): void;
}

export interface PoolStats {
  /** Connections open, busy and idle. */
  open: number;
  idle: number;
  /** Requests waiting for a connection (`connections` reached). */
  queued: number;
}

export interface PoolOptions {
  /** Most connections at once; further requests wait in order. */
  connections: number;
  /** An idle connection is closed after this (ms). */
  keepAliveTimeout: number;
  connectTimeout: number;
  /** From the last request byte written to the complete response head. */
  responseTimeout: number;
  /** Longest pause between response body bytes (not counted while the client holds us back). */
  bodyIdleTimeout: number;
  maxHeaderSize: number;
  /** https upstreams: extra CA certificates (PEM); the system CAs are always trusted too. */
  ca?: string | undefined;
}

const enum Phase {
  Connecting,
  Idle,
  /** Request written (or being written), waiting for the response head. */
  Waiting,
  Reading,
}

/** RFC 9110 §9.2.2 — the methods a client may retry on its own. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Methods whose empty body is still announced (undici and browsers send Content-Length: 0). */
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);
/**
 * What a field value or target may hold (RFC 9110 §5.5: HTAB, visible ASCII, obs-text). Anything
 * else could end a line early: CR/LF/NUL directly, and characters above U+00FF because the head is
 * written as latin1, which keeps only their low byte (U+010D would go out as CR).
 */
const UNSAFE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const UNSAFE_TARGET = /[^\x21-\xff]/;

export class H1Pool {
  readonly #host: string;
  readonly #port: number;
  readonly #authority: string;
  /** scheme://host:port, as upstream health and metrics name it. */
  readonly origin: string;
  readonly #secure: boolean;
  readonly #opts: PoolOptions;
  readonly #all = new Set<Connection>();
  /** Idle connections, most recently used last (LIFO keeps few connections warm). */
  readonly #idle: Connection[] = [];
  readonly #queue: Exchange[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #tick: number;
  /** https: built once per pool (parsing the CA list per connection would cost milliseconds). */
  readonly #tls: tls.SecureContext | undefined;
  /** The last TLS session ticket the upstream gave: new connections resume it (no full handshake). */
  #session: Buffer | undefined;
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(origin: string, opts: PoolOptions) {
    const url = new URL(origin);
    this.#secure = url.protocol === 'https:';
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = Number(url.port) || (this.#secure ? 443 : 80);
    this.#authority = url.host;
    this.origin = url.origin;
    this.#opts = opts;
    // `ca` adds to the system CAs rather than replacing them (node's own default would replace).
    this.#tls = this.#secure ? tls.createSecureContext(opts.ca !== undefined ? { ca: [...tls.rootCertificates, opts.ca] } : {}) : undefined;
    // Deadlines are checked on a sweep, so a timeout fires at most a tenth of itself late.
    const shortest = Math.min(opts.connectTimeout, opts.responseTimeout, opts.bodyIdleTimeout, opts.keepAliveTimeout);
    this.#tick = Math.max(10, Math.min(1000, Math.floor(shortest / 10)));
  }

  get options(): PoolOptions {
    return this.#opts;
  }

  get authority(): string {
    return this.#authority;
  }

  get host(): string {
    return this.#host;
  }

  get port(): number {
    return this.#port;
  }

  /** Connections open (busy and idle) and requests waiting for one. */
  stats(): PoolStats {
    return { open: this.#all.size, idle: this.#idle.length, queued: this.#queue.length };
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    const ex = new Exchange(this, req, handler);
    handler.onConnect(ex.abort);
    if (ex.done) return;
    if (this.#closed) {
      ex.fail(new GatewayError('MPG_UPSTREAM_RESET', 'upstream connection pool closed'));
      return;
    }
    this.#assign(ex);
  }

  #assign(ex: Exchange): void {
    for (let conn = this.#idle.pop(); conn !== undefined; conn = this.#idle.pop()) {
      if (conn.usable) {
        conn.send(ex);
        return;
      }
    }
    if (this.#all.size < this.#opts.connections) this.#open(ex);
    else this.#queue.push(ex);
  }

  /** A request that met a connection closed under it, retried once on a new connection. */
  retry(ex: Exchange): void {
    if (this.#all.size < this.#opts.connections) this.#open(ex);
    else this.#queue.unshift(ex);
  }

  #open(ex: Exchange): void {
    if (connectChannel.hasSubscribers) connectChannel.publish({ host: this.#host, port: this.#port });
    const socket = this.#secure
      ? tls.connect({
          host: this.#host,
          port: this.#port,
          servername: net.isIP(this.#host) === 0 ? this.#host : undefined,
          secureContext: this.#tls,
          rejectUnauthorized: true,
          ALPNProtocols: ['http/1.1'],
          session: this.#session,
        })
      : net.connect({ host: this.#host, port: this.#port });
    if (this.#secure) socket.on('session', (session: Buffer) => (this.#session = session));
    const conn = new Connection(this, socket, this.#secure, ex);
    this.#all.add(conn);
    this.#timer ??= setInterval(() => this.#sweep(), this.#tick).unref();
  }

  /** Queued requests first; otherwise the connection waits, idle, for the next one. */
  release(conn: Connection): void {
    const next = this.#queue.shift();
    if (next !== undefined) {
      conn.send(next);
      return;
    }
    if (this.#closed) {
      conn.kill();
      return;
    }
    this.#idle.push(conn);
  }

  /** A connection closed (for any reason). */
  removed(conn: Connection): void {
    this.#all.delete(conn);
    const i = this.#idle.lastIndexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    // Its slot is free: the longest-waiting request gets a connection of its own.
    const next = this.#queue.shift();
    if (next !== undefined) this.#open(next);
    if (this.#all.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#drained?.();
    }
  }

  unqueue(ex: Exchange): void {
    const i = this.#queue.indexOf(ex);
    if (i !== -1) this.#queue.splice(i, 1);
  }

  #sweep(): void {
    const now = Date.now();
    for (const conn of this.#all) conn.check(now);
  }

  /** Graceful: requests running and queued finish, idle connections close now. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    for (const conn of this.#idle.splice(0)) conn.kill();
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.#drained;
      this.#drained = () => {
        prev?.();
        resolve();
      };
    });
  }

  /** Immediate: every request still running or queued fails with 503. Idempotent. */
  destroy(): Promise<void> {
    this.#closed = true;
    const err = new GatewayError('MPG_SHUTTING_DOWN', 'upstream connections closed at shutdown');
    for (const ex of this.#queue.splice(0)) ex.fail(err);
    for (const conn of [...this.#all]) conn.kill(err);
    return this.close();
  }
}

/** One request from dispatch to its end; the handle its handler aborts and resumes with. */
class Exchange {
  done = false;
  conn: Connection | undefined;
  retried = false;
  body: BodyWriter | undefined;

  constructor(readonly pool: H1Pool, readonly req: UpstreamRequest, readonly handler: UpstreamHandler) {}

  readonly abort = (err?: Error): void => {
    if (this.done) return;
    const e = err ?? new GatewayError('MPG_CLIENT_GONE');
    if (this.conn !== undefined) {
      this.conn.abandon(this, e);
    } else {
      this.pool.unqueue(this);
      this.fail(e);
    }
  };

  readonly resume = (): void => {
    if (!this.done) this.conn?.resumeReading();
  };

  /** Sent again only when nothing can have reached the upstream's application twice. */
  get replayable(): boolean {
    const body = this.req.body;
    return !this.retried && (body === null || Buffer.isBuffer(body)) && IDEMPOTENT.has(this.req.method);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.body?.stop();
    this.conn?.detach(this);
    this.conn = undefined;
    this.handler.onError(err);
  }

  complete(): void {
    if (this.done) return;
    this.done = true;
    this.body?.stop();
    this.conn = undefined;
    this.handler.onComplete();
  }
}

class Connection implements ResponseEvents {
  readonly #pool: H1Pool;
  readonly #socket: net.Socket;
  readonly #parser: ResponseParser;
  #phase = Phase.Connecting;
  #ex: Exchange | undefined;
  /** Time (ms since epoch) by which the current phase must move on; 0 = no deadline. */
  #deadline: number;
  #idleSince = 0;
  #keepAlive: number;
  #requests = 0;
  #dead = false;
  #error: Error | undefined;
  /** The response ended inside the current execute() call; finished after it returns. */
  #ended = false;
  #paused = false;

  constructor(pool: H1Pool, socket: net.Socket, secure: boolean, first: Exchange) {
    this.#pool = pool;
    this.#socket = socket;
    this.#keepAlive = pool.options.keepAliveTimeout;
    this.#parser = new ResponseParser(this, pool.options.maxHeaderSize);
    this.#ex = first;
    first.conn = this;
    this.#deadline = Date.now() + pool.options.connectTimeout;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.once(secure ? 'secureConnect' : 'connect', () => this.#connected());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => {
      this.#error ??= err;
    });
    socket.on('close', () => this.#closed());
  }

  /** Idle and still open: may take a request. */
  get usable(): boolean {
    return !this.#dead && this.#phase === Phase.Idle;
  }

  #connected(): void {
    const ex = this.#ex;
    this.#phase = Phase.Idle;
    this.#ex = undefined;
    if (ex === undefined || ex.done) this.#release();
    else this.send(ex);
  }

  send(ex: Exchange): void {
    this.#ex = ex;
    ex.conn = this;
    this.#requests++;
    this.#phase = Phase.Waiting;
    this.#ended = false;
    const opts = this.#pool.options;
    this.#deadline = Date.now() + opts.responseTimeout;
    const { method, path, headers, body } = ex.req;
    this.#parser.expect(method === 'HEAD');

    if (path.length === 0 || UNSAFE_TARGET.test(path) || !isToken(method)) {
      this.#refuse(ex, 'request target or method cannot be sent upstream');
      return;
    }
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      if (UNSAFE_VALUE.test(value) || !isToken(name)) {
        this.#refuse(ex, `header ${JSON.stringify(name)} cannot be sent upstream`);
        return;
      }
      if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
      else if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${value}\r\n`;
    }
    if (!hasHost) head += `host: ${this.#pool.authority}\r\n`;

    const socket = this.#socket;
    if (body === null) {
      if (!hasLength && EXPECTS_BODY.has(method)) head += 'content-length: 0\r\n';
      socket.write(`${head}\r\n`, 'latin1');
    } else if (Buffer.isBuffer(body)) {
      if (!hasLength) head += `content-length: ${body.length}\r\n`;
      socket.cork();
      socket.write(`${head}\r\n`, 'latin1');
      const ok = socket.write(body);
      socket.uncork();
      // A large body still going out: the upstream's time to answer counts from its last byte.
      if (!ok) socket.once('drain', () => this.wrote());
    } else {
      if (!hasLength) head += 'transfer-encoding: chunked\r\n';
      // The head leaves with the first body bytes: a client whose body turns out malformed (bad
      // chunk, over the limit) before any of it arrived never reaches the upstream at all.
      this.#deadline = 0;
      ex.body = new BodyWriter(this, ex, socket, body, `${head}\r\n`, !hasLength);
    }
  }

  /** The request cannot be written as given: fail it, the connection stays usable. */
  #refuse(ex: Exchange, detail: string): void {
    this.#ex = undefined;
    this.#phase = Phase.Idle;
    ex.fail(new GatewayError('MPG_BAD_REQUEST', detail));
    this.#release();
  }

  /** A request body chunk went out: the upstream's time to answer counts from the last one. */
  wrote(): void {
    if (this.#phase === Phase.Waiting) this.#deadline = Date.now() + this.#pool.options.responseTimeout;
  }

  /**
   * The request ends early (aborted, or its body failed). The connection stays when nothing of the
   * request was written yet; with half a request or an unread response on it, it is closed.
   */
  abandon(ex: Exchange, err: Error): void {
    if (this.#ex === ex && this.#phase === Phase.Waiting && ex.body !== undefined && ex.body.unsent && !this.#dead) {
      this.#ex = undefined;
      this.#phase = Phase.Idle;
      this.#deadline = 0;
      ex.fail(err);
      this.#release();
      return;
    }
    if (this.#ex === ex) this.kill(err);
    else {
      ex.fail(err);
      this.kill();
    }
  }

  /** The exchange ended by itself (abort): forget it. */
  detach(ex: Exchange): void {
    if (this.#ex === ex) this.#ex = undefined;
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deadline = Date.now() + this.#pool.options.bodyIdleTimeout;
    this.#socket.resume();
  }

  #pause(): void {
    this.#paused = true;
    // A client that reads slowly is the client's business (limits.idleTimeout), not the upstream's.
    this.#deadline = 0;
    this.#socket.pause();
  }

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    const ex = this.#ex;
    if (ex === undefined || this.#phase === Phase.Idle) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.kill();
      return;
    }
    let extra: number;
    try {
      extra = this.#parser.execute(chunk);
    } catch (err) {
      this.#broken(ex, err);
      return;
    }
    if (this.#ended) this.#finish(ex, extra === 0);
  }

  #broken(ex: Exchange, err: unknown): void {
    const e = err instanceof ResponseError ? new GatewayError('MPG_UPSTREAM_BAD_RESPONSE', err.detail) : (err as Error);
    ex.fail(e);
    this.kill();
  }

  // ---- parser events ---------------------------------------------------------------------------

  onHead(status: number, reason: string, headers: string[]): void {
    const ex = this.#ex;
    if (ex === undefined || ex.done) return;
    this.#phase = Phase.Reading;
    this.#deadline = Date.now() + this.#pool.options.bodyIdleTimeout;
    if (!ex.handler.onHeaders(status, headers, ex.resume, reason) && !ex.done) this.#pause();
  }

  onBody(chunk: Buffer): void {
    const ex = this.#ex;
    if (ex === undefined || ex.done) return;
    if (!this.#paused) this.#deadline = Date.now() + this.#pool.options.bodyIdleTimeout;
    if (!ex.handler.onData(chunk) && !ex.done) this.#pause();
  }

  onEnd(): void {
    this.#ended = true;
  }

  /** After the response's last byte: complete the exchange, then reuse or close the connection. */
  #finish(ex: Exchange, clean: boolean): void {
    this.#ended = false;
    this.#ex = undefined;
    this.#phase = Phase.Idle;
    this.#deadline = 0;
    // An upload the upstream answered before reading all of it leaves the connection mid-request.
    const reusable = clean && this.#parser.reusable && (ex.body === undefined || ex.body.finished);
    const hint = this.#parser.keepAliveHint;
    if (hint >= 0) this.#keepAlive = Math.min(this.#pool.options.keepAliveTimeout, hint - 1000);
    ex.complete();
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    if (!reusable || this.#keepAlive <= 0) this.kill();
    else this.#release();
  }

  #release(): void {
    if (this.#dead) return;
    this.#idleSince = Date.now();
    this.#pool.release(this);
  }

  /** Called by the pool's sweep. */
  check(now: number): void {
    if (this.#dead) return;
    if (this.#phase === Phase.Idle) {
      if (this.#ex === undefined && now - this.#idleSince >= this.#keepAlive) this.kill();
      return;
    }
    if (this.#deadline === 0 || now < this.#deadline) return;
    if (this.#phase === Phase.Connecting && connectErrorChannel.hasSubscribers) {
      connectErrorChannel.publish({ host: this.#pool.host, port: this.#pool.port, error: new GatewayError('MPG_UPSTREAM_CONNECT_TIMEOUT') });
    }
    const err =
      this.#phase === Phase.Connecting ? new GatewayError('MPG_UPSTREAM_CONNECT_TIMEOUT')
      : this.#phase === Phase.Waiting ? new GatewayError('MPG_UPSTREAM_TIMEOUT')
      : new GatewayError('MPG_UPSTREAM_TIMEOUT', 'upstream response body stalled');
    this.kill(err);
  }

  /** Closes the connection; a request still on it fails with `err` (default: reset). */
  kill(err?: Error): void {
    if (err !== undefined) {
      const ex = this.#ex;
      this.#ex = undefined;
      ex?.fail(err);
    }
    if (this.#dead) return;
    this.#dead = true;
    this.#socket.destroy();
  }

  #closed(): void {
    this.#dead = true;
    const ex = this.#ex;
    this.#ex = undefined;
    // The request is settled (or sent again) before the pool hears of the close: a graceful
    // close() waiting for the pool to empty must not see it empty while a retry is on its way.
    this.#settle(ex);
    this.#pool.removed(this);
  }

  #settle(ex: Exchange | undefined): void {
    if (ex === undefined || ex.done) return;
    if (this.#phase === Phase.Connecting) {
      const err = this.#error ?? new GatewayError('MPG_UPSTREAM_REFUSED', 'connection closed while connecting');
      if (connectErrorChannel.hasSubscribers) connectErrorChannel.publish({ host: this.#pool.host, port: this.#pool.port, error: err });
      ex.fail(err);
      return;
    }
    if (this.#phase === Phase.Reading && this.#error === undefined) {
      // A body delimited by the connection's end ends here.
      try {
        this.#parser.finish();
      } catch (err) {
        ex.fail(new GatewayError('MPG_UPSTREAM_RESET', (err as ResponseError).detail));
        return;
      }
      if (this.#ended) {
        this.#ended = false;
        ex.complete();
        return;
      }
    }
    // Nothing of the answer came back on a connection that had served before: the upstream
    // closed it as idle just as the request went out. Safe to send once more, on a new one.
    if (this.#phase === Phase.Waiting && this.#requests > 1 && this.#parser.untouched && ex.replayable) {
      ex.retried = true;
      ex.conn = undefined;
      this.#pool.retry(ex);
      return;
    }
    const e = this.#error;
    ex.fail(e !== undefined && (e as NodeJS.ErrnoException).code !== undefined ? e : new GatewayError('MPG_UPSTREAM_RESET', e?.message ?? 'upstream closed the connection'));
  }
}

/**
 * Streams a request body to the socket, chunk-encoded when its length is unknown.
 *
 * Writes are batched: what arrives within one tick leaves in one corked write. The first one (with
 * the head) waits for setImmediate, i.e. the end of the current event-loop turn: node:http hands
 * out the valid start of a body before it parses the rest of the same TCP read (it waits for the
 * consumer to read first), so a framing error later in that read surfaces a few ticks on. Writing
 * at once would send the upstream the start of a request the client turns out to have malformed;
 * deferred, the abort comes first and nothing, not even the head, is sent.
 */
class BodyWriter {
  finished = false;
  #stopped = false;
  #ended = false;
  #scheduled = false;
  #head: string | undefined;
  readonly #pending: Buffer[] = [];

  constructor(readonly conn: Connection, readonly exchange: Exchange, readonly socket: net.Socket, readonly body: Readable, head: string, readonly chunked: boolean) {
    this.#head = head;
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    // Never removed: a body stream (BodyLimit) that errors after we stopped listening must not
    // become an uncaught exception.
    body.on('error', this.#onError);
  }

  #onData = (data: Buffer | string): void => {
    // A stream in string mode: chunk sizes count bytes, so encode before framing.
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#schedule();
  };

  #onEnd = (): void => {
    this.#ended = true;
    this.#schedule();
  };

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#head !== undefined) setImmediate(this.#flush);
    else process.nextTick(this.#flush);
  }

  #flush = (): void => {
    this.#scheduled = false;
    if (this.#stopped) return;
    const socket = this.socket;
    const pending = this.#pending;
    let ok = true;
    socket.cork();
    if (this.#head !== undefined) {
      socket.write(this.#head, 'latin1');
      this.#head = undefined;
    }
    for (let i = 0; i < pending.length; i++) {
      const chunk = pending[i]!;
      if (this.chunked) {
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
      } else {
        ok = socket.write(chunk);
      }
    }
    pending.length = 0;
    if (this.#ended) {
      if (this.chunked) socket.write('0\r\n\r\n', 'latin1');
      this.finished = true;
      this.#detach();
    }
    socket.uncork();
    this.conn.wrote();
    if (!ok && !this.finished) {
      this.body.pause();
      socket.once('drain', this.#onDrain);
    }
  };

  #onDrain = (): void => {
    if (!this.#stopped) this.body.resume();
  };

  #onError = (err: Error): void => {
    if (this.#stopped) return;
    // The client's body failed (over the limit, connection reset).
    this.conn.abandon(this.exchange, err instanceof GatewayError ? err : new GatewayError('MPG_CLIENT_GONE', err.message, { cause: err }));
  };

  /** Nothing of the request has been written yet. */
  get unsent(): boolean {
    return this.#head !== undefined;
  }

  /** The exchange is over: no more of the body goes to this connection. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#pending.length = 0;
    this.#detach();
  }

  #detach(): void {
    this.body.off('data', this.#onData);
    this.body.off('end', this.#onEnd);
    this.socket.off('drain', this.#onDrain);
  }
}

/**
 * Diagnostics channels (like undici's), for tests and tracing: `mpgate:upstream:connect` before
 * each connection attempt and `mpgate:upstream:connectError` when one fails, with
 * `{ host, port, error? }`. Publishing costs nothing while nobody subscribes.
 */
export const connectChannel = diagnostics.channel('mpgate:upstream:connect');
export const connectErrorChannel = diagnostics.channel('mpgate:upstream:connectError');

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function isToken(s: string): boolean {
  return TOKEN.test(s);
}
