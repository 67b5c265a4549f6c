/**
 * `mpgate site ...` as the administrator of a shared server uses it, against a running
 * `mpgate serve` that must pick every change up without a restart.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { isPortFree } from '../../src/admin/site-store.js';
import { runCli, spawnCli, startedPort, waitFor } from '../helpers.js';
import { issue } from '../support/tls-fixtures.js';

const CONFIG = `# one subdomain per user
listen: ["127.0.0.1:0"]
accessLog: false
sites:
  - name: legacy
    hosts: [legacy.test]
    upstream: http://127.0.0.1:8000   # the seed's first user
`;

describe('mpgate site (CLI) with a running gateway', () => {
  let dir: string;
  let file: string;
  let child: ReturnType<typeof spawnCli>;
  let gw: string;
  const servers: http.Server[] = [];
  const site = (...args: string[]) => runCli(['site', ...args, '--config', file]);

  /** A service on 127.0.0.1:port, as the user would start it on the port they were given. */
  const serve = async (port: number, name: string) => {
    const s = http.createServer((_req, res) => res.end(name)).listen(port, '127.0.0.1');
    await once(s, 'listening');
    servers.push(s);
  };
  const viaGateway = async (host: string) => {
    const r = await request(`${gw}/`, { headers: { host } });
    return { status: r.statusCode, code: r.headers['x-mpgate-error'], body: await r.body.text() };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-site-cli-'));
    file = join(dir, 'mpgate.yaml');
    await writeFile(file, CONFIG);
    child = spawnCli(['serve', '--config', file]);
    gw = `http://127.0.0.1:${await startedPort(child)}`;
  });

  after(async () => {
    child.kill('SIGTERM');
    await once(child, 'close');
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await rm(dir, { recursive: true, force: true });
  });

  let alicePort = 0;
  let bobPort = 0;

  it('site add picks 8000, 8001, ... skipping ports a site uses or a process holds', async () => {
    const a = await site('add', 'a.test', '--owner', 'alice');
    assert.equal(a.code, 0, a.stderr);
    alicePort = Number(/127\.0\.0\.1:(\d+)/.exec(a.stdout)?.[1]);
    const b = await site('add', 'b.test', '--owner', 'bob');
    assert.equal(b.code, 0, b.stderr);
    bobPort = Number(/127\.0\.0\.1:(\d+)/.exec(b.stdout)?.[1]);
    // 8000 is legacy's; anything skipped between must have been held by some process on this machine.
    assert.ok(alicePort > 8000 && bobPort > alicePort, `${alicePort}, ${bobPort}`);
    for (let p = 8001; p < bobPort; p++) if (p !== alicePort) assert.equal(await isPortFree(p), false, `port ${p} was skipped but is free`);
    assert.match(a.stdout, new RegExp(`the service must listen on 127\\.0\\.0\\.1:${alicePort}`));
    const text = await readFile(file, 'utf8');
    assert.ok(text.startsWith(CONFIG), 'the hand-written part is unchanged, comments included');
    assert.match(text, /# alice's site, added \d{4}-\d\d-\d\d by cli:\S+\n {2}- name: a\.test\n {4}hosts: \[a\.test\]\n {4}owner: alice\n/);
    const explicit = await site('add', 'c.test', '--owner', 'carol', '--port', '8000');
    assert.equal(explicit.code, 0, 'an explicit port is the administrator\'s call');
  });

  it('the running gateway routes the new host without a restart', async () => {
    await serve(alicePort, 'alice-app');
    const r = await waitFor(async () => {
      const x = await viaGateway('a.test');
      return x.status === 200 ? x : undefined;
    }, 5000, 'a.test to be routed');
    assert.equal(r?.body, 'alice-app');
    assert.ok(!child.err().includes('"level":50'), 'no errors in the gateway log');
  });

  it('site list shows host, owner, upstream, up/down and certificate expiry', async () => {
    const r = await site('list');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^SITE\s+HOSTS\s+OWNER\s+UPSTREAM\s+STATUS\s+CERTIFICATE$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
    assert.match(row('a.test'), new RegExp(`a\\.test\\s+alice\\s+http://127\\.0\\.0\\.1:${alicePort}\\s+up\\s+-`));
    assert.match(row('b.test'), /b\.test\s+bob\s+\S+\s+down\s+-/);
    const json = JSON.parse((await site('list', '--json', '--owner', 'alice')).stdout) as { name: string; status: string; upstreams: { up: boolean }[] }[];
    assert.deepEqual(json.map((s) => [s.name, s.status, s.upstreams[0]!.up]), [['a.test', 'up', true]]);
  });

  it('certificate expiry comes from the tls files (and the ACME storage)', async () => {
    const certDir = join(dir, 'certs');
    await mkdir(certDir);
    const leaf = await issue(certDir, { name: 'c', names: ['tls.test'], days: 30 });
    const other = join(dir, 'tls.yaml');
    await writeFile(other, `listen: ["127.0.0.1:0"]\nacme: { storage: ${join(dir, 'acme')} }\nsites:\n  - hosts: [tls.test]\n    upstream: http://127.0.0.1:1\n    tls: { cert: ${leaf.certFile}, key: ${leaf.keyFile} }\n  - hosts: [auto.test]\n    upstream: http://127.0.0.1:1\n    tls: auto\n`);
    const r = await runCli(['site', 'list', '--config', other]);
    assert.equal(r.code, 0, r.stderr);
    const expiry = new Date(leaf.x509.validTo).toISOString().slice(0, 10);
    assert.match(r.stdout, new RegExp(`tls\\.test .*${expiry} \\((29|30) days\\)`));
    assert.match(r.stdout, /auto\.test .*not issued yet/);
  });

  it('disable answers 503 MPG_SITE_DISABLED, enable routes again', async () => {
    const off = await site('disable', 'a.test');
    assert.equal(off.code, 0, off.stderr);
    await waitFor(async () => (await viaGateway('a.test')).code === 'MPG_SITE_DISABLED', 5000, 'a.test to be disabled');
    assert.equal((await viaGateway('a.test')).status, 503);
    const on = await site('enable', 'a.test');
    assert.equal(on.code, 0, on.stderr);
    await waitFor(async () => (await viaGateway('a.test')).status === 200, 5000, 'a.test to be enabled');
  });

  it('site test reports each hop, and names the one that fails with its fix', async () => {
    const ok = await site('test', 'a.test', '--gateway', gw);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^note dns {7}a\.test does not resolve from here/m);
    assert.match(ok.stdout, /^ok {3}host {6}"a\.test" is site "a\.test", owner alice$/m);
    assert.match(ok.stdout, new RegExp(`^ok {3}upstream {2}http://127\\.0\\.0\\.1:${alicePort} accepts connections`, 'm'));
    assert.match(ok.stdout, /^ok {3}request {3}GET \/ with Host a\.test through 127\.0\.0\.1:\d+: 200 from the upstream/m);

    const down = await site('test', 'b.test', '--gateway', gw, '--json');
    assert.equal(down.code, 1);
    const report = JSON.parse(down.stdout) as { ok: boolean; hops: { name: string; ok: boolean; detail: string; fix?: string }[] };
    assert.equal(report.ok, false);
    const up = report.hops.find((h) => h.name === 'upstream')!;
    assert.equal(up.ok, false);
    assert.match(up.fix!, new RegExp(`listens on 127\\.0\\.0\\.1:${bobPort}`));
    assert.match(report.hops.find((h) => h.name === 'request')!.detail, /502 MPG_UPSTREAM_REFUSED/);

    const unknown = await site('test', 'nobody.test', '--gateway', gw);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /^FAIL host {6}no site serves "nobody\.test"/m);
    assert.match(unknown.stdout, /mpgate site add nobody\.test/);
  });

  it('site remove takes the site out of the running gateway', async () => {
    const r = await site('remove', 'b.test');
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await viaGateway('b.test')).code === 'MPG_NO_SITE', 5000, 'b.test to be gone');
    assert.ok(!(await readFile(file, 'utf8')).includes('b.test'));
  });

  it('refusals exit 1 with the reason and leave the file alone; usage mistakes exit 2', async () => {
    const before = await readFile(file, 'utf8');
    const dup = await site('add', 'A.TEST');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already served/);
    const bad = await site('add', 'd.test', '--upstream', 'ftp://x');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /sites\[\d+\]\.upstream: expected an upstream URL/);
    const missing = await site('remove', 'nope.test');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no site is named "nope\.test"/);
    assert.equal(await readFile(file, 'utf8'), before);
    assert.equal((await site('add')).code, 2);
    assert.equal((await site('frobnicate', 'x')).code, 2);
    assert.equal((await site('add', 'e.test', '--port', '8001', '--upstream', 'http://127.0.0.1:1')).code, 2);
    assert.equal((await site('add', 'e.test', '--port', 'eighty')).code, 2);
    const help = await runCli(['site', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /mpgate site add HOST/);
    const audit = (await readFile(join(dir, 'mpgate-audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; ok: boolean });
    assert.ok(audit.some((l) => l.action === 'site.add' && !l.ok), 'refused changes are audited');
    assert.ok(audit.some((l) => l.action === 'site.remove' && l.ok));
  });

  it('a non-loopback admin listener without tls and a token is refused when the config loads', async () => {
    const exposed = join(dir, 'exposed.yaml');
    await writeFile(exposed, 'listen: ["127.0.0.1:0"]\nadmin:\n  listen: 0.0.0.0:0\n');
    const check = await runCli(['check', '--config', exposed]);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /admin\.listen: the admin listener binds to a non-loopback address .* needs admin\.tls and at least one token/);
    const serveIt = await runCli(['serve', '--config', exposed]);
    assert.equal(serveIt.code, 1);
    assert.match(serveIt.stderr, /admin\.listen/);
  });
});
