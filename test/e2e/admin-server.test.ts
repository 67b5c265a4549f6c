/**
 * startAdmin in-process with a real Gateway: the HTTPS admin listener on a non-loopback address
 * (what the schema allows only with tls and a token), where /metrics needs an admin token, and an
 * idempotent close.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startAdmin, type AdminServer } from '../../src/admin/admin-server.js';
import { createToken, hashToken } from '../../src/admin/auth.js';
import { Metrics } from '../../src/admin/metrics.js';
import { SiteStats } from '../../src/admin/stats.js';
import { loadConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/server/gateway.js';
import { startBackend, type Backend } from '../helpers.js';
import { issue } from '../support/tls-fixtures.js';

describe('admin listener over HTTPS on a non-loopback address', () => {
  let dir: string;
  let file: string;
  let gateway: Gateway;
  let admin: AdminServer;
  let backend: Backend;
  let agent: Agent;
  let base: string;
  const rootToken = createToken();
  const userToken = createToken();
  let reloads = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-admin-tls-'));
    file = join(dir, 'mpgate.yaml');
    backend = await startBackend();
    const ca = await issue(dir, { name: 'ca', commonName: 'test CA', ca: {} });
    const leaf = await issue(dir, { name: 'admin', names: ['127.0.0.1', 'localhost'], issuer: ca });
    await writeFile(file, [
      'listen: ["127.0.0.1:0"]',
      'accessLog: false',
      'admin:',
      '  listen: 0.0.0.0:0',
      `  tls: { cert: ${leaf.certFile}, key: ${leaf.keyFile} }`,
      '  tokens:',
      `    - { name: root, role: admin, hash: "${await hashToken(rootToken, { N: 1024, r: 8, p: 1 })}" }`,
      `    - { name: carol, role: user, hash: "${await hashToken(userToken, { N: 1024, r: 8, p: 1 })}" }`,
      'sites:',
      '  - hosts: [c.test]',
      '    owner: carol',
      `    upstream: ${backend.url}`,
      '',
    ].join('\n'));
    const config = await loadConfig(file);
    const stats = new SiteStats();
    let gw: Gateway | undefined;
    const metrics = new Metrics({ gauges: () => ({ connections: gw?.connections ?? 0, websockets: gw?.tunnels ?? 0 }), defaultMetrics: false });
    gateway = await Gateway.start(config, { log: pino({ level: 'silent' }), access: (e) => { stats.observe(e); metrics.observe(e); } });
    gw = gateway;
    admin = await startAdmin({
      config, configFile: file, gateway, log: pino({ level: 'silent' }), stats, metrics,
      reload: async () => {
        reloads++;
        gateway.reload(await loadConfig(file));
      },
    });
    agent = new Agent({ connect: { ca: ca.certPem } });
    base = `https://127.0.0.1:${admin.address().port}`;
  });

  after(async () => {
    await admin.close();
    await gateway.close(0);
    await backend.close();
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string, token?: string) => {
    const r = await request(`${base}${path}`, { dispatcher: agent, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.statusCode, text: await r.body.text() };
  };

  it('listens on all interfaces, over TLS', () => {
    assert.equal(admin.address().host, '0.0.0.0');
    assert.match(admin.url, /^https:\/\/0\.0\.0\.0:\d+$/);
  });

  it('answers the API over HTTPS', async () => {
    const me = await get('/api/v1/me', userToken);
    assert.equal(me.status, 200);
    assert.deepEqual(JSON.parse(me.text), { name: 'carol', role: 'user', user: 'carol' });
  });

  it('/metrics needs an admin token when the listener is not loopback', async () => {
    assert.equal((await get('/metrics')).status, 401);
    assert.equal((await get('/metrics', userToken)).status, 403);
    const ok = await get('/metrics', rootToken);
    assert.equal(ok.status, 200);
    assert.match(ok.text, /# TYPE mpgate_requests_total counter/);
  });

  it('changes reload the gateway before answering', async () => {
    const r = await request(`${base}/api/v1/sites/c.test/disable`, { dispatcher: agent, method: 'POST', headers: { authorization: `Bearer ${userToken}` } });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(reloads, 1);
    assert.equal(gateway.config.sites[0]!.disabled, true, 'the running config has it when the answer arrives');
    assert.match(await readFile(file, 'utf8'), /disabled: true/);
    const audit = JSON.parse((await readFile(join(dir, 'mpgate-audit.log'), 'utf8')).trim()) as Record<string, unknown>;
    assert.deepEqual([audit.who, audit.role, audit.action, audit.site, audit.ok], ['carol', 'user', 'site.disable', 'c.test', true]);
  });

  it('close is idempotent', async () => {
    const extra = await startAdmin({ config: { ...gateway.config, admin: { ...gateway.config.admin!, listen: '127.0.0.1:0', tls: undefined } }, configFile: file, gateway, log: pino({ level: 'silent' }) });
    const p1 = extra.close();
    const p2 = extra.close();
    assert.equal(p1, p2);
    await p1;
    await extra.close();
  });
});
