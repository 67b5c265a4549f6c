/**
 * Automatic certificates through the real CLI: `mpgate serve` with `tls: auto` sites, Debian's
 * pebble validating against the gateway's own listeners (http-01 on its HTTP port, tls-alpn-01 on
 * its HTTPS port), then curl over HTTPS trusting only pebble's root.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { closedPort, curl, runCli, spawnCli, startBackend, startedPort, waitFor, type Backend } from '../helpers.js';
import { gatewayYaml, startPebble, type Pebble } from '../support/pebble.js';
import { tempDir } from '../support/tls-fixtures.js';

describe('mpgate serve with tls: auto, against pebble', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let backend: Backend;
  let pebble: Pebble;
  let httpPort: number;
  let httpsPort: number;
  let rootFile: string;
  const children: ReturnType<typeof spawnCli>[] = [];

  const config = (challenges: string[], host: string) => `# written by the acme-gateway test
${gatewayYaml(pebble, { httpPort, httpsPort, storage: join(tmp.dir, 'store'), challenges })}sites:
  - hosts: [${host}]
    upstream: ${backend.url}
    tls: auto
    hsts: true
`;

  const serve = async (file: string) => {
    const child = spawnCli(['serve', '--config', file, '--access-log', 'off']);
    children.push(child);
    await startedPort(child);
    return child;
  };
  const stop = async (child: ReturnType<typeof spawnCli>) => {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  };
  const get = (host: string) => curl(['--cacert', rootFile, '--resolve', `${host}:${httpsPort}:127.0.0.1`, `https://${host}:${httpsPort}/hi`]);

  before(async () => {
    tmp = await tempDir('acme-gw');
    backend = await startBackend();
    httpPort = await closedPort();
    httpsPort = await closedPort();
    pebble = await startPebble({ dir: tmp.dir, httpPort, tlsPort: httpsPort });
    rootFile = join(tmp.dir, 'pebble-root.pem');
    await writeFile(rootFile, (await pebble.root()).toString());
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await pebble?.close();
    await backend?.close();
    await tmp?.remove();
  });

  it('cold start, empty store: http-01 answered on the HTTP listener, the issued certificate served over HTTPS', async () => {
    const file = join(tmp.dir, 'http01.yaml');
    await writeFile(file, config(['http-01'], 'auto.test'));
    const child = await serve(file);
    try {
      const r = await waitFor(async () => {
        const res = await curl(['--cacert', rootFile, '--resolve', `auto.test:${httpsPort}:127.0.0.1`, `https://auto.test:${httpsPort}/hi`]).catch(() => undefined);
        return res?.status === 200 ? res : undefined;
      }, 30_000, `an issued certificate (log: ${child.err().slice(-2000)})`);
      assert.equal(JSON.parse(r!.body).headers.host, `auto.test:${httpsPort}`);
      assert.equal(r!.headers["strict-transport-security"], "max-age=31536000");
      assert.match(child.err(), /"msg":"[^"]*issued/i);
      // Plain HTTP now redirects, except the challenge path which stays answerable.
      const plain = await curl(['-H', 'Host: auto.test', `http://127.0.0.1:${httpPort}/x`]);
      assert.equal(plain.status, 301);
      assert.equal((await curl(['-H', 'Host: auto.test', `http://127.0.0.1:${httpPort}/.well-known/acme-challenge/unknown`])).status, 404);
    } finally {
      await stop(child);
    }
    const list = await runCli(['cert', 'list', '--dir', join(tmp.dir, 'store')]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /auto\.test/);
    assert.match(list.stdout, /valid/);
    // The same through the config that serves it.
    const byConfig = await runCli(['cert', 'list', '--config', file]);
    assert.equal(byConfig.code, 0, byConfig.stderr);
    assert.match(byConfig.stdout, /auto\.test/);
    assert.match(byConfig.stdout, /valid/);
  });

  it('tls-alpn-01 only: validated on the HTTPS listener itself', async () => {
    const file = join(tmp.dir, 'alpn.yaml');
    await writeFile(file, config(['tls-alpn-01'], 'alpn.test'));
    const child = await serve(file);
    try {
      const r = await waitFor(async () => {
        const res = await get('alpn.test').catch(() => undefined);
        return res?.status === 200 ? res : undefined;
      }, 30_000, `an issued certificate (log: ${child.err().slice(-2000)})`);
      assert.equal(JSON.parse(r!.body).url, '/hi');
    } finally {
      await stop(child);
    }
  });
  it('restart with the CA down: the stored certificate is served at once', async () => {
    await pebble.close();
    const file = join(tmp.dir, 'http01.yaml');
    const down = spawnCli(['serve', '--config', file, '--access-log', 'off']);
    children.push(down);
    await startedPort(down);
    try {
      const r = await get('auto.test');
      assert.equal(r.status, 200);
    } finally {
      await stop(down);
    }
  });
});

describe('mpgate serve renews a short-lived certificate without a restart', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let backend: Backend;
  let pebble: Pebble;
  let child: ReturnType<typeof spawnCli> | undefined;

  before(async () => {
    tmp = await tempDir('acme-renew');
    backend = await startBackend();
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await pebble?.close();
    await backend?.close();
    await tmp?.remove();
  });

  it('an 8-second certificate is replaced on the live listener when a third of its life is left', async () => {
    const httpPort = await closedPort();
    const httpsPort = await closedPort();
    pebble = await startPebble({ dir: tmp.dir, httpPort, tlsPort: httpsPort, validitySeconds: 8 });
    const file = join(tmp.dir, 'renew.yaml');
    await writeFile(file, `${gatewayYaml(pebble, { httpPort, httpsPort, storage: join(tmp.dir, 'store') })}sites:
  - hosts: [renew.test]
    upstream: ${backend.url}
    tls: auto
`);
    child = spawnCli(['serve', '--config', file, '--access-log', 'off']);
    await startedPort(child);
    const served = async () => {
      const r = await new Promise<string | undefined>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: httpsPort, servername: 'renew.test', rejectUnauthorized: false }, () => {
          const cert = s.getPeerX509Certificate();
          s.end();
          resolve(cert?.subjectAltName === 'DNS:renew.test' ? cert.fingerprint256 : undefined);
        });
        s.on('error', () => resolve(undefined));
      });
      return r;
    };
    const first = await waitFor(served, 30_000, `the first certificate (log: ${child.err().slice(-1500)})`);
    const second = await waitFor(async () => {
      const fp = await served();
      return fp !== undefined && fp !== first ? fp : undefined;
    }, 30_000, `a renewed certificate (log: ${child.err().slice(-1500)})`);
    assert.notEqual(second, first);
    assert.match(child.err(), /renew/i);
    child.kill('SIGTERM');
    await once(child, 'exit');
  });
});
