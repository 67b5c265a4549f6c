/**
 * The HTTP/1.1 fast path (server/h1-front.ts) over real sockets against a real gateway: keep-alive,
 * response framing, mixing fast and handed-off requests on one connection, pipelining, bodies,
 * client half-close and disconnect, upstream failures, client deadlines, graceful shutdown and
 * forwarding headers.
 *
 * Which requests the front served itself is observed, not guessed: the front's handler is wrapped
 * (H1Front.prototype.accept sees every front once) to record each request it was offered, by the
 * client's port, and whether the gateway took it on the fast path.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { AccessEntry } from '../../src/server/access-log.js';
import { H1Front, type FastRequest, type FastResponse } from '../../src/server/h1-front.js';
import { closedPort, startBackend, startGateway, waitFor, type Backend, type TestGateway } from '../helpers.js';
import { RawConn, sleep, waitFound } from './support.js';
import { issue, tempDir } from '../support/tls-fixtures.js';
import tls from 'node:tls';

// ---- which requests the front served ---------------------------------------------------------

interface FastSeen {
  /** The client's port (the server socket's remotePort). */
  port: number;
  method: string;
  url: string;
  /** The gateway served it on the fast path (false: handed to node:http). */
  taken: boolean;
}
const fastSeen: FastSeen[] = [];
const wrapped = new WeakSet<H1Front>();
const originalAccept = H1Front.prototype.accept;
H1Front.prototype.accept = function (this: H1Front, socket: net.Socket): void {
  if (!wrapped.has(this)) {
    wrapped.add(this);
    const handler = this.handler;
    const serve = handler.serve.bind(handler);
    handler.serve = (req: FastRequest, res: FastResponse): boolean => {
      const taken = serve(req, res);
      fastSeen.push({ port: req.socket.remotePort ?? -1, method: req.method, url: req.url, taken });
      return taken;
    };
  }
  originalAccept.call(this, socket);
};

/** Requests the front was offered on this client connection since `from` (an index into fastSeen): "METHOD url" or "METHOD url (handed off)". */
function fastOn(c: Client, from = 0): string[] {
  const port = c.port;
  return fastSeen.slice(from).filter((f) => f.port === port).map((f) => `${f.method} ${f.url}${f.taken ? '' : ' (handed off)'}`);
}

after(() => {
  H1Front.prototype.accept = originalAccept;
});

// ---- a strict response reader ------------------------------------------------------------------

interface Resp {
  status: number;
  reason: string;
  head: string;
  /** Fields in order, names as sent. */
  fields: [string, string][];
  /** Lower-cased names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Chunk sizes of a chunked body. */
  chunks?: number[];
}

/**
 * One complete response starting at `off`, read with the request's method (HEAD has no body), or
 * undefined when it has not all arrived. Malformed framing throws.
 */
function parseOne(text: string, off: number, method: string, closed: boolean): { resp: Resp; end: number } | undefined {
  const headEnd = text.indexOf('\r\n\r\n', off);
  if (headEnd === -1) {
    if (closed && text.length > off) throw new Error(`connection closed inside a response head: ${JSON.stringify(text.slice(off))}`);
    return undefined;
  }
  const head = text.slice(off, headEnd);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(statusLine);
  if (m === null) throw new Error(`bad status line ${JSON.stringify(statusLine)} in ${JSON.stringify(text.slice(off, off + 300))}`);
  const status = Number(m[1]);
  const fields: [string, string][] = [];
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c <= 0) throw new Error(`bad field line ${JSON.stringify(l)}`);
    const name = l.slice(0, c);
    const value = l.slice(c + 1).trim();
    fields.push([name, value]);
    const lower = name.toLowerCase();
    headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
  }
  const bodyStart = headEnd + 4;
  const resp: Resp = { status, reason: m[2]!, head, fields, headers, body: '' };
  if (method === 'HEAD' || status === 204 || status === 304 || status < 200) return { resp, end: bodyStart };
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (te !== 'chunked') throw new Error(`unexpected Transfer-Encoding ${te}`);
    if (headers['content-length'] !== undefined) throw new Error('both Content-Length and Transfer-Encoding in a response');
    const chunks: number[] = [];
    let body = '';
    let p = bodyStart;
    for (;;) {
      const eol = text.indexOf('\r\n', p);
      if (eol === -1) return undefined;
      const sizeText = text.slice(p, eol);
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size line ${JSON.stringify(sizeText)}`);
      const size = parseInt(sizeText, 16);
      if (size === 0) {
        if (text.length < eol + 4) return undefined;
        if (text.slice(eol + 2, eol + 4) !== '\r\n') throw new Error('no CRLF after the last chunk (trailers?)');
        resp.body = body;
        resp.chunks = chunks;
        return { resp, end: eol + 4 };
      }
      if (text.length < eol + 2 + size + 2) return undefined;
      if (text.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') throw new Error('chunk data longer than its size');
      chunks.push(size);
      body += text.slice(eol + 2, eol + 2 + size);
      p = eol + 4 + size;
    }
  }
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new Error(`bad Content-Length ${cl}`);
    const end = bodyStart + Number(cl);
    if (text.length < end) {
      if (closed) throw new Error(`connection closed after ${text.length - bodyStart} of ${cl} body bytes`);
      return undefined;
    }
    resp.body = text.slice(bodyStart, end);
    return { resp, end };
  }
  if (!closed) return undefined;
  resp.body = text.slice(bodyStart);
  return { resp, end: text.length };
}

/** A raw connection read response by response with the strict reader. */
class Client {
  #offset = 0;
  /** The local port, kept (a destroyed socket no longer reports it). */
  readonly port: number;
  private constructor(readonly conn: RawConn) {
    this.port = conn.socket.localPort!;
  }

  static async open(port: number): Promise<Client> {
    return new Client(await RawConn.open(port));
  }

  write(data: string | Buffer): void {
    this.conn.write(data);
  }

  async next(method = 'GET', timeoutMs = 3000): Promise<Resp> {
    return waitFound(() => {
      const r = parseOne(this.conn.text, this.#offset, method, this.conn.closed);
      if (r === undefined) return undefined;
      this.#offset = r.end;
      return r.resp;
    }, timeoutMs, `a complete response to ${method}`);
  }

  /** Bytes received past the responses read so far. */
  get unread(): string {
    return this.conn.text.slice(this.#offset);
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  waitClosed(timeoutMs = 3000): Promise<void> {
    return this.conn.waitClosed(timeoutMs);
  }

  destroy(): void {
    this.conn.destroy();
  }
}

const count = (r: Resp, name: string): number => r.fields.filter(([n]) => n.toLowerCase() === name).length;
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** The backend's JSON echo (UTF-8; the reader keeps bytes as latin1). */
const echoOf = (r: Resp): Echo => JSON.parse(Buffer.from(r.body, 'latin1').toString('utf8')) as Echo;

// ---- the backend ---------------------------------------------------------------------------------

/** What the backend saw of each request. */
interface Got {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
  bytes: number;
  ended: boolean;
  /** The request (or its response) closed before the body ended or the response finished. */
  aborted: boolean;
}

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  bodyLength: number;
  body: string;
  sha256: string;
}

function backendHandler(got: Got[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const g: Got = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), bytes: 0, ended: false, aborted: false };
    got.push(g);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      g.bytes += c.length;
    });
    req.on('close', () => {
      if (!g.ended) g.aborted = true;
    });
    res.on('close', () => {
      if (!res.writableFinished) g.aborted = true;
    });
    req.on('end', () => {
      g.ended = true;
      g.body = Buffer.concat(chunks);
      const path = req.url!.split('?')[0]!;
      const echo = (): void => {
        const body = JSON.stringify({
          method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders,
          bodyLength: g.body.length, body: g.body.length < 4096 ? g.body.toString('latin1') : '', sha256: sha256(g.body),
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      switch (path) {
        case '/cl':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 11 });
          res.end(req.method === 'HEAD' ? undefined : 'hello world');
          return;
        case '/chunks':
          // No Content-Length: node sends it chunked to the gateway, in several pieces.
          res.writeHead(200, { 'content-type': 'text/plain', 'x-kind': 'stream' });
          res.write('abc');
          setTimeout(() => {
            res.write('defg');
            setTimeout(() => res.end('h'), 10);
          }, 10);
          return;
        case '/nocontent':
          res.writeHead(204, { 'x-kind': 'nocontent' });
          res.end();
          return;
        case '/notmod':
          res.writeHead(304, { etag: '"v1"' });
          res.end();
          return;
        case '/nodate':
          res.sendDate = false;
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
          res.end('ok');
          return;
        case '/slow':
          setTimeout(echo, 300);
          return;
        case '/delay':
          setTimeout(echo, Number(new URL(req.url!, 'http://x').searchParams.get('ms')));
          return;
        case '/hop':
          res.writeHead(200, [
            'Content-Type', 'application/json',
            'Connection', 'X-Resp-Secret',
            'X-Resp-Secret', 'backend-only',
            'Keep-Alive', 'timeout=77',
            'Proxy-Connection', 'keep-alive',
            'X-Kept', 'yes',
          ]);
          res.end(JSON.stringify({ headers: req.headers, rawHeaders: req.rawHeaders }));
          return;
        default:
          echo();
      }
    });
  };
}

const H = 'Host: x.a.com\r\n';
/** Slack for timer and scheduling jitter on a loaded machine. */
const SLACK = 400;
/** The front sweeps its deadlines on this interval with headersTimeout 500 (max(250, min(1000, 500/4))). */
const TICK = 250;
/** node:http (and the front) keep an idle keep-alive socket 1 s longer than advertised. */
const KEEP_ALIVE_MARGIN = 1000;

describe('HTTP/1.1 fast path (server/h1-front.ts)', () => {
  let be: Backend;
  let gw: TestGateway;
  let downPort: number;
  const got: Got[] = [];

  before(async () => {
    be = await startBackend(backendHandler(got));
    downPort = await closedPort();
    gw = await startGateway({
      sites: [
        { name: 'a', hosts: ['x.a.com'], upstream: be.url },
        { name: 'small', hosts: ['small.test'], upstream: be.url, maxBodySize: 100 },
        { name: 'down', hosts: ['down.test'], upstream: `http://127.0.0.1:${downPort}` },
      ],
    });
  });
  after(async () => {
    await gw.close(500);
    await be.close();
  });

  const gotSince = (from: number): Got[] => got.slice(from);
  const entryFor = (path: string): Promise<AccessEntry> => waitFound(() => gw.access.find((e) => e.path === path), 2000, `access entry for ${path}`);

  describe('keep-alive and response framing', () => {
    it('serves several requests on one connection, each reaching the backend once with method, path and body', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      const reqs: [string, string, string][] = [
        ['GET', '/ka/1?x=1', ''],
        ['POST', '/ka/2', 'hello'],
        ['PUT', '/ka/3', 'put-body-{}'],
        ['DELETE', '/ka/4', ''],
        ['PATCH', '/ka/5', 'p'],
        ['OPTIONS', '/ka/6', ''],
      ];
      for (const [method, url, body] of reqs) {
        c.write(`${method} ${url} HTTP/1.1\r\n${H}${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`);
        const r = await c.next(method);
        assert.equal(r.status, 200, r.head);
        const e = echoOf(r);
        assert.equal(e.method, method);
        assert.equal(e.url, url);
        assert.equal(e.body, body);
        assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
        assert.equal(r.headers.connection, 'keep-alive');
        assert.equal(r.headers['keep-alive'], 'timeout=5');
        assert.equal(c.closed, false);
      }
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((g) => [g.method, g.url, g.body.toString('latin1'), g.ended]), reqs.map(([m, u, b]) => [m, u, b, true]));
      assert.deepEqual(fastOn(c, fromFast), reqs.map(([m, u]) => `${m} ${u}`), 'every request served on the fast path');
    });

    it('passes a backend Content-Length, and chunks a body the backend sent without one', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /cl HTTP/1.1\r\n${H}\r\n`);
      const cl = await c.next();
      assert.equal(cl.status, 200);
      assert.equal(cl.reason, 'OK');
      assert.equal(cl.headers['content-length'], '11');
      assert.equal(cl.headers['transfer-encoding'], undefined);
      assert.equal(cl.body, 'hello world');
      assert.equal(count(cl, 'content-length'), 1);

      c.write(`GET /chunks HTTP/1.1\r\n${H}\r\n`);
      const ch = await c.next();
      assert.equal(ch.status, 200);
      assert.equal(ch.headers['transfer-encoding'], 'chunked');
      assert.equal(ch.headers['content-length'], undefined);
      assert.equal(ch.headers['x-kind'], 'stream');
      assert.equal(ch.body, 'abcdefgh');
      assert.equal(ch.chunks!.reduce((a, b) => a + b, 0), 8);
      assert.equal(count(ch, 'transfer-encoding'), 1);

      // The connection is still usable after a chunked response: framing ended exactly.
      c.write(`GET /after-chunks HTTP/1.1\r\n${H}\r\n`);
      const next = await c.next();
      assert.equal(next.status, 200);
      assert.equal(echoOf(next).url, '/after-chunks');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /cl', 'GET /chunks', 'GET /after-chunks']);
    });

    it('answers HEAD with headers and no body, and the connection goes on', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`HEAD /cl HTTP/1.1\r\n${H}\r\n`);
      const h = await c.next('HEAD');
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], '11', 'the length a GET would have');
      assert.equal(h.headers['transfer-encoding'], undefined);
      assert.equal(h.body, '');
      // Not one byte of body followed the head.
      await sleep(50);
      assert.equal(c.unread, '');

      c.write(`HEAD /chunks HTTP/1.1\r\n${H}\r\n`);
      const h2 = await c.next('HEAD');
      assert.equal(h2.status, 200);
      assert.equal(h2.headers['transfer-encoding'], undefined, 'no chunked framing announced for a bodiless HEAD answer');
      assert.equal(h2.headers['x-kind'], 'stream');
      await sleep(50);
      assert.equal(c.unread, '');

      c.write(`GET /after-head HTTP/1.1\r\n${H}\r\n`);
      const g = await c.next();
      assert.equal(g.status, 200);
      assert.equal(echoOf(g).url, '/after-head');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((x) => `${x.method} ${x.url}`), ['HEAD /cl', 'HEAD /chunks', 'GET /after-head']);
      assert.deepEqual(fastOn(c, fromFast), ['HEAD /cl', 'HEAD /chunks', 'GET /after-head']);
    });

    it('sends 204 and 304 without a body or chunked framing', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /nocontent HTTP/1.1\r\n${H}\r\n`);
      const n = await c.next();
      assert.equal(n.status, 204);
      assert.equal(n.headers['x-kind'], 'nocontent');
      assert.equal(n.headers['transfer-encoding'], undefined);
      assert.equal(n.headers.connection, 'keep-alive');
      await sleep(30);
      assert.equal(c.unread, '');

      c.write(`GET /notmod HTTP/1.1\r\n${H}If-None-Match: "v1"\r\n\r\n`);
      const m = await c.next();
      assert.equal(m.status, 304);
      assert.equal(m.headers.etag, '"v1"');
      assert.equal(m.headers['transfer-encoding'], undefined);
      await sleep(30);
      assert.equal(c.unread, '');

      c.write(`GET /after-304 HTTP/1.1\r\n${H}\r\n`);
      const g = await c.next();
      assert.equal(g.status, 200);
      assert.equal(echoOf(g).url, '/after-304');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /nocontent', 'GET /notmod', 'GET /after-304']);
    });

    it('has exactly one Date (added when the backend sent none) and Connection: keep-alive with Keep-Alive', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /nodate HTTP/1.1\r\n${H}\r\n`);
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
      assert.equal(count(r, 'date'), 1, r.head);
      assert.match(r.headers.date!, HTTP_DATE);
      assert.ok(Math.abs(Date.parse(r.headers.date!) - Date.now()) < 5000, `Date ${r.headers.date} is not now`);
      assert.equal(count(r, 'connection'), 1);
      assert.equal(r.headers.connection, 'keep-alive');
      assert.equal(r.headers['keep-alive'], 'timeout=5');

      c.write(`GET /withdate HTTP/1.1\r\n${H}\r\n`);
      const d = await c.next();
      assert.equal(d.status, 200);
      assert.equal(count(d, 'date'), 1, d.head);
      assert.match(d.headers.date!, HTTP_DATE);
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /nodate', 'GET /withdate']);
    });
  });

  describe('fast and handed-off requests on one connection', () => {
    it('fast GET, then unknown Host (404 MPG_NO_SITE, handed off), then a normal GET', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const fromLog = gw.access.length;
      const c = await Client.open(gw.port);
      c.write(`GET /mix/1 HTTP/1.1\r\n${H}\r\n`);
      const r1 = await c.next();
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).url, '/mix/1');

      c.write('GET /mix/2 HTTP/1.1\r\nHost: nobody.test\r\nAccept: application/json\r\n\r\n');
      const r2 = await c.next();
      assert.equal(r2.status, 404);
      assert.equal(r2.headers['x-mpgate-error'], 'MPG_NO_SITE');
      assert.deepEqual(JSON.parse(r2.body), { error: { status: 404, code: 'MPG_NO_SITE', message: 'no site for this host' } });
      assert.notEqual(r2.headers.connection, 'close');

      c.write(`GET /mix/3 HTTP/1.1\r\n${H}\r\n`);
      const r3 = await c.next();
      assert.equal(r3.status, 200);
      assert.equal(echoOf(r3).url, '/mix/3');
      assert.equal(c.unread, '');
      assert.equal(c.closed, false);
      c.destroy();

      assert.deepEqual(gotSince(from).map((g) => g.url), ['/mix/1', '/mix/3']);
      // The second was offered to the front and handed off; node:http keeps the connection after that.
      assert.deepEqual(fastOn(c, fromFast), ['GET /mix/1', 'GET /mix/2 (handed off)']);
      const log = gw.access.slice(fromLog).map((e) => [e.path, e.status, e.code]);
      assert.deepEqual(log, [['/mix/1', 200, undefined], ['/mix/2', 404, 'MPG_NO_SITE'], ['/mix/3', 200, undefined]]);
    });

    it('fast GET, then a chunked POST (handed off), then a normal GET', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /mixc/1 HTTP/1.1\r\n${H}\r\n`);
      assert.equal((await c.next()).status, 200);
      c.write(`POST /mixc/2 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n`);
      const r2 = await c.next();
      assert.equal(r2.status, 200);
      assert.equal(echoOf(r2).body, 'abcdefg');
      c.write(`GET /mixc/3 HTTP/1.1\r\n${H}\r\n`);
      const r3 = await c.next();
      assert.equal(r3.status, 200);
      assert.equal(echoOf(r3).url, '/mixc/3');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((g) => [g.method, g.url, g.body.toString()]), [['GET', '/mixc/1', ''], ['POST', '/mixc/2', 'abcdefg'], ['GET', '/mixc/3', '']]);
      // A chunked head is outside the subset: never offered to the gateway by the front.
      assert.deepEqual(fastOn(c, fromFast), ['GET /mixc/1']);
    });

    it('a first request handed off (chunked POST), then normal requests', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`POST /first-chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      const r1 = await c.next();
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).body, 'hello');
      for (const p of ['/then/1', '/then/2']) {
        c.write(`GET ${p} HTTP/1.1\r\n${H}\r\n`);
        const r = await c.next();
        assert.equal(r.status, 200);
        assert.equal(echoOf(r).url, p);
        assert.equal(r.headers.connection, 'keep-alive');
      }
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/first-chunked', '/then/1', '/then/2']);
      assert.deepEqual(fastOn(c, fromFast), []);
    });

    it('fast GET, then a Content-Length over the site limit: 413 by node:http, connection closed, nothing forwarded', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write('GET /lim/1 HTTP/1.1\r\nHost: small.test\r\n\r\n');
      assert.equal((await c.next()).status, 200);
      c.write(`POST /lim/2 HTTP/1.1\r\nHost: small.test\r\nContent-Length: 500\r\n\r\n${'x'.repeat(500)}`);
      const r = await c.next();
      assert.equal(r.status, 413);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
      assert.equal(r.headers.connection, 'close');
      await c.waitClosed(1000);
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/lim/1']);
      assert.deepEqual(fastOn(c, fromFast), ['GET /lim/1', 'POST /lim/2 (handed off)']);
      const e = await entryFor('/lim/2');
      assert.equal(e.status, 413);
      assert.equal(e.code, 'MPG_BODY_TOO_LARGE');
    });
  });

  describe('pipelining', () => {
    it('answers three GETs written at once, in order, each complete', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(['/pipe/1', '/pipe/2', '/pipe/3'].map((p) => `GET ${p} HTTP/1.1\r\n${H}X-Seq: ${p.slice(-1)}\r\n\r\n`).join(''));
      for (const n of ['1', '2', '3']) {
        const r = await c.next();
        assert.equal(r.status, 200);
        const e = echoOf(r);
        assert.equal(e.url, `/pipe/${n}`);
        assert.equal(e.headers['x-seq'], n);
        assert.equal(r.headers.connection, 'keep-alive');
      }
      await sleep(30);
      assert.equal(c.unread, '');
      assert.equal(c.closed, false);
      c.destroy();
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/pipe/1', '/pipe/2', '/pipe/3']);
      assert.deepEqual(fastOn(c, fromFast), ['GET /pipe/1', 'GET /pipe/2', 'GET /pipe/3']);
    });

    it('pipelined fast GET + malformed request (Transfer-Encoding with Content-Length): 200, then 400, backend sees only the first', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const fromLog = gw.access.length;
      const c = await Client.open(gw.port);
      c.write(`GET /pm/ok HTTP/1.1\r\n${H}\r\nPOST /pm/bad HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`);
      const r1 = await c.next();
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).url, '/pm/ok');
      const r2 = await c.next();
      assert.equal(r2.status, 400, r2.head);
      assert.equal(r2.headers['x-mpgate-error'], 'MPG_BAD_REQUEST');
      await c.waitClosed(1000);
      assert.equal(c.unread, '');
      await sleep(50);
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/pm/ok']);
      assert.deepEqual(fastOn(c, fromFast), ['GET /pm/ok']);
      const log = gw.access.slice(fromLog).map((e) => [e.path, e.status, e.code]);
      assert.deepEqual(log, [['/pm/ok', 200, undefined], ['', 400, 'MPG_BAD_REQUEST']]);
    });
  });

  describe('heads split across writes', () => {
    it('a pipelined request whose head is cut at the end of the write: both answered, in order', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /pcut/1 HTTP/1.1\r\n${H}\r\nGET /pcut/2 HTTP/1.1\r\nHo`);
      const r1 = await c.next();
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).url, '/pcut/1');
      await sleep(50);
      c.write('st: x.a.com\r\n\r\n');
      const r2 = await c.next();
      assert.equal(r2.status, 200);
      assert.equal(echoOf(r2).url, '/pcut/2');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/pcut/1', '/pcut/2']);
      // The cut head is collected until its end arrives, then served here too.
      assert.deepEqual(fastOn(c, fromFast), ['GET /pcut/1', 'GET /pcut/2']);
    });

    it('a request line alone, then the rest 50 ms later: collected, then served on the fast path', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write('GET /split HTTP/1.1\r\n');
      await sleep(50);
      c.write(`${H}X-Late: yes\r\n\r\n`);
      const r = await c.next();
      assert.equal(r.status, 200);
      const e = echoOf(r);
      assert.equal(e.url, '/split');
      assert.equal(e.headers['x-late'], 'yes');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /split']);
    });

    it('a split head after a fast request on the same connection: both answered', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /split2/1 HTTP/1.1\r\n${H}\r\n`);
      assert.equal(echoOf(await c.next()).url, '/split2/1');
      c.write(`GET /split2/2 HTTP/1.1\r\nHo`);
      await sleep(50);
      c.write('st: x.a.com\r\n\r\n');
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).url, '/split2/2');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /split2/1', 'GET /split2/2']);
    });

    it('a head sent a byte at a time is served whole', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      for (const ch of `GET /bytewise HTTP/1.1\r\n${H}X-B: 1\r\n\r\n`) {
        c.write(ch);
        await sleep(1);
      }
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).url, '/bytewise');
      assert.equal(echoOf(r).headers['x-b'], '1');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /bytewise']);
    });

    it('a collected head outside the subset still goes to node:http whole (chunked POST in pieces)', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write('POST /pieces HTTP/1.1\r\nTransfer-Enc');
      await sleep(30);
      c.write(`oding: chunked\r\n${H}\r\n3\r\nabc\r\n0\r\n\r\n`);
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).body, 'abc');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), []);
    });
  });

  describe('request bodies', () => {
    it('passes a body that arrived in the same write as the head', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      const body = 'same-write-body\u00ff\u0000!';
      c.write(Buffer.from(`POST /b/same HTTP/1.1\r\n${H}Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1'));
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).body, body);
      c.destroy();
      const g = gotSince(from);
      assert.equal(g.length, 1);
      assert.equal(g[0]!.body.toString('latin1'), body);
      assert.equal(g[0]!.headers['content-length'], String(body.length));
      assert.equal(g[0]!.headers['transfer-encoding'], undefined);
      assert.deepEqual(fastOn(c, fromFast), ['POST /b/same']);
    });

    it('streams a body that arrives in several later writes, exactly', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`POST /b/later HTTP/1.1\r\n${H}Content-Length: 12\r\n\r\n`);
      await sleep(50);
      c.write('abcd');
      await waitFor(() => got.find((g) => g.url === '/b/later')?.bytes === 4, 2000, 'the first piece upstream');
      c.write('efgh');
      await sleep(50);
      c.write('ijkl');
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).body, 'abcdefghijkl');
      c.destroy();
      const g = gotSince(from);
      assert.deepEqual(g.map((x) => [x.url, x.body.toString(), x.ended, x.aborted]), [['/b/later', 'abcdefghijkl', true, false]]);
      assert.deepEqual(fastOn(c, fromFast), ['POST /b/later']);
    });

    it('streams a body whose start came with the head and whose end came with the next request', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`POST /b/part HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n012`);
      await sleep(50);
      c.write('3456');
      await sleep(50);
      c.write(`789GET /b/part-next HTTP/1.1\r\n${H}\r\n`);
      const r1 = await c.next();
      assert.equal(r1.status, 200);
      assert.equal(echoOf(r1).body, '0123456789');
      const r2 = await c.next();
      assert.equal(r2.status, 200);
      assert.equal(echoOf(r2).url, '/b/part-next');
      assert.equal(echoOf(r2).bodyLength, 0);
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((x) => [x.method, x.url, x.body.toString()]), [['POST', '/b/part', '0123456789'], ['GET', '/b/part-next', '']]);
      assert.deepEqual(fastOn(c, fromFast), ['POST /b/part', 'GET /b/part-next']);
    });

    it('a body and the next request in the same write', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`POST /b/p1 HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloPUT /b/p2 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nxyzGET /b/p3 HTTP/1.1\r\n${H}\r\n`);
      const r1 = await c.next();
      const r2 = await c.next();
      const r3 = await c.next();
      assert.deepEqual([r1.status, r2.status, r3.status], [200, 200, 200]);
      assert.deepEqual([echoOf(r1).body, echoOf(r2).body, echoOf(r3).body], ['hello', 'xyz', '']);
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(gotSince(from).map((x) => [x.method, x.url, x.body.toString()]), [['POST', '/b/p1', 'hello'], ['PUT', '/b/p2', 'xyz'], ['GET', '/b/p3', '']]);
      assert.deepEqual(fastOn(c, fromFast), ['POST /b/p1', 'PUT /b/p2', 'GET /b/p3']);
    });

    it('receives a 2 MiB body from undici intact', async () => {
      const fromFast = fastSeen.length;
      const payload = randomBytes(2 * 1024 * 1024);
      const r = await request(`${gw.url}/b/big`, { method: 'POST', headers: { host: 'x.a.com', 'content-type': 'application/octet-stream' }, body: payload });
      assert.equal(r.statusCode, 200);
      const e = (await r.body.json()) as Echo;
      assert.equal(e.bodyLength, payload.length);
      assert.equal(e.sha256, sha256(payload));
      assert.equal(e.headers['content-length'], String(payload.length));
      const g = got.find((x) => x.url === '/b/big')!;
      assert.equal(g.body.length, payload.length);
      assert.ok(g.body.equals(payload), 'the backend received other bytes');
      assert.deepEqual(fastSeen.slice(fromFast).filter((f) => f.url === '/b/big').map((f) => f.taken), [true]);
      const entry = await entryFor('/b/big');
      assert.equal(entry.status, 200);
    });
  });

  describe('connection end', () => {
    it('Connection: close → response says close, the socket is closed, a pipelined request after it is not processed', async () => {
      const from = got.length;
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /close/1 HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /close/2 HTTP/1.1\r\n${H}\r\n`);
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).url, '/close/1');
      assert.equal(r.headers.connection, 'close');
      assert.equal(r.headers['keep-alive'], undefined);
      await c.waitClosed(1000);
      assert.equal(c.unread, '', 'nothing after the response');
      await sleep(50);
      assert.deepEqual(gotSince(from).map((g) => g.url), ['/close/1']);
      assert.deepEqual(fastOn(c, fromFast), ['GET /close/1']);
    });

    it('Connection: close on a later request of a keep-alive connection', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /close2/1 HTTP/1.1\r\n${H}\r\n`);
      const r1 = await c.next();
      assert.equal(r1.headers.connection, 'keep-alive');
      c.write(`POST /close2/2 HTTP/1.1\r\n${H}Connection: X-Foo, close\r\nContent-Length: 2\r\n\r\nok`);
      const r2 = await c.next();
      assert.equal(r2.status, 200);
      assert.equal(echoOf(r2).body, 'ok');
      assert.equal(r2.headers.connection, 'close');
      await c.waitClosed(1000);
      assert.equal(c.unread, '');
      assert.deepEqual(fastOn(c, fromFast), ['GET /close2/1', 'POST /close2/2']);
    });

    /**
     * A client FIN (half-close) after a full request, on the fast path and, as the reference, on
     * node:http (a chunked request is handed off). node:http runs without httpAllowHalfOpen: a FIN
     * means the client left, the running request is aborted and nothing is answered. The front
     * must do the same (h1-front.ts #onEnd).
     */
    const halfClose = async (raw: string, path: string, waitBackend: boolean) => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(raw);
      if (waitBackend) await waitFound(() => got.find((g) => g.url === path), 2000, `the backend to get ${path}`);
      c.conn.socket.end();
      await c.waitClosed(2000);
      const e = await entryFor(path);
      // The backend's 300 ms answer would have arrived by now, had it been relayed.
      if (waitBackend) await sleep(400);
      const g = got.find((x) => x.url === path);
      return { text: c.conn.text, status: e.status, code: e.code, backendAborted: g === undefined ? 'not reached' : g.aborted, fast: fastOn(c, fromFast) };
    };

    it('client half-close after a full request: the same outcome as node:http (client gone, 499, no answer, closed)', async () => {
      const fast = await halfClose(`POST /half/fast HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nbody`, '/half/fast', false);
      const node = await halfClose(`POST /half/node HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n`, '/half/node', false);
      assert.deepEqual(fast.fast, ['POST /half/fast']);
      assert.deepEqual(node.fast, []);
      assert.deepEqual({ text: node.text, status: node.status, code: node.code }, { text: '', status: 499, code: 'MPG_CLIENT_GONE' }, 'node:http reference');
      assert.deepEqual({ text: fast.text, status: fast.status, code: fast.code }, { text: node.text, status: node.status, code: node.code });
    });

    it('client half-close while the backend is still answering: upstream aborted, 499, like node:http', async () => {
      const fast = await halfClose(`GET /slow?half=fast HTTP/1.1\r\n${H}\r\n`, '/slow?half=fast', true);
      const node = await halfClose(`POST /slow?half=node HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, '/slow?half=node', true);
      assert.deepEqual(fast.fast, ['GET /slow?half=fast']);
      assert.deepEqual(node.fast, []);
      assert.deepEqual({ text: node.text, status: node.status, code: node.code, aborted: node.backendAborted }, { text: '', status: 499, code: 'MPG_CLIENT_GONE', aborted: true }, 'node:http reference');
      assert.deepEqual({ text: fast.text, status: fast.status, code: fast.code, aborted: fast.backendAborted }, { text: '', status: 499, code: 'MPG_CLIENT_GONE', aborted: true });
    });

    it('client disconnect mid-body: the upstream request is aborted, 499 is logged, the gateway serves on', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`POST /gone-body HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n0123456789`);
      await waitFor(() => got.find((g) => g.url === '/gone-body')?.bytes === 10, 2000, 'the first bytes upstream');
      c.destroy();
      await waitFor(() => got.find((g) => g.url === '/gone-body')!.aborted, 2000, 'the backend request to be aborted');
      const g = got.find((x) => x.url === '/gone-body')!;
      assert.equal(g.ended, false, 'the backend never saw the body end');
      assert.equal(g.bytes, 10);
      const e = await entryFor('/gone-body');
      assert.equal(e.status, 499);
      assert.equal(e.code, 'MPG_CLIENT_GONE');
      assert.equal(e.upstream, be.url);
      assert.deepEqual(fastOn(c, fromFast), ['POST /gone-body']);

      const d = await Client.open(gw.port);
      d.write(`GET /after-gone HTTP/1.1\r\n${H}\r\n`);
      const r = await d.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).url, '/after-gone');
      d.destroy();
    });

    it('client reset while waiting for the response: the upstream exchange is cut, 499 is logged', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(`GET /slow HTTP/1.1\r\n${H}X-Id: gone-wait\r\n\r\n`);
      const g = await waitFound(() => got.find((x) => x.url === '/slow' && x.headers['x-id'] === 'gone-wait'), 2000, 'the backend to get it');
      const fromLog = gw.access.length;
      // An abortive close (RST): a plain FIN here cannot be told from the half-close above.
      c.conn.socket.resetAndDestroy();
      await waitFor(() => g.aborted, 2000, 'the backend response to be cut');
      const e = await waitFound(() => gw.access.slice(fromLog).find((x) => x.path === '/slow'), 2000, 'access entry');
      assert.equal(e.status, 499);
      assert.equal(e.code, 'MPG_CLIENT_GONE');
      assert.deepEqual(fastOn(c, fromFast), ['GET /slow']);
    });
  });

  describe('upstream failure on the fast path', () => {
    it('closed port → 502 MPG_UPSTREAM_REFUSED, text then JSON, and the connection stays usable', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write('GET /down/1 HTTP/1.1\r\nHost: down.test\r\n\r\n');
      const t = await c.next();
      assert.equal(t.status, 502);
      assert.equal(t.reason, 'Bad Gateway');
      assert.equal(t.headers['x-mpgate-error'], 'MPG_UPSTREAM_REFUSED');
      assert.equal(t.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(t.headers['cache-control'], 'no-store');
      assert.equal(t.body, '502 upstream refused the connection (MPG_UPSTREAM_REFUSED, site down)\n');
      assert.equal(t.headers['content-length'], String(t.body.length));
      assert.equal(t.headers.connection, 'keep-alive');

      c.write('GET /down/2 HTTP/1.1\r\nHost: down.test\r\nAccept: application/json\r\n\r\n');
      const j = await c.next();
      assert.equal(j.status, 502);
      assert.equal(j.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(JSON.parse(j.body), { error: { status: 502, code: 'MPG_UPSTREAM_REFUSED', message: 'upstream refused the connection', site: 'down' } });

      // A body that came whole with the head was read: the connection may go on.
      c.write('POST /down/3 HTTP/1.1\r\nHost: down.test\r\nContent-Length: 3\r\n\r\nabc');
      const p = await c.next();
      assert.equal(p.status, 502);
      assert.equal(p.headers.connection, 'keep-alive');
      c.write(`GET /down/after HTTP/1.1\r\n${H}\r\n`);
      const ok = await c.next();
      assert.equal(ok.status, 200);
      assert.equal(echoOf(ok).url, '/down/after');
      assert.equal(c.unread, '');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /down/1', 'GET /down/2', 'POST /down/3', 'GET /down/after']);
      for (const path of ['/down/1', '/down/2', '/down/3']) {
        const e = await entryFor(path);
        assert.equal(e.status, 502, path);
        assert.equal(e.code, 'MPG_UPSTREAM_REFUSED', path);
        assert.equal(e.upstream, `http://127.0.0.1:${downPort}`, path);
        assert.equal(e.site, 'down');
      }
    });

    it('with the body still on its way: 502 with Connection: close, and the connection is closed', async () => {
      const c = await Client.open(gw.port);
      c.write('POST /down/partial HTTP/1.1\r\nHost: down.test\r\nContent-Length: 10\r\n\r\nabc');
      const r = await c.next();
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_UPSTREAM_REFUSED');
      assert.equal(r.headers.connection, 'close');
      await c.waitClosed(1000);
      assert.equal(c.unread, '');
    });
  });

  describe('forwarding headers', () => {
    it('replaces client X-Forwarded-* / X-Real-IP and drops hop-by-hop and Connection-named fields', async () => {
      const fromFast = fastSeen.length;
      const c = await Client.open(gw.port);
      c.write(
        `GET /hop HTTP/1.1\r\n${H}X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed.example\r\n` +
          'Connection: keep-alive, X-Client-Secret\r\nX-Client-Secret: client-only\r\nKeep-Alive: timeout=99\r\nTE: trailers\r\n' +
          'Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nX-Client-Kept: yes\r\n\r\n',
      );
      const r = await c.next();
      assert.equal(r.status, 200, r.head);
      const { headers, rawHeaders } = JSON.parse(r.body) as { headers: Record<string, string>; rawHeaders: string[] };
      assert.equal(headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(headers['x-real-ip'], '127.0.0.1');
      assert.equal(headers['x-forwarded-proto'], 'http');
      assert.equal(headers['x-forwarded-host'], 'x.a.com');
      assert.doesNotMatch(rawHeaders.join('\n'), /6\.6\.6\.6|spoofed\.example|client-only|c2VjcmV0/);
      for (const n of ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host']) {
        assert.equal(rawHeaders.filter((h) => h.toLowerCase() === n).length, 1, n);
      }
      for (const n of ['x-client-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) {
        assert.equal(headers[n], undefined, `${n} reached the backend`);
      }
      assert.notEqual(headers.connection, 'keep-alive, X-Client-Secret');
      assert.equal(headers['x-client-kept'], 'yes');
      // The backend's hop-by-hop fields stay on its side.
      for (const n of ['x-resp-secret', 'proxy-connection']) assert.equal(r.headers[n], undefined, `${n} reached the client`);
      assert.doesNotMatch(r.head, /timeout=77|backend-only/);
      assert.equal(r.headers['x-kept'], 'yes');
      assert.equal(r.headers.connection, 'keep-alive');
      c.destroy();
      assert.deepEqual(fastOn(c, fromFast), ['GET /hop']);
      const e = await entryFor('/hop');
      assert.equal(e.ip, '127.0.0.1');
    });
  });
});

// ---- client deadlines --------------------------------------------------------------------------

describe('fast path client deadlines', () => {
  const LIMITS = { headersTimeout: 500, requestTimeout: 800, keepAliveTimeout: 300 };
  let be: Backend;
  let gw: TestGateway;
  const got: Got[] = [];

  before(async () => {
    be = await startBackend(backendHandler(got));
    gw = await startGateway({ limits: LIMITS, sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
  });
  after(async () => {
    await gw.close(500);
    await be.close();
  });

  /**
   * Trickles a body byte every 100 ms until the 408 comes, then checks it: status and code, the
   * connection closed within requestTimeout of `t0`, the backend request for `url` aborted, and
   * the access-log line.
   */
  async function trickledTo408(c: Client, method: string, url: string, t0: number): Promise<void> {
    const trickle = setInterval(() => {
      if (!c.closed) c.write('z');
    }, 100);
    let r: Resp;
    try {
      r = await c.next(method, LIMITS.requestTimeout + TICK + 2000);
      await c.waitClosed(1000);
    } finally {
      clearInterval(trickle);
    }
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
    const ms = c.conn.closedAfter(t0);
    assert.ok(ms >= LIMITS.requestTimeout - 50, `closed after ${ms} ms, before requestTimeout`);
    assert.ok(ms <= LIMITS.requestTimeout + TICK + SLACK, `closed after ${ms} ms`);
    await waitFor(() => got.find((g) => g.url === url)?.aborted, 1000, 'the backend request to be aborted');
    const e = await waitFound(() => gw.access.find((x) => x.path === url), 2000, 'access entry');
    assert.equal(e.status, 408);
    assert.equal(e.code, 'MPG_CLIENT_TIMEOUT');
  }

  it('a fresh connection that sends nothing gets 408 MPG_CLIENT_TIMEOUT after headersTimeout and is closed', async () => {
    const fromLog = gw.access.length;
    const c = await Client.open(gw.port);
    const t0 = c.conn.openedAt;
    const r = await c.next('GET', LIMITS.headersTimeout + TICK + 2000);
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
    assert.equal(r.headers.connection, 'close');
    await c.waitClosed(1000);
    const ms = c.conn.closedAfter(t0);
    assert.ok(ms >= LIMITS.headersTimeout - 50, `closed after ${ms} ms, before headersTimeout`);
    assert.ok(ms <= LIMITS.headersTimeout + TICK + SLACK, `closed after ${ms} ms`);
    const e = await waitFound(() => gw.access.slice(fromLog).find((x) => x.code === 'MPG_CLIENT_TIMEOUT'), 1000, 'access entry');
    assert.equal(e.status, 408);
  });

  it('a fresh connection silent for a while, then trickling a head: 408 counted from the connection start', async () => {
    // Its own gateway, headersTimeout 1000 (sweep 250): silent 850 ms, then a trickle. Counted from
    // the first byte instead (what handing a partial head to node:http gave), it would close
    // after about 1850 ms.
    const own = await startGateway({ limits: { ...LIMITS, headersTimeout: 1000, requestTimeout: 2000 }, sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    const c = await Client.open(own.port);
    const t0 = c.conn.openedAt;
    let trickle: NodeJS.Timeout | undefined;
    try {
      await sleep(850);
      c.write('GET /late HTTP/1.1\r\n');
      trickle = setInterval(() => {
        if (!c.conn.closed) c.write('X-A: b\r\n');
      }, 50);
      const r = await c.next('GET', 3000);
      assert.equal(r.status, 408);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
      await c.waitClosed(1000);
    } finally {
      clearInterval(trickle);
      await own.close(0);
    }
    const ms = c.conn.closedAfter(t0);
    assert.ok(ms >= 1000 - 50, `closed after ${ms} ms, before headersTimeout`);
    assert.ok(ms <= 1000 + 250 + SLACK, `closed after ${ms} ms`);
    assert.equal(got.some((g) => g.url === '/late'), false);
  });

  it('a partial head on a kept-alive connection: 408 counted from its first byte', async () => {
    const c = await Client.open(gw.port);
    c.write(`GET /first HTTP/1.1\r\n${H}\r\n`);
    assert.equal((await c.next()).status, 200);
    await sleep(200);
    const t1 = performance.now();
    c.write('GET /second HTTP/1.1\r\nHost: x.a');
    const r = await c.next('GET', LIMITS.headersTimeout + TICK + 2000);
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_CLIENT_TIMEOUT');
    await c.waitClosed(1000);
    const ms = c.conn.closedAfter(t1);
    assert.ok(ms >= LIMITS.headersTimeout - 50, `closed after ${ms} ms, before headersTimeout`);
    assert.ok(ms <= LIMITS.headersTimeout + TICK + SLACK, `closed after ${ms} ms`);
    assert.equal(got.some((g) => g.url === '/second'), false);
  });

  it('an idle keep-alive connection after a fast request is closed after keepAliveTimeout (+ margin), without an answer', async () => {
    const fromFast = fastSeen.length;
    const c = await Client.open(gw.port);
    c.write(`GET /idle HTTP/1.1\r\n${H}\r\n`);
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'keep-alive');
    assert.equal(r.headers['keep-alive'], 'timeout=0');
    const t0 = performance.now();
    await c.waitClosed(LIMITS.keepAliveTimeout + KEEP_ALIVE_MARGIN + 2000);
    const ms = c.conn.closedAfter(t0);
    assert.ok(ms >= LIMITS.keepAliveTimeout - 50, `closed after ${ms} ms, before keepAliveTimeout`);
    assert.ok(ms <= LIMITS.keepAliveTimeout + KEEP_ALIVE_MARGIN + TICK + SLACK, `closed after ${ms} ms`);
    assert.equal(c.unread, '', 'no 408 or other bytes on an idle close');
    assert.deepEqual(fastOn(c, fromFast), ['GET /idle']);
  });

  it('a Content-Length body trickled past requestTimeout gets 408; the upstream request is aborted', async () => {
    const fromFast = fastSeen.length;
    const c = await Client.open(gw.port);
    const t0 = performance.now();
    c.write(`POST /trickle HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n`);
    await trickledTo408(c, 'POST', '/trickle', t0);
    assert.equal(got.find((g) => g.url === '/trickle')!.ended, false);
    assert.deepEqual(fastOn(c, fromFast), ['POST /trickle']);
  });

  it('on a connection that already served a fast request, requestTimeout counts from the second request', async () => {
    const fromFast = fastSeen.length;
    const c = await Client.open(gw.port);
    c.write(`GET /trickle2/1 HTTP/1.1\r\n${H}\r\n`);
    assert.equal((await c.next()).status, 200);
    // Well inside keepAliveTimeout + margin, so the connection is still there.
    await sleep(200);
    const t0 = performance.now();
    c.write(`PUT /trickle2/2 HTTP/1.1\r\n${H}Content-Length: 50\r\n\r\nab`);
    await trickledTo408(c, 'PUT', '/trickle2/2', t0);
    assert.deepEqual(fastOn(c, fromFast), ['GET /trickle2/1', 'PUT /trickle2/2']);
  });

  it('requestTimeout does not cut a request whose body is complete while the backend takes longer', async () => {
    const c = await Client.open(gw.port);
    const ms = LIMITS.requestTimeout + TICK + 150;
    c.write(`POST /delay?ms=${ms} HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`);
    const r = await c.next('POST', ms + 2000);
    assert.equal(r.status, 200);
    assert.equal(echoOf(r).body, 'abc');
    assert.equal(r.headers.connection, 'keep-alive');
    assert.equal(c.closed, false);
    c.destroy();
  });
});

// ---- graceful shutdown ---------------------------------------------------------------------------

describe('fast path graceful shutdown', () => {
  it('an in-flight response completes with Connection: close; idle connections are closed at once', async () => {
    const got: Got[] = [];
    const be = await startBackend(backendHandler(got));
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const fromFast = fastSeen.length;
      // Busy: a request the backend answers after 300 ms.
      const busy = await Client.open(gw.port);
      busy.write(`GET /slow HTTP/1.1\r\n${H}\r\n`);
      // Idle: served one fast request, kept alive.
      const idle = await Client.open(gw.port);
      idle.write(`GET /idle HTTP/1.1\r\n${H}\r\n`);
      const ir = await idle.next();
      assert.equal(ir.status, 200);
      assert.equal(ir.headers.connection, 'keep-alive');
      // Fresh: connected, nothing sent yet.
      const fresh = await Client.open(gw.port);
      await waitFor(() => got.some((g) => g.url === '/slow'), 2000, 'the backend to get /slow');

      const t0 = performance.now();
      const closing = gw.close(5000);
      await idle.waitClosed(1000);
      await fresh.waitClosed(1000);
      assert.ok(idle.conn.closedAfter(t0) < 200, `idle connection closed after ${idle.conn.closedAfter(t0)} ms`);
      assert.ok(fresh.conn.closedAfter(t0) < 200, `fresh connection closed after ${fresh.conn.closedAfter(t0)} ms`);
      assert.equal(idle.unread, '');
      assert.equal(fresh.unread, '', 'nothing written to a fresh connection closed at shutdown');

      const r = await busy.next();
      assert.equal(r.status, 200);
      assert.equal(echoOf(r).url, '/slow');
      assert.equal(r.headers.connection, 'close');
      assert.equal(r.headers['keep-alive'], undefined);
      await busy.waitClosed(1000);
      assert.equal(busy.unread, '');
      await closing;
      assert.ok(performance.now() - t0 < 2000, `close() took ${performance.now() - t0} ms`);

      // Nothing listens any more.
      const s = net.connect(gw.port, '127.0.0.1');
      const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNREFUSED');

      assert.deepEqual(fastOn(busy, fromFast), ['GET /slow']);
      assert.deepEqual(fastOn(idle, fromFast), ['GET /idle']);
      const e = gw.access.find((x) => x.path === '/slow');
      assert.equal(e?.status, 200);
    } finally {
      await gw.close(0);
      await be.close();
    }
  });

  it('a response streaming when the shutdown begins finishes whole, then its connection closes', async () => {
    // The head said keep-alive (it left before close()); the body must still arrive in full, and
    // the connection must close after it rather than linger until keepAliveTimeout.
    let finish: (() => void) | undefined;
    const be = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first,');
      finish = () => res.end('last');
    });
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }], limits: { keepAliveTimeout: 5000 } });
    try {
      const c = await Client.open(gw.port);
      c.write(`GET /streaming HTTP/1.1\r\n${H}\r\n`);
      await waitFor(() => finish !== undefined && c.conn.text.includes('first,'), 2000, 'the head and first chunk');
      assert.match(c.conn.text, /connection: keep-alive/i);
      const t0 = performance.now();
      const closing = gw.close(5000);
      await sleep(50);
      finish!();
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(r.body, 'first,last');
      await c.waitClosed(1000);
      assert.ok(c.conn.closedAfter(t0) < 1000, `closed after ${c.conn.closedAfter(t0)} ms`);
      await closing;
      assert.ok(performance.now() - t0 < 1500, `close() took ${performance.now() - t0} ms`);
    } finally {
      await gw.close(0);
      await be.close();
    }
  });

  it('a request pipelined behind the in-flight one at shutdown is not started', async () => {
    const got: Got[] = [];
    const be = await startBackend(backendHandler(got));
    const gw = await startGateway({ sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url }] });
    try {
      const c = await Client.open(gw.port);
      c.write(`GET /slow HTTP/1.1\r\n${H}\r\n`);
      await waitFor(() => got.some((g) => g.url === '/slow'), 2000, 'the backend to get /slow');
      c.write(`GET /behind HTTP/1.1\r\n${H}\r\n`);
      await sleep(20);
      const closing = gw.close(5000);
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, 'close');
      await c.waitClosed(1000);
      assert.equal(c.unread, '');
      await closing;
      assert.deepEqual(got.map((g) => g.url), ['/slow']);
    } finally {
      await gw.close(0);
      await be.close();
    }
  });
});

describe('fast path over TLS (HTTP/1.1 on the HTTPS listener)', () => {
  it('serves plain requests itself, hands the rest to node:https on the same connection, adds HSTS', async () => {
    const tmp = await tempDir('h1-front-tls');
    const ca = await issue(tmp.dir, { name: 'ca', commonName: 'h1-front test CA', ca: {}, days: 1 });
    const cert = await issue(tmp.dir, { name: 'a', names: ['x.a.com'], issuer: ca });
    const got: Got[] = [];
    const be = await startBackend(backendHandler(got));
    const gw = await startGateway({
      https: { listen: ['127.0.0.1:0'] },
      sites: [{ name: 'a', hosts: ['x.a.com'], upstream: be.url, tls: { cert: cert.certFile, key: cert.keyFile }, hsts: { maxAge: '1d' } }],
    });
    const from = fastSeen.length;
    const port = gw.gateway.httpsAddresses()[0]!.port;
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'x.a.com', ca: ca.certPem, ALPNProtocols: ['http/1.1'] });
    try {
      await once(s, 'secureConnect');
      assert.equal(s.alpnProtocol, 'http/1.1');
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      const responses = (n: number) => waitFor(() => (text.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0) >= n && /\r\n0\r\n\r\n$|[^\r\n]$/.test(text), 3000, `${n} responses`);
      // Fast, then chunked (handed off), then fast-eligible again (node:https has the connection now).
      s.write(`GET /tls/1 HTTP/1.1\r\n${H}\r\n`);
      await responses(1);
      s.write(`POST /tls/2 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
      await responses(2);
      s.write(`GET /tls/3 HTTP/1.1\r\n${H}\r\n`);
      await responses(3);
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, ['200', '200', '200']);
      assert.equal(text.match(/strict-transport-security: max-age=86400/gi)?.length, 3, 'HSTS on every response');
      assert.deepEqual(got.map((g) => `${g.method} ${g.url} ${g.body}`), ['GET /tls/1 ', 'POST /tls/2 abc', 'GET /tls/3 ']);
      assert.ok(got.every((g) => g.headers['x-forwarded-proto'] === 'https'), 'X-Forwarded-Proto: https');
      const offered = fastSeen.slice(from).map((f) => `${f.method} ${f.url}${f.taken ? '' : ' (handed off)'}`);
      // The chunked head is outside the front's subset: it goes to node:https unoffered, and the
      // connection with it, so /tls/3 is node's too.
      assert.deepEqual(offered, ['GET /tls/1']);
    } finally {
      s.destroy();
      await gw.close(0);
      await be.close();
      await tmp.remove();
    }
  });
});

describe('fast path on relay routes', () => {
  it('serves the query, path and JSON-body forms itself; a refused path is answered on the fast path too', async () => {
    const got: Got[] = [];
    const be = await startBackend(backendHandler(got));
    const gw = await startGateway({ sites: [{ name: 'r', hosts: ['r.test'], routes: [{ path: '/relay', relay: { upstream: be.url } }] }] });
    try {
      const c = await Client.open(gw.port);
      const from = fastSeen.length;
      const R = 'Host: r.test\r\n';
      c.write(`GET /relay?method=api/q&x=1 HTTP/1.1\r\n${R}\r\n`);
      assert.equal((await c.next()).status, 200);
      c.write(`GET /relay/api/p?y=2 HTTP/1.1\r\n${R}\r\n`);
      assert.equal((await c.next()).status, 200);
      const json = '{"method":"api/j","a":1}';
      c.write(`POST /relay HTTP/1.1\r\n${R}Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
      assert.equal((await c.next()).status, 200);
      // Escape attempt: refused with 400 MPG_RELAY_BAD_PATH, nothing forwarded.
      c.write(`GET /relay?method=../../etc/passwd HTTP/1.1\r\n${R}Accept: application/json\r\n\r\n`);
      const bad = await c.next();
      assert.equal(bad.status, 400);
      assert.equal(bad.headers['x-mpgate-error'], 'MPG_RELAY_BAD_PATH');
      assert.deepEqual(got.map((g) => `${g.method} ${g.url} ${g.body.toString()}`), ['GET /api/q?x=1 ', 'GET /api/p?y=2 ', 'POST /api/j {"a":1}']);
      assert.deepEqual(fastOn(c, from), ['GET /relay?method=api/q&x=1', 'GET /relay/api/p?y=2', 'POST /relay', 'GET /relay?method=../../etc/passwd']);
    } finally {
      await gw.close(0);
      await be.close();
    }
  });
});
