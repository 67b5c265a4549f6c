/**
 * Every client and upstream limit, end to end over real sockets: its default in the config, the
 * config key that changes it, the status and x-mpgate-error code it produces, and the access-log
 * line. Timeouts are set small here (hundreds of ms) so the deadlines can be measured.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { configFromObject } from '../../src/config/load.js';
import type { AccessEntry } from '../../src/server/access-log.js';
import { curl, startBackend, startGateway, waitFor, type Backend, type TestGateway } from '../helpers.js';
import { RawConn, countBytes, startBlackhole, waitFound, type Blackhole } from './support.js';

/** What the body backend saw of each request, by URL. */
interface Seen {
  ended: boolean;
  /** The request or its response closed before the body was complete. */
  aborted: boolean;
  bytes: number;
}

const LIMITS = {
  maxBodySize: 1000,
  maxHeaderSize: 4096,
  maxHeaderCount: 10,
  headersTimeout: 500,
  requestTimeout: 1200,
  keepAliveTimeout: 300,
};
/** node:http checks header/request deadlines on this interval (see Gateway#listen). */
const CHECK_INTERVAL = 250;
/** Slack for timer and scheduling jitter on a loaded CI machine. */
const SLACK = 400;
/**
 * undici runs its connect and response-head timers on a coarse clock (500 ms ticks, "fast
 * timers"), so an upstream timeout fires up to about a second after it is due.
 */
const UNDICI_TICK_SLACK = 1000;
/** node:http keeps an idle keep-alive socket 1 s longer than it advertises (its ECONNRESET margin). */
const NODE_KEEPALIVE_BUFFER = 1000;

describe('limits (defaults, config keys, status, code, access log)', () => {
  let be: Backend;
  let silent: Backend;
  let hole: Blackhole;
  let gw: TestGateway;
  /** Bytes the body backend received at the TCP level, on any connection. */
  let bytes: ReturnType<typeof countBytes>;
  const seen = new Map<string, Seen>();
  const parked: ServerResponse[] = [];

  before(async () => {
    be = await startBackend((req: IncomingMessage, res: ServerResponse) => {
      const s: Seen = { ended: false, aborted: false, bytes: 0 };
      seen.set(req.url!, s);
      req.on('data', (c: Buffer) => (s.bytes += c.length));
      req.on('end', () => {
        s.ended = true;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`got ${s.bytes}`);
      });
      req.on('close', () => {
        if (!s.ended) s.aborted = true;
      });
    });
    bytes = countBytes(be.server);
    // Accepts requests and never answers.
    silent = await startBackend((_req, res) => void parked.push(res), 'silent');
    hole = await startBlackhole();
    gw = await startGateway({
      limits: LIMITS,
      upstream: { responseTimeout: 400, connectTimeout: 300 },
      sites: [
        { name: 'small', hosts: ['small.test'], upstream: be.url },
        { name: 'big', hosts: ['big.test'], upstream: be.url, maxBodySize: 5000 },
        { name: 'silent', hosts: ['silent.test'], upstream: silent.url },
        { name: 'hole', hosts: ['hole.test'], upstream: `http://127.0.0.1:${hole.port}` },
      ],
    });
  });
  after(async () => {
    await gw.close(500);
    await be.close();
    await silent.close();
    await hole.close();
  });

  /** The access entries added since `from` (an index into gw.access). */
  const since = (from: number): AccessEntry[] => gw.access.slice(from);
  const entryFor = async (path: string): Promise<AccessEntry> =>
    waitFound(() => gw.access.find((e) => e.path === path), 2000, `access entry for ${path}`);

  it('has documented defaults, and the config keys override them', () => {
    const d = configFromObject({});
    assert.equal(d.limits.maxBodySize, 10 * 1024 * 1024);
    assert.equal(d.limits.maxHeaderSize, 16 * 1024);
    assert.equal(d.limits.maxHeaderCount, 100);
    assert.equal(d.limits.headersTimeout, 10_000);
    assert.equal(d.limits.requestTimeout, 300_000);
    assert.equal(d.limits.keepAliveTimeout, 5_000);
    assert.equal(d.upstream.responseTimeout, 60_000);
    assert.equal(d.upstream.connectTimeout, 5_000);
    // Units are accepted as the docs say.
    const u = configFromObject({ limits: { maxBodySize: '2MiB', headersTimeout: '1.5s' } as never });
    assert.equal(u.limits.maxBodySize, 2 * 1024 * 1024);
    assert.equal(u.limits.headersTimeout, 1500);
    // The running gateway uses what this test configured.
    for (const [k, v] of Object.entries(LIMITS)) assert.equal(gw.gateway.config.limits[k as keyof typeof LIMITS], v, k);
    assert.equal(gw.gateway.config.upstream.responseTimeout, 400);
    assert.equal(gw.gateway.config.upstream.connectTimeout, 300);
  });

  describe('limits.maxBodySize', () => {
    it('accepts a body of exactly the limit', async () => {
      const r = await request(`${gw.url}/body-at-limit`, { method: 'POST', headers: { host: 'small.test' }, body: Buffer.alloc(1000, 1) });
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'got 1000');
      const e = await entryFor('/body-at-limit');
      assert.equal(e.status, 200);
      assert.equal(e.code, undefined);
    });

    it('refuses a Content-Length over the limit with 413 before reading it, closes, and never forwards it', async () => {
      bytes.reset();
      const c = await RawConn.open(gw.port);
      c.write('POST /body-cl HTTP/1.1\r\nHost: small.test\r\nContent-Length: 1001\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 413);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
      assert.equal(r.headers.connection, 'close');
      assert.match(r.body, /MPG_BODY_TOO_LARGE, site small/);
      await c.waitClosed(1000);
      assert.equal(seen.has('/body-cl'), false);
      assert.equal(bytes.bytes, 0, 'nothing reached the backend');
      const e = await entryFor('/body-cl');
      assert.equal(e.status, 413);
      assert.equal(e.code, 'MPG_BODY_TOO_LARGE');
      assert.equal(e.site, 'small');
      assert.equal(e.upstream, '');
    });

    it('answers 413 even when the client sends the oversized body right away', async () => {
      bytes.reset();
      const c = await RawConn.open(gw.port);
      c.write(Buffer.concat([Buffer.from('POST /body-cl-sent HTTP/1.1\r\nHost: small.test\r\nContent-Length: 1500\r\n\r\n'), Buffer.alloc(1500, 120)]));
      const r = await c.response();
      assert.equal(r.status, 413);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
      await c.waitClosed(1000);
      assert.equal(seen.has('/body-cl-sent'), false);
      assert.equal(bytes.bytes, 0, 'nothing reached the backend');
      assert.equal((await entryFor('/body-cl-sent')).code, 'MPG_BODY_TOO_LARGE');
    });

    it('cuts a chunked body when it passes the limit: 413, and the upstream request is aborted', async () => {
      const c = await RawConn.open(gw.port);
      const chunk = (n: number) => `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`;
      c.write(`POST /body-chunked HTTP/1.1\r\nHost: small.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(600)}`);
      // The first 600 bytes are within the limit and stream upstream.
      await waitFor(() => seen.get('/body-chunked')?.bytes === 600, 2000, 'the first chunk upstream');
      c.write(chunk(600));
      const r = await c.response();
      assert.equal(r.status, 413);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
      await c.waitClosed(1000);
      await waitFor(() => seen.get('/body-chunked')!.aborted, 1000, 'the backend request to be aborted');
      const s = seen.get('/body-chunked')!;
      assert.equal(s.ended, false, 'the backend never got a complete body');
      assert.ok(s.bytes <= 1000, `backend got ${s.bytes} bytes, more than the limit`);
      const e = await entryFor('/body-chunked');
      assert.equal(e.status, 413);
      assert.equal(e.code, 'MPG_BODY_TOO_LARGE');
    });

    it('passes a chunked body under the limit', async () => {
      const c = await RawConn.open(gw.port);
      c.write('POST /body-chunked-ok HTTP/1.1\r\nHost: small.test\r\nTransfer-Encoding: chunked\r\n\r\n384\r\n' + 'y'.repeat(900) + '\r\n0\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.body, 'got 900');
      c.destroy();
      assert.equal((await entryFor('/body-chunked-ok')).status, 200);
    });

    it('answers "Expect: 100-continue" with an oversized Content-Length by 413, without 100 Continue', async () => {
      bytes.reset();
      const c = await RawConn.open(gw.port);
      c.write('POST /expect-big HTTP/1.1\r\nHost: small.test\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
      const r = await c.response();
      assert.deepEqual(r.interim, []);
      assert.doesNotMatch(c.text, /100 Continue/);
      assert.equal(r.status, 413);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
      await c.waitClosed(1000);
      assert.equal(seen.has('/expect-big'), false);
      assert.equal(bytes.bytes, 0, 'nothing reached the backend');
      const e = await entryFor('/expect-big');
      assert.equal(e.status, 413);
      assert.equal(e.code, 'MPG_BODY_TOO_LARGE');
    });

    it('sends 100 Continue for an acceptable body (control for the test above)', async () => {
      const c = await RawConn.open(gw.port);
      c.write('POST /expect-ok HTTP/1.1\r\nHost: small.test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n');
      await waitFor(() => c.text.startsWith('HTTP/1.1 100 Continue\r\n'), 2000, '100 Continue');
      c.write('0123456789');
      const r = await c.response();
      assert.deepEqual(r.interim, [100]);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'got 10');
      c.destroy();
      assert.equal((await entryFor('/expect-ok')).status, 200);
    });

    it('lets curl upload with "Expect: 100-continue" (what curl sends for larger bodies)', async () => {
      const r = await curl(['-H', 'Host: big.test', '-H', 'Expect: 100-continue', '--data-binary', 'q'.repeat(3000), `${gw.url}/curl-expect`]);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'got 3000');
      const e = await entryFor('/curl-expect');
      assert.equal(e.status, 200);
      assert.equal(e.code, undefined);
    });

    it('uses the site maxBodySize over the global one', async () => {
      const body = Buffer.alloc(3000, 2);
      const big = await request(`${gw.url}/site-big`, { method: 'POST', headers: { host: 'big.test' }, body });
      assert.equal(big.statusCode, 200);
      assert.equal(await big.body.text(), 'got 3000');
      assert.equal(gw.gateway.config.sites.find((s) => s.name === 'big')!.maxBodySize, 5000);

      for (const [host, path, size] of [['small.test', '/site-small-3000', 3000], ['big.test', '/site-big-5001', 5001]] as const) {
        const c = await RawConn.open(gw.port);
        c.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${size}\r\n\r\n`);
        const r = await c.response();
        assert.equal(r.status, 413, path);
        assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
        c.destroy();
        const e = await entryFor(path);
        assert.equal(e.status, 413);
        assert.equal(e.code, 'MPG_BODY_TOO_LARGE');
        assert.equal(seen.has(path), false);
      }
    });
  });

  describe('limits.maxHeaderSize and limits.maxHeaderCount', () => {
    it('accepts a head under maxHeaderSize', async () => {
      const r = await request(`${gw.url}/head-ok`, { headers: { host: 'small.test', 'x-big': 'a'.repeat(3000) } });
      assert.equal(r.statusCode, 200);
      await r.body.text();
      const e = await entryFor('/head-ok');
      assert.equal(e.status, 200);
      assert.equal(e.code, undefined);
    });

    it('refuses a head over maxHeaderSize with 431 MPG_HEADERS_TOO_LARGE', async () => {
      const from = gw.access.length;
      const c = await RawConn.open(gw.port);
      c.write(`GET /head-big HTTP/1.1\r\nHost: small.test\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, 431);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_HEADERS_TOO_LARGE');
      await c.waitClosed(1000);
      assert.equal(seen.has('/head-big'), false);
      const e = await waitFound(() => since(from).find((x) => x.code === 'MPG_HEADERS_TOO_LARGE'), 1000, 'access entry');
      assert.equal(e.status, 431);
    });

    it('accepts exactly maxHeaderCount fields and refuses one more with 431 MPG_TOO_MANY_HEADERS', async () => {
      const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
      const ok = await RawConn.open(gw.port);
      ok.write(`GET /count-ok HTTP/1.1\r\nHost: small.test\r\n${fields(9)}\r\n`); // 10 fields with Host
      assert.equal((await ok.response()).status, 200);
      ok.destroy();
      assert.equal((await entryFor('/count-ok')).status, 200);

      const c = await RawConn.open(gw.port);
      c.write(`GET /count-over HTTP/1.1\r\nHost: small.test\r\n${fields(10)}\r\n`); // 11 fields
      const r = await c.response();
      assert.equal(r.status, 431);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_TOO_MANY_HEADERS');
      assert.equal(seen.has('/count-over'), false);
      c.destroy();
      const e = await entryFor('/count-over');
      assert.equal(e.status, 431);
      assert.equal(e.code, 'MPG_TOO_MANY_HEADERS');
    });
  });

  describe('client timeouts', () => {
    it('limits.headersTimeout: a slowloris head gets 408 MPG_CLIENT_TIMEOUT and is closed on time', async () => {
      const from = gw.access.length;
      const c = await RawConn.open(gw.port);
      const t0 = performance.now();
      c.write('GET /slowloris HTTP/1.1\r\nHost: small.test\r\n');
      // Keeps sending, so only the deadline on the whole head can stop it.
      const trickle = setInterval(() => {
        if (!c.closed) c.write('X-A: b\r\n');
      }, 100);
      try {
        const r = await c.response(LIMITS.headersTimeout + CHECK_INTERVAL + 2000);
        assert.equal(r.status, 408);
        assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
        await c.waitClosed(1000);
      } finally {
        clearInterval(trickle);
      }
      const ms = c.closedAfter(t0);
      assert.ok(ms >= LIMITS.headersTimeout - 50, `closed after ${ms} ms, before headersTimeout`);
      assert.ok(ms <= LIMITS.headersTimeout + CHECK_INTERVAL + SLACK, `closed after ${ms} ms`);
      assert.equal(seen.has('/slowloris'), false);
      const e = await waitFound(() => since(from).find((x) => x.code === 'MPG_CLIENT_TIMEOUT'), 1000, 'access entry');
      assert.equal(e.status, 408);
    });

    it('limits.keepAliveTimeout: an idle keep-alive connection is closed after it', async () => {
      const c = await RawConn.open(gw.port);
      c.write('GET /keepalive HTTP/1.1\r\nHost: small.test\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(c.closed, false, 'kept alive after the response');
      const t0 = performance.now();
      await c.waitClosed(LIMITS.keepAliveTimeout + 2000);
      const ms = c.closedAfter(t0);
      assert.ok(ms >= LIMITS.keepAliveTimeout - 50, `closed after ${ms} ms, before keepAliveTimeout`);
      assert.ok(ms <= LIMITS.keepAliveTimeout + NODE_KEEPALIVE_BUFFER + SLACK, `closed after ${ms} ms`);
      const e = await entryFor('/keepalive');
      assert.equal(e.status, 200);
      assert.equal(e.code, undefined);
    });

    it('limits.requestTimeout: a body trickled too slowly gets 408 and the upstream request is aborted', async () => {
      const c = await RawConn.open(gw.port);
      const t0 = performance.now();
      c.write('POST /slowbody HTTP/1.1\r\nHost: small.test\r\nContent-Length: 100\r\n\r\n');
      const trickle = setInterval(() => {
        if (!c.closed) c.write('z');
      }, 100);
      let r;
      try {
        r = await c.response(LIMITS.requestTimeout + CHECK_INTERVAL + 2000);
        await c.waitClosed(1000);
      } finally {
        clearInterval(trickle);
      }
      assert.equal(r.status, 408);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
      const ms = c.closedAfter(t0);
      assert.ok(ms >= LIMITS.requestTimeout - 50, `closed after ${ms} ms, before requestTimeout`);
      assert.ok(ms <= LIMITS.requestTimeout + CHECK_INTERVAL + SLACK, `closed after ${ms} ms`);
      // The head streamed upstream; the half-sent request must not stay open there.
      await waitFor(() => seen.get('/slowbody')?.aborted, 1000, 'the backend request to be aborted');
      assert.equal(seen.get('/slowbody')!.ended, false);
      const e = await entryFor('/slowbody');
      assert.equal(e.status, 408);
      assert.equal(e.code, 'MPG_CLIENT_TIMEOUT');
    });
  });

  describe('upstream timeouts', () => {
    it('upstream.responseTimeout: a backend that never answers gets 504 MPG_UPSTREAM_TIMEOUT on time', async () => {
      const t0 = performance.now();
      const r = await request(`${gw.url}/never`, { headers: { host: 'silent.test', accept: 'application/json' } });
      const ms = performance.now() - t0;
      assert.equal(r.statusCode, 504);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_TIMEOUT');
      assert.deepEqual(await r.body.json(), { error: { status: 504, code: 'MPG_UPSTREAM_TIMEOUT', message: 'upstream did not answer in time', site: 'silent' } });
      assert.ok(ms >= 400 - 50 && ms <= 400 + UNDICI_TICK_SLACK + SLACK, `answered after ${ms} ms`);
      assert.equal(parked.length, 1, 'the backend did get the request');
      const e = await entryFor('/never');
      assert.equal(e.status, 504);
      assert.equal(e.code, 'MPG_UPSTREAM_TIMEOUT');
      assert.equal(e.upstream, silent.url);
    });

    it('upstream.connectTimeout: an upstream whose accept queue is full gets 504 MPG_UPSTREAM_CONNECT_TIMEOUT', async () => {
      const t0 = performance.now();
      const r = await request(`${gw.url}/hole`, { headers: { host: 'hole.test' } });
      const ms = performance.now() - t0;
      assert.equal(r.statusCode, 504);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_CONNECT_TIMEOUT');
      assert.match(await r.body.text(), /^504 upstream connection timed out \(MPG_UPSTREAM_CONNECT_TIMEOUT, site hole\)/);
      assert.ok(ms >= 300 - 50 && ms <= 300 + UNDICI_TICK_SLACK + SLACK, `answered after ${ms} ms`);
      const e = await entryFor('/hole');
      assert.equal(e.status, 504);
      assert.equal(e.code, 'MPG_UPSTREAM_CONNECT_TIMEOUT');
      assert.equal(e.upstream, `http://127.0.0.1:${hole.port}`);
    });
  });

  it('leaves nothing running (every exchange above finished)', async () => {
    // Every exchange above ended (answered, timed out or cut): the gateway must drain at once.
    const t0 = performance.now();
    await gw.close(5000);
    assert.ok(performance.now() - t0 < 1000, 'close() waited for a request that was never finished');
  });
});
