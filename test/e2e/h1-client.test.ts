/**
 * The upstream HTTP/1.1 client (proxy/h1-client.ts) driven directly, without the gateway, against
 * real servers on 127.0.0.1 port 0: node:http where a normal server will do, raw net servers that
 * write exact bytes where the upstream has to misbehave. Connections are counted on the server side
 * to prove reuse; bytes are counted to prove that refused requests never leave.
 *
 * The response framing itself (Content-Length, chunked, close-delimited, 1xx, bad heads) is unit
 * tested in test/unit/h1-response.test.ts; the gateway-level failover and refused-upstream cases are
 * in failures.test.ts and limits.test.ts. Here: what the pool does with connections and requests.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it as nodeIt, type TestContext } from 'node:test';
import { classifyError, GatewayError } from '../../src/core/errors.js';
import { H1Pool, type PoolOptions, type UpstreamRequest } from '../../src/proxy/h1-client.js';
import { closedPort, waitFor } from '../helpers.js';
import { issue, tempDir } from '../support/tls-fixtures.js';
import { sleep, startBlackhole } from './support.js';

// ---- the client side -----------------------------------------------------------------------------

const DEFAULTS: PoolOptions = {
  connections: 4,
  keepAliveTimeout: 5000,
  connectTimeout: 2000,
  responseTimeout: 5000,
  bodyIdleTimeout: 5000,
  maxHeaderSize: 16 * 1024,
};

function newPool(t: TestContext, origin: string, opts: Partial<PoolOptions> = {}): H1Pool {
  const pool = new H1Pool(origin, { ...DEFAULTS, ...opts });
  t.after(() => pool.destroy());
  return pool;
}

interface Outcome {
  status: number;
  statusText: string;
  headers: string[];
  body: Buffer;
  /** What onError got (the very object), undefined after onComplete. */
  error: Error | undefined;
  /** The error as the gateway classifies it (classifyError), undefined on success. */
  code: string | undefined;
  /** From dispatch to onComplete/onError. */
  ms: number;
}

interface Call {
  /** Settles at the first onComplete or onError (callbacks after that still land in `events`). */
  readonly done: Promise<Outcome>;
  /** Every handler callback in order: "connect", "headers 200", "data", "complete", "error CODE". */
  readonly events: string[];
  readonly bytes: number;
  abort(err?: Error): void;
}

interface CallHooks {
  onHeaders?(status: number, resume: () => void): boolean;
  onData?(chunk: Buffer, resume: () => void): boolean;
}

/** Dispatches one request and collects what the handler is told. */
function call(pool: H1Pool, req: Partial<UpstreamRequest> = {}, hooks: CallHooks = {}): Call {
  const request: UpstreamRequest = { method: 'GET', path: '/', headers: [], body: null, ...req };
  const events: string[] = [];
  const chunks: Buffer[] = [];
  let abortFn: ((err?: Error) => void) | undefined;
  let resumeFn: () => void = () => {};
  let status = 0;
  let statusText = '';
  let headers: string[] = [];
  let bytes = 0;
  let settle!: (o: Outcome) => void;
  const done = new Promise<Outcome>((r) => (settle = r));
  const started = performance.now();
  const finish = (error: Error | undefined): void =>
    settle({ status, statusText, headers, body: Buffer.concat(chunks), error, code: error === undefined ? undefined : classifyError(error).code, ms: performance.now() - started });
  pool.dispatch(request, {
    onConnect(abort) {
      events.push('connect');
      abortFn = abort;
    },
    onHeaders(s, h, resume, text) {
      events.push(`headers ${s}`);
      status = s;
      statusText = text;
      headers = h;
      resumeFn = resume;
      return hooks.onHeaders ? hooks.onHeaders(s, resume) : true;
    },
    onData(chunk) {
      events.push('data');
      bytes += chunk.length;
      chunks.push(chunk);
      return hooks.onData ? hooks.onData(chunk, resumeFn) : true;
    },
    onComplete() {
      events.push('complete');
      finish(undefined);
    },
    onError(err) {
      events.push(`error ${classifyError(err).code}`);
      finish(err);
    },
  });
  return {
    done,
    events,
    get bytes() {
      return bytes;
    },
    abort: (err) => abortFn!(err),
  };
}

/** The events with runs of "data" collapsed into one. */
function outline(events: readonly string[]): string[] {
  return events.filter((e, i) => e !== 'data' || events[i - 1] !== 'data');
}

async function ok(c: Call): Promise<Outcome> {
  const o = await c.done;
  assert.equal(o.error, undefined, `request failed: ${o.error?.message} (${o.code})`);
  return o;
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

// ---- the server side -----------------------------------------------------------------------------

/** One TCP connection as the server saw it. */
interface ServerConn {
  id: number;
  socket: net.Socket;
  closed: boolean;
  /** performance.now() at the close. */
  closedAt: number;
  bytes: number;
}

function trackConnections(server: net.Server): { conns: ServerConn[]; byId: WeakMap<net.Socket, ServerConn> } {
  const conns: ServerConn[] = [];
  const byId = new WeakMap<net.Socket, ServerConn>();
  server.on('connection', (socket: net.Socket) => {
    const c: ServerConn = { id: conns.length + 1, socket, closed: false, closedAt: 0, bytes: 0 };
    conns.push(c);
    byId.set(socket, c);
    socket.on('error', () => {});
    socket.on('close', () => {
      c.closed = true;
      c.closedAt = performance.now();
    });
  });
  return { conns, byId };
}

interface HttpUpstream {
  url: string;
  port: number;
  server: http.Server;
  conns: ServerConn[];
  requests: { method: string; url: string; conn: number; headers: IncomingMessage['headers'] }[];
  /** Most connections open at the same time. */
  maxOpen: number;
}

/** A node:http upstream; each request is recorded with the id of the connection it came on. */
async function startHttp(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HttpUpstream> {
  const server = http.createServer();
  const { conns, byId } = trackConnections(server);
  const up: HttpUpstream = { url: '', port: 0, server, conns, requests: [], maxOpen: 0 };
  let open = 0;
  server.on('connection', (s: net.Socket) => {
    up.maxOpen = Math.max(up.maxOpen, ++open);
    s.on('close', () => open--);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    up.requests.push({ method: req.method!, url: req.url!, conn: byId.get(req.socket)?.id ?? 0, headers: req.headers });
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  up.port = (server.address() as net.AddressInfo).port;
  up.url = `http://127.0.0.1:${up.port}`;
  t.after(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return up;
}

/** A request as a raw server parsed it (Content-Length or chunked framing, no trailers). */
interface RawRequest {
  conn: ServerConn;
  /** 1 for the first request on its connection. */
  index: number;
  method: string;
  path: string;
  head: string;
  /** Decoded body. */
  body: Buffer;
  /** Exactly the bytes of this request on the wire. */
  raw: Buffer;
  socket: net.Socket;
}

interface RawUpstream {
  url: string;
  port: number;
  authority: string;
  conns: ServerConn[];
  requests: RawRequest[];
  /** Bytes received on all connections. */
  readonly bytes: number;
}

function takeRequest(buf: Buffer): { head: string; body: Buffer; size: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.toString('latin1', 0, end);
  const field = (name: string) => {
    for (const line of head.split('\r\n').slice(1)) {
      const c = line.indexOf(':');
      if (line.slice(0, c).toLowerCase() === name) return line.slice(c + 1).trim();
    }
    return undefined;
  };
  let at = end + 4;
  if (/chunked/i.test(field('transfer-encoding') ?? '')) {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol === -1) return undefined;
      const size = parseInt(buf.toString('latin1', at, eol), 16);
      if (size === 0) return buf.length < eol + 4 ? undefined : { head, body: Buffer.concat(parts), size: eol + 4 };
      if (buf.length < eol + 2 + size + 2) return undefined;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  const n = Number(field('content-length') ?? 0);
  return buf.length < at + n ? undefined : { head, body: buf.subarray(at, at + n), size: at + n };
}

/**
 * A raw TCP upstream: parses each request and hands it to `onRequest`, which writes whatever bytes
 * it likes on `r.socket` (or destroys it).
 */
async function startRaw(t: TestContext, onRequest: (r: RawRequest) => void): Promise<RawUpstream> {
  const server = net.createServer();
  const { conns, byId } = trackConnections(server);
  const requests: RawRequest[] = [];
  let bytes = 0;
  server.on('connection', (socket: net.Socket) => {
    const conn = byId.get(socket)!;
    let buf = Buffer.alloc(0);
    let index = 0;
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      conn.bytes += d.length;
      buf = Buffer.concat([buf, d]);
      for (let r = takeRequest(buf); r !== undefined && !socket.destroyed; r = takeRequest(buf)) {
        const raw = buf.subarray(0, r.size);
        buf = buf.subarray(r.size);
        const [method = '', path = ''] = r.head.split(' ');
        const req: RawRequest = { conn, index: ++index, method, path, head: r.head, body: r.body, raw, socket };
        requests.push(req);
        onRequest(req);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const c of conns) c.socket.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: `http://127.0.0.1:${port}`, port, authority: `127.0.0.1:${port}`, conns, requests,
    get bytes() {
      return bytes;
    },
  };
}

const response = (body = 'ok', extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

const closedConns = (conns: ServerConn[]): number => conns.filter((c) => c.closed).length;

// ---- tests ---------------------------------------------------------------------------------------

/** Every test here gets a deadline: a request the pool never ends must fail the test, not hang it. */
const it = (name: string, fn: (t: TestContext) => Promise<void>) => nodeIt(name, { timeout: 20_000 }, fn);

describe('H1Pool: keep-alive and the connection limit', () => {
  it('sends 20 sequential GETs over one upstream connection', async (t) => {
    const up = await startHttp(t, (req, res) => res.end(`ok ${req.url}`));
    const pool = newPool(t, up.url);
    for (let i = 0; i < 20; i++) {
      const o = await ok(call(pool, { path: `/r${i}` }));
      assert.equal(o.status, 200);
      assert.equal(o.body.toString(), `ok /r${i}`);
    }
    assert.equal(up.requests.length, 20);
    assert.equal(up.conns.length, 1, 'one connection carried every request');
    assert.deepEqual(pool.stats(), { open: 1, idle: 1, queued: 0 });
  });

  it('keeps only the most recently used connections warm under light concurrency (LIFO idle stack)', async (t) => {
    const up = await startHttp(t, (req, res) => setTimeout(() => res.end('x'), req.url === '/burst' ? 30 : 0));
    const keepAliveTimeout = 400;
    const pool = newPool(t, up.url, { connections: 8, keepAliveTimeout });
    // A burst opens six connections...
    await Promise.all(Array.from({ length: 6 }, () => ok(call(pool, { path: '/burst' }))));
    assert.equal(up.conns.length, 6);
    assert.deepEqual(pool.stats(), { open: 6, idle: 6, queued: 0 });
    // ...then two at a time for longer than keepAliveTimeout: the same two serve all of them.
    const t0 = performance.now();
    while (performance.now() - t0 < keepAliveTimeout * 2.5) {
      await Promise.all([ok(call(pool, { path: '/light' })), ok(call(pool, { path: '/light' }))]);
      await sleep(20);
    }
    const used = new Set(up.requests.filter((r) => r.url === '/light').map((r) => r.conn));
    assert.equal(used.size, 2, `light traffic used connections ${[...used].join(', ')}`);
    assert.equal(up.conns.length, 6, 'no new connection was needed');
    // The four left cold were closed after keepAliveTimeout; the two warm ones stay.
    await waitFor(() => closedConns(up.conns) === 4, 2000, 'the cold connections to close');
    for (const id of used) assert.equal(up.conns[id - 1]!.closed, false, `warm connection ${id} still open`);
    assert.equal(pool.stats().open, 2);
  });

  it('never opens more than `connections`, queues the rest, and serves them all', async (t) => {
    const up = await startHttp(t, (req, res) => setTimeout(() => res.end(`ok ${req.url}`), 100));
    const pool = newPool(t, up.url, { connections: 2 });
    const calls = Array.from({ length: 8 }, (_, i) => call(pool, { path: `/c${i}` }));
    assert.deepEqual(pool.stats(), { open: 2, idle: 0, queued: 6 });
    let maxQueued = 0;
    let queuedSamples = 0;
    const sampler = setInterval(() => {
      const q = pool.stats().queued;
      maxQueued = Math.max(maxQueued, q);
      if (q > 0) queuedSamples++;
      assert.ok(pool.stats().open <= 2);
    }, 10);
    const t0 = performance.now();
    const outcomes = await Promise.all(calls.map((c) => c.done));
    clearInterval(sampler);
    const ms = performance.now() - t0;
    outcomes.forEach((o, i) => {
      assert.equal(o.error, undefined);
      assert.equal(o.body.toString(), `ok /c${i}`);
    });
    assert.equal(up.conns.length, 2, 'two connections in all');
    assert.ok(up.maxOpen <= 2);
    assert.ok(maxQueued > 0 && queuedSamples > 1, 'requests waited in the queue while the two were busy');
    assert.ok(ms >= 4 * 100 - 5, `8 requests on 2 connections took ${ms} ms: they were not limited to two at a time`);
    assert.deepEqual(pool.stats(), { open: 2, idle: 2, queued: 0 });
  });
});

describe('H1Pool: keep-alive timeouts', () => {
  it('does not reuse a connection whose upstream announced Keep-Alive: timeout=1', async (t) => {
    const up = await startHttp(t, (_req, res) => res.end('ok'));
    up.server.keepAliveTimeout = 1000; // node:http announces "Keep-Alive: timeout=1"
    const pool = newPool(t, up.url, { keepAliveTimeout: 10_000 });
    for (let i = 0; i < 3; i++) {
      const o = await ok(call(pool, { path: `/k${i}` }));
      assert.match(o.headers.join('\n'), /^Keep-Alive\ntimeout=1$/m);
    }
    assert.equal(up.conns.length, 3, 'a new connection per request');
    // The client closed each one itself, at once (node:http would wait a second longer).
    await waitFor(() => closedConns(up.conns) === 3, 500, 'the client to close every connection');
    assert.equal(pool.stats().open, 0);
  });

  it('reuses a connection whose upstream announced Keep-Alive: timeout=5', async (t) => {
    const up = await startHttp(t, (_req, res) => res.end('ok'));
    up.server.keepAliveTimeout = 5000;
    const pool = newPool(t, up.url, { keepAliveTimeout: 10_000 });
    for (let i = 0; i < 5; i++) {
      const o = await ok(call(pool, { path: `/k${i}` }));
      assert.match(o.headers.join('\n'), /^Keep-Alive\ntimeout=5$/m);
    }
    assert.equal(up.conns.length, 1);
    assert.equal(pool.stats().idle, 1);
  });

  it('closes a connection idle for the upstream\'s timeout=N less a second, even when its own keepAliveTimeout is longer', async (t) => {
    const up = await startRaw(t, (r) => r.socket.write(response('ok', 'Keep-Alive: timeout=2\r\n')));
    const pool = newPool(t, up.url, { keepAliveTimeout: 10_000 });
    await ok(call(pool));
    const idleFrom = performance.now();
    await waitFor(() => up.conns[0]!.closed, 3000, 'the client to close the idle connection');
    const ms = up.conns[0]!.closedAt - idleFrom;
    assert.ok(ms >= 1000 - 5 && ms < 1600, `closed after ${ms} ms idle (expected about 1000)`);
  });

  it('closes an idle connection after the pool\'s keepAliveTimeout (the upstream sees the close)', async (t) => {
    const up = await startRaw(t, (r) => r.socket.write(response()));
    const keepAliveTimeout = 300;
    const pool = newPool(t, up.url, { keepAliveTimeout });
    await ok(call(pool));
    const idleFrom = performance.now();
    assert.deepEqual(pool.stats(), { open: 1, idle: 1, queued: 0 });
    await waitFor(() => up.conns[0]!.closed, 2000, 'the client to close the idle connection');
    const ms = up.conns[0]!.closedAt - idleFrom;
    assert.ok(ms >= keepAliveTimeout - 5 && ms < keepAliveTimeout + 500, `closed after ${ms} ms idle`);
    await waitFor(() => pool.stats().open === 0, 500, 'the pool to forget the connection');
    // The next request simply gets a new one.
    assert.equal((await ok(call(pool))).body.toString(), 'ok');
    assert.equal(up.conns.length, 2);
  });
});

describe('H1Pool: a keep-alive connection the upstream closed under a request', () => {
  /**
   * Answers the first request on each connection; on a later one, reads it and closes the connection
   * without a word (an upstream whose idle timer fired as the request arrived). With `always`, every
   * request gets that treatment.
   */
  function staleUpstream(t: TestContext, mode: { always: boolean; reset?: boolean } = { always: false }) {
    return startRaw(t, (r) => {
      if (r.index === 1 && !mode.always) r.socket.write(response(`ok ${r.path} ${r.body.toString()}`));
      else if (mode.reset) r.socket.resetAndDestroy();
      else r.socket.destroy();
    });
  }

  for (const reset of [false, true]) {
    it(`sends a GET once more on a new connection, and it succeeds (closed with ${reset ? 'RST' : 'FIN'})`, async (t) => {
      const up = await staleUpstream(t, { always: false, reset });
      const pool = newPool(t, up.url);
      await ok(call(pool, { path: '/first' }));
      const c = call(pool, { path: '/second' });
      const o = await ok(c);
      assert.equal(o.body.toString(), 'ok /second ');
      assert.deepEqual(outline(c.events), ['connect', 'headers 200', 'data', 'complete'], 'the handler never hears of the first attempt');
      assert.deepEqual(up.requests.map((r) => [r.path, r.conn.id, r.index]), [['/first', 1, 1], ['/second', 1, 2], ['/second', 2, 1]]);
    });

    it(`does not send a POST with a Buffer body again: it fails with MPG_UPSTREAM_RESET (closed with ${reset ? 'RST' : 'FIN'})`, async (t) => {
      const up = await staleUpstream(t, { always: false, reset });
      const pool = newPool(t, up.url);
      await ok(call(pool, { path: '/first' }));
      const c = call(pool, { method: 'POST', path: '/post', body: Buffer.from('once') });
      const o = await c.done;
      assert.equal(o.code, 'MPG_UPSTREAM_RESET', o.error?.message);
      if (reset) assert.equal((o.error as NodeJS.ErrnoException).code, 'ECONNRESET');
      assert.deepEqual(c.events, ['connect', 'error MPG_UPSTREAM_RESET']);
      assert.equal(up.requests.filter((r) => r.path === '/post').length, 1, 'the POST reached the upstream once');
      assert.equal(up.conns.length, 1, 'no connection was opened to repeat it');
    });
  }

  it('sends a PUT with a Buffer body once more, body intact', async (t) => {
    const up = await staleUpstream(t);
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/first' }));
    const o = await ok(call(pool, { method: 'PUT', path: '/put', body: Buffer.from('payload') }));
    assert.equal(o.body.toString(), 'ok /put payload');
    assert.equal(up.requests.filter((r) => r.path === '/put').length, 2);
  });

  it('does not send a PUT with a stream body again (the body is gone)', async (t) => {
    const up = await staleUpstream(t);
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/first' }));
    const body = new PassThrough();
    body.end('streamed');
    const o = await call(pool, { method: 'PUT', path: '/stream', body }).done;
    assert.equal(o.code, 'MPG_UPSTREAM_RESET');
    assert.equal(up.requests.filter((r) => r.path === '/stream').length, 1);
    assert.equal(up.conns.length, 1);
  });

  it('retries only once: a GET whose retry also meets a closed connection fails', async (t) => {
    const mode = { always: false };
    const up = await staleUpstream(t, mode);
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/first' }));
    mode.always = true;
    const o = await call(pool, { path: '/again' }).done;
    assert.equal(o.code, 'MPG_UPSTREAM_RESET');
    assert.equal(up.requests.filter((r) => r.path === '/again').length, 2, 'sent, then retried once');
    assert.equal(up.conns.length, 2);
  });

  it('a retry waiting for a slot gets the freed slot as a new connection, never another kept-alive one', async (t) => {
    // connections: 2. X meets a stale connection while Y holds the other one and Z waits: X goes
    // back to the head of the queue and the slot its dead connection frees becomes a new
    // connection for X (not the next reused connection, which may be just as stale).
    const up = await startRaw(t, (r) => {
      if (r.path === '/x' && r.index > 1) r.socket.destroy();
      else if (r.path === '/slow') setTimeout(() => r.socket.write(response(`ok ${r.path}`)), 200);
      else r.socket.write(response(`ok ${r.path}`));
    });
    const pool = newPool(t, up.url, { connections: 2 });
    await Promise.all([ok(call(pool, { path: '/warm' })), ok(call(pool, { path: '/warm' }))]);
    assert.equal(up.conns.length, 2);
    const y = call(pool, { path: '/slow' });
    const x = call(pool, { path: '/x' });
    const z = call(pool, { path: '/z' });
    assert.equal(pool.stats().queued, 1);
    assert.equal((await ok(x)).body.toString(), 'ok /x');
    assert.deepEqual(up.requests.filter((r) => r.path === '/x').map((r) => r.index), [2, 1], 'X went out twice: on a reused connection, then on a new one');
    assert.equal((await ok(z)).body.toString(), 'ok /z');
    assert.equal((await ok(y)).body.toString(), 'ok /slow');
    assert.equal(up.conns.length, 3);
  });
});

describe('H1Pool: the request on the wire', () => {
  /** A raw upstream answering 204 to every request. */
  const start = (t: TestContext) => startRaw(t, (r) => r.socket.write('HTTP/1.1 204 No Content\r\n\r\n'));

  it('GET: head only, headers in order (repeats kept), Host added from the origin, no Content-Length', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/a?b=1&c=%20', headers: ['Accept', 'text/plain', 'X-Multi', 'a', 'X-Multi', 'b'] }));
    assert.equal(up.requests[0]!.raw.toString('latin1'), `GET /a?b=1&c=%20 HTTP/1.1\r\nAccept: text/plain\r\nX-Multi: a\r\nX-Multi: b\r\nhost: ${up.authority}\r\n\r\n`);
    await ok(call(pool, { method: 'DELETE', path: '/d' }));
    assert.equal(up.requests[1]!.raw.toString('latin1'), `DELETE /d HTTP/1.1\r\nhost: ${up.authority}\r\n\r\n`);
  });

  it('keeps the Host given in the header list (any case) and adds none', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    await ok(call(pool, { headers: ['Host', 'example.test', 'X-A', '1'] }));
    await ok(call(pool, { headers: ['X-A', '1', 'hOsT', 'other.test:8080'] }));
    assert.equal(up.requests[0]!.raw.toString('latin1'), 'GET / HTTP/1.1\r\nHost: example.test\r\nX-A: 1\r\n\r\n');
    assert.equal(up.requests[1]!.raw.toString('latin1'), 'GET / HTTP/1.1\r\nX-A: 1\r\nhOsT: other.test:8080\r\n\r\n');
  });

  it('POST without a body: Content-Length: 0 (not doubled when the list has one)', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    await ok(call(pool, { method: 'POST', path: '/p' }));
    await ok(call(pool, { method: 'POST', path: '/p', headers: ['Content-Length', '0'] }));
    assert.equal(up.requests[0]!.raw.toString('latin1'), `POST /p HTTP/1.1\r\nhost: ${up.authority}\r\ncontent-length: 0\r\n\r\n`);
    assert.equal(up.requests[1]!.raw.toString('latin1'), `POST /p HTTP/1.1\r\nContent-Length: 0\r\nhost: ${up.authority}\r\n\r\n`);
    assert.equal(up.conns.length, 1);
  });

  it('POST with a Buffer: Content-Length set, every byte intact', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    const body = randomBytes(200_000);
    await ok(call(pool, { method: 'POST', path: '/b', headers: ['Content-Type', 'application/octet-stream'], body }));
    const head = `POST /b HTTP/1.1\r\nContent-Type: application/octet-stream\r\nhost: ${up.authority}\r\ncontent-length: 200000\r\n\r\n`;
    assert.ok(up.requests[0]!.raw.equals(Buffer.concat([Buffer.from(head, 'latin1'), body])), 'exact bytes on the wire');
  });

  it('POST with a stream and no Content-Length: chunked, one chunk per piece, terminated', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    const body = new PassThrough();
    const done = call(pool, { method: 'POST', path: '/s', body }).done;
    body.write('hello');
    await sleep(20);
    body.write(Buffer.from(' wörld!'));
    await sleep(20);
    body.end();
    assert.equal((await done).error, undefined);
    assert.equal(
      up.requests[0]!.raw.toString('latin1'),
      `POST /s HTTP/1.1\r\nhost: ${up.authority}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\n w\xc3\xb6rld!\r\n0\r\n\r\n`,
    );
  });

  it('a large chunked stream body arrives intact', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    const data = randomBytes(1024 * 1024 + 123);
    const body = new PassThrough();
    const done = call(pool, { method: 'POST', path: '/big', body }).done;
    for (let i = 0; i < data.length; i += 50_000) {
      if (!body.write(data.subarray(i, i + 50_000))) await once(body, 'drain');
      await new Promise((r) => setImmediate(r));
    }
    body.end();
    assert.equal((await done).error, undefined);
    assert.equal(sha(up.requests[0]!.body), sha(data));
    assert.match(up.requests[0]!.head, /\r\ntransfer-encoding: chunked$/);
  });

  it('a stream body with a Content-Length is sent raw (no chunk framing)', async (t) => {
    const up = await start(t);
    const pool = newPool(t, up.url);
    const body = new PassThrough();
    const done = call(pool, { method: 'PUT', path: '/r', headers: ['Content-Length', '11'], body }).done;
    body.write('hello');
    await sleep(10);
    body.end(' world');
    assert.equal((await done).error, undefined);
    assert.equal(up.requests[0]!.raw.toString('latin1'), `PUT /r HTTP/1.1\r\nContent-Length: 11\r\nhost: ${up.authority}\r\n\r\nhello world`);
    // And the connection is in step for the next request.
    await ok(call(pool, { path: '/next' }));
    assert.equal(up.requests[1]!.path, '/next');
    assert.equal(up.conns.length, 1);
  });
});

describe('H1Pool: request splitting refused', () => {
  const cases: { name: string; req: Partial<UpstreamRequest> }[] = [
    { name: 'a header value with CRLF', req: { headers: ['X-A', 'v\r\nX-Injected: yes'] } },
    { name: 'a header value with a bare LF', req: { headers: ['X-A', 'v\nX-Injected: yes'] } },
    { name: 'a header value with a bare CR', req: { headers: ['X-A', 'v\rX'] } },
    { name: 'a header value with NUL', req: { headers: ['X-A', 'v\0'] } },
    { name: 'a header name with a space', req: { headers: ['X Bad', 'v'] } },
    { name: 'a header name with a colon', req: { headers: ['X-Bad:', 'v'] } },
    { name: 'a header name with CRLF', req: { headers: ['X-A\r\nX-Injected', 'v'] } },
    { name: 'an empty header name', req: { headers: ['', 'v'] } },
    { name: 'a path with a space', req: { path: '/a b' } },
    { name: 'a path with LF', req: { path: '/a\nGET /b' } },
    { name: 'a path with CRLF', req: { path: '/a HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /b' } },
    { name: 'a method with a space', req: { method: 'GET /x HTTP/1.1\r\n\r\nGET' } },
  ];

  it('fails each with MPG_BAD_REQUEST without sending a byte, and the connection stays usable', async (t) => {
    const up = await startRaw(t, (r) => r.socket.write(response(`ok ${r.path}`)));
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/warm' }));
    const before = up.bytes;
    for (const { name, req } of cases) {
      const c = call(pool, req);
      const o = await c.done;
      assert.equal(o.code, 'MPG_BAD_REQUEST', `${name}: ${o.error?.message}`);
      assert.deepEqual(c.events, ['connect', 'error MPG_BAD_REQUEST'], name);
      assert.equal(up.bytes, before, `${name}: bytes reached the upstream`);
    }
    await sleep(50);
    assert.equal(up.bytes, before, 'nothing reached the upstream');
    assert.equal((await ok(call(pool, { path: '/after' }))).body.toString(), 'ok /after');
    assert.equal(up.conns.length, 1, 'the same connection served the next request');
    assert.deepEqual(up.requests.map((r) => r.path), ['/warm', '/after']);
  });

  it('refuses a header value with characters above U+00FF (written as latin1 they would become CR LF)', async (t) => {
    // "\u010d\u010a" contains no CR or LF, but Buffer's latin1 encoding keeps only the low byte of
    // each character: on the wire it is "\r\n". node:http and undici refuse such values.
    const up = await startRaw(t, (r) => r.socket.write(response(`ok ${r.path}`)));
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/warm' }));
    const before = up.bytes;
    const o = await call(pool, { path: '/x', headers: ['X-A', 'v\u010d\u010aX-Injected: yes'] }).done;
    await sleep(50);
    const seen = up.requests.slice(1).map((r) => JSON.stringify(r.head)).join(', ');
    assert.equal(o.code, 'MPG_BAD_REQUEST', `the request was sent (outcome: ${o.code ?? `status ${o.status}`}); the upstream received: ${seen}`);
    assert.equal(up.bytes, before, `bytes reached the upstream: ${seen}`);
  });
});

describe('H1Pool: deadlines', () => {
  it('responseTimeout: an upstream that never answers fails with MPG_UPSTREAM_TIMEOUT on time, connection closed', async (t) => {
    const up = await startRaw(t, () => {});
    const responseTimeout = 400;
    const pool = newPool(t, up.url, { responseTimeout });
    const c = call(pool);
    const o = await c.done;
    assert.equal(o.code, 'MPG_UPSTREAM_TIMEOUT');
    assert.deepEqual(c.events, ['connect', 'error MPG_UPSTREAM_TIMEOUT']);
    assert.ok(o.ms >= responseTimeout - 2 && o.ms < responseTimeout + 500, `timed out after ${o.ms} ms`);
    assert.equal(up.requests.length, 1, 'the request had been sent');
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the connection close');
  });

  it('responseTimeout counts from the last request byte: a slowly streamed body is not cut off', async (t) => {
    const up = await startHttp(t, (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(String(n)));
    });
    const responseTimeout = 300;
    const pool = newPool(t, up.url, { responseTimeout });
    const body = new PassThrough();
    const done = call(pool, { method: 'POST', body }).done;
    // 8 pieces 100 ms apart: 800 ms of upload, far more than responseTimeout in all.
    for (let i = 0; i < 8; i++) {
      body.write('x'.repeat(1000));
      await sleep(100);
    }
    body.end();
    const o = await done;
    assert.equal(o.error, undefined, `failed: ${o.code}`);
    assert.equal(o.body.toString(), '8000');
  });

  it('responseTimeout after a streamed body: counted from its last piece', async (t) => {
    const up = await startRaw(t, () => {}); // reads the whole request, never answers
    const responseTimeout = 300;
    const pool = newPool(t, up.url, { responseTimeout });
    const body = new PassThrough();
    const c = call(pool, { method: 'POST', body });
    for (let i = 0; i < 4; i++) {
      body.write('y'.repeat(100));
      await sleep(100);
    }
    body.end();
    const ended = performance.now();
    const o = await c.done;
    const ms = performance.now() - ended;
    assert.equal(o.code, 'MPG_UPSTREAM_TIMEOUT');
    assert.equal(up.requests.length, 1, 'the whole body had arrived');
    assert.ok(ms >= responseTimeout - 5 && ms < responseTimeout + 500, `timed out ${ms} ms after the body ended`);
  });

  it('bodyIdleTimeout: a body that stalls fails with MPG_UPSTREAM_TIMEOUT after the head and the bytes that came', async (t) => {
    let sentAt = 0;
    const up = await startRaw(t, (r) => {
      r.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${'a'.repeat(10)}`);
      sentAt = performance.now();
    });
    const bodyIdleTimeout = 300;
    const pool = newPool(t, up.url, { bodyIdleTimeout });
    const c = call(pool);
    const o = await c.done;
    const ms = performance.now() - sentAt;
    assert.equal(o.code, 'MPG_UPSTREAM_TIMEOUT');
    assert.deepEqual(outline(c.events), ['connect', 'headers 200', 'data', 'error MPG_UPSTREAM_TIMEOUT']);
    assert.equal(o.body.toString(), 'a'.repeat(10));
    assert.ok(ms >= bodyIdleTimeout - 5 && ms < bodyIdleTimeout + 500, `timed out ${ms} ms after the last byte`);
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the connection close');
  });

  it('bodyIdleTimeout resets with each piece of the body: a slow but steady body completes', async (t) => {
    const up = await startHttp(t, (_req, res) => {
      res.writeHead(200, { 'content-length': 6 });
      let i = 0;
      const timer = setInterval(() => {
        res.write(String(i));
        if (++i === 6) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
    });
    const pool = newPool(t, up.url, { bodyIdleTimeout: 250 });
    const o = await ok(call(pool));
    assert.equal(o.body.toString(), '012345');
    assert.ok(o.ms >= 500, `took ${o.ms} ms: the body was not slow, the test proves nothing`);
  });

  for (const where of ['onData', 'onHeaders'] as const) {
    it(`no body-idle timeout while the handler holds the response (paused from ${where} for 2× bodyIdleTimeout)`, async (t) => {
      const data = randomBytes(512 * 1024);
      const up = await startHttp(t, (_req, res) => {
        res.writeHead(200, { 'content-length': data.length });
        res.end(data);
      });
      const bodyIdleTimeout = 200;
      const pool = newPool(t, up.url, { bodyIdleTimeout });
      let held = false;
      const hold = (resume: () => void): boolean => {
        if (held) return true;
        held = true;
        setTimeout(resume, bodyIdleTimeout * 2);
        return false;
      };
      const c = call(pool, {}, where === 'onData' ? { onData: (_c, resume) => hold(resume) } : { onHeaders: (_s, resume) => hold(resume) });
      const o = await c.done;
      assert.equal(o.error, undefined, `failed: ${o.code}`);
      assert.ok(held);
      assert.ok(o.ms >= bodyIdleTimeout * 2, `took ${o.ms} ms: the response was not held`);
      assert.equal(sha(o.body), sha(data));
      assert.equal(outline(c.events).at(-1), 'complete');
      // Held responses do not cost the connection.
      assert.equal(pool.stats().idle, 1);
    });
  }

  it('connectTimeout: an upstream whose accept queue is full fails with MPG_UPSTREAM_CONNECT_TIMEOUT on time', async (t) => {
    const hole = await startBlackhole();
    t.after(() => hole.close());
    const errors: unknown[] = [];
    const onError = (m: unknown) => {
      if ((m as { port: number }).port === hole.port) errors.push((m as { error: unknown }).error);
    };
    diagnostics.subscribe('mpgate:upstream:connectError', onError);
    t.after(() => diagnostics.unsubscribe('mpgate:upstream:connectError', onError));
    const connectTimeout = 300;
    const pool = newPool(t, `http://127.0.0.1:${hole.port}`, { connectTimeout });
    const c = call(pool);
    const o = await c.done;
    assert.equal(o.code, 'MPG_UPSTREAM_CONNECT_TIMEOUT');
    assert.deepEqual(c.events, ['connect', 'error MPG_UPSTREAM_CONNECT_TIMEOUT']);
    assert.ok(o.ms >= connectTimeout - 2 && o.ms < connectTimeout + 500, `timed out after ${o.ms} ms`);
    assert.deepEqual(errors.map((e) => classifyError(e).code), ['MPG_UPSTREAM_CONNECT_TIMEOUT'], 'one connectError published');
    await waitFor(() => pool.stats().open === 0, 1000, 'the attempt to be dropped');
  });
});

describe('H1Pool: response backpressure', () => {
  it('reads no further while the handler holds back: 32 MiB arrive intact, the upstream never far ahead', async (t) => {
    const total = 32 * 1024 * 1024;
    const piece = randomBytes(64 * 1024);
    const expected = createHash('sha256');
    for (let i = 0; i < total / piece.length; i++) expected.update(piece);
    let written = 0;
    const up = await startHttp(t, async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked
      while (written < total) {
        written += piece.length;
        if (!res.write(piece)) await once(res, 'drain');
      }
      res.end();
    });
    const pool = newPool(t, up.url);
    const hash = createHash('sha256');
    let consumed = 0;
    let paused = false;
    let whilePaused = 0;
    let maxWhilePaused = 0;
    let maxAhead = 0;
    let pauses = 0;
    const c = call(pool, {}, {
      onData(chunk, resume) {
        hash.update(chunk);
        consumed += chunk.length;
        maxAhead = Math.max(maxAhead, written - consumed);
        if (paused) {
          // The rest of a socket read the parser had already started on.
          whilePaused += chunk.length;
          maxWhilePaused = Math.max(maxWhilePaused, whilePaused);
          return false;
        }
        paused = true;
        pauses++;
        whilePaused = 0;
        setTimeout(() => {
          paused = false;
          resume();
        }, 1);
        return false;
      },
    });
    const o = await c.done;
    assert.equal(o.error, undefined, `failed: ${o.code}`);
    assert.equal(consumed, total);
    assert.equal(hash.digest('hex'), expected.digest('hex'), 'body intact');
    t.diagnostic(`pauses ${pauses}, most delivered while held ${maxWhilePaused} B, upstream at most ${(maxAhead / 1048576).toFixed(1)} MiB ahead`);
    assert.ok(pauses > 100, `only ${pauses} pauses`);
    assert.ok(maxWhilePaused <= 128 * 1024, `${maxWhilePaused} bytes were delivered while the handler held back`);
    assert.ok(maxAhead <= 12 * 1024 * 1024, `the upstream got ${(maxAhead / 1048576).toFixed(1)} MiB ahead of the handler`);
  });

  it('holds back a request body stream while the upstream reads slowly', async (t) => {
    const total = 16 * 1024 * 1024;
    let received = 0;
    const up = await startHttp(t, (req, res) => {
      req.on('data', (d: Buffer) => {
        received += d.length;
        req.pause();
        setTimeout(() => req.resume(), 1);
      });
      req.on('end', () => res.end(String(received)));
    });
    const pool = newPool(t, up.url);
    const body = new PassThrough();
    const done = call(pool, { method: 'POST', body }).done;
    const piece = Buffer.alloc(64 * 1024, 7);
    let produced = 0;
    let maxAhead = 0;
    while (produced < total) {
      produced += piece.length;
      maxAhead = Math.max(maxAhead, produced - received);
      if (!body.write(piece)) await once(body, 'drain');
      // Like a client socket: one read per event-loop turn.
      await new Promise((r) => setImmediate(r));
    }
    body.end();
    const o = await done;
    assert.equal(o.error, undefined, `failed: ${o.code}`);
    assert.equal(o.body.toString(), String(total));
    t.diagnostic(`body source at most ${(maxAhead / 1048576).toFixed(1)} MiB ahead of the upstream`);
    assert.ok(maxAhead <= 12 * 1024 * 1024, `the body source got ${(maxAhead / 1048576).toFixed(1)} MiB ahead of the upstream`);
  });
});

describe('H1Pool: abort', () => {
  it('while queued: fails with the given error, the request never reaches the upstream', async (t) => {
    const up = await startHttp(t, (req, res) => setTimeout(() => res.end(`ok ${req.url}`), 150));
    const pool = newPool(t, up.url, { connections: 1 });
    const first = call(pool, { path: '/first' });
    const queued = call(pool, { path: '/queued' });
    assert.equal(pool.stats().queued, 1);
    const reason = new GatewayError('MPG_CLIENT_GONE', 'client left');
    queued.abort(reason);
    assert.equal(pool.stats().queued, 0);
    const o = await queued.done;
    assert.equal(o.error, reason, 'onError gets the abort error itself');
    await ok(first);
    await sleep(50);
    assert.deepEqual(queued.events, ['connect', 'error MPG_CLIENT_GONE']);
    assert.deepEqual(up.requests.map((r) => r.url), ['/first']);
    queued.abort(); // a second abort is a no-op
    assert.equal(queued.events.length, 2);
  });

  it('while waiting for the head: MPG_CLIENT_GONE once, the upstream sees the connection close', async (t) => {
    const up = await startRaw(t, () => {});
    const pool = newPool(t, up.url);
    const c = call(pool);
    await waitFor(() => up.requests.length === 1, 2000, 'the request upstream');
    c.abort();
    const o = await c.done;
    assert.equal(o.code, 'MPG_CLIENT_GONE');
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the close');
    await sleep(50);
    assert.deepEqual(c.events, ['connect', 'error MPG_CLIENT_GONE'], 'nothing after the abort');
    assert.equal(pool.stats().open, 0);
  });

  it('while reading the body: onError once, never onComplete, no data after the abort', async (t) => {
    const ends: { finished: boolean; closed: boolean }[] = [];
    const up = await startHttp(t, (_req, res) => {
      const s = { finished: false, closed: false };
      ends.push(s);
      res.on('finish', () => (s.finished = true));
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 10);
      res.on('close', () => {
        s.closed = true;
        clearInterval(timer);
      });
    });
    const pool = newPool(t, up.url);
    let c!: Call;
    c = call(pool, {}, {
      onData: () => {
        if (c.bytes >= 15) c.abort(); // from inside the callback, as a handler would
        return true;
      },
    });
    const o = await c.done;
    assert.equal(o.code, 'MPG_CLIENT_GONE');
    const snapshot = [...c.events];
    assert.deepEqual(outline(snapshot), ['connect', 'headers 200', 'data', 'error MPG_CLIENT_GONE']);
    await waitFor(() => ends[0]!.closed, 1000, 'the upstream to see its response cut');
    assert.equal(ends[0]!.finished, false);
    await sleep(100);
    assert.deepEqual(c.events, snapshot, 'no callbacks after the abort');
  });

  it('before the first piece of a stream body: nothing is written and the connection serves the next request', async (t) => {
    const up = await startRaw(t, (r) => r.socket.write(response(`ok ${r.path}`)));
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/warm' }));
    const before = up.bytes;
    const body = new PassThrough();
    const c = call(pool, { method: 'POST', path: '/upload', body });
    await sleep(30);
    c.abort();
    const o = await c.done;
    assert.equal(o.code, 'MPG_CLIENT_GONE');
    body.write('late'); // the body turning up after the abort goes nowhere
    body.end();
    await sleep(50);
    assert.equal(up.bytes, before, 'not even the head went out');
    assert.deepEqual(pool.stats(), { open: 1, idle: 1, queued: 0 });
    assert.equal((await ok(call(pool, { path: '/next' }))).body.toString(), 'ok /next');
    assert.equal(up.conns.length, 1, 'the same connection served the next request');
    assert.deepEqual(up.requests.map((r) => r.path), ['/warm', '/next']);
    assert.deepEqual(c.events, ['connect', 'error MPG_CLIENT_GONE']);
  });
});

describe('H1Pool: unusual responses', () => {
  it('a close-delimited body is delivered whole, and its connection is not reused', async (t) => {
    const up = await startRaw(t, (r) => {
      r.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1 ');
      setTimeout(() => r.socket.end('part2'), 30);
    });
    const pool = newPool(t, up.url);
    const c = call(pool);
    const o = await ok(c);
    assert.equal(o.body.toString(), 'part1 part2');
    assert.equal(outline(c.events).at(-1), 'complete');
    assert.equal((await ok(call(pool))).body.toString(), 'part1 part2');
    assert.equal(up.conns.length, 2);
  });

  it('skips 100 Continue and 103 Early Hints: onHeaders sees only the final response', async (t) => {
    const up = await startRaw(t, (r) => {
      r.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      setTimeout(() => r.socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'), 10);
      setTimeout(() => r.socket.write('HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Final: 1\r\n\r\ndone'), 20);
    });
    const pool = newPool(t, up.url);
    const c = call(pool, { method: 'POST', body: Buffer.from('x') });
    const o = await ok(c);
    assert.equal(o.status, 201);
    assert.equal(o.statusText, 'Created');
    assert.deepEqual(o.headers, ['Content-Length', '4', 'X-Final', '1']);
    assert.equal(o.body.toString(), 'done');
    assert.deepEqual(outline(c.events), ['connect', 'headers 201', 'data', 'complete']);
    await ok(call(pool));
    assert.equal(up.conns.length, 1, 'the connection was reused');
  });

  it('drops a connection on which the upstream sends bytes nobody asked for; the next request works', async (t) => {
    const up = await startRaw(t, (r) => {
      r.socket.write(response(`ok ${r.conn.id}`));
      if (r.conn.id === 1) setTimeout(() => r.socket.write(response('unsolicited')), 30);
    });
    const pool = newPool(t, up.url);
    await ok(call(pool));
    await waitFor(() => up.conns[0]!.closed, 1000, 'the client to drop the connection');
    await waitFor(() => pool.stats().open === 0, 500, 'the pool to forget it');
    assert.equal((await ok(call(pool))).body.toString(), 'ok 2');
    assert.equal(up.conns.length, 2);
  });

  it('completes a response followed by extra bytes in the same read, but does not reuse that connection', async (t) => {
    const up = await startRaw(t, (r) => r.socket.write(response(`ok ${r.conn.id}`) + response('extra')));
    const pool = newPool(t, up.url);
    assert.equal((await ok(call(pool))).body.toString(), 'ok 1');
    assert.equal((await ok(call(pool))).body.toString(), 'ok 2');
    assert.equal(up.conns.length, 2);
    await waitFor(() => up.conns[0]!.closed, 1000, 'the first connection to be closed');
  });

  it('fails an invalid response with MPG_UPSTREAM_BAD_RESPONSE and drops the connection', async (t) => {
    const up = await startRaw(t, (r) => {
      if (r.conn.id === 1) r.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
      else r.socket.write(response('fine'));
    });
    const pool = newPool(t, up.url);
    const c = call(pool);
    const o = await c.done;
    assert.equal(o.code, 'MPG_UPSTREAM_BAD_RESPONSE');
    assert.deepEqual(c.events, ['connect', 'error MPG_UPSTREAM_BAD_RESPONSE']);
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the close');
    assert.equal((await ok(call(pool))).body.toString(), 'fine');
    assert.equal(up.conns.length, 2);
  });

  it('HEAD: a Content-Length without a body, and the connection is reused', async (t) => {
    const up = await startRaw(t, (r) => {
      if (r.method === 'HEAD') r.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
      else r.socket.write(response(`ok ${r.method}`));
    });
    const pool = newPool(t, up.url, { responseTimeout: 1000 });
    const c = call(pool, { method: 'HEAD' });
    const o = await ok(c);
    assert.equal(o.status, 200);
    assert.deepEqual(o.headers, ['Content-Length', '1234']);
    assert.equal(o.body.length, 0);
    assert.deepEqual(c.events, ['connect', 'headers 200', 'complete']);
    assert.equal((await ok(call(pool))).body.toString(), 'ok GET');
    assert.equal(up.conns.length, 1);
  });
});

describe('H1Pool: https upstream', () => {
  it('verifies the upstream against `ca`; without it the failure is MPG_UPSTREAM_TLS', async (t) => {
    const tmp = await tempDir('h1-client');
    t.after(() => tmp.remove());
    const ca = await issue(tmp.dir, { name: 'ca', commonName: 'h1-client test CA', ca: {} });
    const leaf = await issue(tmp.dir, { name: 'leaf', names: ['127.0.0.1', 'localhost'], issuer: ca });
    const other = await issue(tmp.dir, { name: 'other', names: ['elsewhere.test'], issuer: ca });
    const servers: https.Server[] = [];
    const start = async (cert: string, key: string) => {
      const server = https.createServer({ cert, key }, (req, res) => res.end(`tls ${req.url} ${(req.socket as import('node:tls').TLSSocket).alpnProtocol}`));
      server.on('tlsClientError', () => {});
      const { conns } = trackConnections(server);
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return { port: (server.address() as net.AddressInfo).port, conns };
    };
    t.after(() => Promise.all(servers.map((s) => new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    }))));
    const good = await start(leaf.certPem, leaf.keyPem);
    const misnamed = await start(other.certPem, other.keyPem);

    for (const host of ['127.0.0.1', 'localhost']) {
      const pool = newPool(t, `https://${host}:${good.port}`, { ca: ca.certPem });
      assert.equal((await ok(call(pool, { path: '/a' }))).body.toString(), 'tls /a http/1.1');
      assert.equal((await ok(call(pool, { path: '/b' }))).body.toString(), 'tls /b http/1.1');
      assert.equal(pool.stats().open, 1, `${host}: one TLS connection for both`);
    }
    assert.equal(good.conns.length, 2);

    // A new connection resumes the TLS session of an earlier one (no full handshake per connection).
    const resumed: boolean[] = [];
    const server = servers[0]!;
    const onSecure = (s: import('node:tls').TLSSocket) => s.once('data', () => resumed.push(s.isSessionReused()));
    server.on('secureConnection', onSecure);
    const pool = newPool(t, `https://localhost:${good.port}`, { ca: ca.certPem, connections: 2 });
    await ok(call(pool, { path: '/first' }));
    await Promise.all([ok(call(pool, { path: '/x' })), ok(call(pool, { path: '/y' }))]);
    server.off('secureConnection', onSecure);
    assert.deepEqual(resumed, [false, true], 'the second connection resumed the first one\'s session');

    const untrusted = await call(newPool(t, `https://127.0.0.1:${good.port}`), { path: '/c' }).done;
    assert.equal(untrusted.code, 'MPG_UPSTREAM_TLS', `${untrusted.error?.message}`);

    const wrongName = await call(newPool(t, `https://127.0.0.1:${misnamed.port}`, { ca: ca.certPem })).done;
    assert.equal(wrongName.code, 'MPG_UPSTREAM_TLS', `${wrongName.error?.message}`);
    assert.equal((wrongName.error as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('H1Pool: close and destroy', () => {
  it('close() lets the running and queued requests finish, refuses new ones, then resolves; idempotent', async (t) => {
    const up = await startHttp(t, (req, res) => setTimeout(() => res.end(`ok ${req.url}`), 150));
    const pool = newPool(t, up.url, { connections: 1 });
    const running = call(pool, { path: '/running' });
    const queued = call(pool, { path: '/queued' });
    await waitFor(() => up.requests.length === 1, 1000, 'the first request upstream');
    let closed = false;
    const closing = pool.close().then(() => (closed = true));
    const late = await call(pool, { path: '/late' }).done;
    assert.equal(late.code, 'MPG_UPSTREAM_RESET', 'a request after close() is refused at once');
    await sleep(50);
    assert.equal(closed, false, 'close() waits for the running request');
    assert.equal((await ok(running)).body.toString(), 'ok /running');
    assert.equal((await ok(queued)).body.toString(), 'ok /queued');
    await closing;
    assert.deepEqual(pool.stats(), { open: 0, idle: 0, queued: 0 });
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the close');
    assert.deepEqual(up.requests.map((r) => r.url), ['/running', '/queued']);
    await pool.close();
    await pool.destroy();
  });

  it('close() also waits for a request that is being sent again after meeting a stale connection', async (t) => {
    // Connection 1 answers once, then closes under the next request 50 ms after it arrives; the
    // retry goes out on connection 2, which answers after 200 ms.
    let arrived!: () => void;
    const xArrived = new Promise<void>((r) => (arrived = r));
    const up = await startRaw(t, (r) => {
      if (r.conn.id === 1 && r.index === 2) {
        arrived();
        setTimeout(() => r.socket.destroy(), 50);
      } else {
        setTimeout(() => r.socket.write(response(`ok ${r.path} on ${r.conn.id}`)), r.conn.id === 1 ? 0 : 200);
      }
    });
    const pool = newPool(t, up.url);
    await ok(call(pool, { path: '/warm' }));
    const x = call(pool, { path: '/x' });
    let xDone = false;
    void x.done.then(() => (xDone = true));
    await xArrived;
    let closedWhile: string | undefined;
    await pool.close().then(() => {
      closedWhile = xDone ? undefined : `close() resolved while /x was still running (stats ${JSON.stringify(pool.stats())}, upstream requests so far: ${up.requests.length})`;
    });
    const o = await ok(x);
    assert.equal(o.body.toString(), 'ok /x on 2', 'the retry was answered');
    assert.equal(closedWhile, undefined, closedWhile);
  });

  it('close() closes idle connections at once', async (t) => {
    const up = await startHttp(t, (_req, res) => res.end('ok'));
    const pool = newPool(t, up.url);
    await Promise.all([ok(call(pool)), ok(call(pool))]);
    assert.equal(pool.stats().idle, 2);
    const t0 = performance.now();
    await pool.close();
    assert.ok(performance.now() - t0 < 200);
    await waitFor(() => closedConns(up.conns) === 2, 1000, 'the upstream to see both close');
  });

  it('destroy() fails running and queued requests with MPG_SHUTTING_DOWN, once each; idempotent', async (t) => {
    const up = await startRaw(t, () => {});
    const pool = newPool(t, up.url, { connections: 1 });
    const running = call(pool, { path: '/running' });
    const queued = call(pool, { path: '/queued' });
    await waitFor(() => up.requests.length === 1, 1000, 'the first request upstream');
    const destroyed = pool.destroy();
    const again = pool.destroy();
    assert.equal((await running.done).code, 'MPG_SHUTTING_DOWN');
    assert.equal((await queued.done).code, 'MPG_SHUTTING_DOWN');
    await destroyed;
    await again;
    await pool.close();
    await waitFor(() => up.conns[0]!.closed, 1000, 'the upstream to see the close');
    await sleep(30);
    assert.deepEqual(running.events, ['connect', 'error MPG_SHUTTING_DOWN']);
    assert.deepEqual(queued.events, ['connect', 'error MPG_SHUTTING_DOWN']);
    assert.deepEqual(pool.stats(), { open: 0, idle: 0, queued: 0 });
    assert.equal(up.requests.length, 1, 'the queued request never went out');
  });
});

describe('H1Pool: diagnostics channels', () => {
  it('publishes mpgate:upstream:connect per connection attempt and connectError for a refused one', async (t) => {
    const connects: { host: string; port: number }[] = [];
    const errors: { host: string; port: number; error: unknown }[] = [];
    const onConnect = (m: unknown) => connects.push(m as { host: string; port: number });
    const onError = (m: unknown) => errors.push(m as { host: string; port: number; error: unknown });
    diagnostics.subscribe('mpgate:upstream:connect', onConnect);
    diagnostics.subscribe('mpgate:upstream:connectError', onError);
    t.after(() => {
      diagnostics.unsubscribe('mpgate:upstream:connect', onConnect);
      diagnostics.unsubscribe('mpgate:upstream:connectError', onError);
    });

    const up = await startHttp(t, (_req, res) => res.end('ok'));
    const pool = newPool(t, up.url);
    await ok(call(pool));
    await ok(call(pool));
    assert.deepEqual(connects, [{ host: '127.0.0.1', port: up.port }], 'one attempt for two requests (reused)');
    assert.equal(errors.length, 0);

    const dead = await closedPort();
    const o = await call(newPool(t, `http://127.0.0.1:${dead}`)).done;
    assert.equal((o.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(o.code, 'MPG_UPSTREAM_REFUSED');
    assert.deepEqual(connects.at(-1), { host: '127.0.0.1', port: dead });
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.host, '127.0.0.1');
    assert.equal(errors[0]!.port, dead);
    assert.equal(errors[0]!.error, o.error, 'the same error the request failed with');
  });
});
