/**
 * WebSocket relaying (wx.connectSocket) with the `ws` package on both ends and the gateway in
 * between, over real sockets: Host routing, echo of text and 1 MiB binary, forwarded headers,
 * refusals (unknown host, non-WebSocket upgrade, backend 403, upstream down), a reload while a
 * socket is open, and graceful close ending sockets after the grace period.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { configFromObject } from '../../src/config/load.js';
import { closedPort, startBackend, startGateway, waitFor, type Backend, type TestGateway } from '../helpers.js';
import { RawConn, countBytes, sleep, startRawUpstream, waitFound } from './support.js';

interface WsBackend {
  name: string;
  url: string;
  server: http.Server;
  /** Handshake requests the backend received. */
  handshakes: IncomingMessage[];
  close(): Promise<void>;
}

/** A node http server whose upgrades go to a ws WebSocketServer that echoes (and names itself). */
async function startWsBackend(name: string): Promise<WsBackend> {
  const server = http.createServer((_req, res) => res.end('plain http'));
  const wss = new WebSocketServer({ noServer: true });
  const handshakes: IncomingMessage[] = [];
  server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    handshakes.push(req);
    if (req.url === '/forbidden') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nX-Backend: refused\r\n\r\nforbidden');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'who') ws.send(name);
        else ws.send(data, { binary: isBinary });
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    name, url: `http://127.0.0.1:${port}`, server, handshakes,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Opens a WebSocket to the gateway with the given Host; resolves once open. */
async function openWs(gw: TestGateway, host: string, path = '/chat'): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}`, { headers: { host } });
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`unexpected response ${res.statusCode}`)));
  });
  return ws;
}

/** Tries a WebSocket handshake that must be refused; resolves with the HTTP answer. */
async function refusedWs(gw: TestGateway, host: string, path = '/chat'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}`, { headers: { host } });
  return new Promise((ok, fail) => {
    ws.once('open', () => fail(new Error('the handshake succeeded')));
    ws.once('error', () => {}); // ws reports the refusal as an error too, after unexpected-response
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        ws.terminate();
        ok({ status: res.statusCode!, headers: res.headers, body });
      });
    });
  });
}

async function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  const [reply, isBinary] = (await Promise.all([once(ws, 'message'), Promise.resolve(ws.send(data))]))[0] as [Buffer, boolean];
  return { data: reply, isBinary };
}

async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}

describe('WebSocket relaying', () => {
  let a: WsBackend;
  let b: WsBackend;
  let gw: TestGateway;
  let deadPort: number;

  before(async () => {
    a = await startWsBackend('a');
    b = await startWsBackend('b');
    deadPort = await closedPort();
    gw = await startGateway({
      sites: [
        { name: 'chat', hosts: ['ws.test'], upstream: a.url },
        { name: 'down', hosts: ['down.test'], upstream: `http://127.0.0.1:${deadPort}` },
      ],
    });
  });
  after(async () => {
    await gw.close(200);
    await a.close();
    await b.close();
  });

  it('routes by Host and echoes text and 1 MiB binary both ways', async () => {
    const ws = await openWs(gw, 'ws.test');
    assert.equal(gw.gateway.tunnels, 1);
    const text = await roundTrip(ws, 'hello, 世界');
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString(), 'hello, 世界');
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const bin = await roundTrip(ws, payload);
    assert.equal(bin.isBinary, true);
    assert.ok(bin.data.equals(payload), 'binary payload came back unchanged');
    assert.equal((await roundTrip(ws, 'who')).data.toString(), 'a');
    await closeWs(ws);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'the tunnel to close');
    const e = await waitFound(() => gw.access.find((x) => x.path === '/chat' && x.host === 'ws.test'));
    assert.equal(e.status, 101);
    assert.equal(e.site, 'chat');
    assert.equal(e.upstream, a.url);
    assert.ok(e.bytes > payload.length, 'the access log counts the bytes relayed');
  });

  it('sends the handshake upstream with Host kept, X-Real-IP, X-Forwarded-For and Upgrade: websocket', async () => {
    const before = a.handshakes.length;
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/hs?x=1`, { headers: { host: 'ws.test', 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6' } });
    await once(ws, 'open');
    const hs = a.handshakes[before]!;
    assert.equal(hs.url, '/hs?x=1');
    assert.equal(hs.headers.host, 'ws.test');
    assert.equal(hs.headers['x-real-ip'], '127.0.0.1');
    assert.equal(hs.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(hs.headers['x-forwarded-proto'], 'http');
    assert.equal(hs.headers.upgrade, 'websocket');
    assert.match(String(hs.headers.connection), /upgrade/i);
    assert.ok(hs.headers['sec-websocket-key'], 'the key is passed through');
    await closeWs(ws);
  });

  it('refuses an unknown host with 404 MPG_NO_SITE', async () => {
    const r = await refusedWs(gw, 'nobody.test');
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_NO_SITE');
    const e = await waitFound(() => gw.access.find((x) => x.host === 'nobody.test'));
    assert.equal(e.status, 404);
    assert.equal(e.code, 'MPG_NO_SITE');
  });

  it('refuses a non-WebSocket upgrade (h2c) with 400 MPG_UPGRADE_UNSUPPORTED, forwarding nothing', async () => {
    const bytes = countBytes(a.server);
    const before = a.handshakes.length;
    const c = await RawConn.open(gw.port);
    c.write('GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_UPGRADE_UNSUPPORTED');
    await c.waitClosed(1000);
    assert.equal(a.handshakes.length, before);
    assert.equal(bytes.bytes, 0);
  });

  it('relays a backend refusal (403) to the client', async () => {
    const r = await refusedWs(gw, 'ws.test', '/forbidden');
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-backend'], 'refused');
    assert.equal(r.body, 'forbidden');
    const e = await waitFound(() => gw.access.find((x) => x.path === '/forbidden'));
    assert.equal(e.status, 403);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'the refused tunnel to be closed');
  });

  it('answers 502 MPG_UPSTREAM_REFUSED when the upstream is down', async () => {
    const r = await refusedWs(gw, 'down.test');
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_REFUSED');
    const e = await waitFound(() => gw.access.find((x) => x.host === 'down.test'));
    assert.equal(e.status, 502);
    assert.equal(e.code, 'MPG_UPSTREAM_REFUSED');
  });

  it('keeps an open WebSocket working across a reload that moves the host elsewhere', async () => {
    const old = await openWs(gw, 'ws.test');
    assert.equal((await roundTrip(old, 'who')).data.toString(), 'a');

    const next = configFromObject({
      listen: [...gw.gateway.config.listen],
      sites: [
        { name: 'chat', hosts: ['ws.test'], upstream: b.url },
        { name: 'down', hosts: ['down.test'], upstream: `http://127.0.0.1:${deadPort}` },
      ],
    }, 'reload');
    const result = gw.gateway.reload(next);
    assert.deepEqual(result.needsRestart, []);

    // The socket opened before the reload still talks to a, in both directions.
    assert.equal((await roundTrip(old, 'who')).data.toString(), 'a');
    const echo = await roundTrip(old, Buffer.from([1, 2, 3]));
    assert.deepEqual([...echo.data], [1, 2, 3]);
    // A new one follows the new routes.
    const fresh = await openWs(gw, 'ws.test');
    assert.equal((await roundTrip(fresh, 'who')).data.toString(), 'b');
    assert.equal(gw.gateway.tunnels, 2);
    await closeWs(old);
    await closeWs(fresh);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'both tunnels to close');
  });
});

const HANDSHAKE = (path: string, host = 'ws.test') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
const ACCEPT = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';

describe('the WebSocket handshake: nothing of the client goes upstream before a 101', () => {
  let plain: Backend;
  // Every gateway is closed in after(), so a failing test leaves nothing running.
  const gws: TestGateway[] = [];
  const gateway = async (config: Parameters<typeof startGateway>[0]): Promise<TestGateway> => {
    const gw = await startGateway(config);
    gws.push(gw);
    return gw;
  };
  const ups: { close(): Promise<void> }[] = [];
  const upstream = async (answer: (socket: net.Socket, head: string) => void) => {
    const u = await startRawUpstream(answer);
    ups.push(u);
    return u;
  };

  before(async () => {
    // A backend without WebSocket support: node:http answers the upgrade request as a plain GET, 200, keep-alive.
    plain = await startBackend((req, res) => res.end(`plain ${req.url}`));
  });
  after(async () => {
    await Promise.all(gws.map((g) => g.close(200)));
    await plain?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  it('an upstream answering 200 (no WebSocket support): relayed with Connection: close; a request sent after it never reaches the upstream', async () => {
    const gw = await gateway({ sites: [{ name: 'p', hosts: ['ws.test'], routes: [{ path: '/public', upstream: plain.url }] }] });
    const c = await RawConn.open(gw.port);
    c.write(HANDSHAKE('/public/ws'));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'plain /public/ws');
    assert.equal(r.headers.connection, 'close');
    // The classic smuggling attempt: a request outside the route, with a forged client address.
    c.write('GET /admin HTTP/1.1\r\nHost: ws.test\r\nX-Real-IP: 10.0.0.1\r\n\r\n');
    await c.waitClosed(2000);
    await sleep(50);
    assert.deepEqual(plain.seen.map((q) => q.url), ['/public/ws'], 'only the handshake reached the backend');
    const e = await waitFound(() => gw.access.find((x) => x.path === '/public/ws'));
    assert.equal(e.status, 200);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'the refused tunnel to be closed');
    await gw.close(200);
  });

  it('a chunked refusal is relayed whole, close-delimited', async () => {
    const u = await upstream((socket) => socket.write('HTTP/1.1 426 Upgrade Required\r\nTransfer-Encoding: chunked\r\nX-Why: nope\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
    const gw = await gateway({ sites: [{ name: 'p', hosts: ['ws.test'], upstream: u.url }] });
    const c = await RawConn.open(gw.port);
    c.write(HANDSHAKE('/ws'));
    await c.waitClosed(2000);
    const r = await c.response();
    assert.equal(r.status, 426);
    assert.equal(r.headers['x-why'], 'nope');
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.body, 'hello world');
    await gw.close(200);
  });

  it('bytes the client sends right after its handshake reach the upstream only once it has answered 101', async () => {
    let answeredAt = 0;
    const u = await upstream((socket) => setTimeout(() => {
      answeredAt = performance.now();
      socket.write(`${ACCEPT}from-upstream`);
    }, 300));
    const gw = await gateway({ sites: [{ name: 'p', hosts: ['ws.test'], upstream: u.url }] });
    const c = await RawConn.open(gw.port);
    c.write(`${HANDSHAKE('/ws')}early-bytes`);
    await waitFor(() => c.text.includes('from-upstream'), 3000, 'the 101 and the upstream bytes');
    assert.ok(c.text.startsWith('HTTP/1.1 101 Switching Protocols\r\n'), c.text);
    await waitFor(() => u.received.some((r) => r.text.includes('early-bytes')), 2000, 'the early bytes upstream');
    const early = u.received.find((r) => r.text.includes('early-bytes'))!;
    assert.ok(early.at >= answeredAt, 'the early bytes arrived after the 101 was sent');
    assert.ok(!u.received[0]!.text.includes('early-bytes'), 'not together with the handshake');
    c.write('later-bytes');
    await waitFor(() => u.received.some((r) => r.text.includes('later-bytes')), 2000, 'the tunnel carries bytes');
    c.destroy();
    await gw.close(200);
  });

  it('an upstream closing without an answer: 502 MPG_UPSTREAM_RESET; garbage: 502 MPG_UPSTREAM_BAD_RESPONSE', async () => {
    const gone = await upstream((socket) => socket.destroy());
    const junk = await upstream((socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'));
    const gw = await gateway({ sites: [{ name: 'g', hosts: ['gone.test'], upstream: gone.url }, { name: 'j', hosts: ['junk.test'], upstream: junk.url }] });
    for (const [host, code] of [['gone.test', 'MPG_UPSTREAM_RESET'], ['junk.test', 'MPG_UPSTREAM_BAD_RESPONSE']] as const) {
      const c = await RawConn.open(gw.port);
      c.write(HANDSHAKE('/ws', host));
      const r = await c.response();
      assert.equal(r.status, 502, `${host}: ${r.raw}`);
      assert.equal(r.headers['x-mpgate-error'], code);
      await c.waitClosed(1000);
      const e = await waitFound(() => gw.access.find((x) => x.host === host));
      assert.deepEqual([e.status, e.code], [502, code]);
    }
    await gw.close(200);
  });

  it('a refusal whose body stalls is cut off after upstream.responseTimeout, nothing left open', async () => {
    const stall = await upstream((socket) => socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\npartial'));
    const gw = await gateway({ upstream: { responseTimeout: '300ms' }, sites: [{ name: 's', hosts: ['ws.test'], upstream: stall.url }] });
    const c = await RawConn.open(gw.port);
    c.write(HANDSHAKE('/ws'));
    await c.waitClosed(3000);
    assert.match(c.text, /^HTTP\/1\.1 403 Forbidden\r\n[^]*\r\n\r\npartial$/);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'nothing left open');
    const e = await waitFound(() => gw.access.find((x) => x.host === 'ws.test'));
    assert.deepEqual([e.status, e.code], [403, 'MPG_UPSTREAM_TIMEOUT']);
    await gw.close(200);
  });

  it('an upstream that never answers: 504 MPG_UPSTREAM_TIMEOUT after upstream.responseTimeout', async () => {
    const silent = await upstream(() => {});
    const gw = await gateway({ upstream: { responseTimeout: '300ms' }, sites: [{ name: 's', hosts: ['ws.test'], upstream: silent.url }] });
    const c = await RawConn.open(gw.port);
    const sent = performance.now();
    c.write(HANDSHAKE('/ws'));
    const r = await c.response();
    assert.equal(r.status, 504);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_TIMEOUT');
    assert.ok(performance.now() - sent >= 250, 'not before the timeout');
    await c.waitClosed(1000);
    await waitFor(() => gw.gateway.tunnels === 0, 2000, 'nothing left open');
    await gw.close(200);
  });
});

describe('WebSocket upgrades on relay and OCR routes', () => {
  it('are refused 400 MPG_UPGRADE_UNSUPPORTED, and nothing reaches the relay backend (its path checks and allow list cannot be tunnelled around)', async () => {
    const u = await startRawUpstream((socket) => socket.write(ACCEPT));
    const gw = await startGateway({
      sites: [{ name: 'r', hosts: ['r.test'], routes: [{ path: '/relay', relay: { upstream: `${u.url}/api`, allow: ['/ok'] } }, { path: '/ocr', ocr: {} }] }],
    });
    try {
      for (const path of ['/relay?method=ok', '/relay?method=../../admin', '/relay/secret', '/ocr']) {
        const c = await RawConn.open(gw.port);
        c.write(HANDSHAKE(path, 'r.test'));
        const r = await c.response();
        assert.equal(r.status, 400, `${path}: ${r.raw}`);
        assert.equal(r.headers['x-mpgate-error'], 'MPG_UPGRADE_UNSUPPORTED');
        await c.waitClosed(1000);
      }
      await sleep(50);
      assert.deepEqual(u.heads, [], 'the relay backend was not contacted');
    } finally {
      await gw.close(200);
      await u.close();
    }
  });
});

describe('graceful close with open WebSockets', () => {
  it('gateway.close(graceMs) lets WebSockets run for the grace period, then ends them', { timeout: 8000 }, async () => {
    const backend = await startWsBackend('g');
    const gw = await startGateway({ sites: [{ name: 'g', hosts: ['g.test'], upstream: backend.url }] });
    try {
      const ws = await openWs(gw, 'g.test');
      let closedAt = 0;
      ws.on('close', () => (closedAt = performance.now()));
      const grace = 500;
      const t0 = performance.now();
      const closing = gw.close(grace);
      // Still usable during the grace period...
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await roundTrip(ws, 'who')).data.toString(), 'g');
      // ...and new connections are no longer accepted.
      await assert.rejects(openWs(gw, 'g.test'));
      await closing;
      const closeTook = performance.now() - t0;
      assert.ok(closeTook >= grace - 20, `close() returned after ${closeTook} ms, before the grace period`);
      assert.ok(closeTook < grace + 1000, `close() took ${closeTook} ms`);
      await waitFor(() => closedAt !== 0, 2000, 'the client WebSocket to be closed');
      assert.ok(closedAt - t0 >= grace - 20, `the WebSocket was closed after ${closedAt - t0} ms, inside the grace period`);
      assert.equal(gw.gateway.tunnels, 0);
    } finally {
      await gw.close(0);
      await backend.close();
    }
  });
});
