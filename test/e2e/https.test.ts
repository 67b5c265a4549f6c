/**
 * The HTTPS side end to end: real certificates (a private CA made with openssl), the gateway's own
 * listeners on 127.0.0.1, and real clients — curl --http1.1/--http2 with --cacert, node's TLS and
 * HTTP/2 clients, `ws` over wss, openssl s_client for the protocol versions.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { configFromObject } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ConfigError } from '../../src/core/errors.js';
import { Gateway } from '../../src/server/gateway.js';
import { RoutingTable } from '../../src/server/routing-table.js';
import { curl, rawRequest, runCli, startBackend, startGateway, waitFor, type Backend, type TestGateway } from '../helpers.js';
import { issue, issueWithDates, tempDir, type Issued } from '../support/tls-fixtures.js';

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  bodyLength: number;
  body: string;
}

/** What a TLS client is served for `servername` (undefined name: no SNI). */
function handshake(port: number, servername: string | undefined, opts: tls.ConnectionOptions = {}): Promise<{ ok: true; cert: X509Certificate; alpn: string | false | null; version: string | null } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), rejectUnauthorized: false, ...opts }, () => {
      const peer = s.getPeerX509Certificate();
      resolve({ ok: true, cert: peer!, alpn: s.alpnProtocol, version: s.getProtocol() });
      s.end();
    });
    s.on('error', (err) => resolve({ ok: false, error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

describe('HTTPS listener: SNI, ALPN (h2 + http/1.1), wss, redirects, HSTS', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: Issued;
  let certA: Issued;
  let certB: Issued;
  let backend: Backend;
  let wsBackend: { port: number; close(): Promise<void> };
  let gw: TestGateway;
  let httpsPort: number;

  const sites = (): ConfigInput['sites'] => [
    { hosts: ['a.test'], upstream: backend.url, tls: { cert: certA.certFile, key: certA.keyFile }, hsts: { maxAge: '1d', includeSubDomains: true } },
    { hosts: ['b.test'], routes: [{ path: '/', upstream: backend.url }, { path: '/ws', upstream: `http://127.0.0.1:${wsBackend.port}` }], tls: { cert: certB.certFile, key: certB.keyFile } },
    { hosts: ['open.test'], upstream: backend.url, tls: { cert: certB.certFile, key: certB.keyFile }, redirectHttp: false, maxBodySize: '1KiB' },
    { hosts: ['plain.test'], upstream: backend.url },
  ];

  const get = (host: string, path: string, extra: string[] = []) =>
    curl(['--cacert', ca.certFile, '--resolve', `${host}:${httpsPort}:127.0.0.1`, `https://${host}:${httpsPort}${path}`, ...extra]);

  before(async () => {
    tmp = await tempDir('https');
    ca = await issue(tmp.dir, { name: 'ca', commonName: 'mpgate test CA', ca: {}, days: 30 });
    certA = await issue(tmp.dir, { name: 'a', names: ['a.test'], issuer: ca });
    certB = await issue(tmp.dir, { name: 'b', names: ['b.test', 'open.test'], issuer: ca });
    backend = await startBackend();
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`${req.headers['x-forwarded-proto']}:${String(m)}`)));
    wsBackend = { port: (wss.address() as { port: number }).port, close: () => new Promise((r) => wss.close(() => r())) };
    gw = await startGateway({ https: { listen: ['127.0.0.1:0'] }, sites: sites() });
    httpsPort = gw.gateway.httpsAddresses()[0]!.port;
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
    await wsBackend?.close();
    await tmp?.remove();
  });

  it('curl --http1.1 with --cacert: proxied, Host kept, X-Forwarded-Proto https', async () => {
    const r = await get('a.test', '/hello?x=1', ['--http1.1']);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as Echo;
    assert.equal(echo.url, '/hello?x=1');
    assert.equal(echo.headers.host, `a.test:${httpsPort}`);
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
  });

  it('curl --http2: an HTTP/1.1 upstream gets Host from :authority, no pseudo or connection fields, cookies joined', async () => {
    const r = await get('a.test', '/h2?y=2', ['--http2', '-H', 'Cookie: a=1', '-H', 'Cookie: b=2', '-X', 'POST', '--data-binary', 'payload']);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as Echo;
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/h2?y=2');
    assert.equal(echo.headers.host, `a.test:${httpsPort}`);
    assert.equal(echo.headers.cookie, 'a=1; b=2');
    assert.equal(echo.body, 'payload');
    assert.ok(!echo.rawHeaders.some((h) => h.startsWith(':')), 'no pseudo-header reaches the upstream');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
  });

  it('HTTP/2 through node\'s client: the ALPN pick is h2, large bodies stream both ways', async () => {
    const client = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca: ca.certPem, servername: 'a.test' });
    try {
      const body = Buffer.alloc(3 * 1024 * 1024, 7);
      const req = client.request({ ':method': 'PUT', ':path': '/upload', ':authority': 'a.test', 'content-type': 'application/octet-stream' });
      req.end(body);
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      assert.equal(headers[':status'], 200);
      assert.equal(headers['connection'], undefined);
      const echo = JSON.parse(Buffer.concat(chunks).toString()) as Echo;
      assert.equal(echo.method, 'PUT');
      assert.equal(echo.bodyLength, body.length);
    } finally {
      client.close();
    }
  });

  it('SNI picks each site\'s certificate; an unknown name gets the default one; no ALPN is HTTP/1.1', async () => {
    const a = await handshake(httpsPort, 'a.test', { ALPNProtocols: ['h2', 'http/1.1'] });
    const b = await handshake(httpsPort, 'b.test', { ALPNProtocols: ['http/1.1'] });
    const unknown = await handshake(httpsPort, 'nobody.test');
    assert.ok(a.ok && b.ok && unknown.ok);
    assert.equal(a.cert.subjectAltName, 'DNS:a.test');
    assert.equal(a.alpn, 'h2');
    assert.equal(b.cert.subjectAltName, 'DNS:b.test, DNS:open.test');
    assert.equal(b.alpn, 'http/1.1');
    assert.equal(unknown.cert.fingerprint256, certA.x509.fingerprint256, 'the first site\'s certificate is the default');
    const noSni = await handshake(httpsPort, undefined);
    assert.ok(noSni.ok);
    assert.equal(noSni.alpn, false);
  });

  it('TLS 1.2 and 1.3 accepted, TLS 1.0 and 1.1 refused (openssl s_client)', async () => {
    const sclient = (flag: string) => new Promise<string>((resolve) => {
      const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'a.test', flag], { timeout: 10_000 }, (_err, stdout) => resolve(String(stdout)));
      child.stdin!.end(); // s_client exits once its stdin is closed
    });
    assert.match(await sclient('-tls1_2'), /New, TLSv1\.2, Cipher is ECDHE-/);
    assert.match(await sclient('-tls1_3'), /New, TLSv1\.3, Cipher is TLS_AES_/);
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake(httpsPort, 'a.test', { minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' });
      assert.equal(r.ok, false, `${version} must be refused`);
    }
  });

  it('wss:// through the gateway (ws client, CA given), the upstream told https', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${httpsPort}/ws`, { ca: ca.certPem, servername: 'b.test', headers: { Host: `b.test:${httpsPort}` } } as unknown as ConstructorParameters<typeof WebSocket>[1]);
    await once(ws, 'open');
    ws.send('hi');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    assert.equal(String(msg), 'https:hi');
    ws.close();
    await once(ws, 'close');
  });

  it('plain HTTP to a TLS site: 301 for GET, 308 for POST, to the HTTPS port; redirectHttp: false and non-TLS sites are served', async () => {
    const getR = await curl(['-H', 'Host: a.test', `${gw.url}/path?q=1`]);
    assert.equal(getR.status, 301);
    assert.equal(getR.headers.location, `https://a.test:${httpsPort}/path?q=1`);
    const postR = await curl(['-H', 'Host: a.test:80', '-X', 'POST', '--data-binary', 'x', `${gw.url}/form`]);
    assert.equal(postR.status, 308);
    assert.equal(postR.headers.location, `https://a.test:${httpsPort}/form`);
    assert.equal((await curl(['-H', 'Host: open.test', `${gw.url}/x`])).status, 200);
    assert.equal((await curl(['-H', 'Host: plain.test', `${gw.url}/x`])).status, 200);
    // Behind a trusted TLS terminator there is no loop: its X-Forwarded-Proto counts only when trusted.
    assert.equal((await curl(['-H', 'Host: a.test', '-H', 'X-Forwarded-Proto: https', `${gw.url}/x`])).status, 301);
  });

  it('HSTS only where configured and only over HTTPS', async () => {
    assert.equal((await get('a.test', '/', ['--http1.1'])).headers['strict-transport-security'], 'max-age=86400; includeSubDomains');
    assert.equal((await get('a.test', '/', ['--http2'])).headers['strict-transport-security'], 'max-age=86400; includeSubDomains');
    assert.equal((await get('b.test', '/')).headers['strict-transport-security'], undefined);
    assert.equal((await curl(['-H', 'Host: open.test', `${gw.url}/x`])).headers['strict-transport-security'], undefined);
  });

  it('gateway errors over HTTP/2 carry their code (no Connection field)', async () => {
    const big = join(tmp.dir, 'big.bin');
    await writeFile(big, Buffer.alloc(4096, 1));
    const r = await get('open.test', '/upload', ['--http2', '--data-binary', `@${big}`]);
    assert.equal(r.status, 413);
    assert.equal(r.headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
    assert.equal(r.headers.connection, undefined);
    const miss = await curl(['--cacert', ca.certFile, '--resolve', `nobody.test:${httpsPort}:127.0.0.1`, `https://nobody.test:${httpsPort}/`, '--http2', '-k']);
    assert.equal(miss.status, 404);
    assert.equal(miss.headers['x-mpgate-error'], 'MPG_NO_SITE');
  });

  it('a bug in the pipeline costs one HTTP/2 request: 500 MPG_INTERNAL, and the next is served', async () => {
    const matchRoute = RoutingTable.matchRoute;
    RoutingTable.matchRoute = (site, path) => {
      if (path === '/boom') throw new Error('planted bug');
      return matchRoute(site, path);
    };
    try {
      const r = await get('a.test', '/boom', ['--http2']);
      assert.equal(r.status, 500);
      assert.equal(r.headers['x-mpgate-error'], 'MPG_INTERNAL');
    } finally {
      RoutingTable.matchRoute = matchRoute;
    }
    assert.equal((await get('a.test', '/fine', ['--http2'])).status, 200);
  });

  it('an HTTP/2 CONNECT stream: 405 MPG_CONNECT_UNSUPPORTED and an access-log line; the session serves on', async () => {
    const client = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca: ca.certPem, servername: 'a.test' });
    try {
      const from = gw.access.length;
      const stream = client.request({ ':method': 'CONNECT', ':authority': 'a.test:443' });
      const [head] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(head[':status'], 405);
      assert.equal(head['x-mpgate-error'], 'MPG_CONNECT_UNSUPPORTED');
      stream.resume();
      await once(stream, 'close');
      assert.deepEqual(gw.access.slice(from).map((e) => [e.method, e.host, e.status, e.code]), [['CONNECT', 'a.test:443', 405, 'MPG_CONNECT_UNSUPPORTED']]);
      const ok = client.request({ ':path': '/after', ':authority': 'a.test' });
      const [okHead] = (await once(ok, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(okHead[':status'], 200);
      ok.resume();
      await once(ok, 'close');
    } finally {
      client.close();
    }
  });

  it('HTTP/2 limits answer like HTTP/1.1: oversize head 431, too many fields 431, a streamed body over the limit 413', async () => {
    const big = await get('a.test', '/', ['--http2', '-H', `X-Big: ${'a'.repeat(20 * 1024)}`]);
    assert.equal(big.status, 431);
    assert.equal(big.headers['x-mpgate-error'], 'MPG_HEADERS_TOO_LARGE');
    const many = await get('a.test', '/', ['--http2', ...Array.from({ length: 101 }, (_, i) => ['-H', `X-H${i}: v`]).flat()]);
    assert.equal(many.status, 431);
    assert.equal(many.headers['x-mpgate-error'], 'MPG_TOO_MANY_HEADERS');
    const client = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca: ca.certPem, servername: 'open.test' });
    try {
      // RFC 9113 §8.3.1: Host and :authority naming different sites is malformed, not routed by either.
      const mixed = client.request({ ':path': '/', ':authority': 'a.test', host: 'b.test' }, { endStream: true });
      const [mixedHead] = (await once(mixed, 'response')) as [http2.IncomingHttpHeaders];
      mixed.resume();
      assert.equal(mixedHead[':status'], 400);
      assert.equal(mixedHead['x-mpgate-error'], 'MPG_BAD_REQUEST');
      // No Content-Length: HTTP/2 frames the body itself, and it is counted as it streams.
      const req = client.request({ ':method': 'POST', ':path': '/upload', ':authority': 'open.test' });
      req.on('error', () => {});
      req.write(Buffer.alloc(800, 1));
      req.end(Buffer.alloc(800, 1));
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      req.resume();
      assert.equal(headers[':status'], 413);
      assert.equal(headers['x-mpgate-error'], 'MPG_BODY_TOO_LARGE');
    } finally {
      client.close();
    }
  });

  it('an HTTP/2 client resetting its stream mid-upload aborts the upstream request at once (499 in the log)', async () => {
    const slow = await startBackend((req, res) => {
      req.on('data', () => {});
      req.on('close', () => res.destroy());
    });
    const local = await startGateway({ https: { listen: ['127.0.0.1:0'] }, sites: [{ hosts: ['a.test'], upstream: slow.url, tls: { cert: certA.certFile, key: certA.keyFile } }] });
    try {
      const port = local.gateway.httpsAddresses()[0]!.port;
      const client = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.certPem, servername: 'a.test' });
      const req = client.request({ ':method': 'POST', ':path': '/up', ':authority': 'a.test' });
      req.on('error', () => {});
      req.write(Buffer.alloc(1024, 1));
      await waitFor(() => slow.seen.length === 1, 5000, 'the upload to reach the upstream');
      const upstreamClosed = once(slow.seen[0]!, 'close');
      req.close(http2.constants.NGHTTP2_CANCEL);
      await upstreamClosed;
      await waitFor(() => local.access.some((e) => e.status === 499 && e.code === 'MPG_CLIENT_GONE'), 5000, 'a 499 access entry');
      client.close();
    } finally {
      await local.close();
      await slow.close();
    }
  });

  it('certificate files re-read on change: a renewed cert is served without a restart; a broken rewrite keeps the old one', async () => {
    const renewed = await issue(tmp.dir, { name: 'a-renewed', names: ['a.test'], issuer: ca });
    // certbot style: write next to it, then rename over (the key changes too).
    await copyFile(renewed.keyFile, `${certA.keyFile}.new`);
    await copyFile(renewed.certFile, `${certA.certFile}.new`);
    await rename(`${certA.keyFile}.new`, certA.keyFile);
    await rename(`${certA.certFile}.new`, certA.certFile);
    await waitFor(async () => {
      const r = await handshake(httpsPort, 'a.test');
      return r.ok && r.cert.fingerprint256 === renewed.x509.fingerprint256;
    }, 5000, 'renewed certificate served');
    await writeFile(certA.certFile, 'not a certificate\n');
    await waitFor(() => gw.gateway.certificates().find((c) => c.site === 'a.test')?.error !== undefined, 5000, 'error recorded');
    const r = await handshake(httpsPort, 'a.test');
    assert.ok(r.ok);
    assert.equal(r.cert.fingerprint256, renewed.x509.fingerprint256, 'still the last good certificate');
    assert.match(gw.gateway.certificates().find((c) => c.site === 'a.test')!.error!, /no "BEGIN CERTIFICATE"/);
    await writeFile(certA.certFile, renewed.certPem);
    await waitFor(() => gw.gateway.certificates().find((c) => c.site === 'a.test')?.error === undefined, 5000, 'error cleared');
  });

  it('certificates() reports names, issuer and days left per site', () => {
    const status = gw.gateway.certificates();
    const b = status.find((c) => c.site === 'b.test')!;
    assert.equal(b.source, 'files');
    assert.deepEqual(b.names, ['b.test', 'open.test']);
    assert.match(b.issuer!, /mpgate test CA/);
    assert.ok(b.daysLeft! >= 88 && b.daysLeft! <= 90, String(b.daysLeft));
  });

  it('mpgate doctor passes against the gateway itself (chain via --ca, TLS, h2, wss)', async () => {
    const r = await runCli(['doctor', `https://b.test:${httpsPort}/`, '--resolve', 'b.test:127.0.0.1', '--ca', ca.certFile, '--ws', '/ws', '--json', '--timeout', '5000']);
    const report = JSON.parse(r.stdout) as { checks: { id: string; status: string; found: string }[] };
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    for (const id of ['tls12', 'legacy', 'chain', 'name', 'expiry', 'h2', 'ws']) assert.equal(status[id], 'pass', `${id}: ${JSON.stringify(report.checks.find((c) => c.id === id))}`);
    assert.equal(r.code, 0, r.stdout);
  });
});

describe('HTTPS configuration errors and options', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: Issued;
  let good: Issued;
  let other: Issued;
  let expired: Issued;
  let backend: Backend;

  before(async () => {
    tmp = await tempDir('https-bad');
    ca = await issue(tmp.dir, { name: 'ca', commonName: 'mpgate test CA', ca: {}, days: 30 });
    good = await issue(tmp.dir, { name: 'good', names: ['good.test'], issuer: ca });
    other = await issue(tmp.dir, { name: 'other', names: ['other.test'], issuer: ca });
    expired = await issueWithDates(tmp.dir, { name: 'expired', names: ['old.test'], issuer: ca, notBefore: '20200101000000Z', notAfter: '20200301000000Z' });
    backend = await startBackend();
  });
  after(async () => {
    await backend?.close();
    await tmp?.remove();
  });

  const start = (site: Record<string, unknown>, https: Record<string, unknown> = {}) =>
    Gateway.start(configFromObject({ listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'], ...https }, sites: [{ hosts: ['good.test'], upstream: backend.url, ...site }] } as ConfigInput), { log: pino({ level: 'silent' }) });

  const rejects = async (site: Record<string, unknown>, file: string, message: RegExp) => {
    await assert.rejects(start(site), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.problems[0]!.file, file);
      assert.match(err.problems[0]!.message, message);
      assert.equal(err.problems[0]!.key, 'sites[0].tls');
      return true;
    });
  };

  it('missing, unreadable or mismatched files are config errors naming the file (never a crash at the first handshake)', async () => {
    await rejects({ tls: { cert: join(tmp.dir, 'nope.pem'), key: good.keyFile } }, join(tmp.dir, 'nope.pem'), /cannot read the certificate file \(ENOENT\)/);
    await rejects({ tls: { cert: good.certFile, key: join(tmp.dir, 'nokey.pem') } }, join(tmp.dir, 'nokey.pem'), /cannot read the key file/);
    await rejects({ tls: { cert: good.keyFile, key: good.keyFile } }, good.keyFile, /no "BEGIN CERTIFICATE"/);
    await rejects({ tls: { cert: good.certFile, key: other.keyFile } }, other.keyFile, /the key does not belong to the certificate/);
    await rejects({ tls: { cert: good.certFile, key: good.certFile } }, good.certFile, /no readable private key/);
  });

  it('an expired certificate is served with a warning (other sites stay up), and doctor fails it with the date', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const cfg = configFromObject({ listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] }, sites: [
      { hosts: ['good.test'], upstream: backend.url, tls: { cert: good.certFile, key: good.keyFile } },
      { hosts: ['old.test'], upstream: backend.url, tls: { cert: expired.certFile, key: expired.keyFile } },
    ] } as ConfigInput);
    const gw = await Gateway.start(cfg, { log });
    try {
      assert.ok(lines.some((l) => l.includes('certificate expired') && l.includes('old.test')), lines.join(''));
      const port = gw.httpsAddresses()[0]!.port;
      const r = await handshake(port, 'old.test');
      assert.ok(r.ok && r.cert.fingerprint256 === expired.x509.fingerprint256);
      assert.ok(gw.certificates().find((c) => c.site === 'old.test')!.daysLeft! < 0);
      const d = await runCli(['doctor', `https://old.test:${port}/`, '--resolve', 'old.test:127.0.0.1', '--ca', ca.certFile, '--json', '--timeout', '5000']);
      assert.equal(d.code, 1);
      const expiry = (JSON.parse(d.stdout) as { checks: { id: string; status: string; found: string }[] }).checks.find((c) => c.id === 'expiry')!;
      assert.equal(expiry.status, 'fail');
      assert.match(expiry.found, /2020-03-01/);
    } finally {
      await gw.close(0);
    }
  });

  it('the CLI reports a bad certificate as a config error with the file, exit 1', async () => {
    const cfg = join(tmp.dir, 'bad.yaml');
    await writeFile(cfg, `listen: ["127.0.0.1:0"]\nhttps:\n  listen: ["127.0.0.1:0"]\nsites:\n  - hosts: [good.test]\n    upstream: ${backend.url}\n    tls:\n      cert: ${good.certFile}\n      key: ${other.keyFile}\n`);
    const goodYaml = join(tmp.dir, 'good.yaml');
    await writeFile(goodYaml, `https:\n  listen: ["127.0.0.1:0"]\nsites:\n  - hosts: [good.test]\n    upstream: ${backend.url}\n    tls: { cert: good.pem, key: good-key.pem }\n`);
    const list = await runCli(['cert', 'list', '--config', goodYaml]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /good\.pem/);
    assert.match(list.stdout, /good\.test/);
    const check = await runCli(['check', '--config', cfg]);
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.match(check.stderr + check.stdout, /other-key\.pem.*the key does not belong/);
    const serve = await runCli(['serve', '--config', cfg]);
    assert.equal(serve.code, 1);
    assert.match(serve.stderr, /other-key\.pem.*the key does not belong/);
  });

  it('a reload with a bad certificate is refused and the running one kept', async () => {
    const gw = await start({ tls: { cert: good.certFile, key: good.keyFile } });
    try {
      const bad = configFromObject({ listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] }, sites: [{ hosts: ['good.test'], upstream: backend.url, tls: { cert: good.certFile, key: other.keyFile } }] } as ConfigInput);
      assert.throws(() => gw.reload(bad), ConfigError);
      const r = await handshake(gw.httpsAddresses()[0]!.port, 'good.test');
      assert.ok(r.ok && r.cert.fingerprint256 === good.x509.fingerprint256);
    } finally {
      await gw.close(0);
    }
  });

  it('unknownSni: reject ends unknown names with a handshake alert; defaultCert answers them otherwise', async () => {
    const strict = await start({ tls: { cert: good.certFile, key: good.keyFile } }, { unknownSni: 'reject' });
    try {
      const port = strict.httpsAddresses()[0]!.port;
      assert.ok((await handshake(port, 'good.test')).ok);
      const r = await handshake(port, 'nobody.test');
      assert.equal(r.ok, false);
    } finally {
      await strict.close(0);
    }
    const withDefault = await start({ tls: { cert: good.certFile, key: good.keyFile } }, { defaultCert: { cert: other.certFile, key: other.keyFile } });
    try {
      const r = await handshake(withDefault.httpsAddresses()[0]!.port, 'nobody.test');
      assert.ok(r.ok && r.cert.fingerprint256 === other.x509.fingerprint256);
    } finally {
      await withDefault.close(0);
    }
  });

  it('minVersion TLSv1.3 refuses TLS 1.2; http2: false offers only http/1.1', async () => {
    const gw = await start({ tls: { cert: good.certFile, key: good.keyFile } }, { minVersion: 'TLSv1.3', http2: false });
    try {
      const port = gw.httpsAddresses()[0]!.port;
      assert.equal((await handshake(port, 'good.test', { maxVersion: 'TLSv1.2' })).ok, false);
      const r = await handshake(port, 'good.test', { ALPNProtocols: ['h2', 'http/1.1'] });
      assert.ok(r.ok);
      assert.equal(r.version, 'TLSv1.3');
      assert.equal(r.alpn, 'http/1.1');
    } finally {
      await gw.close(0);
    }
  });

  it('the redirect names the host normalised; a request only defaultSite routes, without a Host to name, is 400', async () => {
    const gw = await Gateway.start(configFromObject({ listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] }, defaultSite: 'good.test', sites: [{ hosts: ['good.test'], upstream: backend.url, tls: { cert: good.certFile, key: good.keyFile } }] } as ConfigInput), { log: pino({ level: 'silent' }) });
    try {
      const port = gw.addresses()[0]!.port;
      const named = await rawRequest(port, 'GET /x HTTP/1.1\r\nHost: Good.Test.:80\r\nConnection: close\r\n\r\n');
      assert.equal(named.status, 301);
      assert.equal(named.headers.location, `https://good.test:${gw.httpsAddresses()[0]!.port}/x`);
      const unnamed = await rawRequest(port, 'GET /x HTTP/1.0\r\n\r\n');
      assert.equal(unnamed.status, 400);
      assert.equal(unnamed.headers['x-mpgate-error'], 'MPG_BAD_REQUEST');
    } finally {
      await gw.close(0);
    }
  });

  it('a config cannot lower the TLS floor below 1.2', () => {
    assert.throws(() => configFromObject({ https: { minVersion: 'TLSv1.1' } } as unknown as ConfigInput), ConfigError);
  });

  it('no site with tls: no HTTPS listener', async () => {
    const gw = await startGateway({ https: { listen: ['127.0.0.1:0'] }, sites: [{ hosts: ['x.test'], upstream: backend.url }] });
    try {
      assert.deepEqual(gw.gateway.httpsAddresses(), []);
    } finally {
      await gw.close();
    }
  });
});
