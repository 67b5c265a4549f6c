import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, utimes, writeFile, readdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { AuditLog } from '../../src/admin/audit.js';
import { AdminError, carryOver, isPortFree, nextFreePort, SiteStore } from '../../src/admin/site-store.js';

const BASE = `# Shared server: one subdomain per user.
listen: ["127.0.0.1:0"]
accessLog: false

limits:
  maxBodySize: 10MiB        # aligned comments stay aligned
  headersTimeout: 10s       # (the yaml library would re-space these)

sites:
  # the first site, hand-written
  - name: alice
    hosts: [x.a.com]
    upstream: http://127.0.0.1:8000   # alice's service

  - name: bob
    hosts: ["*.bob.a.com"]
    owner: bob
    upstream: http://127.0.0.1:8002

# after the sites
admin:
  listen: 127.0.0.1:0
`;

async function rejectsWith(p: Promise<unknown>, code: string): Promise<AdminError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AdminError, `expected an AdminError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('SiteStore', () => {
  let dir: string;
  let file: string;
  let store: SiteStore;
  // Ports the tests may see taken by something else on this machine: assert what the picker may
  // skip rather than exact numbers where a real probe is involved.
  const noProbe = async () => true;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-store-'));
    file = join(dir, 'mpgate.yaml');
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    await writeFile(file, BASE);
    store = new SiteStore(file);
  });

  it('adds a commented site and leaves every other line byte for byte', async () => {
    const { site } = await store.add({ host: 'y.a.com', owner: 'carol', port: 8005 }, { by: 'root', now: new Date('2026-11-21T10:00:00Z') });
    assert.deepEqual(site, { name: 'y.a.com', hosts: ['y.a.com'], owner: 'carol', upstream: 'http://127.0.0.1:8005', routes: 1, disabled: false, tls: null });
    const text = await readFile(file, 'utf8');
    const added = `\n  # carol's site, added 2026-11-21 by root\n  - name: y.a.com\n    hosts: [y.a.com]\n    owner: carol\n    upstream: http://127.0.0.1:8005\n`;
    const at = BASE.indexOf('\n# after the sites');
    assert.equal(text, BASE.slice(0, at) + added + BASE.slice(at));
    assert.equal(parseConfig(text).sites.length, 3);
  });

  it('picks the lowest port of admin.ports that no site uses and nothing listens on', async () => {
    const config = parseConfig(BASE);
    assert.equal(await nextFreePort(config, noProbe), 8001, '8000 and 8002 are sites\' upstreams');
    const bound = new Set([8001, 8003]);
    assert.equal(await nextFreePort(config, async (p) => !bound.has(p)), 8004, 'bound ports are skipped');
    const full = parseConfig(`${BASE}  ports: { from: 8000, to: 8002 }\n`);
    await rejectsWith(nextFreePort(full, async (p) => p !== 8001), 'MPGA_NO_FREE_PORT');
  });

  it('isPortFree sees a real listener', async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    assert.equal(await isPortFree(port), false);
    await new Promise((r) => server.close(r));
    assert.equal(await isPortFree(port), true);
  });

  it('refuses an invalid change with the validation problems and leaves the file byte-identical', async () => {
    const before = await stat(file);
    const err = await rejectsWith(store.update('alice', { upstream: 'ftp://x' }), 'MPGA_INVALID');
    assert.equal(err.status, 400);
    assert.ok(err.problems?.some((p) => p.key === 'sites[0].upstream' && /upstream URL/.test(p.message)), JSON.stringify(err.problems));
    const bad = await rejectsWith(store.add({ host: 'not a host!', port: 8009 }), 'MPGA_INVALID');
    assert.ok(bad.problems?.some((p) => p.key === 'sites[2].hosts[0]'));
    assert.equal(await readFile(file, 'utf8'), BASE);
    assert.equal((await stat(file)).mtimeMs, before.mtimeMs);
    assert.deepEqual((await readdir(dir)).sort(), ['mpgate.yaml'], 'no temp or lock file left behind');
  });

  it('refuses a host or name already served (409), including "*.a.com" written as ".a.com"', async () => {
    await rejectsWith(store.add({ host: 'X.A.COM', port: 8009 }), 'MPGA_CONFLICT');
    await rejectsWith(store.add({ host: '.bob.a.com', port: 8009 }), 'MPGA_CONFLICT');
    await rejectsWith(store.add({ host: 'z.a.com', name: 'alice', port: 8009 }), 'MPGA_CONFLICT');
    await rejectsWith(store.update('nobody', { disabled: true }), 'MPGA_NO_SUCH_SITE');
    assert.equal(await readFile(file, 'utf8'), BASE);
  });

  it('disables and enables in place (disabled: true, then the line is gone again)', async () => {
    await store.setDisabled('bob', true);
    assert.match(await readFile(file, 'utf8'), /owner: bob\n {4}upstream: http:\/\/127\.0\.0\.1:8002\n {4}disabled: true\n/);
    assert.equal((await store.list()).sites[1]!.disabled, true);
    await store.setDisabled('bob', false);
    assert.equal(await readFile(file, 'utf8'), BASE);
  });

  it('updates keep the trailing comment of a replaced value, and changing hosts keeps the name', async () => {
    await store.update('alice', { upstream: 'http://127.0.0.1:8007' });
    assert.match(await readFile(file, 'utf8'), /upstream: http:\/\/127\.0\.0\.1:8007 +# alice's service/);
    await writeFile(file, BASE.replace('  - name: bob\n    hosts:', '  - hosts:'));
    await store.update('*.bob.a.com', { hosts: ['y.bob.a.com', 'z.bob.a.com'], owner: 'robert', maxBodySize: '20MiB' });
    const site = parseConfig(await readFile(file, 'utf8')).sites[1]!;
    assert.equal(site.name, '*.bob.a.com', 'the implicit name is written out, so the site keeps it');
    assert.deepEqual(site.hosts, ['y.bob.a.com', 'z.bob.a.com']);
    assert.equal(site.owner, 'robert');
    assert.equal(site.maxBodySize, 20 * 1024 * 1024);
  });

  it('removes a site with the comment written above it', async () => {
    await store.remove('alice');
    let text = await readFile(file, 'utf8');
    assert.ok(!text.includes('hand-written') && !text.includes('alice'), text);
    assert.ok(text.includes('# Shared server') && text.includes('# after the sites') && text.includes('# aligned comments stay aligned'));
    await store.add({ host: 'c.a.com', owner: 'carol', port: 8010 }, { by: 'root' });
    await store.remove('c.a.com');
    text = await readFile(file, 'utf8');
    assert.ok(!text.includes('carol'), text);
    assert.equal(parseConfig(text).sites.length, 1);
  });

  it('runs a guard inside the lock and writes nothing when it refuses', async () => {
    const seen: string[] = [];
    await rejectsWith(store.remove('bob', { guard: (_cfg, before) => {
      seen.push(before?.owner ?? '-');
      throw new AdminError('MPGA_FORBIDDEN', 'no');
    } }), 'MPGA_FORBIDDEN');
    assert.deepEqual(seen, ['bob']);
    assert.equal(await readFile(file, 'utf8'), BASE);
  });

  it('keeps the file mode', async () => {
    await chmod(file, 0o640);
    await store.setDisabled('alice', true);
    assert.equal((await stat(file)).mode & 0o777, 0o640);
  });

  it('20 concurrent adds (two stores on one file) all land, each with its own port', async () => {
    const other = new SiteStore(file);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).add({ host: `u${i}.a.com`, owner: `user${i}` }, { by: 'root' })));
    const cfg = parseConfig(await readFile(file, 'utf8'));
    assert.equal(cfg.sites.length, 22);
    const ports = results.map((r) => Number(String(r.site.upstream).split(':').pop()));
    assert.equal(new Set(ports).size, 20, `ports: ${ports.join(',')}`);
    for (const p of ports) assert.ok(p >= 8000 && p <= 8999 && p !== 8000 && p !== 8002);
    const text = await readFile(file, 'utf8');
    for (let i = 0; i < 20; i++) assert.ok(text.includes(`# user${i}'s site, added`), `comment of user${i}`);
    assert.ok(text.startsWith(BASE.slice(0, BASE.indexOf('\n# after the sites'))));
  });

  it('waits for a lock another process holds, breaks a stale one, and gives up after the wait', async () => {
    const lock = `${file}.lock`;
    await writeFile(lock, '99999 held\n');
    const waiting = store.setDisabled('alice', true);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await readFile(file, 'utf8'), BASE, 'nothing written while the lock is held');
    await unlink(lock);
    await waiting;
    assert.match(await readFile(file, 'utf8'), /disabled: true/);

    await writeFile(lock, '99999 died\n');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    await store.setDisabled('alice', false);
    assert.equal(await readFile(file, 'utf8'), BASE, 'a stale lock is broken');

    await writeFile(lock, '99999 busy\n');
    await rejectsWith(new SiteStore(file, { lockTimeoutMs: 150 }).setDisabled('alice', true), 'MPGA_LOCKED');
    await unlink(lock);
  });

  it('will not edit a file that is invalid as it is', async () => {
    await writeFile(file, `${BASE}bogus: 1\n`);
    const err = await rejectsWith(store.add({ host: 'n.a.com', port: 8009 }), 'MPGA_INVALID');
    assert.ok(err.problems?.some((p) => p.key === 'bogus'));
  });
});

describe('carryOver', () => {
  it('takes the changed lines from the new text and every other line from the original', () => {
    const original = 'a: 1     # spaced\nb: [1,2]\nc: 3\n';
    const before = 'a: 1 # spaced\nb: [1, 2]\nc: 3\n';
    const after = 'a: 1 # spaced\nb: [1, 2]\nc: 4\n';
    assert.equal(carryOver(original, before, after), 'a: 1     # spaced\nb: [1,2]\nc: 4\n');
  });

  it('falls back to the re-emitted text when the lines do not correspond', () => {
    assert.equal(carryOver('a: {\n  x: 1 }\n', 'a: { x: 1 }\n', 'a: { x: 2 }\n'), 'a: { x: 2 }\n');
  });
});

describe('AuditLog', () => {
  it('appends one JSON line per entry, in order, and closes idempotently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mpgate-audit-'));
    const log = new AuditLog(join(dir, 'audit.log'));
    await Promise.all([
      log.record({ who: 'root', role: 'admin', action: 'site.add', site: 'x', ok: true, ip: '127.0.0.1' }),
      log.record({ who: 'bob', role: 'user', action: 'site.update', site: 'x', ok: false, status: 403, errors: { code: 'MPGA_FORBIDDEN' }, ip: '127.0.0.1' }),
    ]);
    await log.close();
    await log.close();
    await assert.rejects(log.record({ who: 'x', role: null, action: 'x', site: null, ok: true, ip: null }));
    const lines = (await readFile(log.file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => [l.who, l.action, l.ok]), [['root', 'site.add', true], ['bob', 'site.update', false]]);
    assert.match(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal((await stat(log.file)).mode & 0o777, 0o600);
    await rm(dir, { recursive: true, force: true });
  });
});
