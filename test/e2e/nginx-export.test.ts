/**
 * The export against Debian's real nginx: `nginx -t` accepts every generated config, and a running
 * nginx with the exported config sends the backends exactly what mpgate sends them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { configFromObject, parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { exportNginx } from '../../src/nginx/export.js';
import { importNginx } from '../../src/nginx/import.js';
import { loadNginx } from '../../src/nginx/load.js';
import { nginxCheck, startNginx, type RunningNginx } from '../fixtures/nginx/nginx.js';
import { closedPort, curl, startBackend, startGateway, ROOT, type Backend, type TestGateway } from '../helpers.js';
import { issue, tempDir, type Issued } from '../support/tls-fixtures.js';

const FEATURES: ConfigInput = {
  listen: ['8080', '127.0.0.1:9090', '[::]:8181'],
  trustedProxies: ['10.0.0.0/8'],
  limits: { maxBodySize: '2MiB', headersTimeout: '20s' },
  upstream: { connectTimeout: '2s', maxFails: 2 },
  sites: [
    { name: 'shop', hosts: ['shop.test', '.shop.test', 'www.shop.*', '~^api\\d{2}\\.shop\\.test$'], maxBodySize: '25MiB', routes: [
      { path: '/', upstream: 'http://127.0.0.1:8001/app/' },
      { path: '/api/', upstream: ['http://127.0.0.1:8002/v2', 'http://127.0.0.1:8003/v2'], stripPrefix: true },
      { path: '/v1', upstream: 'https://127.0.0.1:8443/base', stripPrefix: true, setHeaders: { 'X-Price': '$5 "each"' } },
      { path: '/raw', upstream: 'http://127.0.0.1:8004', preserveHost: false },
      { path: '/relay', relay: { upstream: 'https://127.0.0.1:9443', phpCompat: true } },
      { path: '/wxocr', ocr: {} },
    ] },
    { hosts: ['only.test'], routes: [{ path: '/svc/', upstream: 'http://127.0.0.1:8005' }] },
  ],
};

describe('nginx -t accepts every exported config (Debian\'s nginx)', () => {
  // nginx reads certificate files at load (and `nginx -t`): real ones, made with openssl.
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let cert: Issued;
  let other: Issued;
  before(async () => {
    tmp = await tempDir('nginx-t');
    cert = await issue(tmp.dir, { name: 'site', names: ['y.a.com', 'www.a.com', 'x.a.com', 'a.test'] });
    other = await issue(tmp.dir, { name: 'default', names: ['default.test'] });
  });
  after(async () => {
    await tmp?.remove();
  });
  const files = () => ({ cert: cert.certFile, key: cert.keyFile });
  const configs: [string, () => ReturnType<typeof configFromObject>][] = [
    ['examples/mpgate.yaml (its certificate files made)', () => parseConfig(readFileSync(`${ROOT}examples/mpgate.yaml`, 'utf8')
      .replace('/etc/ssl/y.a.com/fullchain.pem', cert.certFile).replace('/etc/ssl/y.a.com/privkey.pem', cert.keyFile))],
    ['every expressible feature, relay and OCR', () => configFromObject(FEATURES)],
    ['defaultSite, one upstream', () => configFromObject({ defaultSite: 'a', sites: [{ name: 'a', hosts: ['a.test'], upstream: 'http://127.0.0.1:1' }] })],
    ['the seed\'s import (localhost upstreams)', () => {
      const seed = loadNginx(`${ROOT}test/fixtures/nginx/seed-users.conf`);
      return configFromObject(importNginx(seed.directives).config);
    }],
    ['HTTPS: TLS 1.3 with own suites, default certificate, port 8443, HSTS, a site on both, disabled', () => configFromObject({
      listen: ['80', '127.0.0.1:8080'],
      https: { listen: ['443', '[::]:8443'], minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384', defaultCert: { cert: other.certFile, key: other.keyFile } },
      sites: [
        { hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: files(), hsts: { maxAge: '1d', includeSubDomains: true, preload: true }, owner: 'alice' },
        { hosts: ['both.test'], upstream: 'http://127.0.0.1:2', tls: files(), redirectHttp: false, disabled: true },
        { hosts: ['auto.test'], upstream: 'http://127.0.0.1:3', tls: 'auto', hsts: true },
      ],
    })],
    ['HTTPS: unknownSni reject, no HTTP/2, a defaultSite with files', () => configFromObject({
      https: { unknownSni: 'reject', http2: false },
      defaultSite: 'a.test',
      sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: files() }, { hosts: ['p.test'], upstream: 'http://127.0.0.1:2' }],
    })],
    ['HTTPS: unknownSni reject with a plain defaultSite', () => configFromObject({
      https: { unknownSni: 'reject' },
      defaultSite: 'p.test',
      sites: [{ hosts: ['p.test'], upstream: 'http://127.0.0.1:2' }, { hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: files() }],
    })],
    ['the certbot-style seed\'s import (certificate paths made)', () => {
      const seed = loadNginx(`${ROOT}test/fixtures/nginx/seed-users-https.conf`);
      const input = importNginx(seed.directives).config;
      return configFromObject({ ...input, sites: input.sites!.map((x) => (x.tls ? { ...x, tls: files() } : x)) });
    }],
  ];
  for (const [name, make] of configs) {
    for (const mode of ['snippet', 'full'] as const) {
      it(`${name} (${mode})`, async () => {
        const { text } = exportNginx(make(), { full: mode === 'full' });
        const r = await nginxCheck(text, mode);
        assert.ok(r.ok, `nginx -t refused the ${mode}:\n${r.output}\n--- config ---\n${text}`);
        assert.match(r.output, /test is successful/);
      });
    }
  }

  it('and refuses a broken one (the check is real)', async () => {
    const r = await nginxCheck('server { listen 80 }\n', 'snippet');
    assert.equal(r.ok, false);
    assert.match(r.output, /unexpected "}"/);
  });
});

describe('nginx with the exported config routes like mpgate (live, side by side)', () => {
  let a: Backend;
  let b: Backend;
  let c: Backend;
  let d: Backend;
  let gateway: TestGateway;
  let nginx: RunningNginx;
  let config: ConfigInput;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: Issued;
  /** HTTPS ports of nginx and of mpgate. */
  let nginxTls: number;
  let mpgateTls: number;

  before(async () => {
    [a, b, c, d] = (await Promise.all(['a', 'b', 'c', 'd'].map((n) => startBackend(undefined, n)))) as [Backend, Backend, Backend, Backend];
    tmp = await tempDir('nginx-live');
    ca = await issue(tmp.dir, { name: 'ca', commonName: 'mpgate nginx test CA', ca: {}, days: 2 });
    const leaf = await issue(tmp.dir, { name: 'leaf', names: ['secure.test', 'both.test'], issuer: ca, days: 2 });
    const tls = { cert: leaf.certFile, key: leaf.keyFile };
    const port = await closedPort();
    nginxTls = await closedPort();
    config = {
      listen: [`127.0.0.1:${port}`],
      sites: [
        { name: 'shop', hosts: ['shop.test', '*.shop.test'], routes: [
          { path: '/', upstream: a.url },
          { path: '/api/', upstream: [`${b.url}/v2`, `${c.url}/v2`], stripPrefix: true },
          { path: '/v1', upstream: `${d.url}/base`, stripPrefix: true, setHeaders: { 'X-Env': 'prod', 'X-Price': '$5' } },
          { path: '/keep/', upstream: `${d.url}/pre` },
          { path: '/raw', upstream: d.url, preserveHost: false },
        ] },
        { hosts: ['only.test'], routes: [{ path: '/svc/', upstream: a.url }] },
        { hosts: ['secure.test'], upstream: a.url, tls, hsts: { maxAge: '1d', includeSubDomains: true } },
        { hosts: ['both.test'], routes: [{ path: '/', upstream: a.url }, { path: '/api/', upstream: `${b.url}/v2`, stripPrefix: true }], tls, redirectHttp: false },
      ],
    };
    const { text } = exportNginx(configFromObject({ ...config, https: { listen: [`127.0.0.1:${nginxTls}`] } }));
    nginx = await startNginx(text, port);
    gateway = await startGateway({ ...config, https: { listen: ['127.0.0.1:0'] } });
    mpgateTls = gateway.gateway.httpsAddresses()[0]!.port;
  });

  after(async () => {
    await nginx?.stop();
    await gateway?.close();
    await Promise.all([a, b, c, d].map((x) => x?.close()));
    await tmp?.remove();
  });

  interface Seen {
    status: number;
    name?: string;
    url?: string;
    headers?: Record<string, string | undefined>;
  }

  async function send(port: number, host: string, path: string): Promise<Seen> {
    const res = await request(`http://127.0.0.1:${port}${path}`, {
      headers: { host, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-real-ip': '6.6.6.6' },
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return { status: res.statusCode };
    const echo = JSON.parse(text) as { name: string; url: string; headers: Record<string, string> };
    const pick = ['host', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-env', 'x-price'];
    return { status: 200, name: echo.name, url: echo.url, headers: Object.fromEntries(pick.map((h) => [h, echo.headers[h]])) };
  }

  const cases: [string, string][] = [
    ['shop.test', '/'],
    ['shop.test', '/hello/world?x=1&y=%20'],
    ['SHOP.test:8080', '/case'],
    ['deep.a.shop.test', '/wild'],
    ['shop.test', '/api'],
    ['shop.test', '/apix'],
    ['shop.test', '/v1/x?q=1'],
    ['shop.test', '/v1'],
    ['shop.test', '/v1x'],
    ['shop.test', '/keep/a'],
    ['shop.test', '/keep'],
    ['shop.test', '/raw/z'],
    ['only.test', '/svc/1'],
    ['only.test', '/svc'],
    ['only.test', '/other'],
    ['nobody.test', '/'],
  ];

  for (const [host, path] of cases) {
    it(`${host} ${path}`, async () => {
      const viaNginx = await send(nginx.port, host, path);
      const viaMpgate = await send(gateway.port, host, path);
      assert.deepEqual(viaNginx, viaMpgate);
    });
  }

  it('spot checks: what the backends saw is what the config says', async () => {
    assert.deepEqual(await send(nginx.port, 'shop.test', '/v1/x?q=1'), {
      status: 200, name: 'd', url: '/base/x?q=1',
      headers: { 'host': 'shop.test', 'x-real-ip': '127.0.0.1', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'shop.test', 'x-env': 'prod', 'x-price': '$5' },
    });
    assert.equal((await send(nginx.port, 'shop.test', '/raw/z')).headers!.host, `127.0.0.1:${d.port}`);
    assert.equal((await send(nginx.port, 'shop.test', '/api')).url, '/api', 'no redirect to /api/');
    assert.equal((await send(nginx.port, 'nobody.test', '/')).status, 404);
  });

  /** A request over HTTPS with curl (--cacert: the certificate is checked), and what the backend saw. */
  async function sendTls(port: number, host: string, path: string, extra: string[] = []): Promise<Seen & { hsts?: string }> {
    const r = await curl(['--cacert', ca.certFile, '--resolve', `${host}:${port}:127.0.0.1`, '-H', `Host: ${host}`,
      '-H', 'X-Forwarded-For: 6.6.6.6', '-H', 'X-Forwarded-Proto: http', '-H', 'X-Real-IP: 6.6.6.6', ...extra, `https://${host}:${port}${path}`]);
    if (r.status !== 200) return { status: r.status };
    const echo = JSON.parse(r.body) as { name: string; url: string; headers: Record<string, string> };
    const pick = ['host', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'];
    return { status: 200, name: echo.name, url: echo.url, headers: Object.fromEntries(pick.map((h) => [h, echo.headers[h]])), hsts: r.headers['strict-transport-security'] };
  }

  const tlsCases: [string, string, string][] = [
    ['secure.test', '/hello/world?x=1', '--http1.1'],
    ['secure.test', '/h2?y=2', '--http2'],
    ['both.test', '/api/items?q=1', '--http2'],
    ['both.test', '/api', '--http1.1'],
    ['both.test', '/page', '--http1.1'],
  ];
  for (const [host, path, version] of tlsCases) {
    it(`https://${host}${path} (${version.slice(2)}, curl --cacert)`, async () => {
      const viaNginx = await sendTls(nginxTls, host, path, [version]);
      const viaMpgate = await sendTls(mpgateTls, host, path, [version]);
      assert.equal(viaNginx.status, 200);
      assert.deepEqual(viaNginx, viaMpgate);
    });
  }

  it('HTTPS spot checks: HSTS, X-Forwarded-Proto https, HTTP/2 by ALPN, unknown names 404', async () => {
    const seen = await sendTls(nginxTls, 'secure.test', '/x', ['--http2']);
    assert.equal(seen.hsts, 'max-age=86400; includeSubDomains');
    assert.equal(seen.headers!['x-forwarded-proto'], 'https');
    assert.equal(seen.headers!.host, 'secure.test');
    assert.equal((await sendTls(nginxTls, 'both.test', '/x')).hsts, undefined);
    for (const port of [nginxTls, mpgateTls]) {
      const v = await curl(['--cacert', ca.certFile, '--resolve', `secure.test:${port}:127.0.0.1`, '--http2', '-o', '/dev/null', '-w', 'HTTP/1.1 200 OK\r\nX-Version: %{http_version}\r\n\r\n', `https://secure.test:${port}/`]);
      assert.equal(v.headers['x-version'], '2', `port ${port}`);
      // An unknown name gets the default certificate (the first site's) and a 404.
      const unknown = await curl(['-k', '--resolve', `nobody.test:${port}:127.0.0.1`, `https://nobody.test:${port}/`]);
      assert.equal(unknown.status, 404, `port ${port}`);
    }
  });

  it('plain HTTP to an HTTPS site: the same redirects (301 GET, 308 POST), or served for redirectHttp: false', async () => {
    for (const [port, tlsPort] of [[nginx.port, nginxTls], [gateway.port, mpgateTls]] as const) {
      const get = await curl(['-H', 'Host: secure.test', `http://127.0.0.1:${port}/p/q?x=1`]);
      assert.equal(get.status, 301, `port ${port}`);
      assert.equal(get.headers.location, `https://secure.test:${tlsPort}/p/q?x=1`);
      const head = await curl(['-I', '-H', 'Host: secure.test', `http://127.0.0.1:${port}/h`]);
      assert.equal(head.status, 301);
      const post = await curl(['-X', 'POST', '--data-binary', 'x=1', '-H', 'Host: secure.test', `http://127.0.0.1:${port}/form`]);
      assert.equal(post.status, 308, `port ${port}`);
      assert.equal(post.headers.location, `https://secure.test:${tlsPort}/form`);
      assert.equal(post.headers['strict-transport-security'], undefined);
    }
    assert.deepEqual(await send(nginx.port, 'both.test', '/api/items'), await send(gateway.port, 'both.test', '/api/items'));
    assert.equal((await send(nginx.port, 'both.test', '/api/items')).url, '/v2/items');
  });

  it('balances /api/ over both upstreams with the prefix replaced', async () => {
    for (const port of [nginx.port, gateway.port]) {
      const seen = await Promise.all([1, 2, 3, 4].map(() => send(port, 'shop.test', '/api/items?q=1')));
      assert.deepEqual(new Set(seen.map((s) => s.name)), new Set(['b', 'c']));
      assert.deepEqual(new Set(seen.map((s) => s.url)), new Set(['/v2/items?q=1']));
    }
  });
});
