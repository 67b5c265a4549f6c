/**
 * The shared server's HTTPS story end to end: a gateway started with no HTTPS site at all; the
 * administrator adds a user's site with `mpgate site add --tls auto`; the running gateway opens
 * its HTTPS listener, Debian's pebble validates against it and issues, and the site answers over
 * HTTPS — no restart. Then the user switches HTTPS off and on again over the admin API.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closedPort, curl, runCli, spawnCli, startBackend, waitFor, type Backend } from '../helpers.js';
import { serveWithAdmin, tokenAdd } from '../support/admin.js';
import { gatewayYaml, startPebble, type Pebble } from '../support/pebble.js';
import { tempDir } from '../support/tls-fixtures.js';

describe('site add --tls auto on a running gateway, against pebble', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let backend: Backend;
  let pebble: Pebble;
  let child: ReturnType<typeof spawnCli> | undefined;
  let file = '';
  let rootFile = '';
  let httpPort = 0;
  let httpsPort = 0;
  let admin = '';
  let aliceToken = '';

  const https = (host: string) => curl(['--cacert', rootFile, '--resolve', `${host}:${httpsPort}:127.0.0.1`, `https://${host}:${httpsPort}/hello`]);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${admin}${path}`, { method, headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };

  before(async () => {
    tmp = await tempDir('admin-tls');
    backend = await startBackend(undefined, 'alice-app');
    httpPort = await closedPort();
    httpsPort = await closedPort();
    pebble = await startPebble({ dir: tmp.dir, httpPort, tlsPort: httpsPort });
    rootFile = join(tmp.dir, 'pebble-root.pem');
    await writeFile(rootFile, (await pebble.root()).toString());
    file = join(tmp.dir, 'mpgate.yaml');
    await writeFile(file, `# the shared server, before any site has HTTPS
${gatewayYaml(pebble, { httpPort, httpsPort, storage: 'store', challenges: ['http-01'] })}admin:
  listen: 127.0.0.1:0
  ports: { from: ${backend.port}, to: ${backend.port} }
sites: []
`);
    aliceToken = await tokenAdd(file, 'alice');
    ({ child, admin } = await serveWithAdmin(file, ['--access-log', 'off']));
  });
  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await pebble?.close();
    await backend?.close();
    await tmp?.remove();
  });

  it('the CLI adds the site with tls: auto; the gateway opens HTTPS and serves the issued certificate without a restart', async () => {
    assert.match(child!.err(), /"https":\[\]/, 'no HTTPS listener at start');
    const add = await runCli(['site', 'add', 'alice.test', '--owner', 'alice', '--port', String(backend.port), '--tls', 'auto', '--config', file]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /HTTPS \(certificate by ACME\)/);
    assert.match(await readFile(file, 'utf8'), /tls: auto/);
    const r = await waitFor(async () => {
      const res = await https('alice.test').catch(() => undefined);
      return res?.status === 200 ? res : undefined;
    }, 30_000, `alice.test over HTTPS (log: ${child!.err().slice(-1500)})`);
    assert.equal(JSON.parse(r!.body).name, 'alice-app');
    assert.match(child!.err(), /HTTPS listeners started/);
    // Plain HTTP now redirects to the HTTPS port.
    const plain = await curl(['-H', 'Host: alice.test', `http://127.0.0.1:${httpPort}/hello`]);
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://alice.test:${httpsPort}/hello`);
    const listed = await api('GET', '/api/v1/sites/alice.test');
    assert.equal(listed.json.site.tls, 'auto');
    assert.ok(listed.json.site.cert?.daysLeft > 0, JSON.stringify(listed.json.site.cert));
  });

  it('the owner switches HTTPS off and on over the API', async () => {
    const off = await api('PATCH', '/api/v1/sites/alice.test', { tls: null });
    assert.equal(off.status, 200, JSON.stringify(off.json));
    assert.equal(off.json.site.tls, null);
    assert.equal((await curl(['-H', 'Host: alice.test', `http://127.0.0.1:${httpPort}/hello`])).status, 200, 'served over plain HTTP again');
    const on = await api('PATCH', '/api/v1/sites/alice.test', { tls: 'auto' });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal((await curl(['-H', 'Host: alice.test', `http://127.0.0.1:${httpPort}/hello`])).status, 301);
    // The stored certificate is served at once.
    assert.equal((await https('alice.test')).status, 200);
    // Certificate files are server paths: not settable over the API.
    const files = await api('PATCH', '/api/v1/sites/alice.test', { tls: { cert: '/etc/passwd', key: '/etc/passwd' } });
    assert.equal(files.status, 400);
  });
});
