/**
 * Attack probes over raw sockets: ambiguous framing, request smuggling, malformed heads and
 * targets. Each must be answered 400 with a stable code and reach the backend not at all — not a
 * request head, not one byte. Then header spoofing and hop-by-hop fields in both directions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend, startGateway, type Backend, type TestGateway } from '../helpers.js';
import { RawConn, countBytes, sleep, waitFound } from './support.js';

const H = 'Host: x.a.com\r\n';

interface Probe {
  name: string;
  raw: string;
  code: string;
}

const PROBES: Probe[] = [
  { name: 'Content-Length with Transfer-Encoding', raw: `POST /p HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'Transfer-Encoding with Content-Length', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'two Content-Length, same value', raw: `POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, code: 'MPG_BAD_REQUEST' },
  { name: 'two Content-Length, different values', raw: `POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, code: 'MPG_BAD_REQUEST' },
  { name: 'Content-Length list "3, 3"', raw: `POST /p HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, code: 'MPG_BAD_REQUEST' },
  { name: 'Content-Length not a number', raw: `POST /p HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, code: 'MPG_BAD_REQUEST' },
  { name: 'invalid chunk size', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'invalid chunk size after a valid chunk', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'chunk longer than its size', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'obs-fold header continuation', raw: `GET /p HTTP/1.1\r\n${H}X-A: 1\r\n  continued\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'obs-fold on Transfer-Encoding', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'bare LF line endings', raw: `GET /p HTTP/1.1\n${H.trimEnd()}\nX-A: 1\n\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'bare LF after one header', raw: `GET /p HTTP/1.1\r\n${H}X-A: 1\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'NUL in a header value', raw: `GET /p HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'space before the colon', raw: `GET /p HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'Transfer-Encoding: gzip', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, code: 'MPG_BAD_REQUEST' },
  { name: 'Transfer-Encoding: chunked, identity', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'Transfer-Encoding: xchunked', raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, code: 'MPG_BAD_REQUEST' },
  { name: 'two Host headers', raw: `GET /p HTTP/1.1\r\n${H}Host: evil.test\r\n\r\n`, code: 'MPG_DUPLICATE_HOST' },
  { name: 'absolute-form target', raw: `GET http://other/ HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'path climbing above the root', raw: `GET /../etc HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'encoded path climbing above the root', raw: `GET /a/%2e%2E/%2e%2e/etc HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'a dot segment behind an encoded slash', raw: `GET /pub/..%2fadmin HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'a dot segment behind an encoded backslash', raw: `GET /pub/%2e%2e%5cadmin HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'a dot segment in front of path parameters (Tomcat reads "..;" as "..")', raw: `GET /pub/..;/admin HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  { name: 'a dot segment behind a backslash', raw: `GET /pub/..\\admin HTTP/1.1\r\n${H}\r\n`, code: 'MPG_BAD_PATH' },
  {
    name: 'CL.TE smuggling: a second request hidden in the body',
    raw: `POST /p HTTP/1.1\r\n${H}Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x.a.com\r\n\r\n`,
    code: 'MPG_BAD_REQUEST',
  },
  {
    name: 'TE.CL smuggling: a request hidden after a chunk',
    raw: `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /admin HTTP/1.1\r\nHost: x.a.com\r\n\r\n\r\n0\r\n\r\n`,
    code: 'MPG_BAD_REQUEST',
  },
];

describe('framing attacks: 400 and nothing reaches the backend', () => {
  let be: Backend;
  let gw: TestGateway;
  let bytes: ReturnType<typeof countBytes>;

  before(async () => {
    be = await startBackend();
    bytes = countBytes(be.server);
    gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
  });
  after(async () => {
    await gw.close(500);
    await be.close();
  });

  for (const warm of [false, true]) {
    for (const p of PROBES) {
      it(`${p.name}${warm ? ' (upstream connection already open)' : ''} → 400 ${p.code}`, async () => {
        if (warm) {
          // A keep-alive connection to the backend is idle in the pool, ready to be written to.
          const ok = await request(`${gw.url}/warm`, { headers: { host: 'x.a.com' } });
          assert.equal(ok.statusCode, 200);
          await ok.body.text();
        }
        const seenBefore = be.seen.length;
        bytes.reset();
        const from = gw.access.length;
        const c = await RawConn.open(gw.port);
        c.write(p.raw);
        const r = await c.response();
        assert.equal(r.status, 400, r.raw);
        assert.equal(r.headers['x-mpgate-error'], p.code);
        // A framing error leaves the stream unparseable: the connection must go. A well-framed
        // request that cannot be routed may keep its connection, like any 4xx.
        if (p.code === 'MPG_BAD_REQUEST') await c.waitClosed(1000);
        else c.destroy();
        // Give anything that leaked a moment to arrive before declaring the backend untouched.
        await sleep(50);
        assert.equal(be.seen.length, seenBefore, `the backend received ${be.seen.slice(seenBefore).map((q) => `${q.method} ${q.url}`).join(', ')}`);
        assert.equal(bytes.bytes, 0, 'not one byte reached the backend');
        const entries = gw.access.slice(from);
        assert.equal(entries.length, 1, `one access entry, got ${JSON.stringify(entries)}`);
        assert.equal(entries[0]!.status, 400);
        assert.equal(entries[0]!.code, p.code);
      });
    }
  }

  it('HTTP/1.1 without Host → 400, nothing forwarded', async () => {
    const seenBefore = be.seen.length;
    bytes.reset();
    const c = await RawConn.open(gw.port);
    const from = gw.access.length;
    c.write('GET /nohost HTTP/1.1\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_BAD_REQUEST');
    assert.deepEqual(gw.access.slice(from).map((e) => [e.status, e.code, e.path]), [[400, 'MPG_BAD_REQUEST', '/nohost']]);
    await c.waitClosed(1000);
    assert.equal(be.seen.length, seenBefore);
    assert.equal(bytes.bytes, 0);
  });

  // llhttp parses these request lines (httpVersion "2.0", "0.9"); the pipeline once read
  // httpVersionMajor 2 as "an HTTP/2 stream" and threw, which took the process down.
  const VERSIONS = [
    ['HTTP/2.0', `GET /v HTTP/2.0\r\n${H}\r\n`],
    ['HTTP/2.0 with Expect: 100-continue', `POST /v HTTP/2.0\r\n${H}Expect: 100-continue\r\nContent-Length: 3\r\n\r\n`],
    ['HTTP/2.0 with a WebSocket upgrade', `GET /v HTTP/2.0\r\n${H}Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`],
    ['HTTP/0.9', `GET /v HTTP/0.9\r\n${H}\r\n`],
    ['a request line without a version', `GET /v\r\n${H}\r\n`],
  ] as const;
  for (const [name, raw] of VERSIONS) {
    it(`${name} → 505 MPG_HTTP_VERSION, closed, nothing forwarded, and the gateway serves on`, async () => {
      const seenBefore = be.seen.length;
      bytes.reset();
      const from = gw.access.length;
      const c = await RawConn.open(gw.port);
      c.write(raw);
      const r = await c.response();
      assert.equal(r.status, 505, r.raw);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_HTTP_VERSION');
      await c.waitClosed(1000);
      await sleep(50);
      assert.equal(be.seen.length, seenBefore, 'nothing forwarded');
      assert.equal(bytes.bytes, 0);
      assert.deepEqual(gw.access.slice(from).map((e) => [e.status, e.code]), [[505, 'MPG_HTTP_VERSION']]);
      const ok = await request(`${gw.url}/after`, { headers: { host: 'x.a.com' } });
      assert.equal(ok.statusCode, 200);
      await ok.body.text();
    });
  }

  it('CONNECT → 405 MPG_CONNECT_UNSUPPORTED, closed, logged, nothing forwarded', async () => {
    const seenBefore = be.seen.length;
    bytes.reset();
    const from = gw.access.length;
    const c = await RawConn.open(gw.port);
    c.write('CONNECT x.a.com:443 HTTP/1.1\r\nHost: x.a.com:443\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 405);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_CONNECT_UNSUPPORTED');
    await c.waitClosed(1000);
    assert.deepEqual(gw.access.slice(from).map((e) => [e.method, e.path, e.status, e.code]), [['CONNECT', 'x.a.com:443', 405, 'MPG_CONNECT_UNSUPPORTED']]);
    assert.equal(be.seen.length, seenBefore);
    assert.equal(bytes.bytes, 0);
  });

  it('a bad request pipelined behind one already answered gets its 400 after that answer', async () => {
    const seenBefore = be.seen.length;
    const c = await RawConn.open(gw.port);
    // The 404 is written before the parser reaches the bare CR; the 400 must follow it, not vanish.
    c.write(`GET /1 HTTP/1.1\r\nHost: nowhere.test\r\n\r\nGET /2 HTTP/1.1\rHost: x.a.com\r\n\r\n`);
    const first = await c.response();
    assert.equal(first.status, 404);
    assert.equal(first.headers['x-mpgate-error'], 'MPG_NO_SITE');
    const second = await c.response();
    assert.equal(second.status, 400);
    assert.equal(second.headers['x-mpgate-error'], 'MPG_BAD_REQUEST');
    await c.waitClosed(1000);
    assert.equal(be.seen.length, seenBefore);
  });

  it('after an answer that closes the connection, a bad request pipelined behind it gets nothing more', async () => {
    const c = await RawConn.open(gw.port);
    // A body for an unknown host: the 404 closes the connection (the body is not read).
    c.write(`POST /1 HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: 3\r\n\r\nxyzGET /2 HTTP/1.1\r\nxyz\r\n\r\n`);
    const first = await c.response();
    assert.equal(first.status, 404);
    assert.equal(first.headers.connection, 'close');
    await c.waitClosed(1000);
    assert.equal(c.text.indexOf('HTTP/1.1', 1), -1, `one answer only: ${c.text}`);
  });

  it('a valid request on the same probe setup still works (control)', async () => {
    const c = await RawConn.open(gw.port);
    c.write(`POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
    const r = await c.response();
    c.destroy();
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as { url: string; body: string };
    assert.equal(echo.url, '/ok');
    assert.equal(echo.body, 'abc');
  });
});

describe('stripPrefix cannot climb above the upstream base path', () => {
  let be: Backend;
  let gw: TestGateway;
  before(async () => {
    be = await startBackend();
    gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], routes: [{ path: '/api', upstream: `${be.url}/v1`, stripPrefix: true }] }] });
  });
  after(async () => {
    await gw.close(500);
    await be.close();
  });

  // "/api" ends inside a segment, so "/api../admin" leaves "../admin" once stripped: the
  // upstream would be asked for /v1/../admin (nginx's "off-by-slash" escape).
  for (const path of ['/api../admin', '/api..', '/api%2e%2e/admin', '/api.%2e/x', '/api..;/admin']) {
    it(`${path} → 400 MPG_BAD_PATH, nothing forwarded`, async () => {
      const seen = be.seen.length;
      const r = await request(`${gw.url}${path}`, { headers: { host: 'x.a.com' } });
      assert.equal(r.statusCode, 400);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BAD_PATH');
      await r.body.text();
      assert.equal(be.seen.length, seen);
    });
  }

  it('what stays inside is forwarded under the base path (nginx prefix semantics kept: /apifoo is /v1/foo)', async () => {
    for (const [path, url] of [['/api/x', '/v1/x'], ['/api', '/v1/'], ['/apifoo', '/v1/foo'], ['/api/a/../b?q=1', '/v1/b?q=1'], ['/api..x/y', '/v1/..x/y']]) {
      const r = await request(`${gw.url}${path}`, { headers: { host: 'x.a.com' } });
      assert.equal(r.statusCode, 200, path);
      assert.equal((JSON.parse(await r.body.text()) as { url: string }).url, url, path);
    }
  });
});

describe('forwarding headers and hop-by-hop fields', () => {
  let be: Backend;

  before(async () => {
    be = await startBackend(async (req, res) => {
      // Reflects the request, and answers with hop-by-hop fields of its own.
      for await (const _ of req);
      res.writeHead(200, [
        'Content-Type', 'application/json',
        'Connection', 'X-Resp-Secret, X-Resp-Other',
        'X-Resp-Secret', 'backend-only',
        'X-Resp-Other', 'backend-only',
        'Keep-Alive', 'timeout=77, max=3',
        'Proxy-Authenticate', 'Basic realm="internal"',
        'Proxy-Connection', 'keep-alive',
        'Trailer', 'X-Checksum',
        'Upgrade', 'h2c',
        'X-Kept', 'yes',
      ]);
      res.end(JSON.stringify({ headers: req.headers, rawHeaders: req.rawHeaders }));
    });
  });
  after(async () => {
    await be.close();
  });

  const spoofed = {
    'x-forwarded-for': '6.6.6.6',
    'x-real-ip': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'spoofed.example',
  };

  it('replaces X-Forwarded-* and X-Real-IP from an untrusted peer', async () => {
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const r = await request(`${gw.url}/who`, { headers: { host: 'x.a.com', ...spoofed } });
      const { headers, rawHeaders } = (await r.body.json()) as { headers: Record<string, string>; rawHeaders: string[] };
      assert.equal(headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(headers['x-real-ip'], '127.0.0.1');
      assert.equal(headers['x-forwarded-proto'], 'http');
      assert.equal(headers['x-forwarded-host'], 'x.a.com');
      assert.doesNotMatch(rawHeaders.join('\n'), /6\.6\.6\.6|spoofed\.example/);
      // Exactly one of each: no second copy slipped through.
      for (const n of Object.keys(spoofed)) assert.equal(rawHeaders.filter((h) => h.toLowerCase() === n).length, 1, n);
      const e = await waitFound(() => gw.access.find((x) => x.path === '/who'));
      assert.equal(e.ip, '127.0.0.1');
    } finally {
      await gw.close(500);
    }
  });

  // Fields other than the four mpgate sets that frameworks read as the client's address, scheme,
  // host, port, path prefix, certificate or path: dropped from an untrusted peer.
  const claims = {
    forwarded: 'for=6.6.6.6;proto=https;host=spoofed.example',
    'x-forwarded-port': '8443',
    'x-forwarded-prefix': '/admin',
    'x-forwarded-server': 'spoofed.example',
    'x-forwarded-ssl': 'on',
    'x-forwarded-client-cert': 'By=spiffe://spoofed',
    'x-client-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'cf-connecting-ip': '6.6.6.6',
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
  };

  it('drops every other claim about the client or the request from an untrusted peer (Forwarded, X-Forwarded-Port/-Prefix/..., X-Client-IP, X-Original-URL, ...)', async () => {
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      // Over the fast path and over node:http (HTTP/1.0 is handed to it), in mixed case.
      for (const version of ['1.1', '1.0']) {
        const c = await RawConn.open(gw.port);
        const fields = Object.entries(claims).map(([n, v]) => `${n.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())}: ${v}\r\n`).join('');
        c.write(`GET /claims HTTP/${version}\r\nHost: x.a.com\r\n${fields}Connection: close\r\n\r\n`);
        const r = await c.response();
        const { rawHeaders } = JSON.parse(r.body) as { rawHeaders: string[] };
        const sent = rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        for (const n of Object.keys(claims)) assert.ok(!sent.includes(n), `HTTP/${version}: ${n} reached the backend`);
        assert.doesNotMatch(rawHeaders.join('\n'), /6\.6\.6\.6|spoofed|admin/);
        assert.equal(new Set(sent).size, sent.length, `no field twice: ${sent.join(', ')}`);
      }
    } finally {
      await gw.close(500);
    }
  });

  it('passes those claims on unchanged from a peer in trustedProxies', async () => {
    const gw = await startGateway({ trustedProxies: ['127.0.0.1'], sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const r = await request(`${gw.url}/claims`, { headers: { host: 'x.a.com', ...claims } });
      const { headers } = (await r.body.json()) as { headers: Record<string, string> };
      for (const [n, v] of Object.entries(claims)) assert.equal(headers[n], v, n);
    } finally {
      await gw.close(500);
    }
  });

  it('keeps and appends them when the peer is in trustedProxies', async () => {
    const gw = await startGateway({ trustedProxies: ['127.0.0.1'], sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const r = await request(`${gw.url}/who`, { headers: { host: 'x.a.com', ...spoofed, 'x-forwarded-for': '203.0.113.9' } });
      const { headers } = (await r.body.json()) as { headers: Record<string, string> };
      assert.equal(headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
      assert.equal(headers['x-real-ip'], '203.0.113.9');
      assert.equal(headers['x-forwarded-proto'], 'https');
      assert.equal(headers['x-forwarded-host'], 'spoofed.example');
      const e = await waitFound(() => gw.access.find((x) => x.path === '/who'));
      assert.equal(e.ip, '203.0.113.9');
    } finally {
      await gw.close(500);
    }
  });

  it('never passes hop-by-hop or Connection-named fields, in either direction', async () => {
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const c = await RawConn.open(gw.port);
      c.write(
        'GET /hop HTTP/1.1\r\nHost: x.a.com\r\n' +
          'Connection: keep-alive, X-Client-Secret\r\nX-Client-Secret: client-only\r\n' +
          'Keep-Alive: timeout=99\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\n' +
          'Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nX-Client-Kept: yes\r\n\r\n',
      );
      const r = await c.response();
      c.destroy();
      assert.equal(r.status, 200, r.raw);
      const { headers } = JSON.parse(r.body) as { headers: Record<string, string> };
      for (const n of ['x-client-secret', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection']) {
        assert.equal(headers[n], undefined, `${n} reached the backend`);
      }
      assert.notEqual(headers.connection, 'keep-alive, X-Client-Secret');
      assert.equal(headers['x-client-kept'], 'yes');

      // The backend's hop-by-hop fields stay on the backend's side.
      for (const n of ['x-resp-secret', 'x-resp-other', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade']) {
        assert.equal(r.headers[n], undefined, `${n} reached the client`);
      }
      // node:http sets its own Connection/Keep-Alive for the client hop; the backend's never show.
      assert.doesNotMatch(r.head, /timeout=77|X-Resp-Secret|backend-only/i);
      assert.equal(r.headers['x-kept'], 'yes');
    } finally {
      await gw.close(500);
    }
  });
});
