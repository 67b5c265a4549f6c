/**
 * Upstream and client failures over real sockets: refused, reset before and after the response
 * head, passive failover (skip for failTimeout, then back), retry rules for request bodies, a
 * client that goes away mid-response, and the shape of the gateway's own error answers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { RoutingTable } from '../../src/server/routing-table.js';
import { closedPort, curl, startBackend, startGateway, waitFor, type Backend, type TestGateway } from '../helpers.js';
import { RawConn, sleep, startRawUpstream, waitFound, watchConnects, type RawUpstream } from './support.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('upstream failures', () => {
  let gw: TestGateway;
  let deadPort: number;
  let resetHead: RawUpstream;
  let resetBodyCl: RawUpstream;
  let resetBodyChunked: RawUpstream;

  before(async () => {
    deadPort = await closedPort();
    // Starts a response head, then resets the connection.
    resetHead = await startRawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/pl');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    // A complete head announcing 1000 bytes, 100 of them, then a reset.
    resetBodyCl = await startRawUpstream((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'a'.repeat(100)}`);
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    // The same with a chunked body: the truncation must not look like a complete response.
    resetBodyChunked = await startRawUpstream((s) => {
      s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n${'b'.repeat(100)}\r\n`);
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    gw = await startGateway({
      sites: [
        { name: 'dead', hosts: ['dead.test'], upstream: `http://127.0.0.1:${deadPort}` },
        { name: 'reset-head', hosts: ['reset-head.test'], upstream: resetHead.url },
        { name: 'reset-cl', hosts: ['reset-cl.test'], upstream: resetBodyCl.url },
        { name: 'reset-chunked', hosts: ['reset-chunked.test'], upstream: resetBodyChunked.url },
      ],
    });
  });
  after(async () => {
    await gw.close(500);
    await resetHead.close();
    await resetBodyCl.close();
    await resetBodyChunked.close();
  });

  const entryFor = (path: string) => waitFound(() => gw.access.find((e) => e.path === path), 2000, `access entry for ${path}`);

  it('answers a refused upstream with 502 MPG_UPSTREAM_REFUSED', async () => {
    const r = await curl(['-H', 'Host: dead.test', `${gw.url}/refused`]);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_REFUSED');
    const e = await entryFor('/refused');
    assert.equal(e.status, 502);
    assert.equal(e.code, 'MPG_UPSTREAM_REFUSED');
    assert.equal(e.upstream, `http://127.0.0.1:${deadPort}`);
  });

  it('answers in JSON when the client asks for it ({error:{status,code,message,site}}), text otherwise', async () => {
    const json = await request(`${gw.url}/json`, { headers: { host: 'dead.test', accept: 'application/json' } });
    assert.equal(json.statusCode, 502);
    assert.match(String(json.headers['content-type']), /^application\/json/);
    assert.equal(json.headers['x-mpgate-error'], 'MPG_UPSTREAM_REFUSED');
    assert.deepEqual(await json.body.json(), {
      error: { status: 502, code: 'MPG_UPSTREAM_REFUSED', message: 'upstream refused the connection', site: 'dead' },
    });

    // wx.request sends Content-Type: application/json and no Accept: JSON too.
    const wx = await request(`${gw.url}/wx`, { method: 'POST', headers: { host: 'dead.test', 'content-type': 'application/json' }, body: '{}' });
    assert.match(String(wx.headers['content-type']), /^application\/json/);
    assert.equal(((await wx.body.json()) as { error: { code: string } }).error.code, 'MPG_UPSTREAM_REFUSED');

    const text = await request(`${gw.url}/text`, { headers: { host: 'dead.test', accept: 'text/html' } });
    assert.equal(text.statusCode, 502);
    assert.match(String(text.headers['content-type']), /^text\/plain/);
    assert.equal(await text.body.text(), '502 upstream refused the connection (MPG_UPSTREAM_REFUSED, site dead)\n');

    // Errors mpgate gives before any upstream is involved follow the same rule.
    const noSite = await request(`${gw.url}/`, { headers: { host: 'nobody.test', accept: 'application/json' } });
    assert.equal(noSite.statusCode, 404);
    assert.deepEqual(await noSite.body.json(), { error: { status: 404, code: 'MPG_NO_SITE', message: 'no site for this host' } });
  });

  it('answers an upstream that resets mid-response-head with 502 MPG_UPSTREAM_RESET', async () => {
    const r = await request(`${gw.url}/reset-head`, { headers: { host: 'reset-head.test' } });
    assert.equal(r.statusCode, 502);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_RESET');
    assert.match(await r.body.text(), /MPG_UPSTREAM_RESET/);
    assert.equal(resetHead.heads.length, 1, 'the request reached the upstream once (not retried)');
    const e = await entryFor('/reset-head');
    assert.equal(e.status, 502);
    assert.equal(e.code, 'MPG_UPSTREAM_RESET');
  });

  for (const kind of ['cl', 'chunked'] as const) {
    it(`cuts the client response when the upstream resets after the head (${kind} body), without hanging`, { timeout: 5000 }, async () => {
      const path = `/reset-after-${kind}`;
      const c = await RawConn.open(gw.port);
      c.write(`GET ${path} HTTP/1.1\r\nHost: reset-${kind}.test\r\n\r\n`);
      // The gateway must close the connection rather than leave a response that never ends.
      await c.waitClosed(3000);
      const r = await c.response(100);
      assert.equal(r.status, 200, 'the head had already gone out');
      if (kind === 'cl') {
        assert.equal(r.headers['content-length'], '1000');
        assert.ok(r.body.length < 1000, 'the body is visibly short of its Content-Length');
      } else {
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.doesNotMatch(c.text, /\r\n0\r\n\r\n$/, 'no final chunk: the truncation is visible');
      }
      // An HTTP client reports the broken body as an error.
      await assert.rejects(async () => {
        const u = await request(`${gw.url}${path}-undici`, { headers: { host: `reset-${kind}.test` } });
        await u.body.text();
      });
      const e = await entryFor(path);
      assert.equal(e.status, 200);
      assert.equal(e.code, 'MPG_UPSTREAM_RESET');
    });
  }
});

describe('upstream response framing', () => {
  it('relays a response framed by both Transfer-Encoding and Content-Length whole, without the Content-Length', async () => {
    // Transfer-Encoding wins (RFC 9112 §6.3): the body is "helloworld", not the 5 bytes announced.
    const up = await startRawUpstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n'));
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['a.test'], upstream: up.url }] });
    try {
      const r = await curl(['-H', 'Host: a.test', `${gw.url}/`]);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'helloworld');
      assert.equal(r.headers['content-length'], undefined);
      assert.equal(gw.access.at(-1)!.bytes, 10);
    } finally {
      await gw.close(500);
      await up.close();
    }
  });
});

describe('passive failover', () => {
  it('skips a dead upstream for failTimeout (one connection attempt), then tries it again', { timeout: 10_000 }, async () => {
    const failTimeout = 1000;
    const deadPort = await closedPort();
    const live = await startBackend(undefined, 'live');
    const connects = watchConnects();
    const gw = await startGateway({
      upstream: { failTimeout, maxFails: 1 },
      sites: [{ name: 'pair', hosts: ['pair.test'], upstream: [`http://127.0.0.1:${deadPort}`, live.url] }],
    });
    let revived: Backend | undefined;
    try {
      const get = async (path: string) => {
        const r = await request(`${gw.url}${path}`, { headers: { host: 'pair.test' } });
        return { status: r.statusCode, name: ((await r.body.json()) as { name: string }).name };
      };
      // Round robin starts with the dead one: the first request fails over to the live one.
      const t0 = Date.now();
      for (let i = 0; i < 8; i++) assert.deepEqual(await get(`/r${i}`), { status: 200, name: 'live' });
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < failTimeout, `the requests took ${elapsed} ms, longer than failTimeout: test is inconclusive`);
      assert.equal(connects.refused(deadPort), 1, 'the dead upstream was tried once, then skipped');
      assert.equal(connects.attempts(deadPort), 1);
      assert.equal(live.seen.length, 8);
      // Every request was answered by the live upstream and logged with it.
      for (let i = 0; i < 8; i++) {
        const e = gw.access.find((x) => x.path === `/r${i}`)!;
        assert.equal(e.status, 200);
        assert.equal(e.upstream, live.url);
      }

      // The dead upstream comes back; it gets traffic only once failTimeout has passed.
      const server = http.createServer((req, res) => res.end(JSON.stringify({ name: 'revived' })));
      server.listen(deadPort, '127.0.0.1');
      await once(server, 'listening');
      revived = { server, port: deadPort, url: `http://127.0.0.1:${deadPort}`, seen: [], close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
      const names: string[] = [];
      let firstRevivedAt = 0;
      await waitFor(async () => {
        const r = await get(`/again${names.length}`);
        assert.equal(r.status, 200);
        names.push(r.name);
        if (r.name === 'revived' && firstRevivedAt === 0) firstRevivedAt = Date.now();
        return firstRevivedAt !== 0;
      }, failTimeout + 3000, 'the revived upstream to get a request');
      const downFor = firstRevivedAt - t0;
      assert.ok(downFor >= failTimeout, `tried again after ${downFor} ms, before failTimeout`);
      assert.ok(downFor < failTimeout + 1500, `tried again only after ${downFor} ms`);
      // Back in the rotation: the next requests alternate again.
      const next = [await get('/rr1'), await get('/rr2')].map((r) => r.name).sort();
      assert.deepEqual(next, ['live', 'revived']);
    } finally {
      connects.stop();
      await gw.close(500);
      await live.close();
      await revived?.close();
    }
  });

  it('retries a POST body on another upstream when the connection failed, body intact', async () => {
    const deadPort = await closedPort();
    const live = await startBackend(undefined, 'live');
    const connects = watchConnects();
    const gw = await startGateway({ sites: [{ name: 'pair', hosts: ['pair.test'], upstream: [`http://127.0.0.1:${deadPort}`, live.url] }] });
    try {
      const body = Buffer.alloc(256 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
      const r = await request(`${gw.url}/post`, { method: 'POST', headers: { host: 'pair.test' }, body });
      assert.equal(r.statusCode, 200);
      const echo = (await r.body.json()) as { name: string; bodyLength: number };
      assert.equal(echo.name, 'live');
      assert.equal(echo.bodyLength, body.length);
      assert.equal(connects.refused(deadPort), 1, 'the dead upstream was tried first');
      const e = await waitFound(() => gw.access.find((x) => x.path === '/post'));
      assert.equal(e.status, 200);
      assert.equal(e.upstream, live.url);
    } finally {
      connects.stop();
      await gw.close(500);
      await live.close();
    }
  });

  it('retries a chunked POST body on another upstream when the connection failed, body intact', async () => {
    const deadPort = await closedPort();
    const chunks: Buffer[] = [];
    const live = await startBackend((req, res) => {
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(sha(Buffer.concat(chunks))));
    }, 'live');
    const connects = watchConnects();
    const gw = await startGateway({ sites: [{ name: 'pair', hosts: ['pair.test'], upstream: [`http://127.0.0.1:${deadPort}`, live.url] }] });
    try {
      const c = await RawConn.open(gw.port);
      const part = 'p'.repeat(3000);
      c.write(`POST /chunked HTTP/1.1\r\nHost: pair.test\r\nTransfer-Encoding: chunked\r\n\r\n${(3000).toString(16)}\r\n${part}\r\n`);
      await sleep(20);
      c.write(`${(3000).toString(16)}\r\n${part}\r\n0\r\n\r\n`);
      const r = await c.response();
      c.destroy();
      assert.equal(r.status, 200, r.raw);
      assert.equal(r.body, sha(part + part));
      assert.equal(connects.refused(deadPort), 1, 'the dead upstream was tried first');
    } finally {
      connects.stop();
      await gw.close(500);
      await live.close();
    }
  });

  it('does not retry a POST whose upstream took the connection and then failed', async () => {
    let got = 0;
    // Reads part of the body, then resets: the request may have had effects, so it is not repeated.
    const flaky = await startRawUpstream((s) => {
      s.once('data', () => {
        got++;
        s.resetAndDestroy();
      });
    });
    const other = await startBackend(undefined, 'other');
    const gw = await startGateway({ sites: [{ name: 'pair', hosts: ['pair.test'], upstream: [flaky.url, other.url] }] });
    try {
      const r = await request(`${gw.url}/once`, { method: 'POST', headers: { host: 'pair.test' }, body: Buffer.alloc(512 * 1024, 1) });
      assert.equal(r.statusCode, 502);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_RESET');
      await r.body.text();
      assert.equal(flaky.heads.length, 1);
      assert.equal(got, 1);
      assert.equal(other.seen.length, 0, 'not retried on the other upstream');
      const e = await waitFound(() => gw.access.find((x) => x.path === '/once'));
      assert.equal(e.status, 502);
      assert.equal(e.code, 'MPG_UPSTREAM_RESET');
    } finally {
      await gw.close(500);
      await flaky.close();
      await other.close();
    }
  });
});

describe('client goes away', () => {
  /** A backend that streams a chunk every 50 ms until its response closes; records how it ended. */
  async function streamingBackend(headDelayMs: number) {
    const ends: { finished: boolean; closed: boolean; closedAt: number }[] = [];
    const backend = await startBackend((_req: IncomingMessage, res: ServerResponse) => {
      const s = { finished: false, closed: false, closedAt: 0 };
      ends.push(s);
      res.on('finish', () => (s.finished = true));
      res.on('close', () => {
        s.closed = true;
        s.closedAt = performance.now();
      });
      let timer: NodeJS.Timeout | undefined;
      const start = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        timer = setInterval(() => res.write('tick\n'), 50);
      }, headDelayMs);
      res.on('close', () => {
        clearTimeout(start);
        clearInterval(timer);
      });
    }, 'stream');
    return { backend, ends };
  }

  for (const phase of ['while the body streams', 'before the response head'] as const) {
    it(`aborts the upstream request at once when the client leaves ${phase}`, { timeout: 8000 }, async () => {
      const headDelay = phase === 'before the response head' ? 5000 : 0;
      const { backend, ends } = await streamingBackend(headDelay);
      const gw = await startGateway({ sites: [{ name: 's', hosts: ['s.test'], upstream: backend.url }] });
      try {
        const c = await RawConn.open(gw.port);
        c.write('GET /stream HTTP/1.1\r\nHost: s.test\r\n\r\n');
        if (headDelay === 0) await waitFor(() => c.text.includes('tick\n'), 2000, 'the first chunk');
        else await waitFor(() => ends.length === 1, 2000, 'the request upstream');
        const left = performance.now();
        c.destroy();
        await waitFor(() => ends[0]!.closed, 1000, 'the backend to see its response closed');
        assert.equal(ends[0]!.finished, false, 'the backend response never finished');
        assert.ok(ends[0]!.closedAt - left < 1000);
        const e = await waitFound(() => gw.access.find((x) => x.path === '/stream'));
        assert.equal(e.code, 'MPG_CLIENT_GONE');
        assert.equal(e.status, headDelay === 0 ? 200 : 499);
        // Nothing left in flight: a graceful close with a long grace returns at once.
        const t0 = performance.now();
        await gw.close(5000);
        assert.ok(performance.now() - t0 < 1000, `close() took ${performance.now() - t0} ms: an exchange was still counted in flight`);
      } finally {
        await gw.close(0);
        await backend.close();
      }
    });
  }
});

describe('a bug in the pipeline costs one request, not the process', () => {
  // A planted bug: route matching throws for one path. Every entry (fast path, node:http, WebSocket
  // upgrade) routes through it, after the request has been counted in flight on some of them.
  const matchRoute = RoutingTable.matchRoute;
  let be: Backend;
  let gw: TestGateway;
  before(async () => {
    RoutingTable.matchRoute = (site, path) => {
      if (path === '/boom') throw new Error('planted bug');
      return matchRoute(site, path);
    };
    be = await startBackend();
    gw = await startGateway({ sites: [{ name: 'a', hosts: ['a.test'], upstream: be.url }] });
  });
  after(async () => {
    RoutingTable.matchRoute = matchRoute;
    await gw?.close(500);
    await be?.close();
  });

  const H = 'Host: a.test\r\n';
  const cases = [
    ['a fast-path GET', `GET /boom HTTP/1.1\r\n${H}\r\n`],
    ['a chunked POST (node:http)', `POST /boom HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['an HTTP/1.0 GET (node:http)', `GET /boom HTTP/1.0\r\n${H}\r\n`],
    ['a WebSocket upgrade', `GET /boom HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`],
  ] as const;
  for (const [name, raw] of cases) {
    it(`${name}: 500 MPG_INTERNAL, the connection closed, the next request served`, async () => {
      const from = gw.access.length;
      const c = await RawConn.open(gw.port);
      c.write(raw);
      const r = await c.response();
      assert.equal(r.status, 500, r.raw);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_INTERNAL');
      await c.waitClosed(1000);
      assert.deepEqual(gw.access.slice(from).map((e) => [e.status, e.code, e.path]), [[500, 'MPG_INTERNAL', '/boom']]);
      const ok = await request(`${gw.url}/fine`, { headers: { host: 'a.test' } });
      assert.equal(ok.statusCode, 200);
      await ok.body.text();
    });
  }

  it('shutdown does not wait for the requests that failed (none is left counted in flight)', async () => {
    const started = performance.now();
    await gw.close(20_000);
    assert.ok(performance.now() - started < 10_000, `close took ${Math.round(performance.now() - started)} ms of its 20 s grace`);
  });
});
