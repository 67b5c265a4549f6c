/**
 * nginx → mpgate: what is translated, what becomes a finding, and that the seed's server blocks
 * import into a config mpgate accepts and routes the way nginx did.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { configFromObject, parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { getField } from '../../src/core/headers.js';
import { formatFinding, importNginx, normalizeListen, parseNginxSize, parseNginxTime, type ImportResult } from '../../src/nginx/import.js';
import { loadNginx } from '../../src/nginx/load.js';
import { parseNginx, type NginxFinding } from '../../src/nginx/parse.js';
import { UpstreamPools } from '../../src/proxy/upstream-pool.js';
import { resolve, type Resolved, type ResolveInput } from '../../src/server/resolve.js';
import { RoutingTable } from '../../src/server/routing-table.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/nginx/', import.meta.url));

function imp(text: string): ImportResult {
  return importNginx(parseNginx(text, 't.conf'), { source: 't.conf' });
}

/** nginx's first-server-answers-unknown-hosts note, which every file without default_server gets. */
const isUnknownHostsNote = (f: NginxFinding) => f.directive === 'server' && f.message.startsWith('nginx answers unknown hosts');

/** The one site of a single-server import, and the findings apart from the unknown-hosts note. */
function site(text: string) {
  const r = imp(`server { listen 80; server_name a.test; ${text} }`);
  assert.equal(r.config.sites?.length, 1, `expected one site, findings: ${r.findings.map(formatFinding).join('\n')}`);
  return { site: r.config.sites![0]!, findings: r.findings.filter((f) => !isUnknownHostsNote(f)) };
}

/** The routes of a single-server import (the upstream shorthand expanded). */
function routes(text: string) {
  const { site: s, findings } = site(text);
  const list = s.routes ?? [{ path: '/', upstream: s.upstream! }];
  return { routes: list, findings };
}

function messages(findings: readonly NginxFinding[], directive?: string): string[] {
  return findings.filter((f) => !isUnknownHostsNote(f) && (directive === undefined || f.directive === directive)).map((f) => f.message);
}

const pools = new UpstreamPools();
after(async () => {
  await pools.destroy();
});

function ok(r: ReturnType<typeof resolve>): Resolved {
  if ('error' in r) assert.fail(`expected a route, got ${r.error.code}`);
  if ('redirect' in r) assert.fail(`expected a route, got a redirect for site ${r.redirect.name}`);
  return r;
}

function req(url: string, host: string): ResolveInput {
  return { url, rawHeaders: ['Host', host, 'X-Real-IP', '6.6.6.6'], peer: '203.0.113.9', proto: 'http', httpVersion: '1.1' };
}

describe('nginx import: the seed\'s server blocks', () => {
  const file = join(FIXTURES, 'seed-users.conf');
  const loaded = loadNginx(file);
  const result = importNginx(loaded.directives, { source: 'seed-users.conf', findings: loaded.findings });

  it('becomes one site per user on port 80, Host kept (the shorthand form)', () => {
    assert.deepEqual(result.config, {
      listen: ['0.0.0.0:80'],
      sites: [
        { hosts: ['www.a.com'], upstream: 'http://localhost:8000' },
        { hosts: ['x.a.com'], upstream: 'http://localhost:8001' },
        { hosts: ['y.a.com'], upstream: 'http://localhost:8002' },
      ],
    } satisfies ConfigInput);
  });

  it('reports only that nginx sends unknown hosts to the first block', () => {
    assert.deepEqual(result.findings.map(formatFinding), [
      `${file}:4 server: nginx answers unknown hosts with its first server block (www.a.com); mpgate answers them 404 unless defaultSite is set (add "defaultSite: www.a.com" to keep nginx's behaviour)`,
    ]);
  });

  it('prints YAML that parseConfig accepts, with a comment naming each server block', () => {
    const cfg = parseConfig(result.yaml, 'imported.yaml');
    assert.equal(cfg.sites.length, 3);
    assert.match(result.yaml, /# server block at \S*seed-users\.conf:4 \(server_name www\.a\.com\)\n {2}- hosts: \[ www\.a\.com \]\n {4}upstream: http:\/\/localhost:8000/);
    assert.match(result.yaml, /# server block at \S*seed-users\.conf:16 \(server_name x\.a\.com\)/);
    assert.match(result.yaml, /# Not translated:\n# \S*seed-users\.conf:4 server: nginx answers unknown hosts/);
  });

  it('routes like nginx did: by Host to each user\'s port, path and Host unchanged, client address from the peer', () => {
    const table = new RoutingTable(configFromObject(result.config, 'imported'), pools);
    for (const [host, port] of [['www.a.com', 8000], ['x.a.com', 8001], ['Y.A.COM:80', 8002]] as const) {
      const r = ok(resolve(table, req('/page/show/1?x=1', host)));
      const up = r.route.upstreams.items[0]!;
      assert.equal(r.route.upstreams.items.length, 1);
      assert.equal(up.origin, `http://localhost:${port}`);
      assert.equal(r.path, '/page/show/1?x=1');
      assert.equal(getField(r.head.headers, 'host'), host);
      assert.equal(getField(r.head.headers, 'x-real-ip'), '203.0.113.9');
    }
    const unknown = resolve(table, req('/', 'z.a.com'));
    assert.ok('error' in unknown && unknown.error.code === 'MPG_NO_SITE');
  });
});

describe('nginx import: proxy_pass and locations', () => {
  it('maps the URI part of proxy_pass the way nginx replaces the location prefix', () => {
    const { routes: r, findings } = routes(`proxy_set_header Host $host;
      location / { proxy_pass http://127.0.0.1:1; }
      location /same/ { proxy_pass http://127.0.0.1:2/same/; }
      location /api/ { proxy_pass http://127.0.0.1:3/; }
      location /v2/ { proxy_pass http://127.0.0.1:4/base/; }
      location /keep/ { proxy_pass http://127.0.0.1:5/pre/keep/; }
      location ^~ /img { proxy_pass https://127.0.0.1:6; }
      location /s { rewrite ^/s/?(.*)$ /b/$1 break; proxy_pass http://127.0.0.1:7; }`);
    assert.deepEqual(r, [
      { path: '/', upstream: 'http://127.0.0.1:1' },
      { path: '/same/', upstream: 'http://127.0.0.1:2' },
      { path: '/api/', upstream: 'http://127.0.0.1:3', stripPrefix: true },
      { path: '/v2/', upstream: 'http://127.0.0.1:4/base/', stripPrefix: true },
      { path: '/keep/', upstream: 'http://127.0.0.1:5/pre' },
      { path: '/img', upstream: 'https://127.0.0.1:6' },
      { path: '/s', upstream: 'http://127.0.0.1:7/b', stripPrefix: true },
    ]);
    assert.deepEqual(findings, []);
  });

  it('reports the URI forms mpgate can only approximate', () => {
    const { routes: r, findings } = routes(`proxy_set_header Host $host;
      location /a { proxy_pass http://127.0.0.1:1/; }
      location /b/ { proxy_pass http://127.0.0.1:2/x; }`);
    assert.deepEqual(r.map((x) => [x.path, x.upstream, x.stripPrefix]), [['/a', 'http://127.0.0.1:1', true], ['/b/', 'http://127.0.0.1:2/x', true]]);
    assert.equal(findings.length, 2);
    assert.match(findings[0]!.message, /approximated: nginx replaces "\/a" with "\/" literally \(\/a\/x → \/\/x\)/);
    assert.match(findings[1]!.message, /\/b\/x → \/xx/);
  });

  it('leaves out what it cannot route, each with a finding, and keeps the rest', () => {
    const { routes: r, findings } = routes(`
      location / { proxy_pass http://127.0.0.1:1; }
      location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; }
      location @fallback { proxy_pass http://127.0.0.1:2; }
      location /static/ { root /var/www; }
      location /v { proxy_pass http://$backend; }
      location /u { proxy_pass http://unix:/tmp/s.sock; }
      location /n { location /n/inner { proxy_pass http://127.0.0.1:3; } proxy_pass http://127.0.0.1:4; }
      location /m { client_max_body_size 1m; proxy_pass http://127.0.0.1:5; }`);
    assert.deepEqual(r.map((x) => x.path), ['/', '/n', '/m']);
    const byLine = findings.map((f) => `${f.directive}: ${f.message}`);
    assert.ok(byLine.some((m) => /^location: regex location "~ \\\.php\$" is not translated, nor anything in it/.test(m)), byLine.join('\n'));
    assert.ok(byLine.some((m) => /^location: named location @fallback/.test(m)));
    assert.ok(byLine.some((m) => /^root: static files are not served by mpgate/.test(m)));
    assert.ok(byLine.some((m) => /^location: location \/static\/ not translated: no proxy_pass/.test(m)));
    assert.ok(byLine.some((m) => /^proxy_pass: "http:\/\/\$backend": proxy_pass with variables/.test(m)));
    assert.ok(byLine.some((m) => /^proxy_pass: "http:\/\/unix:\/tmp\/s\.sock": unix-socket upstreams are not in mpgate/.test(m)));
    assert.ok(byLine.some((m) => /^location: nested locations are not translated/.test(m)));
    assert.ok(byLine.some((m) => /^client_max_body_size: mpgate has no per-route body limit/.test(m)));
    assert.ok(byLine.every((m) => !m.startsWith('fastcgi_pass')), 'a regex location is reported once, not per directive');
  });

  it('drops "location =" when mpgate already routes that one path the same way, else keeps it as a prefix with a finding', () => {
    const same = routes(`proxy_set_header Host $host;
      location / { proxy_pass http://127.0.0.1:1; }
      location /api/ { proxy_pass http://127.0.0.1:2/; }
      location = /api { proxy_pass http://127.0.0.1:1; }
      location = /x { proxy_pass http://127.0.0.1:1/x; }`);
    assert.deepEqual(same.routes.map((x) => x.path), ['/', '/api/']);
    assert.deepEqual(same.findings, []);

    const differs = routes(`proxy_set_header Host $host;
      location / { proxy_pass http://127.0.0.1:1; }
      location = /health { proxy_pass http://127.0.0.1:9/ping; }
      location /dup { proxy_pass http://127.0.0.1:3; }
      location = /dup { proxy_pass http://127.0.0.1:4; }`);
    assert.deepEqual(differs.routes.map((x) => [x.path, x.upstream]), [['/', 'http://127.0.0.1:1'], ['/dup', 'http://127.0.0.1:3'], ['/health', 'http://127.0.0.1:9/ping']]);
    assert.match(messages(differs.findings, 'location')[0]!, /"location = \/health" matches only \/health in nginx; mpgate has prefix routes only/);
    assert.match(messages(differs.findings, 'location')[1]!, /"location = \/dup" differs from the route for \/dup \(line 4\)/);
  });

  it('drops "return 404" where mpgate answers 404 anyway and reports it where a shorter route would serve', () => {
    const { routes: r, findings } = routes(`proxy_set_header Host $host;
      location / { return 404; }
      location /api/ { proxy_pass http://127.0.0.1:2; }
      location /api/private/ { return 404; }`);
    assert.deepEqual(r.map((x) => x.path), ['/api/']);
    assert.deepEqual(messages(findings), ['"return 404" for /api/private/ is not translated: mpgate sends these paths to the route /api/']);
  });

  it('reads upstream blocks as upstream lists; weight, backup and down are findings', () => {
    const r = imp(`
      upstream pool { server 127.0.0.1:9001 weight=2; server 127.0.0.1:9002; server 127.0.0.1:9003 backup; server 127.0.0.1:9004 down; server unix:/x.sock; keepalive 8; least_conn; }
      upstream idle { server 127.0.0.1:1; }
      upstream tls { server example.test; }
      server { server_name a.test; proxy_set_header Host $host;
        location / { proxy_pass http://pool; }
        location /t/ { proxy_pass https://tls/; }
        location /h/ { proxy_pass http://pool:8080/; } }`);
    assert.deepEqual(r.config.sites![0]!.routes, [
      { path: '/', upstream: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'] },
      { path: '/t/', upstream: 'https://example.test:80', stripPrefix: true },
      { path: '/h/', upstream: 'http://pool:8080', stripPrefix: true },
    ]);
    const m = r.findings.map((f) => `${f.line} ${f.directive}: ${f.message}`);
    assert.ok(m.some((x) => /^2 server: weight=2: mpgate balances round-robin without weights/.test(x)), m.join('\n'));
    assert.ok(m.some((x) => /^2 server: backup servers are not in mpgate/.test(x)));
    assert.ok(m.some((x) => /^2 server: marked down: left out/.test(x)));
    assert.ok(m.some((x) => /^2 server: unix-socket upstreams are not in mpgate/.test(x)));
    assert.ok(m.some((x) => /^2 least_conn: mpgate balances round-robin/.test(x)));
    assert.ok(m.some((x) => /^3 upstream: upstream "idle" is not used/.test(x)));
    assert.ok(!m.some((x) => /keepalive/.test(x)), 'keepalive: mpgate pools upstream connections itself');
  });
});

describe('nginx import: headers', () => {
  it('keeps Host for $host/$http_host and sends the upstream\'s own for $proxy_host or no Host at all (nginx\'s default)', () => {
    const { routes: r, findings } = routes(`
      location /a { proxy_pass http://127.0.0.1:1; proxy_set_header Host $host; }
      location /b { proxy_pass http://127.0.0.1:1; proxy_set_header Host $http_host; }
      location /c { proxy_pass http://127.0.0.1:1; proxy_set_header Host $proxy_host; }
      location /d { proxy_pass http://127.0.0.1:1; }
      location /e { proxy_pass http://127.0.0.1:1; proxy_set_header X-Real-IP $remote_addr; }`);
    assert.deepEqual(r.map((x) => x.preserveHost), [undefined, undefined, false, false, false]);
    assert.deepEqual(findings, []);
  });

  it('follows nginx\'s inheritance: a location with its own proxy_set_header replaces the whole outer list', () => {
    const r = imp(`proxy_set_header Host $host; proxy_set_header X-Env http;
      server { server_name a.test;
        location / { proxy_pass http://127.0.0.1:1; } }
      server { server_name b.test; proxy_set_header X-Env server;
        location / { proxy_pass http://127.0.0.1:1; }
        location /own/ { proxy_pass http://127.0.0.1:2; proxy_set_header X-Only here; } }`);
    const [a, b] = r.config.sites!;
    assert.deepEqual(a!.routes, [{ path: '/', upstream: 'http://127.0.0.1:1', setHeaders: { 'X-Env': 'http' } }]);
    assert.deepEqual(b!.routes, [
      { path: '/', upstream: 'http://127.0.0.1:1', preserveHost: false, setHeaders: { 'X-Env': 'server' } },
      { path: '/own/', upstream: 'http://127.0.0.1:2', preserveHost: false, setHeaders: { 'X-Only': 'here' } },
    ]);
  });

  it('knows the forwarding headers mpgate sets itself, takes fixed values as setHeaders and reports variables', () => {
    const { routes: r, findings } = routes(`location / { proxy_pass http://127.0.0.1:1;
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header X-Api-Key "k e y";
      proxy_set_header X-Price "\${mpgate_dollar}5";
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header X-Real-IP2 $http_x_real_ip;
      proxy_set_header Accept-Encoding "";
      proxy_set_header X-Forwarded-For $http_cf_connecting_ip; }`);
    assert.deepEqual(r[0]!.setHeaders, { 'X-Forwarded-Proto': 'https', 'X-Api-Key': 'k e y', 'X-Price': '$5' });
    const m = findings.map((f) => `${f.line}: ${f.message}`);
    assert.equal(m.length, 4, m.join('\n'));
    assert.match(m[0]!, /^11: values with nginx variables are not in mpgate/);
    assert.match(m[1]!, /^12: values with nginx variables/);
    assert.match(m[2]!, /an empty value removes Accept-Encoding in nginx; mpgate cannot remove a request header/);
    assert.match(m[3]!, /mpgate always sets X-Forwarded-For itself/);
  });
});

describe('nginx import: server-level settings', () => {
  it('collects listen addresses: dedup, 80 + [::]:80 → "80", no listen → 0.0.0.0:80, ssl ones → https.listen', () => {
    const r = imp(`
      server { listen 80; listen [::]:80; server_name a.test; location / { proxy_pass http://127.0.0.1:1; } }
      server { listen 80; listen [::]:80; listen 443 ssl http2; server_name b.test; ssl_certificate /etc/ssl/b.pem; ssl_certificate_key /etc/ssl/b.key; location / { proxy_pass http://127.0.0.1:2; } }
      server { listen 127.0.0.1:8080; server_name c.test; location / { proxy_pass http://127.0.0.1:3; } }`);
    assert.deepEqual(r.config.listen, ['80', '127.0.0.1:8080']);
    assert.deepEqual(r.config.https, { listen: ['0.0.0.0:443'] });
    // One server on both: one site, served over plain HTTP too.
    assert.deepEqual(r.config.sites![1], { hosts: ['b.test'], routes: [{ path: '/', upstream: 'http://127.0.0.1:2', preserveHost: false }], tls: { cert: '/etc/ssl/b.pem', key: '/etc/ssl/b.key' }, redirectHttp: false });
    const m = r.findings.map((f) => `${f.line} ${f.directive}: ${f.message}`);
    assert.ok(!m.some((x) => /^3 (listen: (?!mpgate serves every site)|ssl_)/.test(x)), m.join('\n'));
    assert.ok(m.some((x) => /^4 listen: mpgate serves every site on every listen address: this site also answers on 0\.0\.0\.0:80, \[::\]:80/.test(x)));
    assert.equal(normalizeListen('*:8080'), '0.0.0.0:8080');
    assert.equal(normalizeListen('[::1]'), '[::1]:80');
    assert.equal(normalizeListen('localhost'), 'localhost:80');
    assert.equal(normalizeListen('unix:/x'), undefined);
  });

  it('turns default_server into defaultSite and says nothing of a plain-404 catch-all', () => {
    const r = imp(`
      server { listen 80 default_server; server_name _; return 404; }
      server { listen 80; server_name a.test; location / { proxy_pass http://127.0.0.1:1; proxy_set_header Host $host; } }
      server { listen 8080 default_server; server_name b.test; location / { proxy_pass http://127.0.0.1:2; proxy_set_header Host $host; } }`);
    assert.equal(r.config.defaultSite, undefined);
    assert.deepEqual(r.findings.map((f) => `${f.line} ${f.directive}: ${f.message}`), [
      '3 listen: mpgate serves every site on every listen address: this site also answers on 0.0.0.0:8080',
      '4 listen: mpgate serves every site on every listen address: this site also answers on 0.0.0.0:80',
      '4 listen: mpgate has one defaultSite; the default_server at t.conf:2 is used',
    ]);
    const r2 = imp('server { listen 80 default_server; server_name b.test; location / { proxy_pass http://127.0.0.1:2; proxy_set_header Host $host; } }');
    assert.equal(r2.config.defaultSite, 'b.test');
    assert.deepEqual(r2.findings, []);
  });

  it('reads server_name forms, drops what mpgate cannot match and names claimed twice', () => {
    const r = imp(`
      server { server_name a.test *.a.test www.b.* .c.test "~^api\\d+\\.d\\.test$" "" $hostname a.test. ; location / { proxy_pass http://127.0.0.1:1; } }
      server { server_name *.A.TEST e.test; location / { proxy_pass http://127.0.0.1:2; } }
      server { server_name a.test; location / { proxy_pass http://127.0.0.1:3; } }`);
    assert.deepEqual(r.config.sites!.map((s) => s.hosts), [['a.test', '*.a.test', 'www.b.*', '.c.test', '~^api\\d+\\.d\\.test$'], ['e.test']]);
    const m = messages(r.findings);
    assert.ok(m.includes('the empty name (requests without Host) is not translated: mpgate sends those to defaultSite'), m.join('\n'));
    assert.ok(m.includes('"$hostname": variables are not in mpgate; not translated'));
    assert.ok(m.some((x) => /^"a\.test\." is not a host name/.test(x)));
    assert.ok(m.some((x) => /^"\*\.A\.TEST" is already served by the server block at t\.conf:2/.test(x)));
    assert.ok(m.includes('server block not translated: all of its names belong to earlier server blocks'));
  });

  it('reads client_max_body_size in nginx units: http → limits, server → the site; 0 and locations are findings', () => {
    const r = imp(`client_max_body_size 2m;
      server { server_name a.test; client_max_body_size 512k; location / { proxy_pass http://127.0.0.1:1; } }
      server { server_name b.test; client_max_body_size 1g; location / { proxy_pass http://127.0.0.1:1; } }
      server { server_name c.test; client_max_body_size 0; location / { proxy_pass http://127.0.0.1:1; } }`);
    assert.deepEqual(r.config.limits, { maxBodySize: '2MiB' });
    assert.deepEqual(r.config.sites!.map((s) => s.maxBodySize), ['512KiB', '1GiB', undefined]);
    assert.match(messages(r.findings, 'client_max_body_size')[0]!, /^0 means no limit in nginx/);
    assert.equal(parseNginxSize('10M'), 10 * 1024 * 1024);
    assert.equal(parseNginxSize('10mb'), undefined);
  });

  it('maps timeouts and max_fails/fail_timeout to mpgate\'s global settings, reporting disagreement', () => {
    const r = imp(`proxy_connect_timeout 3s; client_header_timeout 15;
      upstream u { server 127.0.0.1:1 max_fails=3 fail_timeout=30s; server 127.0.0.1:2 max_fails=3 fail_timeout=30s; }
      server { server_name a.test; proxy_read_timeout 2m; keepalive_timeout 65 60; proxy_connect_timeout 9s; location / { proxy_pass http://u; proxy_read_timeout 1s; } }
      server { server_name b.test; proxy_read_timeout 2m; keepalive_timeout 65; location / { proxy_pass http://127.0.0.1:3; } }`);
    assert.deepEqual(r.config.limits, { headersTimeout: '15s', keepAliveTimeout: '65s' });
    assert.deepEqual(r.config.upstream, { connectTimeout: '3s', maxFails: 3, failTimeout: '30s', responseTimeout: '2m', bodyIdleTimeout: '2m' });
    const m = r.findings.filter((f) => !isUnknownHostsNote(f)).map((f) => `${f.directive}: ${f.message}`);
    assert.ok(m.includes('proxy_connect_timeout: mpgate has one value for all sites: 3s from t.conf:1 applies; not translated'), m.join('\n'));
    assert.ok(m.includes('proxy_read_timeout: mpgate has one value for all sites; a location\'s own value is not applied'));
    assert.ok(m.includes('keepalive_timeout: the second value (the Keep-Alive response header) is not translated'));
    assert.equal(m.length, 3);
    assert.equal(parseNginxTime('1m30s'), 90_000);
    assert.equal(parseNginxTime('500ms'), 500);
    assert.equal(parseNginxTime('10'), 10_000);
    assert.equal(parseNginxTime('1x'), undefined);
  });

  it('takes set_real_ip_from as trustedProxies and reports a server-only one', () => {
    const r = imp(`set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on;
      server { server_name a.test; set_real_ip_from 192.0.2.1; location / { proxy_pass http://127.0.0.1:1; } }
      server { server_name b.test; set_real_ip_from unix:; real_ip_header X-Real-IP; location / { proxy_pass http://127.0.0.1:1; } }`);
    assert.deepEqual(r.config.trustedProxies, ['10.0.0.0/8', '192.0.2.1']);
    const m = messages(r.findings);
    assert.ok(m.includes('set for this server only in nginx; mpgate trusts it for every site (trustedProxies)'), m.join('\n'));
    assert.ok(m.some((x) => /^"unix:" is not an IP address or CIDR/.test(x)));
    assert.ok(r.findings.some((f) => f.directive === 'real_ip_header'));
  });

  it('reports a redirect server (other than to https), skipping it whole, and the usual main-context boilerplate', () => {
    const r = imp(`user www-data; worker_processes auto; events { worker_connections 768; }
      http { sendfile on; gzip on;
        server { listen 80; server_name old.test; return 301 http://a.test$request_uri; location / { proxy_pass http://127.0.0.1:1; } }
        server { listen 443 ssl; server_name a.test; location / { proxy_pass http://127.0.0.1:1; proxy_set_header Host $host; } } }`);
    assert.deepEqual(r.config.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1' }]);
    assert.equal(r.config.listen, undefined, 'only an HTTPS listen remains: mpgate keeps its default');
    const m = r.findings.map((f) => `${f.directive}: ${f.message}`);
    assert.ok(m.includes('return: redirect (return 301 http://a.test$request_uri) not translated: mpgate has no redirect routes (it only redirects plain HTTP to https for sites with tls); the whole server block is not translated (its 1 location is unreachable in nginx too)'), m.join('\n'));
    assert.ok(m.includes('listen: no ssl_certificate for this HTTPS server: the site is imported without tls (give it tls: {cert, key}, or tls: auto for a certificate from Let\'s Encrypt)'));
    assert.ok(m.includes('user: nginx process setting; mpgate has none (not translated)'));
    assert.ok(m.includes('events: nginx process setting; mpgate has none (not translated)'));
    assert.ok(m.includes('sendfile: not translated (no mpgate equivalent in the http context)'));
    assert.ok(m.includes('gzip: compression is not in mpgate; not translated'));
  });
});

describe('nginx import: HTTPS', () => {
  /** The findings as "LINE directive: message", without the unknown-hosts note. */
  const lines = (r: ImportResult) => r.findings.filter((f) => !isUnknownHostsNote(f)).map((f) => `${f.line} ${f.directive}: ${f.message}`);
  const CERT = 'ssl_certificate /etc/ssl/a.pem; ssl_certificate_key /etc/ssl/a.key;';
  const PROXY = 'location / { proxy_pass http://127.0.0.1:1; proxy_set_header Host $host; }';

  describe('the seed\'s blocks after certbot (seed-users-https.conf)', () => {
    const file = join(FIXTURES, 'seed-users-https.conf');
    const loaded = loadNginx(file);
    const result = importNginx(loaded.directives, { source: 'seed-users-https.conf', findings: loaded.findings });

    it('becomes one site per user: each 80-redirect + 443 pair one site with its certificate files', () => {
      const le = (name: string) => ({ cert: `/etc/letsencrypt/live/${name}/fullchain.pem`, key: `/etc/letsencrypt/live/${name}/privkey.pem` });
      assert.deepEqual(result.config, {
        listen: ['0.0.0.0:80'],
        https: { listen: ['0.0.0.0:443'], minVersion: 'TLSv1.2' },
        sites: [
          { hosts: ['www.a.com'], upstream: 'http://localhost:8000', tls: le('www.a.com') },
          { hosts: ['x.a.com'], upstream: 'http://localhost:8001', tls: le('x.a.com'), hsts: { maxAge: '730d', includeSubDomains: true } },
          { hosts: ['y.a.com'], upstream: 'http://localhost:8002' },
        ],
      } satisfies ConfigInput);
    });

    it('reports only what mpgate does not take over: certbot\'s TLS options and dhparam (its defaults apply)', () => {
      assert.deepEqual(lines(result), [
        '18 include: /etc/letsencrypt/options-ssl-nginx.conf (certbot\'s TLS settings) not followed: mpgate\'s defaults apply, TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20 (certbot\'s list without its DHE suites)',
        '19 ssl_dhparam: mpgate\'s defaults apply: its TLS 1.2 suites use ECDHE only, so no DH parameters are needed; not translated',
      ]);
    });

    it('says in the YAML that tls: auto can replace certbot, and the config routes and redirects like nginx', () => {
      assert.match(result.yaml, /# certbot's certificate for www\.a\.com: mpgate re-reads the files when certbot renews them[^\n]*\n {2}# [^\n]*"tls: auto" has mpgate get and renew it itself/);
      assert.match(result.yaml, /# redirect server block at \S*seed-users-https\.conf:22 \(plain HTTP → https\)/);
      const cfg = parseConfig(result.yaml);
      assert.equal(cfg.sites.length, 3);
      const table = new RoutingTable(configFromObject(result.config, 'imported'), pools);
      for (const host of ['www.a.com', 'x.a.com']) {
        const r = resolve(table, req('/page?x=1', host));
        assert.ok('redirect' in r, `plain HTTP to ${host} is redirected`);
      }
      assert.equal(ok(resolve(table, { ...req('/page', 'www.a.com'), proto: 'https' })).route.upstreams.items[0]!.origin, 'http://localhost:8000');
      assert.equal(ok(resolve(table, req('/page', 'y.a.com'))).route.upstreams.items[0]!.origin, 'http://localhost:8002');
    });
  });

  it('takes listen … ssl, [::]:443 ssl, http2 in either form into https.listen / https.http2', () => {
    const both = imp(`server { listen 443 ssl; listen [::]:443 ssl ipv6only=on; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(both.config.https, { listen: ['443'], http2: false });
    assert.match(both.yaml, /http2: false # no listen … http2 in nginx: HTTP\/1\.1 only, as there/);
    assert.equal(both.config.listen, undefined);
    assert.deepEqual(lines(both), []);
    const h2 = imp(`server { listen 127.0.0.1:8443 ssl http2; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(h2.config.https, { listen: ['127.0.0.1:8443'] });
    const on = imp(`http2 on; server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(on.config.https, { listen: ['0.0.0.0:443'] });
    const old = imp(`server { listen 443; ssl on; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(old.config.https, { listen: ['0.0.0.0:443'], http2: false });
    assert.deepEqual(lines(old), []);
    const h2c = imp(`server { listen 8080 http2; server_name a.test; ${PROXY} }`);
    assert.deepEqual(lines(h2c), ['1 listen: http2 without ssl (cleartext HTTP/2, h2c) is not in mpgate; not translated']);
  });

  it('reads certificates from the server or the http level; one missing or variables are findings', () => {
    const r = imp(`ssl_certificate /etc/ssl/http.pem; ssl_certificate_key /etc/ssl/http.key;
      server { listen 443 ssl; server_name a.test; ${PROXY} }
      server { listen 443 ssl; server_name b.test; ssl_certificate /etc/ssl/b.pem; ssl_certificate_key /etc/ssl/b.key; ssl_certificate /etc/ssl/b-rsa.pem; ssl_certificate_key /etc/ssl/b-rsa.key; ${PROXY} }
      server { listen 443 ssl; server_name d.test; ssl_certificate $ssl_server_name.pem; ssl_certificate_key $ssl_server_name.key; ${PROXY} }
      server { listen 443 ssl; server_name e.test; ssl_certificate certs/e.pem; ssl_certificate_key certs/e.key; ${PROXY} }`);
    assert.deepEqual(r.config.sites!.map((x) => x.tls), [
      { cert: '/etc/ssl/http.pem', key: '/etc/ssl/http.key' },
      { cert: '/etc/ssl/b.pem', key: '/etc/ssl/b.key' },
      undefined,
      { cert: 'certs/e.pem', key: 'certs/e.key' },
    ]);
    const m = lines(r);
    assert.ok(m.includes('3 ssl_certificate: mpgate serves one certificate per site: the first pair (/etc/ssl/b.pem) is used; not translated'), m.join('\n'));
    assert.ok(m.includes('4 ssl_certificate: "$ssl_server_name.pem": only a file name is translated (no variables or data:); the site is imported without tls'));
    assert.ok(m.some((x) => /^5 ssl_certificate: relative path: nginx reads it from its configuration directory/.test(x)));
    const half = imp(`server { listen 443 ssl; server_name c.test; ssl_certificate /etc/ssl/c.pem; ${PROXY} }`);
    assert.equal(half.config.sites![0]!.tls, undefined);
    assert.deepEqual(lines(half), ['1 ssl_certificate: no ssl_certificate_key goes with it: the site is imported without tls (tls needs both cert and key)']);
    const unused = imp(`ssl_certificate /etc/ssl/x.pem; ssl_certificate_key /etc/ssl/x.key; server { listen 80; server_name a.test; ssl_certificate /etc/ssl/a.pem; ${PROXY} }`);
    assert.deepEqual(lines(unused), [
      '1 ssl_certificate: this server has no listen … ssl, so nginx does not use it either; not translated',
      '1 ssl_certificate: no translated HTTPS server uses it; not translated',
      '1 ssl_certificate_key: no translated HTTPS server uses it; not translated',
    ]);
  });

  it('maps ssl_protocols to https.minVersion; below TLS 1.2 is a finding', () => {
    const proto = (p: string) => imp(`ssl_protocols ${p}; server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    const debian = proto('TLSv1 TLSv1.1 TLSv1.2 TLSv1.3');
    assert.equal(debian.config.https!.minVersion, 'TLSv1.2');
    assert.deepEqual(lines(debian), ['1 ssl_protocols: TLSv1 TLSv1.1 not translated: mpgate never goes below TLS 1.2 (WeChat requires 1.2 or newer)']);
    assert.equal(proto('TLSv1.3').config.https!.minVersion, 'TLSv1.3');
    assert.deepEqual(lines(proto('TLSv1.2')), ['1 ssl_protocols: mpgate always offers TLS 1.3 as well (TLS 1.3 cannot be turned off)']);
    const legacy = proto('TLSv1 TLSv1.1');
    assert.equal(legacy.config.https!.minVersion, undefined);
    assert.deepEqual(lines(legacy), ['1 ssl_protocols: TLSv1 TLSv1.1 not translated: mpgate never goes below TLS 1.2 (WeChat requires 1.2 or newer); minVersion stays TLSv1.2']);
    const two = imp(`ssl_protocols TLSv1.2 TLSv1.3; server { listen 443 ssl; server_name a.test; ssl_protocols TLSv1.3; ${CERT} ${PROXY} }`);
    assert.equal(two.config.https!.minVersion, 'TLSv1.2');
    assert.deepEqual(lines(two), ['1 ssl_protocols: mpgate has one value for all sites: "TLSv1.2 TLSv1.3" from t.conf:1 applies; not translated']);
    const noTls = imp(`ssl_protocols TLSv1.2; server { listen 80; server_name a.test; ${PROXY} }`);
    assert.equal(noTls.config.https, undefined);
    assert.deepEqual(lines(noTls), ['1 ssl_protocols: no HTTPS server here is translated, so it applies to nothing; not translated']);
  });

  it('takes ssl_ciphers only when every suite is ECDHE/TLS 1.3 with AES-GCM or ChaCha20; other ssl_* are "defaults apply" findings', () => {
    const safe = 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305';
    const r = imp(`server { listen 443 ssl; server_name a.test; ${CERT} ssl_ciphers ${safe}; ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
      ssl_prefer_server_ciphers on; ssl_session_cache shared:SSL:10m; ssl_session_tickets off; ssl_dhparam /etc/ssl/dh.pem; ssl_stapling on; ssl_ecdh_curve X25519; ${PROXY} }`);
    assert.equal(r.config.https!.ciphers, `TLS_AES_256_GCM_SHA384:${safe}`);
    const m = lines(r);
    assert.equal(m.length, 5, m.join('\n'));
    assert.ok(m.includes('2 ssl_session_cache: mpgate\'s defaults apply (node\'s TLS session resumption); not translated'));
    assert.ok(m.some((x) => /^2 ssl_dhparam: mpgate's defaults apply/.test(x)));
    assert.ok(m.some((x) => /^2 ssl_stapling: OCSP stapling is not in mpgate/.test(x)));
    const weak = imp(`server { listen 443 ssl; server_name a.test; ${CERT} ssl_ciphers HIGH:!aNULL:!MD5; ssl_prefer_server_ciphers off; ${PROXY} }`);
    assert.equal(weak.config.https!.ciphers, undefined);
    assert.deepEqual(lines(weak), [
      '1 ssl_prefer_server_ciphers: mpgate\'s defaults apply: the server\'s cipher order is preferred; not translated',
      '1 ssl_ciphers: "HIGH:!aNULL:!MD5" not translated: mpgate\'s list applies (mpgate\'s defaults apply: ECDHE with AES-GCM or ChaCha20 only); https.ciphers takes a list of such suites (names such as ECDHE-RSA-AES128-GCM-SHA256)',
    ]);
  });

  it('takes add_header Strict-Transport-Security as the site\'s hsts', () => {
    const hsts = (v: string, extra = ' always') => imp(`server { listen 443 ssl; server_name a.test; ${CERT} add_header Strict-Transport-Security "${v}"${extra}; ${PROXY} }`);
    assert.equal(hsts('max-age=31536000').config.sites![0]!.hsts, true);
    assert.deepEqual(hsts('max-age=600; includeSubDomains; preload', '').config.sites![0]!.hsts, { maxAge: '600s', includeSubDomains: true, preload: true });
    assert.deepEqual(hsts('max-age=86400').config.sites![0]!.hsts, { maxAge: '1d' });
    const bad = hsts('includeSubDomains');
    assert.equal(bad.config.sites![0]!.hsts, undefined);
    assert.deepEqual(lines(bad), ['1 add_header: "includeSubDomains" has no max-age; not translated']);
    const inherited = imp(`add_header Strict-Transport-Security "max-age=31536000" always; server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.equal(inherited.config.sites![0]!.hsts, true);
    assert.deepEqual(lines(inherited), []);
    const plain = imp(`server { listen 80; server_name a.test; add_header Strict-Transport-Security "max-age=1"; ${PROXY} }`);
    assert.deepEqual(lines(plain), ['1 add_header: browsers ignore Strict-Transport-Security over plain HTTP, and mpgate sends it over HTTPS only; not translated']);
  });

  it('folds a port-80 redirect server into the HTTPS site of its names, in every usual form', () => {
    for (const ret of ['return 301 https://$host$request_uri;', 'return 308 https://$server_name$request_uri;', 'return 301 https://a.test$request_uri;', 'return 301 https://$http_host$request_uri;',
      'if ($host = a.test) { return 301 https://$host$request_uri; } return 404;']) {
      const r = imp(`server { listen 80; server_name a.test; ${ret} } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
      assert.deepEqual(r.config.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/etc/ssl/a.pem', key: '/etc/ssl/a.key' } }], ret);
      assert.deepEqual(r.config.listen, ['0.0.0.0:80'], ret);
      assert.deepEqual(lines(r), [], ret);
    }
    // The catch-all form: every name on port 80 to https (mpgate redirects every site with tls).
    const all = imp(`server { listen 80 default_server; server_name _; return 301 https://$host$request_uri; } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(all.config.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/etc/ssl/a.pem', key: '/etc/ssl/a.key' } }]);
    assert.deepEqual(all.config.listen, ['0.0.0.0:80']);
    assert.equal(all.config.defaultSite, undefined);
    assert.deepEqual(all.findings, []);
    const approx = imp(`server { listen 80; server_name a.test b.test; return 302 https://$server_name$request_uri; }
      server { listen 80; server_name c.test; return 301 https://www.c.test:8443$request_uri; }
      server { listen 443 ssl; server_name a.test b.test c.test; ${CERT} ${PROXY} }`);
    assert.equal(approx.config.sites!.length, 1);
    assert.deepEqual(lines(approx), [
      '1 return: a temporary redirect (302) becomes mpgate\'s permanent one (301 for GET/HEAD, 308 for other methods)',
      '1 return: nginx redirects every name here to https://a.test; mpgate redirects each name to itself',
      '2 return: nginx redirects c.test to https://www.c.test; mpgate redirects each name to itself',
      '2 return: nginx redirects to port 8443; mpgate redirects to its first HTTPS listen port (443)',
    ]);
    const orphan = imp(`server { listen 80; server_name a.test z.test; return 301 https://$host$request_uri; } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(lines(orphan), ['1 return: z.test: no HTTPS server here serves it, so this redirect is not translated for it']);
    const none = imp(`server { listen 80; server_name z.test; return 301 https://$host$request_uri; } server { listen 80; server_name a.test; ${PROXY} }`);
    assert.deepEqual(lines(none), ['1 return: redirect to https (return 301 https://$host$request_uri) for z.test, which no HTTPS server here serves: not translated (mpgate redirects the sites it serves with tls)']);
  });

  it('serves plain HTTP too (redirectHttp: false) for a plain server proxying the same names or one server on both', () => {
    const twin = imp(`server { listen 80; server_name a.test; ${PROXY} } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(twin.config.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', tls: { cert: '/etc/ssl/a.pem', key: '/etc/ssl/a.key' }, redirectHttp: false }]);
    assert.deepEqual(twin.config.listen, ['0.0.0.0:80']);
    assert.deepEqual(lines(twin), []);
    const differs = imp(`server { listen 80; server_name a.test; location / { proxy_pass http://127.0.0.1:2; proxy_set_header Host $host; } } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.equal(differs.config.sites![0]!.upstream, 'http://127.0.0.1:1');
    assert.match(lines(differs)[0]!, /^1 server: this plain-HTTP server routes differently from the HTTPS server for the same names at t\.conf:1: mpgate has one site per name/);
    const combined = imp(`server { listen 80; listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.equal(combined.config.sites![0]!.redirectHttp, false);
    const scheme = imp(`server { listen 80; listen 443 ssl; server_name a.test; ${CERT} if ($scheme = http) { return 301 https://$host$request_uri; } ${PROXY} }`);
    assert.equal(scheme.config.sites![0]!.redirectHttp, undefined);
    assert.deepEqual(lines(scheme), []);
  });

  it('takes return 503 in front of the locations as disabled, and a TLS catch-all as unknownSni / defaultCert', () => {
    const disabled = imp(`server { listen 80; server_name a.test; return 503; ${PROXY} }`);
    assert.deepEqual(disabled.config.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1', disabled: true }]);
    assert.deepEqual(lines(disabled), []);
    const reject = imp(`server { listen 80 default_server; listen 443 ssl default_server; server_name _; ssl_reject_handshake on; return 404; }
      server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(reject.config.https, { listen: ['0.0.0.0:443'], http2: false, unknownSni: 'reject' });
    assert.deepEqual(reject.findings, []);
    const other = imp(`server { listen 443 ssl default_server; server_name _; ssl_certificate /etc/ssl/default.pem; ssl_certificate_key /etc/ssl/default.key; return 404; }
      server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.deepEqual(other.config.https!.defaultCert, { cert: '/etc/ssl/default.pem', key: '/etc/ssl/default.key' });
    const same = imp(`server { listen 443 ssl default_server; server_name _; ${CERT} return 404; } server { listen 443 ssl; server_name a.test; ${CERT} ${PROXY} }`);
    assert.equal(same.config.https!.defaultCert, undefined);
    const notCatchAll = imp(`server { listen 443 ssl; server_name a.test; ssl_reject_handshake on; ${CERT} ${PROXY} }`);
    assert.deepEqual(lines(notCatchAll), ['1 ssl_reject_handshake: only a catch-all default server\'s is translated (https.unknownSni: reject); not translated']);
  });
});

describe('nginx import: the real-world fixture', () => {
  it('imports a production-style nginx.conf into a valid config with every leftover reported', () => {
    const file = join(FIXTURES, 'real-world.conf');
    const loaded = loadNginx(file);
    const r = importNginx(loaded.directives, { source: 'real-world.conf', findings: loaded.findings });
    assert.equal(parseConfig(r.yaml).sites.length, 2);
    assert.equal(r.config.defaultSite, '~^(?<user>[a-z]+)\\.dev\\.a\\.com$');
    assert.deepEqual(r.config.sites![0]!.routes![1], { path: '/api/', upstream: ['http://127.0.0.1:9001/v2/', 'http://127.0.0.1:9002/v2/'], stripPrefix: true, setHeaders: { 'X-Api-Key': 's3cr3t' } });
    // The 80 → 443 pair is one site with certbot's files, redirected like nginx did.
    assert.deepEqual(r.config.sites![0]!.tls, { cert: '/etc/letsencrypt/live/shop.a.com/fullchain.pem', key: '/etc/letsencrypt/live/shop.a.com/privkey.pem' });
    assert.equal(r.config.sites![0]!.redirectHttp, undefined);
    assert.deepEqual(r.config.https, { listen: ['443'] });
    assert.deepEqual(r.config.listen, ['80']);
    const lines = r.findings.map((f) => `${f.line} ${f.directive}`);
    for (const expected of ['13 include', '61 proxy_set_header', '64 location', '69 root', '73 location', '82 proxy_pass']) {
      assert.ok(lines.includes(expected), `expected a finding "${expected}" in:\n${lines.join('\n')}`);
    }
    for (const translated of ['34 return', '37 listen', '38 listen', '41 ssl_certificate', '42 ssl_certificate_key']) {
      assert.ok(!lines.includes(translated), `"${translated}" is translated now:\n${lines.join('\n')}`);
    }
    assert.deepEqual(lines, [...lines].sort((a, b) => parseInt(a) - parseInt(b)), 'findings are in file order');
  });
});

describe('loadNginx: include', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-nginx-inc-'));
    await mkdir(join(dir, 'sites'));
    await writeFile(join(dir, 'nginx.conf'), 'http {\n  include sites/*.conf;\n  include /etc/nginx/mime.types;\n  include missing.conf;\n  include loop.conf;\n}\n');
    await writeFile(join(dir, 'sites/b.conf'), 'server { server_name b.test; location / { proxy_pass http://127.0.0.1:2; } }\n');
    await writeFile(join(dir, 'sites/a.conf'), 'server {\n  server_name a.test;\n  location / { include params; proxy_pass http://127.0.0.1:1; }\n}\n');
    await writeFile(join(dir, 'sites/skip.txt'), 'not ; valid {');
    await writeFile(join(dir, 'params'), 'proxy_set_header Host $host;\n');
    await writeFile(join(dir, 'loop.conf'), 'include loop.conf;\n');
    await writeFile(join(dir, 'broken.conf'), 'server {\n');
    await writeFile(join(dir, 'inc-broken.conf'), 'include broken.conf;\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('follows relative includes (patterns in name order, from the config directory) and reports the others', () => {
    const loaded = loadNginx(join(dir, 'nginx.conf'));
    const r = importNginx(loaded.directives, { findings: loaded.findings });
    assert.deepEqual(r.config.sites, [
      // a.conf includes "params" (Host $host) inside its location; b.conf sets no Host: nginx's $proxy_host.
      { hosts: ['a.test'], upstream: 'http://127.0.0.1:1' },
      { hosts: ['b.test'], routes: [{ path: '/', upstream: 'http://127.0.0.1:2', preserveHost: false }] },
    ]);
    const inc = loaded.findings.map((f) => `${f.line}: ${f.message}`);
    assert.equal(inc.length, 3, inc.join('\n'));
    assert.match(inc[0]!, /^3: \/etc\/nginx\/mime\.types not followed \(absolute path\)/);
    assert.match(inc[1]!, /^4: missing\.conf not followed: .* does not exist/);
    assert.match(inc[2]!, /^1: loop\.conf not followed: it includes itself/);
    // Directives keep the file they came from.
    const server = loaded.directives[0]!.block![0]!;
    assert.equal(server.file, join(dir, 'sites/a.conf'));
    assert.equal(server.line, 1);
  });

  it('reports a syntax error in an included file with that file and line', () => {
    assert.throws(() => loadNginx(join(dir, 'inc-broken.conf')), (err: Error) => err.message.startsWith(`${join(dir, 'broken.conf')}:2: unexpected end of file`));
    assert.throws(() => loadNginx(join(dir, 'nope.conf')), { code: 'ENOENT' });
  });

  it('reads the same file the same way twice (pure parse, deterministic output)', () => {
    const a = importNginx(loadNginx(join(dir, 'nginx.conf')).directives).yaml;
    const b = importNginx(loadNginx(join(dir, 'nginx.conf')).directives).yaml;
    assert.equal(a, b);
    assert.ok(readFileSync(join(dir, 'nginx.conf'), 'utf8').includes('include'));
  });
});
