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
import { closedPort, startBackend, startGateway, ROOT, type Backend, type TestGateway } from '../helpers.js';

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
  const configs: [string, () => ReturnType<typeof configFromObject>][] = [
    ['examples/mpgate.yaml', () => parseConfig(readFileSync(`${ROOT}examples/mpgate.yaml`, 'utf8'))],
    ['every expressible feature, relay and OCR', () => configFromObject(FEATURES)],
    ['defaultSite, one upstream', () => configFromObject({ defaultSite: 'a', sites: [{ name: 'a', hosts: ['a.test'], upstream: 'http://127.0.0.1:1' }] })],
    ['the seed\'s import (localhost upstreams)', () => {
      const seed = loadNginx(`${ROOT}test/fixtures/nginx/seed-users.conf`);
      return configFromObject(importNginx(seed.directives).config);
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

  before(async () => {
    [a, b, c, d] = (await Promise.all(['a', 'b', 'c', 'd'].map((n) => startBackend(undefined, n)))) as [Backend, Backend, Backend, Backend];
    const port = await closedPort();
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
      ],
    };
    const { text } = exportNginx(configFromObject(config));
    nginx = await startNginx(text, port);
    gateway = await startGateway(config);
  });

  after(async () => {
    await nginx?.stop();
    await gateway?.close();
    await Promise.all([a, b, c, d].map((x) => x?.close()));
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

  it('balances /api/ over both upstreams with the prefix replaced', async () => {
    for (const port of [nginx.port, gateway.port]) {
      const seen = await Promise.all([1, 2, 3, 4].map(() => send(port, 'shop.test', '/api/items?q=1')));
      assert.deepEqual(new Set(seen.map((s) => s.name)), new Set(['b', 'c']));
      assert.deepEqual(new Set(seen.map((s) => s.url)), new Set(['/v2/items?q=1']));
    }
  });
});
