/**
 * The HTTP/1.1 fast path: plain proxied requests served straight off the socket, without
 * node:http's request and response objects.
 *
 * Why: on a small proxied GET, node:http's server side (IncomingMessage, ServerResponse, their
 * streams) costs about as much CPU as the four socket syscalls, and more than all of mpgate's own
 * code (BENCHMARKS.md, session 4). This front reads request heads itself, but only heads it fully
 * understands (core/h1-request.ts): a strict subset of HTTP/1.1 with Content-Length framing.
 *
 * Everything else goes to node:http with the connection, untouched: a head outside the subset
 * (chunked bodies, Expect, Upgrade, HTTP/1.0, anything malformed, a head over half of maxHeaderSize), and
 * every request the gateway does not want here (errors, redirects, relay, OCR, ACME). The bytes
 * already read are put back on the socket and node:http's own connection listener takes over, as
 * if it had accepted the socket itself; the connection stays with node:http from then on. So the
 * front never answers a malformed request and never decides a framing question: node:http does,
 * exactly as before.
 *
 * What the front does itself, with node:http's semantics (the same tests hold both):
 *   - one request at a time per connection; pipelined bytes wait, paused, until the response ends;
 *   - Content-Length bodies streamed with backpressure (a body already in hand is passed whole);
 *   - responses framed like ServerResponse: Content-Length as given, chunked otherwise, no body for
 *     HEAD/1xx/204/304; Date added when missing; `Connection: keep-alive` with `Keep-Alive: timeout`;
 *   - a head arriving in pieces is collected (one join per line at most) and then read whole;
 *   - deadlines on one sweep per listener: headersTimeout for a head not complete in time, counted
 *     from the connection's start and, after the first request, from the head's first byte (408),
 *     requestTimeout for a body still arriving (408), idleTimeout while a request runs, and
 *     keepAliveTimeout between requests (plus node's 1 s margin);
 *   - graceful close: idle connections closed at once, busy ones after their response.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { NOT_MINE, PARTIAL, readRequestHead, type HeadLimits } from '../core/h1-request.js';

export interface FrontLimits {
  maxHeaderSize: number;
  maxHeaderCount: number;
  headersTimeout: number;
  requestTimeout: number;
  idleTimeout: number;
  keepAliveTimeout: number;
}

export interface FrontHandler {
  /**
   * Serve a request, or return false to leave it (and the connection) to node:http. Nothing of the
   * request may have been used when it returns false.
   */
  serve(req: FastRequest, res: FastResponse): boolean;
  /** A client deadline passed (`err.code` as node:http names it): answer and log like node:http's clientError. */
  clientError(err: NodeJS.ErrnoException, socket: Socket, responseStarted: boolean): void;
}

/** node:http keeps an idle keep-alive socket this much longer than it advertises (so the client closes first). */
const KEEP_ALIVE_MARGIN = 1000;
/** A response body up to this size leaves in one buffer with its head; larger ones are written after it (writev). */
const COALESCE = 16 * 1024;

export class H1Front {
  readonly #connections = new Set<FastConnection>();
  #limits!: FrontLimits;
  headLimits: HeadLimits | undefined;
  #tick = 1000;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(
    readonly handler: FrontHandler,
    /** node:http's connection listener for this listener's server. */
    readonly toNode: (socket: Socket) => void,
    limits: FrontLimits,
  ) {
    this.setLimits(limits);
  }

  get limits(): FrontLimits {
    return this.#limits;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Live limits (a reload). Heads over half of node:http's maxHeaderSize go to node:http, so the
   * front never takes a head node:http would refuse; that size is fixed at the start, as node's is.
   */
  setLimits(limits: FrontLimits): void {
    this.#limits = limits;
    this.headLimits = { maxBytes: this.headLimits?.maxBytes ?? Math.floor(limits.maxHeaderSize / 2), maxFields: limits.maxHeaderCount };
    // node:http checks header and request deadlines on this interval (see Gateway#http1Options).
    const tick = Math.max(250, Math.min(1000, Math.floor(limits.headersTimeout / 4)));
    if (tick !== this.#tick && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    this.#tick = tick;
    if (this.#connections.size > 0) this.#startSweep();
  }

  accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#connections.add(new FastConnection(this, socket));
    this.#startSweep();
  }

  /** Shutdown, first step: no more keep-alive; idle connections closed now, busy ones after their response. */
  closeIdle(): void {
    this.#closing = true;
    for (const c of this.#connections) if (!c.busy) c.socket.destroy();
  }

  /** Shutdown, last step: every connection still here is cut. */
  closeAll(): void {
    this.#closing = true;
    for (const c of this.#connections) c.socket.destroy();
  }

  /** @internal The connection left the front (closed, or handed to node:http). */
  release(c: FastConnection): void {
    this.#connections.delete(c);
    if (this.#connections.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #startSweep(): void {
    this.#timer ??= setInterval(() => {
      const now = performance.now();
      for (const c of this.#connections) c.check(now);
    }, this.#tick).unref();
  }
}

const enum Phase {
  /** No request yet on this connection. */
  Fresh,
  /** Between requests (keep-alive). */
  Idle,
  /** Part of a request head has arrived; the rest is awaited (headersTimeout runs). */
  Head,
  /** A request is being served. */
  Busy,
  /** Closed, closing, or handed to node:http: nothing more is read here. */
  Gone,
}

class FastConnection {
  #phase = Phase.Fresh;
  /** When the current phase began (performance.now()). */
  #since = performance.now();
  /** Something moved on the socket since the last sweep (idleTimeout). */
  #active = false;
  #lastActive = 0;
  /** Request body bytes still to come from the client. */
  #bodyLeft = 0;
  #body: FastBody | undefined;
  /** Bytes read past the current request (pipelining), kept until its response has ended. */
  #pending: Buffer | undefined;
  /** The pieces of a head that has not ended yet (Phase.Head), joined once its end can be there. */
  #partial: Buffer[] = [];
  #partialLength = 0;
  #res: FastResponse | undefined;

  constructor(readonly front: H1Front, readonly socket: Socket) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  get busy(): boolean {
    return this.#phase === Phase.Busy;
  }

  /** All of the current request's body has arrived. */
  get bodyComplete(): boolean {
    return this.#bodyLeft === 0;
  }

  #onData = (chunk: Buffer): void => {
    // Closing (after a 408, or a response sent before its request body was read): what the client
    // still sends is dropped, and reading on lets its FIN arrive.
    if (this.#phase === Phase.Gone) return;
    this.#active = true;
    if (this.#bodyLeft > 0) {
      const n = Math.min(this.#bodyLeft, chunk.length);
      this.#bodyLeft -= n;
      const body = this.#body!;
      const more = body.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (this.#bodyLeft === 0) body.push(null);
      else if (!more) this.socket.pause();
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    if (this.#phase === Phase.Busy) {
      // Pipelined: the next request waits for this response (node:http does the same).
      this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
      this.socket.pause();
      return;
    }
    if (this.#phase === Phase.Head) {
      this.#partial.push(chunk);
      this.#partialLength += chunk.length;
      // A head ends with LF: a piece without one cannot complete it (a head trickled a byte at a
      // time costs one join per line, not one per byte). Past the size limit it is node:http's.
      if (chunk.indexOf(0x0a) === -1 && this.#partialLength <= this.front.headLimits!.maxBytes) return;
      chunk = Buffer.concat(this.#partial, this.#partialLength);
      this.#partial = [];
      this.#partialLength = 0;
    } else if (this.#pending !== undefined) {
      chunk = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    this.#next(chunk);
  };

  /** Reads the next request from `buf` (which starts with it) and serves it or hands it off. */
  #next(buf: Buffer): void {
    const front = this.front;
    const head = readRequestHead(buf, 0, front.headLimits!);
    if (head === NOT_MINE) return this.#handOff(buf);
    if (head === PARTIAL) {
      // Wait for the rest. headersTimeout counts from the connection's start for its first request
      // and from the head's first byte after that, as in node:http.
      if (this.#phase === Phase.Idle) this.#since = performance.now();
      this.#phase = Phase.Head;
      this.#partial = [buf];
      this.#partialLength = buf.length;
      if (this.socket.isPaused()) this.socket.resume();
      return;
    }
    const socket = this.socket;
    const cl = head.contentLength;
    let rest: Buffer | undefined = head.end < buf.length ? buf.subarray(head.end) : undefined;
    let body: Buffer | FastBody | null = null;
    let bodyLeft = 0;
    if (cl > 0) {
      if (rest !== undefined && rest.length >= cl) {
        // The whole body came with the head: it is passed on as one buffer.
        body = rest.subarray(0, cl);
        rest = rest.length > cl ? rest.subarray(cl) : undefined;
      } else {
        body = new FastBody(this);
        bodyLeft = cl - (rest?.length ?? 0);
      }
    }
    const req = new FastRequest(socket, head.method, head.url, head.rawHeaders, cl, body, this);
    const res = new FastResponse(this, socket, head.method === 'HEAD', !head.close && !front.closing);
    this.#phase = Phase.Busy;
    this.#since = req.started;
    this.#lastActive = this.#since;
    this.#res = res;
    this.#bodyLeft = bodyLeft;
    this.#body = body instanceof FastBody ? body : undefined;
    if (!front.handler.serve(req, res)) {
      this.#res = undefined;
      this.#bodyLeft = 0;
      this.#body = undefined;
      return this.#handOff(buf);
    }
    if (this.#phase !== Phase.Busy && this.#phase !== Phase.Idle) return; // answered and closed at once
    if (body instanceof FastBody && rest !== undefined) {
      // The start of a body that did not come whole (all of `rest` belongs to it).
      body.push(rest);
      rest = undefined;
    }
    if (rest !== undefined) {
      this.#pending = this.#pending === undefined ? rest : Buffer.concat([rest, this.#pending]);
      if (this.#phase === Phase.Busy) socket.pause();
      else process.nextTick(this.#drainPending);
    }
  }

  /** @internal The response has been written out in full. */
  responseEnded(res: FastResponse, keepAlive: boolean): void {
    if (res !== this.#res) return;
    this.#res = undefined;
    if (this.#phase !== Phase.Busy) return;
    // Body bytes still on their way cannot be told apart from the next request: close. So does a
    // shutdown that began after this response's head went out.
    if (!keepAlive || this.#bodyLeft > 0 || this.front.closing) {
      const unread = this.#bodyLeft > 0;
      this.#gone();
      this.#body?.destroy();
      this.#body = undefined;
      if (unread) lingeringClose(this.socket);
      else this.socket.end();
      return;
    }
    this.#body = undefined;
    this.#phase = Phase.Idle;
    this.#since = performance.now();
    if (this.#pending !== undefined) process.nextTick(this.#drainPending);
    else if (this.socket.isPaused()) this.socket.resume();
  }

  #drainPending = (): void => {
    if (this.#phase !== Phase.Idle) return;
    const buf = this.#pending;
    this.#pending = undefined;
    if (buf !== undefined) this.#next(buf);
    if (this.#phase === Phase.Idle && this.socket.isPaused()) this.socket.resume();
  };

  /** @internal The body stream wants more. */
  resumeBody(): void {
    if (this.#bodyLeft > 0 && this.#phase === Phase.Busy) this.socket.resume();
  }

  /** Everything read so far goes back on the socket and node:http's listener takes the connection. */
  #handOff(buf: Buffer): void {
    const socket = this.socket;
    const pending = this.#pending;
    this.#gone();
    socket.pause();
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
    socket.unshift(pending === undefined ? buf : Buffer.concat([buf, pending]));
    this.front.toNode(socket);
    // node:http's 'data' listener is in place now; it receives the bytes put back first.
    socket.resume();
  }

  #gone(): void {
    this.#phase = Phase.Gone;
    this.#pending = undefined;
    this.#partial = [];
    this.front.release(this);
  }

  /**
   * The client half-closed. node:http (without httpAllowHalfOpen) takes that as the client leaving:
   * a request still running is aborted. Same here: the exchange hears of it from 'close'.
   */
  #onEnd = (): void => {
    this.#gone();
    this.socket.destroy();
  };

  #onError = (): void => {
    this.socket.destroy();
  };

  #onClose = (): void => {
    this.#gone();
    this.#body?.destroy();
    this.#body = undefined;
  };

  /** Called by the front's sweep. */
  check(now: number): void {
    const limits = this.front.limits;
    switch (this.#phase) {
      case Phase.Fresh:
      case Phase.Head:
        if (now - this.#since >= limits.headersTimeout) this.#timeout('ERR_HTTP_HEADERS_TIMEOUT');
        return;
      case Phase.Idle: {
        // keepAliveTimeout 0 turns the keep-alive deadline off, as in node:http; idleTimeout remains.
        const limit = limits.keepAliveTimeout > 0 ? limits.keepAliveTimeout + KEEP_ALIVE_MARGIN : limits.idleTimeout;
        if (limit > 0 && now - this.#since >= limit) {
          this.#gone();
          this.socket.destroy();
        }
        return;
      }
      case Phase.Busy:
        if (this.#bodyLeft > 0 && now - this.#since >= limits.requestTimeout) {
          this.#timeout('ERR_HTTP_REQUEST_TIMEOUT');
          return;
        }
        if (this.#active) {
          this.#active = false;
          this.#lastActive = now;
        } else if (limits.idleTimeout > 0 && now - this.#lastActive >= limits.idleTimeout) {
          this.#gone();
          this.socket.destroy();
        }
        return;
      default:
    }
  }

  /** @internal Activity on the response side (idleTimeout counts both directions). */
  touch(): void {
    this.#active = true;
  }

  #timeout(code: string): void {
    const started = this.#res?.headersSent === true;
    this.#gone();
    const err = Object.assign(new Error(code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request timeout' : 'headers timeout'), { code });
    this.front.handler.clientError(err, this.socket, started);
    // The gateway answered 408 and ends the socket; whatever the client still sends is dropped.
    this.#body?.destroy();
    this.#body = undefined;
    lingeringClose(this.socket);
  }
}

/** How long a connection closed with request bytes still coming is read (and discarded) before it is cut. */
const LINGER_MS = 5000;

/**
 * Ends a connection while the client may still be sending (nginx's lingering_close): reading on
 * lets it finish its write and read the answer, where closing at once could make its kernel
 * answer with RST and discard that answer unread.
 */
function lingeringClose(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resume();
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/**
 * The request as the gateway's pipeline sees it: the fields it reads of node:http's
 * IncomingMessage. The body is a separate stream (or buffer), not the request itself.
 */
export class FastRequest {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly started = performance.now();
  #headers: IncomingHttpHeaders | undefined;

  constructor(
    readonly socket: Socket,
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
    /** -1 when the request has no Content-Length. */
    readonly contentLength: number,
    readonly body: Readable | Buffer | null,
    readonly connection: { readonly bodyComplete: boolean },
  ) {}

  /** Every byte of the body has been received (nothing of this request is left on the socket). */
  get readableEnded(): boolean {
    return this.connection.bodyComplete;
  }

  /** node:http's header object, built only when asked for (error answers read Accept). */
  get headers(): IncomingHttpHeaders {
    if (this.#headers !== undefined) return this.#headers;
    const h: Record<string, string> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const prev = h[name];
      h[name] = prev === undefined ? raw[i + 1]! : `${prev}, ${raw[i + 1]!}`;
    }
    this.#headers = h;
    return h;
  }
}

/** A request body that did not arrive with its head: a Readable fed by the connection, with backpressure. */
class FastBody extends Readable {
  constructor(readonly connection: FastConnection) {
    super();
  }

  override _read(): void {
    this.connection.resumeBody();
  }
}

let dateMs = 0;
let dateText = '';
/** The Date field value, rebuilt at most once a second (node:http caches it the same way). */
function httpDate(): string {
  const now = Date.now();
  if (now - dateMs >= 1000) {
    dateMs = now - (now % 1000);
    dateText = new Date(dateMs).toUTCString();
  }
  return dateText;
}

/**
 * The response as the pipeline writes it: the part of node:http's ServerResponse it uses
 * (writeHead with a flat list or an object, write, end, 'drain', headersSent, statusCode).
 * The head is held until the first write so head and a small body leave in one segment.
 */
export class FastResponse {
  statusCode = 200;
  headersSent = false;
  /** Set false to close the connection after this response (shutdown). */
  shouldKeepAlive: boolean;
  #head = '';
  #noBody: boolean;
  #chunked = false;
  #done = false;

  constructor(
    readonly connection: FastConnection,
    readonly socket: Socket,
    isHead: boolean,
    keepAlive: boolean,
  ) {
    this.shouldKeepAlive = keepAlive;
    this.#noBody = isHead;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  writeHead(status: number, reason?: string | OutgoingHttpHeaders | string[], fields?: OutgoingHttpHeaders | string[]): this {
    if (this.headersSent) throw new Error('headers already sent');
    if (typeof reason !== 'string') {
      fields = reason;
      reason = STATUS_CODES[status] ?? 'unknown';
    }
    this.statusCode = status;
    this.headersSent = true;
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let length = false;
    let date = false;
    let connection = false;
    const field = (name: string, value: string): void => {
      head += `${name}: ${value}\r\n`;
      const len = name.length;
      if (len === 14 || len === 4 || len === 10) {
        const lower = name.toLowerCase();
        if (lower === 'content-length') length = true;
        else if (lower === 'date') date = true;
        else if (lower === 'connection') {
          connection = true;
          if (value.toLowerCase().includes('close')) this.shouldKeepAlive = false;
        }
      }
    };
    if (Array.isArray(fields)) {
      for (let i = 0; i < fields.length; i += 2) field(fields[i]!, fields[i + 1]!);
    } else if (fields !== undefined) {
      for (const [name, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) field(name, v);
        else field(name, String(value));
      }
    }
    if (status === 204 || status === 304 || status < 200) this.#noBody = true;
    if (!date) head += `Date: ${httpDate()}\r\n`;
    if (this.connection.front.closing) this.shouldKeepAlive = false;
    if (!connection) {
      const keepAliveTimeout = this.connection.front.limits.keepAliveTimeout;
      if (!this.shouldKeepAlive) head += 'Connection: close\r\n';
      else if (keepAliveTimeout > 0) head += `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveTimeout / 1000)}\r\n`;
      else head += 'Connection: keep-alive\r\n';
    }
    if (!this.#noBody && !length) {
      head += 'Transfer-Encoding: chunked\r\n';
      this.#chunked = true;
    }
    this.#head = `${head}\r\n`;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.#done || this.socket.destroyed) return true;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.#noBody || data.length === 0) return this.#head === '' ? true : this.#send(undefined, false);
    return this.#send(data, false);
  }

  end(chunk?: Buffer | string): this {
    if (this.#done) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const data = chunk === undefined || this.#noBody ? undefined : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#done = true;
    if (!this.socket.destroyed) this.#send(data !== undefined && data.length > 0 ? data : undefined, true);
    this.connection.responseEnded(this, this.shouldKeepAlive);
    return this;
  }

  once(event: 'drain', listener: () => void): this {
    this.socket.once(event, listener);
    return this;
  }

  destroy(): void {
    this.#done = true;
    this.socket.destroy();
  }

  /** Writes the held head (if any), `data` (chunk-framed when chunked) and, at the end, the last chunk. */
  #send(data: Buffer | undefined, last: boolean): boolean {
    this.connection.touch();
    const socket = this.socket;
    let before = this.#head;
    this.#head = '';
    let after = '';
    if (this.#chunked) {
      if (data !== undefined) {
        before += `${data.length.toString(16)}\r\n`;
        after = '\r\n';
      }
      if (last) after += '0\r\n\r\n';
    }
    if (data === undefined) return socket.write(before + after, 'latin1');
    if (before === '' && after === '') return socket.write(data);
    if (data.length <= COALESCE) {
      const out = Buffer.allocUnsafe(before.length + data.length + after.length);
      out.write(before, 0, 'latin1');
      data.copy(out, before.length);
      if (after !== '') out.write(after, before.length + data.length, 'latin1');
      return socket.write(out);
    }
    socket.cork();
    if (before !== '') socket.write(before, 'latin1');
    const ok = socket.write(data);
    if (after !== '') socket.write(after, 'latin1');
    socket.uncork();
    return ok;
  }
}
