/**
 * The shared server as its administrator and two users see it: tokens made with the real CLI, the
 * real `mpgate serve` process with its admin listener on 127.0.0.1:0, the API driven over HTTP, and
 * requests through the gateway to check that every answered change is already live.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import { runCli, spawnCli, startBackend, waitFor, type Backend } from '../helpers.js';
import { serveWithAdmin, tokenAdd } from '../support/admin.js';

interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

describe('admin API: an administrator and two users (alice, bob)', () => {
  let dir: string;
  let file: string;
  let auditFile: string;
  let child: ReturnType<typeof spawnCli>;
  let gw: string;
  let admin: string;
  let aliceBackend: Backend;
  const tokens: Record<'root' | 'alice' | 'bob', string> = { root: '', alice: '', bob: '' };
  const backends: Backend[] = [];

  const api = async (who: keyof typeof tokens | null, method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const r = await request(`${admin}${path}`, {
      method: method as 'GET',
      headers: { ...(who ? { authorization: `Bearer ${tokens[who]}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, json: text && (r.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : text };
  };
  const viaGateway = async (host: string, path = '/') => {
    const r = await request(`${gw}${path}`, { headers: { host } });
    return { status: r.statusCode, code: r.headers['x-mpgate-error'], body: await r.body.text() };
  };
  const auditLines = async () => (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    aliceBackend = await startBackend(undefined, 'alice-app');
    dir = await mkdtemp(join(tmpdir(), 'mpgate-admin-'));
    file = join(dir, 'mpgate.yaml');
    auditFile = join(dir, 'mpgate-audit.log');
    // The range starts at a port this test holds, so "skip what is bound" is exercised too.
    const holder = http.createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const from = (holder.address() as import('node:net').AddressInfo).port;
    backends.push({ server: holder, port: from, url: '', seen: [], close: () => new Promise((r) => holder.close(() => r())) });
    await writeFile(file, [
      '# The team server (hand-written; this comment must survive every change)',
      'listen: ["127.0.0.1:0"]',
      'accessLog: false',
      'admin:',
      '  listen: 127.0.0.1:0',
      `  ports: { from: ${from}, to: ${Math.min(from + 300, 65535)} }`,
      'sites:',
      '  # alice\'s app, set up by hand',
      '  - name: alice-app',
      '    hosts: [x.test]',
      '    owner: alice',
      `    upstream: ${aliceBackend.url}`,
      '',
    ].join('\n'));
    for (const [name, args] of [['root', ['--role', 'admin']], ['alice', []], ['bob', []]] as const) {
      tokens[name] = await tokenAdd(file, name, args);
    }
    const s = await serveWithAdmin(file);
    ({ child, admin } = s);
    gw = `http://127.0.0.1:${s.port}`;
  });

  after(async () => {
    child.kill('SIGTERM');
    await once(child, 'close');
    await aliceBackend.close();
    for (const b of backends) await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps only token hashes at rest, and each token says who it is', async () => {
    const text = await readFile(file, 'utf8');
    for (const t of Object.values(tokens)) assert.ok(!text.includes(t) && !text.includes(t.slice(4)), 'no token in the config file');
    assert.equal(text.match(/hash: scrypt\$16384\$8\$1\$/g)?.length, 3);
    assert.ok(text.startsWith('# The team server (hand-written'));
    const audit = await readFile(auditFile, 'utf8');
    for (const t of Object.values(tokens)) assert.ok(!audit.includes(t.slice(4)), 'no token in the audit log');
    assert.deepEqual((await api('root', 'GET', '/api/v1/me')).json, { name: 'root', role: 'admin', user: 'root' });
    assert.deepEqual((await api('alice', 'GET', '/api/v1/me')).json, { name: 'alice', role: 'user', user: 'alice' });
    assert.deepEqual((await api('bob', 'GET', '/api/v1/me')).json, { name: 'bob', role: 'user', user: 'bob' });
  });

  it('refuses missing and wrong tokens with 401', async () => {
    const none = await api(null, 'GET', '/api/v1/sites');
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'MPGA_UNAUTHORIZED');
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const r = await request(`${admin}/api/v1/sites`, { headers: { authorization: `Bearer mpg_${'A'.repeat(43)}` } });
    assert.equal(r.statusCode, 401);
    await r.body.dump();
  });

  it('a user sees only its own sites; the admin sees all', async () => {
    const alice = await api('alice', 'GET', '/api/v1/sites');
    assert.equal(alice.status, 200);
    assert.deepEqual(alice.json.sites.map((s: { name: string }) => s.name), ['alice-app']);
    const site = alice.json.sites[0];
    assert.equal(site.owner, 'alice');
    assert.equal(site.upstream, aliceBackend.url);
    assert.equal(site.routes, 1);
    assert.equal(site.disabled, false);
    assert.equal(site.tls, null);
    assert.deepEqual(site.upstreams, [{ origin: aliceBackend.url, up: true }]);
    assert.equal(typeof site.stats.rps, 'number');
    assert.deepEqual((await api('bob', 'GET', '/api/v1/sites')).json.sites, []);
    assert.equal((await api('root', 'GET', '/api/v1/sites')).json.sites.length, 1);
  });

  it('bob adds his own site (next free port), and it is routed when the answer arrives', async () => {
    const r = await api('bob', 'POST', '/api/v1/sites', { host: 'y.test' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.site.owner, 'bob');
    const port = Number(String(r.json.site.upstream).split(':').pop());
    assert.notEqual(port, backends[0]!.port, 'the bound first port of the range is skipped');
    // Nothing listens there yet: the site shows its upstream down (probed, not just never tried).
    const before = (await api('bob', 'GET', '/api/v1/sites/y.test')).json.site;
    assert.deepEqual(before.upstreams, [{ origin: `http://127.0.0.1:${port}`, up: false }]);
    // The user now starts the service on the port the admin API handed out.
    const server = http.createServer((_req, res) => res.end('bob-app')).listen(port, '127.0.0.1');
    await once(server, 'listening');
    backends.push({ server, port, url: '', seen: [], close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }) });
    const res = await viaGateway('y.test');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'bob-app');
    assert.deepEqual((await api('bob', 'GET', '/api/v1/sites')).json.sites.map((s: { name: string }) => s.name), ['y.test']);
    const line = (await auditLines()).find((l) => l.action === 'site.add' && l.site === 'y.test');
    assert.ok(line);
    assert.equal(line.who, 'bob');
    assert.equal(line.ok, true);
    assert.equal(line.ip, '127.0.0.1');
  });

  it('bob cannot read or change alice\'s site: 403 every time, each audited, the file untouched', async () => {
    const before = await readFile(file, 'utf8');
    const probes: [string, string, unknown?][] = [
      ['GET', '/api/v1/sites/alice-app'],
      ['PATCH', '/api/v1/sites/alice-app', { upstream: 'http://127.0.0.1:1' }],
      ['DELETE', '/api/v1/sites/alice-app'],
      ['POST', '/api/v1/sites/alice-app/disable'],
      ['POST', '/api/v1/sites/alice-app/enable'],
      ['POST', '/api/v1/sites/alice-app/test'],
      ['GET', '/api/v1/errors?site=alice-app'],
      ['POST', '/api/v1/sites', { host: 'z.test', owner: 'alice' }],
    ];
    const auditBefore = (await auditLines()).length;
    for (const [method, path, body] of probes) {
      const r = await api('bob', method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'MPGA_FORBIDDEN');
    }
    assert.equal(await readFile(file, 'utf8'), before);
    const denied = (await auditLines()).slice(auditBefore);
    assert.equal(denied.length, probes.length);
    for (const l of denied) {
      assert.equal(l.who, 'bob');
      assert.equal(l.ok, false);
      assert.equal(l.status, 403);
    }
    assert.deepEqual(denied.map((l) => l.site), ['alice-app', 'alice-app', 'alice-app', 'alice-app', 'alice-app', 'alice-app', 'alice-app', 'z.test']);
    // Nor can he point his own site at what he was not given.
    for (const upstream of ['http://169.254.169.254', aliceBackend.url, admin]) {
      const r = await api('bob', 'PATCH', '/api/v1/sites/y.test', { upstream });
      assert.equal(r.status, 403, upstream);
    }
    const wildcard = await api('bob', 'POST', '/api/v1/sites', { host: '*.test' });
    assert.equal(wildcard.status, 403);
    assert.equal(await readFile(file, 'utf8'), before);
  });

  it('an invalid change is refused with the validation problems, leaving the file byte-identical', async () => {
    const before = await readFile(file, 'utf8');
    const bad = await api('root', 'PATCH', '/api/v1/sites/alice-app', { upstream: 'ftp://x' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'MPGA_INVALID');
    assert.ok(bad.json.error.problems.some((p: { key: string; message: string }) => p.key === 'sites[0].upstream' && /upstream URL/.test(p.message)), JSON.stringify(bad.json));
    const badHost = await api('alice', 'PATCH', '/api/v1/sites/alice-app', { hosts: ['x.test', 'not a host!'] });
    assert.equal(badHost.status, 400);
    assert.ok(badHost.json.error.problems.some((p: { key: string }) => p.key === 'sites[0].hosts[1]'));
    const unknownField = await api('root', 'POST', '/api/v1/sites', { host: 'n.test', upstreem: 'http://127.0.0.1:1' });
    assert.equal(unknownField.status, 400);
    assert.equal(unknownField.json.error.problems[0].key, '(body)');
    const notJson = await api('root', 'POST', '/api/v1/sites', '{"host":');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.error.code, 'MPGA_BAD_JSON');
    const conflict = await api('root', 'POST', '/api/v1/sites', { host: 'X.TEST', port: 9 });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.json.error.code, 'MPGA_CONFLICT');
    const missing = await api('root', 'PATCH', '/api/v1/sites/nope', { disabled: true });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'MPGA_NO_SUCH_SITE');
    const big = await api('root', 'POST', '/api/v1/sites', JSON.stringify({ host: 'big.test', pad: 'x'.repeat(70 * 1024) }));
    assert.equal(big.status, 413);
    assert.equal(await readFile(file, 'utf8'), before);
    const refused = (await auditLines()).filter((l) => l.ok === false && l.status === 400 && l.action === 'site.update');
    assert.ok(refused.some((l) => JSON.stringify(l.errors).includes('sites[0].upstream')), 'refused changes are audited with their problems');
    const codes = (await auditLines()).map((l) => (l.errors as { code?: string } | undefined)?.code);
    for (const code of ['MPGA_BAD_JSON', 'MPGA_TOO_LARGE', 'MPGA_CONFLICT', 'MPGA_NO_SUCH_SITE']) assert.ok(codes.includes(code), `${code} is audited`);
  });

  it('disable answers 503 MPG_SITE_DISABLED at once; enable routes again', async () => {
    assert.equal((await viaGateway('x.test')).status, 200);
    const off = await api('alice', 'POST', '/api/v1/sites/alice-app/disable');
    assert.equal(off.status, 200);
    assert.equal(off.json.site.disabled, true);
    const r = await viaGateway('x.test');
    assert.equal(r.status, 503);
    assert.equal(r.code, 'MPG_SITE_DISABLED');
    assert.match(await readFile(file, 'utf8'), /disabled: true/);
    const on = await api('alice', 'POST', '/api/v1/sites/alice-app/enable');
    assert.equal(on.json.site.disabled, false);
    assert.equal((await viaGateway('x.test')).status, 200);
    assert.ok(!(await readFile(file, 'utf8')).includes('disabled'));
  });

  it('alice changes her site\'s hosts and tests it hop by hop', async () => {
    const r = await api('alice', 'PATCH', '/api/v1/sites/alice-app', { hosts: ['x.test', 'www.x.test'] });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.site.hosts, ['x.test', 'www.x.test']);
    assert.equal((await viaGateway('www.x.test')).status, 200);
    const t = await api('alice', 'POST', '/api/v1/sites/alice-app/test', { host: 'www.x.test', path: '/hello' });
    assert.equal(t.status, 200);
    assert.deepEqual(t.json.hops.map((h: { name: string; ok: boolean }) => [h.name, h.ok]), [['dns', true], ['host', true], ['upstream', true], ['request', true]]);
    assert.equal(t.json.ok, true);
    const wrongHost = await api('alice', 'POST', '/api/v1/sites/alice-app/test', { host: 'y.test' });
    assert.equal(wrongHost.status, 400, 'a user cannot test someone else\'s host through her own site');
  });

  it('recent errors: each user sees only its own sites\' failures', async () => {
    const r = await api('bob', 'POST', '/api/v1/sites', { host: 'down.test' });
    assert.equal(r.status, 201);
    assert.equal((await viaGateway('down.test', '/broken')).status, 502);
    const bob = await api('bob', 'GET', '/api/v1/errors');
    assert.ok(bob.json.errors.some((e: { site: string; path: string }) => e.site === 'down.test' && e.path === '/broken'), JSON.stringify(bob.json));
    const alice = await api('alice', 'GET', '/api/v1/errors');
    assert.ok(alice.json.errors.every((e: { site: string }) => e.site === 'alice-app'), JSON.stringify(alice.json));
    const root = await api('root', 'GET', '/api/v1/errors?limit=5');
    assert.ok(root.json.errors.some((e: { site: string }) => e.site === 'down.test'));
    const del = await api('bob', 'DELETE', '/api/v1/sites/down.test');
    assert.equal(del.status, 200);
    assert.equal(del.json.removed.name, 'down.test');
    assert.equal((await viaGateway('down.test')).code, 'MPG_NO_SITE');
  });

  it('serves /metrics without a token on loopback and the dashboard page with its CSP', async () => {
    // A request just now: its kept-alive upstream connection is idle in the pool at the scrape.
    assert.equal((await viaGateway('x.test')).status, 200);
    const m = await request(`${admin}/metrics`);
    assert.equal(m.statusCode, 200);
    assert.match(String(m.headers['content-type']), /text\/plain/);
    const text = await m.body.text();
    assert.match(text, /mpgate_requests_total\{site="alice-app"/);
    // alice's backend is listed with the connection that request left idle.
    const origin = new URL(aliceBackend.url).origin;
    assert.match(text, new RegExp(`mpgate_upstream_connections\\{origin="${origin.replace(/[.]/g, '\\.')}",state="idle"\\} [1-9]`));
    assert.match(text, new RegExp(`mpgate_upstream_queued\\{origin="${origin.replace(/[.]/g, '\\.')}"\\} 0`));
    const page = await request(`${admin}/`);
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(await page.body.text(), /<html/i);
    const nope = await api('root', 'GET', '/api/v1/nothing');
    assert.equal(nope.status, 404);
    const wrong = await api('root', 'PUT', '/api/v1/sites');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET, POST');
  });

  it('a token added or removed with the CLI counts from the gateway\'s next reload', async () => {
    const carol = await tokenAdd(file, 'carol');
    const me = async () => (await request(`${admin}/api/v1/me`, { headers: { authorization: `Bearer ${carol}` } })).statusCode;
    await waitFor(async () => (await me()) === 200, 5000, 'the new token to work');
    const list = await runCli(['admin', 'token', 'list', '--config', file]);
    assert.match(list.stdout, /^carol\s+user\s+carol$/m);
    assert.ok(!list.stdout.includes('scrypt'), 'list never shows hashes');
    const remove = await runCli(['admin', 'token', 'remove', 'carol', '--config', file]);
    assert.equal(remove.code, 0, remove.stderr);
    await waitFor(async () => (await me()) === 401, 5000, 'the removed token to stop working');
    assert.equal((await runCli(['admin', 'token', 'add', 'root', '--config', file])).code, 1, 'names are unique');
  });

  it('the file stays valid, readable and commented after all of it', async () => {
    const text = await readFile(file, 'utf8');
    const cfg = parseConfig(text);
    assert.deepEqual(cfg.sites.map((s) => s.name), ['alice-app', 'y.test']);
    assert.ok(text.startsWith('# The team server (hand-written; this comment must survive every change)\n'));
    assert.ok(text.includes("  # alice's app, set up by hand\n  - name: alice-app\n"));
    assert.match(text, /# bob's site, added \d{4}-\d\d-\d\d by bob\n {2}- name: y\.test\n {4}hosts: \[y\.test\]\n {4}owner: bob\n/);
  });
});
