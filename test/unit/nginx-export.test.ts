/**
 * mpgate → nginx: the shape of the generated config, and the round trip import(export(config)) ≈
 * config for everything nginx can express (with no findings at all for a snippet).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { configFromObject, parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { exportNginx, nginxSize, nginxTime } from '../../src/nginx/export.js';
import { formatFinding, importNginx } from '../../src/nginx/import.js';
import { loadNginx } from '../../src/nginx/load.js';
import { parseNginx, type NginxDirective } from '../../src/nginx/parse.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Everything the test configs exercise that nginx can express. */
const FEATURES: ConfigInput = {
  listen: ['8080', '127.0.0.1:9090', '[::]:8181'],
  trustedProxies: ['10.0.0.0/8', '192.0.2.7'],
  defaultSite: 'shop',
  limits: { maxBodySize: '2MiB', headersTimeout: '20s', keepAliveTimeout: '7s' },
  upstream: { connectTimeout: '2s', responseTimeout: '90s', bodyIdleTimeout: '90s', maxFails: 3, failTimeout: '30s' },
  sites: [
    { name: 'shop', hosts: ['shop.test', '.shop.test', 'www.shop.*', '~^api\\d{2}\\.shop\\.test$'], maxBodySize: '25MiB', routes: [
      { path: '/', upstream: 'http://127.0.0.1:8001/app/' },
      { path: '/api/', upstream: ['http://127.0.0.1:8002/v2', 'http://127.0.0.1:8003/v2'], stripPrefix: true },
      { path: '/v1', upstream: 'https://127.0.0.1:8443/base', stripPrefix: true, setHeaders: { 'X-Price': '$5 "each"', 'X-Forwarded-Proto': 'https' } },
      { path: '/raw', upstream: 'http://127.0.0.1:8004', preserveHost: false, setHeaders: { 'X-Env': 'prod' } },
    ] },
    { hosts: ['only.test'], routes: [{ path: '/svc/', upstream: 'http://127.0.0.1:8005' }] },
    { hosts: ['plain.test'], upstream: 'http://localhost:8006' },
  ],
};

/** What the round trip must keep: routing, headers, limits, timeouts (names and unexpressed settings aside). */
function essence(c: Config) {
  const base = (u: string) => {
    const url = new URL(u);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  };
  return {
    listen: c.listen,
    trustedProxies: c.trustedProxies,
    defaultSite: c.defaultSite === undefined ? undefined : c.sites.findIndex((s) => (s.name ?? s.hosts[0]) === c.defaultSite),
    headersTimeout: c.limits.headersTimeout,
    keepAliveTimeout: c.limits.keepAliveTimeout,
    connectTimeout: c.upstream.connectTimeout,
    responseTimeout: c.upstream.responseTimeout,
    maxFails: c.upstream.maxFails,
    failTimeout: c.upstream.failTimeout,
    sites: c.sites.map((s) => ({
      hosts: s.hosts,
      maxBodySize: s.maxBodySize ?? c.limits.maxBodySize,
      routes: (s.routes ?? [{ path: '/', upstream: s.upstream!, stripPrefix: false, preserveHost: true, setHeaders: {} }]).map((r) => ({
        path: r.path,
        upstream: (Array.isArray(r.upstream) ? r.upstream : [r.upstream!]).map(base),
        // Stripping "/" changes nothing.
        stripPrefix: r.path === '/' ? false : r.stripPrefix,
        preserveHost: r.preserveHost,
        setHeaders: Object.fromEntries(Object.entries(r.setHeaders).map(([k, v]) => [k.toLowerCase(), v])),
      })),
    })),
  };
}

function roundTrip(cfg: Config, full = false) {
  const { text, notes } = exportNginx(cfg, { full, source: 'test' });
  const back = importNginx(parseNginx(text, 'exported.conf'), { source: 'exported.conf' });
  return { text, notes, back, again: configFromObject(back.config) };
}

function find(list: readonly NginxDirective[], name: string, ...args: string[]): NginxDirective[] {
  return list.filter((d) => d.name === name && args.every((a, i) => d.args[i] === a));
}

describe('nginx export: the generated config', () => {
  const cfg = configFromObject(FEATURES);
  const { text, notes } = exportNginx(cfg, { source: 'features.yaml' });
  const ast = parseNginx(text, 'x.conf');
  const servers = find(ast, 'server');

  it('writes one server per site (plus none for unknown hosts when defaultSite is set), listening everywhere mpgate does', () => {
    assert.equal(servers.length, 3);
    const listens = find(servers[0]!.block!, 'listen').map((d) => d.args.join(' '));
    assert.deepEqual(listens, ['8080 default_server', '[::]:8080 default_server', '127.0.0.1:9090 default_server', '[::]:8181 ipv6only=off default_server']);
    // nginx allows listen options (ipv6only) once per address.
    assert.deepEqual(find(servers[1]!.block!, 'listen').map((d) => d.args.join(' ')), ['8080', '[::]:8080', '127.0.0.1:9090', '[::]:8181']);
    assert.deepEqual(find(servers[0]!.block!, 'server_name')[0]!.args, ['shop.test', '.shop.test', 'www.shop.*', '~^api\\d{2}\\.shop\\.test$']);
    assert.match(text, /server_name shop\.test \.shop\.test www\.shop\.\* "~\^api\\\\d\{2\}\\\\\.shop\\\\\.test\$";/);
  });

  it('puts the body limit, timeouts, realip and the forwarding headers in every server', () => {
    const s = servers[0]!.block!;
    const one = (name: string) => find(s, name).map((d) => d.args.join(' '));
    assert.deepEqual(one('client_max_body_size'), ['25m']);
    assert.deepEqual(find(servers[2]!.block!, 'client_max_body_size')[0]!.args, ['2m']);
    assert.deepEqual(one('proxy_connect_timeout'), ['2s']);
    assert.deepEqual(one('proxy_read_timeout'), ['90s']);
    assert.deepEqual(one('client_header_timeout'), ['20s']);
    assert.deepEqual(one('keepalive_timeout'), ['7s']);
    assert.deepEqual(one('set_real_ip_from'), ['10.0.0.0/8', '192.0.2.7']);
    assert.deepEqual(one('proxy_set_header'), [
      'Host $http_host', 'X-Real-IP $remote_addr', 'X-Forwarded-For $mpgate_forwarded_for', 'X-Forwarded-Proto $mpgate_forwarded_proto',
      'X-Forwarded-Host $mpgate_forwarded_host', 'Upgrade $http_upgrade', 'Connection $mpgate_connection_upgrade',
    ]);
    assert.deepEqual(one('proxy_http_version'), ['1.1']);
    assert.deepEqual(find(ast, 'map', '$http_upgrade', '$mpgate_connection_upgrade')[0]!.block!.map((d) => [d.name, ...d.args]), [['default', 'upgrade'], ['', 'close']]);
    assert.equal(find(ast, 'geo', '$realip_remote_addr', '$mpgate_trusted_peer').length, 1);
  });

  it('without trustedProxies, replaces the client\'s forwarding headers outright', () => {
    const plain = exportNginx(configFromObject({ sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1' }] })).text;
    assert.match(plain, /proxy_set_header X-Forwarded-For \$remote_addr;\n\s+proxy_set_header X-Forwarded-Proto \$scheme;\n\s+proxy_set_header X-Forwarded-Host \$http_host;/);
    assert.doesNotMatch(plain, /realip|mpgate_forwarded/);
    // No defaultSite: a catch-all answers unknown hosts 404, as mpgate does.
    const catchAll = find(parseNginx(plain), 'server')[0]!.block!;
    assert.deepEqual(catchAll.map((d) => [d.name, ...d.args]), [['listen', '80', 'default_server'], ['server_name', '_'], ['return', '404']]);
  });

  it('writes each stripPrefix/base-path form so nginx sends what mpgate sends', () => {
    const loc = (path: string, server = servers[0]!) => find(server.block!, 'location', path)[0]!.block!;
    const line = (list: NginxDirective[], name: string) => list.filter((d) => d.name === name).map((d) => d.args.join(' '));
    assert.deepEqual(line(loc('/'), 'proxy_pass'), ['http://127.0.0.1:8001/app/']);
    assert.deepEqual(line(loc('/api/'), 'proxy_pass'), ['http://mpgate_shop_api/v2/']);
    assert.deepEqual(line(loc('/v1'), 'rewrite'), ['^/v1/?(.*)$ /base/$1 break']);
    assert.deepEqual(line(loc('/v1'), 'proxy_pass'), ['https://127.0.0.1:8443']);
    assert.deepEqual(line(loc('/v1'), 'proxy_ssl_verify'), ['on']);
    assert.deepEqual(line(loc('/raw'), 'proxy_pass'), ['http://127.0.0.1:8004']);
    assert.ok(line(loc('/raw'), 'proxy_set_header').includes('Host $proxy_host'));
    assert.ok(line(loc('/raw'), 'proxy_set_header').includes('X-Env prod'));
    assert.ok(line(loc('/v1'), 'proxy_set_header').includes('X-Forwarded-Proto https'));
    assert.ok(line(loc('/v1'), 'proxy_set_header').includes('X-Price ${mpgate_dollar}5 "each"'));
    assert.equal(find(ast, 'geo', '$mpgate_dollar').length, 1);
    assert.equal(loc('/').some((d) => d.name === 'proxy_set_header'), false, 'the server\'s header list is inherited');
    const block = find(ast, 'upstream', 'mpgate_shop_api')[0]!.block!;
    assert.deepEqual(block.map((d) => d.args.join(' ')), ['127.0.0.1:8002 max_fails=3 fail_timeout=30s', '127.0.0.1:8003 max_fails=3 fail_timeout=30s']);
    // "/api" alone would get nginx's redirect to "/api/": an exact location does what mpgate does (route "/").
    assert.deepEqual(line(find(servers[0]!.block!, 'location', '=', '/api')[0]!.block!, 'proxy_pass'), ['http://127.0.0.1:8001/app/api']);
    // A site without a "/" route answers other paths 404; "/svc" too.
    assert.deepEqual(loc('/', servers[1]!).map((d) => [d.name, ...d.args]), [['return', '404']]);
    assert.deepEqual(find(servers[1]!.block!, 'location', '=', '/svc')[0]!.block!.map((d) => [d.name, ...d.args]), [['return', '404']]);
    assert.deepEqual(notes, []);
  });

  it('passes relay and OCR routes to mpgate itself, with a note for each', () => {
    const c = configFromObject({ sites: [{ hosts: ['a.test'], routes: [
      { path: '/', upstream: 'http://127.0.0.1:1' },
      { path: '/relay', relay: { upstream: 'https://api.example.com', phpCompat: true } },
      { path: '/wxocr', ocr: {} },
    ] }] });
    const r = exportNginx(c, { mpgate: 'http://127.0.0.1:18080' });
    const s = find(parseNginx(r.text), 'server')[1]!.block!;
    for (const p of ['/relay', '/wxocr', '/get.php', '/getDownImg.php']) {
      assert.deepEqual(find(s, 'location', p)[0]!.block!.filter((d) => d.name === 'proxy_pass').map((d) => d.args[0]), ['http://127.0.0.1:18080'], p);
    }
    assert.equal(r.notes.length, 7);
    assert.match(r.notes[0]!, /^sites\[0\]\.routes\[1\]: relay route \/relay: nginx passes it to mpgate at http:\/\/127\.0\.0\.1:18080/);
    assert.match(r.notes[1]!, /OCR route \/wxocr/);
    assert.match(r.text, /Run mpgate there with this same config, listen: \["127\.0\.0\.1:18080"\] and trustedProxies: \["127\.0\.0\.1"\]/);
  });

  it('notes what nginx cannot express exactly', () => {
    const c = configFromObject({ upstream: { responseTimeout: '10s' }, sites: [{ hosts: ['a.test'], routes: [
      { path: '/', upstream: ['http://127.0.0.1:1/a', 'https://127.0.0.1:2/b'], preserveHost: false },
    ] }] });
    const r = exportNginx(c);
    assert.deepEqual(r.notes, [
      'upstream: nginx has one proxy_read_timeout for responseTimeout (10000 ms) and bodyIdleTimeout (60000 ms): the larger is used',
      'sites[0].routes[0]: nginx uses one scheme per upstream group; all get http',
      'sites[0].routes[0]: nginx uses one path per upstream group; all get "/a"',
      'sites[0].routes[0]: preserveHost: false with several upstreams: nginx sends the group name "mpgate_a_test" as Host, mpgate each upstream\'s own host:port',
    ]);
  });

  it('writes sizes and times in nginx units', () => {
    assert.equal(nginxSize(10 * 1024 * 1024), '10m');
    assert.equal(nginxSize(512 * 1024), '512k');
    assert.equal(nginxSize(1000), '1000');
    assert.equal(nginxTime(60_000), '60s');
    assert.equal(nginxTime(250), '250ms');
  });
});

describe('nginx round trip: import(export(config)) ≈ config', () => {
  it('keeps every expressible feature, with no findings', () => {
    const cfg = configFromObject(FEATURES);
    const { back, again } = roundTrip(cfg);
    assert.deepEqual(back.findings.map(formatFinding), []);
    assert.deepEqual(essence(again), essence(cfg));
  });

  it('keeps examples/mpgate.yaml', () => {
    const cfg = parseConfig(readFileSync(`${ROOT}examples/mpgate.yaml`, 'utf8'));
    const { back, again } = roundTrip(cfg);
    assert.deepEqual(back.findings.map(formatFinding), []);
    assert.deepEqual(essence(again), essence(cfg));
  });

  it('keeps the seed\'s import: nginx → mpgate → nginx → mpgate', () => {
    const seed = loadNginx(`${ROOT}test/fixtures/nginx/seed-users.conf`);
    const first = configFromObject(importNginx(seed.directives).config);
    const { back, again } = roundTrip(first);
    assert.deepEqual(back.findings, []);
    assert.deepEqual(essence(again), essence(first));
  });

  it('a whole nginx.conf adds only the process settings as findings', () => {
    const cfg = configFromObject(FEATURES);
    const { back, again } = roundTrip(cfg, true);
    assert.deepEqual(back.findings.map((f) => f.directive), ['worker_processes', 'events']);
    assert.deepEqual(essence(again), essence(cfg));
  });

  it('an imported config exports back to the same nginx text (a fixed point after one trip)', () => {
    const cfg = configFromObject(FEATURES);
    const once = roundTrip(cfg);
    const twice = roundTrip(once.again);
    assert.equal(exportNginx(twice.again).text, exportNginx(once.again).text);
  });
});
