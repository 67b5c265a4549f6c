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
import { hstsValue } from '../../src/core/headers.js';
import { exportNginx, nginxSize, nginxTime } from '../../src/nginx/export.js';
import { DEFAULT_TLS12_CIPHERS, formatFinding, importNginx } from '../../src/nginx/import.js';
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

/** HTTPS: redirect pairs, a site on both, TLS 1.3 only with own suites, a default certificate, a disabled site. */
const TLS_FEATURES: ConfigInput = {
  listen: ['80', '127.0.0.1:9090'],
  https: { listen: ['443', '127.0.0.1:8443'], minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305', defaultCert: { cert: '/etc/ssl/default.pem', key: '/etc/ssl/default.key' } },
  sites: [
    { name: 'shop', hosts: ['shop.test', '*.shop.test'], upstream: 'http://127.0.0.1:8001', owner: 'alice', tls: { cert: '/etc/ssl/shop.pem', key: '/etc/ssl/shop.key' }, hsts: { maxAge: '2d', includeSubDomains: true, preload: true } },
    { hosts: ['both.test'], routes: [{ path: '/api/', upstream: 'http://127.0.0.1:8002', stripPrefix: true }], tls: { cert: '/etc/ssl/both.pem', key: '/etc/ssl/both.key' }, redirectHttp: false, hsts: true },
    { hosts: ['off.test'], upstream: 'http://127.0.0.1:8003', tls: { cert: '/etc/ssl/shop.pem', key: '/etc/ssl/shop.key' }, disabled: true },
    { hosts: ['plain.test'], upstream: 'http://127.0.0.1:8004', disabled: true },
  ],
};

/** What the round trip must keep: routing, headers, limits, timeouts, HTTPS (names and unexpressed settings aside). */
function essence(c: Config) {
  const base = (u: string) => {
    const url = new URL(u);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  };
  // tls: auto is exported on plain HTTP (nginx needs a certificate of its own): only files are kept.
  const files = (t: Config['sites'][number]['tls']) => (t === undefined || t === 'auto' ? undefined : t);
  const first = c.sites.map((s) => files(s.tls)).find((t) => t !== undefined);
  return {
    https: first === undefined ? undefined : {
      listen: c.https.listen,
      minVersion: c.https.minVersion,
      ciphers: c.https.ciphers ?? DEFAULT_TLS12_CIPHERS,
      http2: c.https.http2,
      unknownSni: c.https.unknownSni,
      // What unknown names get: the default certificate, else the first site's.
      defaultCert: c.https.unknownSni === 'reject' ? undefined : c.https.defaultCert ?? first,
    },
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
      disabled: s.disabled,
      tls: files(s.tls),
      redirectHttp: files(s.tls) ? s.redirectHttp : undefined,
      hsts: files(s.tls) ? hstsValue(s.hsts) : undefined,
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

describe('nginx export: HTTPS', () => {
  const cfg = configFromObject(TLS_FEATURES);
  const { text, notes } = exportNginx(cfg, { source: 'tls.yaml' });
  const servers = find(parseNginx(text, 'x.conf'), 'server');
  const args = (list: NginxDirective[], name: string) => find(list, name).map((d) => d.args.join(' '));

  it('writes a catch-all on both sides (the default certificate for unknown names), then per site a redirect server and an HTTPS one', () => {
    assert.equal(servers.length, 1 + 2 + 1 + 2 + 1);
    const catchAll = servers[0]!.block!;
    assert.deepEqual(args(catchAll, 'listen'), ['80 default_server', '[::]:80 default_server', '127.0.0.1:9090 default_server', '443 ssl http2 default_server', '[::]:443 ssl http2 default_server', '127.0.0.1:8443 ssl http2 default_server']);
    assert.deepEqual(args(catchAll, 'ssl_certificate'), ['/etc/ssl/default.pem']);
    assert.deepEqual(args(catchAll, 'return'), ['404']);
    assert.deepEqual(notes, []);
  });

  it('redirects plain HTTP like mpgate: 301 for GET/HEAD, 308 otherwise, to the first HTTPS port', () => {
    const redirect = servers[1]!.block!;
    assert.deepEqual(redirect.map((d) => d.name), ['listen', 'listen', 'listen', 'server_name', 'if', 'return']);
    assert.deepEqual(args(redirect, 'server_name'), ['shop.test *.shop.test']);
    assert.deepEqual(find(redirect, 'if')[0]!.args, ['($request_method', '!~', '^(GET|HEAD)$)']);
    assert.deepEqual(args(find(redirect, 'if')[0]!.block!, 'return'), ['308 https://$host$request_uri']);
    assert.deepEqual(args(redirect, 'return'), ['301 https://$host$request_uri']);
    const port = exportNginx(configFromObject({ https: { listen: ['127.0.0.1:8443'] }, sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }] })).text;
    assert.match(port, /return 301 https:\/\/\$host:8443\$request_uri;/);
  });

  it('serves HTTPS with the site\'s files, mpgate\'s protocols and ciphers, and HSTS always', () => {
    const shop = servers[2]!.block!;
    assert.deepEqual(args(shop, 'listen'), ['443 ssl http2', '[::]:443 ssl http2', '127.0.0.1:8443 ssl http2']);
    assert.deepEqual(args(shop, 'ssl_certificate'), ['/etc/ssl/shop.pem']);
    assert.deepEqual(args(shop, 'ssl_certificate_key'), ['/etc/ssl/shop.key']);
    assert.deepEqual(args(shop, 'ssl_protocols'), ['TLSv1.3']);
    assert.deepEqual(args(shop, 'ssl_ciphers'), ['ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305']);
    assert.deepEqual(args(shop, 'ssl_conf_command'), ['Ciphersuites TLS_AES_256_GCM_SHA384']);
    assert.deepEqual(args(shop, 'ssl_prefer_server_ciphers'), ['on']);
    assert.deepEqual(args(shop, 'add_header'), ['Strict-Transport-Security max-age=172800; includeSubDomains; preload always']);
    assert.match(text, /# site "shop" \(sites\[0\]\), owner alice: HTTPS\n/);
    // redirectHttp: false: one server on both sides.
    const both = servers[3]!.block!;
    assert.deepEqual(args(both, 'listen'), ['80', '[::]:80', '127.0.0.1:9090', '443 ssl http2', '[::]:443 ssl http2', '127.0.0.1:8443 ssl http2']);
    assert.deepEqual(args(both, 'add_header'), ['Strict-Transport-Security max-age=31536000 always']);
    // disabled: return 503 in front of the locations (the redirect server still redirects).
    assert.deepEqual(args(servers[5]!.block!, 'return'), ['503']);
    assert.deepEqual(args(servers[6]!.block!, 'return'), ['503']);
    // Defaults: TLS 1.2 and 1.3, mpgate's TLS 1.2 list, no ssl_conf_command.
    const plain = exportNginx(configFromObject({ sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }] })).text;
    assert.match(plain, /ssl_protocols TLSv1\.2 TLSv1\.3;\n\s+ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:[^;]*CHACHA20-POLY1305;\n\s+ssl_prefer_server_ciphers on;/);
    assert.doesNotMatch(plain, /ssl_conf_command/);
  });

  it('https.http2: false, unknownSni: reject, and a defaultSite with or without files', () => {
    const reject = exportNginx(configFromObject({ https: { http2: false, unknownSni: 'reject' }, sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }] })).text;
    const catchAll = find(parseNginx(reject), 'server')[0]!.block!;
    assert.deepEqual(args(catchAll, 'listen'), ['80 default_server', '443 ssl default_server']);
    assert.deepEqual(args(catchAll, 'ssl_reject_handshake'), ['on']);
    assert.deepEqual(args(catchAll, 'ssl_certificate'), []);
    const tlsDefault = exportNginx(configFromObject({ defaultSite: 'a.test', sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }] }));
    const [redirect, https] = find(parseNginx(tlsDefault.text), 'server').map((x) => x.block!);
    assert.deepEqual(args(redirect!, 'listen'), ['80 default_server']);
    assert.deepEqual(args(https!, 'listen'), ['443 ssl http2 default_server']);
    const plainDefault = exportNginx(configFromObject({ defaultSite: 'p.test', sites: [{ hosts: ['p.test'], upstream: 'http://127.0.0.1:1' }, { hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }] }));
    assert.deepEqual(args(find(parseNginx(plainDefault.text), 'server')[0]!.block!, 'listen'), ['443 ssl http2 default_server']);
    assert.deepEqual(plainDefault.notes, ['defaultSite "p.test" has no certificate files: over HTTPS, nginx answers unknown names 404 (mpgate: that site, with the default certificate)']);
  });

  it('writes a tls: auto site on plain HTTP, with how to get nginx its own certificate', () => {
    const r = exportNginx(configFromObject({ sites: [{ hosts: ['x.a.test'], upstream: 'http://127.0.0.1:1', tls: 'auto', hsts: true }] }));
    const site = find(parseNginx(r.text), 'server')[1]!.block!;
    assert.deepEqual(args(site, 'listen'), ['80']);
    assert.deepEqual(args(site, 'ssl_certificate'), []);
    assert.match(r.text, /# HTTP until it has one\. With certbot: certbot --nginx --redirect -d x\.a\.test\n/);
    assert.match(r.text, /# Then also: add_header Strict-Transport-Security max-age=31536000 always;/);
    assert.deepEqual(r.notes, ['sites[0]: tls: auto: nginx needs its own certificate (e.g. certbot --nginx --redirect -d x.a.test); exported on plain HTTP until then']);
  });
});

describe('nginx round trip: import(export(config)) ≈ config', () => {
  it('keeps every expressible feature, with no findings', () => {
    const cfg = configFromObject(FEATURES);
    const { back, again } = roundTrip(cfg);
    assert.deepEqual(back.findings.map(formatFinding), []);
    assert.deepEqual(essence(again), essence(cfg));
  });

  it('keeps examples/mpgate.yaml (its tls: auto sites come back on plain HTTP, as exported)', () => {
    const cfg = parseConfig(readFileSync(`${ROOT}examples/mpgate.yaml`, 'utf8'));
    const { back, again, notes } = roundTrip(cfg);
    assert.deepEqual(back.findings.map(formatFinding), []);
    assert.deepEqual(essence(again), essence(cfg));
    assert.deepEqual(again.sites.map((s) => s.tls), [undefined, undefined, undefined]);
    assert.match(notes[0]!, /^sites\[0\]: tls: auto: nginx needs its own certificate/);
    assert.match(notes[1]!, /^sites\[1\]: tls: auto: nginx needs its own certificate/);
  });

  it('keeps HTTPS: certificates, redirects, a site on both, HSTS, protocols, ciphers, the default certificate, disabled', () => {
    const cfg = configFromObject(TLS_FEATURES);
    const { back, again } = roundTrip(cfg);
    assert.deepEqual(back.findings.map(formatFinding), []);
    assert.deepEqual(essence(again), essence(cfg));
    assert.equal(exportNginx(roundTrip(again).again).text, exportNginx(again).text, 'a fixed point after one trip');
    for (const input of [
      { defaultSite: 'a', https: { http2: false }, sites: [{ name: 'a', hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' } }, { hosts: ['p.test'], upstream: 'http://127.0.0.1:2' }] },
      { https: { unknownSni: 'reject' }, defaultSite: 'p.test', sites: [{ hosts: ['p.test'], upstream: 'http://127.0.0.1:2' }, { hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/c', key: '/k' }, redirectHttp: false }] },
    ] satisfies ConfigInput[]) {
      const c = configFromObject(input);
      const trip = roundTrip(c);
      assert.deepEqual(trip.back.findings.map(formatFinding), [], JSON.stringify(input));
      assert.deepEqual(essence(trip.again), essence(c), JSON.stringify(input));
    }
  });

  it('keeps the certbot-style seed\'s import: nginx → mpgate → nginx → mpgate', () => {
    const seed = loadNginx(`${ROOT}test/fixtures/nginx/seed-users-https.conf`);
    const first = configFromObject(importNginx(seed.directives).config);
    const { back, again } = roundTrip(first);
    assert.deepEqual(back.findings, []);
    assert.deepEqual(essence(again), essence(first));
    assert.equal(again.sites.filter((s) => s.tls !== undefined).length, 2);
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
