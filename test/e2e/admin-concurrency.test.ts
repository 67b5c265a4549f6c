/**
 * Two concurrent changes never lose one: 10 sites added through the running gateway's admin API
 * and 10 with `mpgate site add` processes, all at the same moment, against one config file.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import { runCli, spawnCli, waitFor } from '../helpers.js';
import { serveWithAdmin, tokenAdd } from '../support/admin.js';

const HEADER = `# Team server. Hand-written comments must survive concurrent edits.
listen: ["127.0.0.1:0"]
accessLog: false
upstream:
  connectTimeout: 2s      # aligned
  responseTimeout: 10s    # comments

admin:
  listen: 127.0.0.1:0
  ports: { from: 21000, to: 21999 }
`;

describe('admin: 20 concurrent adds from the API and the CLI', () => {
  let dir: string;
  let file: string;
  let child: ReturnType<typeof spawnCli>;
  let gw: string;
  let admin: string;
  let token: string;
  /** The file before the adds (with the token's hash): the adds only append to the sites list at its end. */
  let original: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-admin-conc-'));
    file = join(dir, 'mpgate.yaml');
    await writeFile(file, `${HEADER}sites:\n  # the first site\n  - hosts: [first.test]\n    upstream: http://127.0.0.1:21000\n`);
    token = await tokenAdd(file, 'root', ['--role', 'admin']);
    original = await readFile(file, 'utf8');
    assert.ok(original.startsWith(HEADER.slice(0, HEADER.indexOf('admin:'))));
    const s = await serveWithAdmin(file);
    ({ child, admin } = s);
    gw = `http://127.0.0.1:${s.port}`;
  });

  after(async () => {
    child.kill('SIGTERM');
    await once(child, 'close');
    await rm(dir, { recursive: true, force: true });
  });

  it('all 20 land, each with its own port, the file valid and its comments kept', async () => {
    const viaApi = Array.from({ length: 10 }, (_, i) => request(`${admin}/api/v1/sites`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host: `api${i}.test`, owner: `user${i}` }),
    }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() })));
    const viaCli = Array.from({ length: 10 }, (_, i) => runCli(['site', 'add', `cli${i}.test`, '--owner', `user${i}`, '--config', file]));
    const [api, cli] = await Promise.all([Promise.all(viaApi), Promise.all(viaCli)]);
    for (const r of api) assert.equal(r.status, 201, r.body);
    for (const r of cli) assert.equal(r.code, 0, r.stderr);

    const text = await readFile(file, 'utf8');
    const cfg = parseConfig(text);
    const names = cfg.sites.map((s) => s.name ?? s.hosts[0]);
    for (let i = 0; i < 10; i++) {
      assert.ok(names.includes(`api${i}.test`), `api${i}.test is in the file`);
      assert.ok(names.includes(`cli${i}.test`), `cli${i}.test is in the file`);
    }
    assert.equal(cfg.sites.length, 21);
    const ports = cfg.sites.map((s) => String(s.upstream));
    assert.equal(new Set(ports).size, 21, 'every site has its own port');
    assert.ok(text.startsWith(original), 'what was there is unchanged, byte for byte');
    assert.equal(text.match(/# user\d's site, added \d{4}-\d\d-\d\d by /g)?.length, 20);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp') || f.endsWith('.lock')), [], 'no temp or lock files left');

    // The running gateway has all of them (the API ones were live on their answers; the CLI ones via the watcher).
    await waitFor(async () => {
      const r = await request(`${admin}/api/v1/sites`, { headers: { authorization: `Bearer ${token}` } });
      return ((await r.body.json()) as { sites: unknown[] }).sites.length === 21;
    }, 5000, 'the gateway to load all 21 sites');
    const r = await request(`${gw}/`, { headers: { host: 'cli9.test' } });
    await r.body.dump();
    assert.notEqual(r.headers['x-mpgate-error'], 'MPG_NO_SITE');

    const audit = (await readFile(join(dir, 'mpgate-audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; ok: boolean; who: string });
    assert.equal(audit.filter((l) => l.action === 'site.add' && l.ok).length, 20);
    assert.equal(audit.filter((l) => l.action === 'site.add' && l.who === 'root').length, 10);
    assert.equal(audit.filter((l) => l.action === 'site.add' && l.who.startsWith('cli:')).length, 10);
  });
});
