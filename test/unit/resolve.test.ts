import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { applyUpstreamHost } from '../../src/core/headers.js';
import { UpstreamPools } from '../../src/proxy/upstream-pool.js';
import { resolve, type Resolved, type ResolveInput } from '../../src/server/resolve.js';
import { RoutingTable } from '../../src/server/routing-table.js';

const pools = new UpstreamPools();
after(async () => {
  await pools.destroy();
});

function table(input: ConfigInput): RoutingTable {
  return new RoutingTable(configFromObject(input, 'test'), pools);
}

function req(url: string, host: string | undefined, extra: string[] = [], over: Partial<ResolveInput> = {}): ResolveInput {
  return { url, rawHeaders: [...(host === undefined ? [] : ['Host', host]), ...extra], peer: '203.0.113.7', proto: 'http', ...over };
}

function ok(r: ReturnType<typeof resolve>): Resolved {
  if ('error' in r) assert.fail(`expected a route, got ${r.error.code}: ${r.error.message}`);
  if ('redirect' in r) assert.fail(`expected a route, got a redirect for site ${r.redirect.name}`);
  return r;
}

function errorCode(r: ReturnType<typeof resolve>): string {
  assert.ok('error' in r, 'expected an error, got a route');
  return r.error.code;
}

/** Every value of `lowerName` in a flat list. */
function all(list: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === lowerName) out.push(list[i + 1]!);
  return out;
}

const T = table({
  limits: { maxHeaderCount: 5 },
  sites: [
    {
      name: 'shop',
      hosts: ['shop.test', '*.shop.test'],
      routes: [
        { path: '/', upstream: 'http://127.0.0.1:8001' },
        { path: '/public', upstream: 'http://127.0.0.1:8002' },
        { path: '/admin', upstream: 'http://127.0.0.1:8003' },
        { path: '/api/', upstream: 'http://127.0.0.1:8004/base/', stripPrefix: true },
        { path: '/exact', upstream: 'http://127.0.0.1:8004', stripPrefix: true },
        { path: '/internal/', upstream: ['http://127.0.0.1:8005', 'http://10.0.0.5:9000'], preserveHost: false, setHeaders: { 'X-Env': 'prod', 'X-Forwarded-Proto': 'https' } },
      ],
    },
    { name: 'only-api', hosts: ['api.test'], routes: [{ path: '/v1/', upstream: 'http://127.0.0.1:8006' }] },
  ],
});

describe('resolve: refusals', () => {
  it('answers an unknown host with MPG_NO_SITE', () => {
    const r = resolve(T, req('/', 'nobody.test'));
    assert.equal(errorCode(r), 'MPG_NO_SITE');
    assert.ok('error' in r && r.error.status === 404);
    assert.equal(errorCode(resolve(T, req('/', undefined))), 'MPG_NO_SITE');
    assert.equal(errorCode(resolve(T, req('/', 'shop.test.evil.test'))), 'MPG_NO_SITE');
  });

  it('uses the defaultSite for unknown hosts when there is one', () => {
    const withDefault = table({ defaultSite: 'fallback', sites: [
      { name: 'fallback', hosts: ['f.test'], upstream: 'http://127.0.0.1:8010' },
      { hosts: ['g.test'], upstream: 'http://127.0.0.1:8011' },
    ] });
    assert.equal(ok(resolve(withDefault, req('/', 'nobody.test'))).route.site.name, 'fallback');
    assert.equal(ok(resolve(withDefault, req('/', 'g.test'))).route.site.name, 'g.test');
  });

  it('refuses two Host headers with MPG_DUPLICATE_HOST, even when they agree', () => {
    const r = resolve(T, req('/', 'shop.test', ['Host', 'other.test']));
    assert.equal(errorCode(r), 'MPG_DUPLICATE_HOST');
    assert.ok('error' in r && r.error.status === 400);
    assert.equal(errorCode(resolve(T, req('/', 'shop.test', ['host', 'shop.test']))), 'MPG_DUPLICATE_HOST');
  });

  it('refuses more than limits.maxHeaderCount fields with MPG_TOO_MANY_HEADERS', () => {
    const five = ['A', '1', 'B', '2', 'C', '3', 'D', '4']; // plus Host: 5 fields, the limit
    assert.equal(ok(resolve(T, req('/', 'shop.test', five))).route.path, '/');
    const r = resolve(T, req('/', 'shop.test', [...five, 'E', '5']));
    assert.equal(errorCode(r), 'MPG_TOO_MANY_HEADERS');
    assert.ok('error' in r && r.error.status === 431);
  });

  it('refuses an absolute-form or asterisk target with MPG_BAD_PATH', () => {
    for (const url of ['http://x/', 'http://shop.test/admin', '*', 'admin', '']) {
      const r = resolve(T, req(url, 'shop.test'));
      assert.equal(errorCode(r), 'MPG_BAD_PATH', url);
      assert.ok('error' in r && r.site?.name === 'shop', `${url}: the site is known`);
    }
  });

  it('refuses a path climbing above the root with MPG_BAD_PATH', () => {
    for (const url of ['/../x', '/..', '/a/../../x', '/%2e%2e/etc/passwd', '/./../x?q=1']) {
      assert.equal(errorCode(resolve(T, req(url, 'shop.test'))), 'MPG_BAD_PATH', url);
    }
  });

  it('answers a path no route covers with MPG_NO_ROUTE', () => {
    const r = resolve(T, req('/v2/x', 'api.test'));
    assert.equal(errorCode(r), 'MPG_NO_ROUTE');
    assert.ok('error' in r && r.site?.name === 'only-api');
  });

  it('still returns the rewritten head with an error (for the access log)', () => {
    const r = resolve(T, req('/', 'nobody.test'));
    assert.ok('error' in r);
    assert.equal(r.head.host, 'nobody.test');
    assert.equal(r.head.clientIp, '203.0.113.7');
  });
});

describe('resolve: routing', () => {
  it('routes by Host (exact and wildcard) and the longest path prefix', () => {
    assert.equal(ok(resolve(T, req('/', 'shop.test'))).route.path, '/');
    assert.equal(ok(resolve(T, req('/admin/users', 'shop.test'))).route.path, '/admin');
    assert.equal(ok(resolve(T, req('/public/logo.png', 'm.shop.test'))).route.path, '/public');
    assert.equal(ok(resolve(T, req('/api/items', 'SHOP.TEST:443'))).route.path, '/api/');
    assert.equal(ok(resolve(T, req('/v1/x', 'api.test'))).route.site.name, 'only-api');
  });

  it('routes "/public/../admin" to the /admin route, not /public, and sends the normalised path', () => {
    for (const url of ['/public/../admin', '/public/%2e%2e/admin', '/public/./../admin', '/public/x/../../admin']) {
      const r = ok(resolve(T, req(url, 'shop.test')));
      assert.equal(r.route.path, '/admin', url);
      assert.equal(r.path, '/admin', url);
      assert.equal(r.route.upstreams.items[0]!.origin, 'http://127.0.0.1:8003');
    }
    assert.equal(ok(resolve(T, req('/admin/../public/x?y=1', 'shop.test'))).path, '/public/x?y=1');
  });

  it('sends the target byte for byte when nothing had to be normalised', () => {
    for (const url of ['/a%2Fb/c?x=1&x=2&empty=&q=%E4%B8%AD#frag', '/?', '/path;matrix=1?a=b?c', '/%7Euser/', '//double//slash']) {
      assert.equal(ok(resolve(T, req(url, 'shop.test'))).path, url);
    }
  });

  it('keeps the query byte for byte when the path is normalised', () => {
    const r = ok(resolve(T, req('/x/./y?a=%2e%2e/..&b=c d', 'shop.test')));
    assert.equal(r.path, '/x/y?a=%2e%2e/..&b=c d');
  });

  it('strips the route prefix when asked, keeping the query', () => {
    assert.equal(ok(resolve(T, req('/api/items?id=7&q=%20', 'shop.test'))).path, '/items?id=7&q=%20');
    assert.equal(ok(resolve(T, req('/api/', 'shop.test'))).path, '/');
    assert.equal(ok(resolve(T, req('/api/?x', 'shop.test'))).path, '/?x');
    assert.equal(ok(resolve(T, req('/api/a/../b', 'shop.test'))).path, '/b');
    assert.equal(ok(resolve(T, req('/exact', 'shop.test'))).path, '/');
    assert.equal(ok(resolve(T, req('/exact/x?y', 'shop.test'))).path, '/x?y');
  });

  it('does not strip when stripPrefix is off', () => {
    assert.equal(ok(resolve(T, req('/public/a?b', 'shop.test'))).path, '/public/a?b');
  });

  it('keeps the client Host by default', () => {
    const r = ok(resolve(T, req('/', 'Shop.Test')));
    assert.deepEqual(all(r.head.headers, 'host'), ['Shop.Test']);
  });

  it('with preserveHost false, leaves a placeholder that applyUpstreamHost fills', () => {
    const r = ok(resolve(T, req('/internal/x', 'shop.test')));
    assert.equal(r.route.preserveHost, false);
    assert.deepEqual(all(r.head.headers, 'host'), ['']);
    const upstream = r.route.upstreams.items[1]!;
    assert.equal(upstream.authority, '10.0.0.5:9000');
    applyUpstreamHost(r.head.headers, upstream.authority);
    assert.deepEqual(all(r.head.headers, 'host'), ['10.0.0.5:9000']);
    assert.deepEqual(all(r.head.headers, 'x-forwarded-host'), ['shop.test']);
  });

  it('applies setHeaders, replacing a field of the same name', () => {
    const r = ok(resolve(T, req('/internal/x', 'shop.test', ['x-env', 'client', 'Accept', '*/*'])));
    assert.deepEqual(all(r.head.headers, 'x-env'), ['prod']);
    assert.deepEqual(all(r.head.headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(all(r.head.headers, 'accept'), ['*/*']);
    // Other routes do not get them.
    const plain = ok(resolve(T, req('/', 'shop.test', ['x-env', 'client'])));
    assert.deepEqual(all(plain.head.headers, 'x-env'), ['client']);
    assert.deepEqual(all(plain.head.headers, 'x-forwarded-proto'), ['http']);
  });

  it('passes peer, proto and upgrade through to the header rewrite', () => {
    const r = ok(resolve(T, req('/', 'shop.test', ['X-Forwarded-For', '1.1.1.1'], { peer: '198.51.100.4', proto: 'https', upgrade: true })));
    assert.equal(r.head.clientIp, '198.51.100.4');
    assert.deepEqual(all(r.head.headers, 'x-forwarded-for'), ['198.51.100.4']);
    assert.deepEqual(all(r.head.headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(all(r.head.headers, 'upgrade'), ['websocket']);
  });

  it('trusts forwarding fields only from trustedProxies', () => {
    const trusting = table({ trustedProxies: ['10.0.0.0/8'], sites: [{ hosts: ['t.test'], upstream: 'http://127.0.0.1:8012' }] });
    const r = ok(resolve(trusting, req('/', 't.test', ['X-Forwarded-For', '198.51.100.9'], { peer: '10.1.2.3' })));
    assert.equal(r.head.clientIp, '198.51.100.9');
    const untrusted = ok(resolve(trusting, req('/', 't.test', ['X-Forwarded-For', '198.51.100.9'], { peer: '11.1.2.3' })));
    assert.equal(untrusted.head.clientIp, '11.1.2.3');
  });

  it('compiles upstream base paths without the trailing slash', () => {
    const r = ok(resolve(T, req('/api/x', 'shop.test')));
    const u = r.route.upstreams.items[0]!;
    assert.equal(u.origin, 'http://127.0.0.1:8004');
    assert.equal(u.basePath, '/base');
    assert.equal(u.authority, '127.0.0.1:8004');
  });
});
