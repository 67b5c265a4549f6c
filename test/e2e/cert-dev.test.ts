/**
 * `mpgate cert dev` and `mpgate cert list` as a user runs them: files and modes, an idempotent rerun,
 * the chain checked by `openssl verify`, a real HTTPS server using the files and curl trusting the CA.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { curl, runCli } from '../helpers.js';
import { issue, startTlsServer, tempDir } from '../support/tls-fixtures.js';

const execFileP = promisify(execFile);

describe('mpgate cert dev / cert list', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;
  let first: Awaited<ReturnType<typeof runCli>>;
  const files = () => ({
    ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'),
    cert: join(dir, 'localhost.pem'), key: join(dir, 'localhost-key.pem'), fullchain: join(dir, 'localhost-fullchain.pem'),
  });
  before(async () => {
    tmp = await tempDir('cert-dev');
    dir = join(tmp.dir, 'certs');
    first = await runCli(['cert', 'dev', '--dir', dir]);
  });
  after(() => tmp.remove());

  it('creates the CA, the leaf (default names), the full chain; keys are 0600', async () => {
    assert.equal(first.code, 0, first.stderr);
    const f = files();
    for (const key of [f.caKey, f.key]) assert.equal((await stat(key)).mode & 0o777, 0o600, key);
    const leaf = new X509Certificate(await readFile(f.cert, 'utf8'));
    assert.equal(leaf.subjectAltName, 'DNS:localhost, DNS:*.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    const chain = await readFile(f.fullchain, 'utf8');
    assert.equal(chain.match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.match(first.stdout, new RegExp(`CA +${f.ca} \\(created\\), expires \\d{4}-\\d\\d-\\d\\d`));
    assert.match(first.stdout, /cert +.*localhost\.pem \(created\) for localhost, \*\.localhost, 127\.0\.0\.1, ::1, expires \d{4}-\d\d-\d\d \(397 days\)/);
    assert.match(first.stdout, /fullchain +.*localhost-fullchain\.pem/);
  });

  it('prints the trust command for this OS, NODE_EXTRA_CA_CERTS and curl --cacert', () => {
    const f = files();
    if (process.platform === 'linux') assert.ok(first.stdout.includes(`sudo cp ${f.ca} /usr/local/share/ca-certificates/mpgate-dev-ca.crt && sudo update-ca-certificates`) || first.stdout.includes('update-ca-trust'));
    if (process.platform === 'darwin') assert.match(first.stdout, /security add-trusted-cert -d -r trustRoot/);
    assert.ok(first.stdout.includes(`export NODE_EXTRA_CA_CERTS=${f.ca}`));
    assert.ok(first.stdout.includes(`curl --cacert ${f.ca} https://localhost:8443/`));
  });

  it('openssl verify accepts the leaf against the CA, for its name', async () => {
    const f = files();
    const { stdout } = await execFileP('openssl', ['verify', '-CAfile', f.ca, '-purpose', 'sslserver', '-verify_hostname', 'localhost', '-untrusted', f.fullchain, f.cert]);
    assert.match(stdout, /: OK/);
    await assert.rejects(execFileP('openssl', ['verify', '-CAfile', f.ca, '-verify_hostname', 'example.com', f.cert]));
  });

  it('is idempotent: a rerun reuses every file byte for byte', async () => {
    const f = files();
    const before = await Promise.all(Object.values(f).map((p) => readFile(p)));
    const mtime = (await stat(f.fullchain)).mtimeMs;
    const again = await runCli(['cert', 'dev', '--dir', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /CA +.* \(reused\)/);
    assert.match(again.stdout, /cert +.* \(reused\)/);
    const afterRun = await Promise.all(Object.values(f).map((p) => readFile(p)));
    assert.deepEqual(afterRun, before);
    assert.equal((await stat(f.fullchain)).mtimeMs, mtime);
  });

  it('a real HTTPS server with the files is trusted by curl --cacert', async () => {
    const f = files();
    const server = await startTlsServer({ key: await readFile(f.key, 'utf8'), cert: await readFile(f.fullchain, 'utf8') });
    try {
      const r = await curl(['--cacert', f.ca, `https://localhost:${server.port}/`]);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok\n');
    } finally {
      await server.close();
    }
  });

  it('more names: a new leaf from the same CA; the CA is never replaced without --force', async () => {
    const caBefore = await readFile(files().ca, 'utf8');
    const r = await runCli(['cert', 'dev', '--dir', dir, '--name', 'app.test', '--name', '*.app.test']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /app\.test\.pem \(created\) for app\.test, \*\.app\.test/);
    assert.equal(await readFile(files().ca, 'utf8'), caBefore);
    await writeFile(files().caKey, '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
    const refused = await runCli(['cert', 'dev', '--dir', dir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ca-key\.pem does not belong to ca\.pem; run again with --force/);
    assert.equal(await readFile(files().ca, 'utf8'), caBefore);
    const forced = await runCli(['cert', 'dev', '--dir', dir, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /CA +.* \(created\)/);
    assert.match(forced.stdout, /cert +.* \(reissued: new CA\)/);
  });

  it('cert list shows names, issuer, dates, days left, key type and chain completeness', async () => {
    const r = await runCli(['cert', 'list', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /-key\.pem/);
    const block = (file: string) => r.stdout.split('\n\n').find((b) => b.startsWith(join(dir, file))) ?? assert.fail(`${file} not listed:\n${r.stdout}`);
    const full = block('localhost-fullchain.pem');
    assert.match(full, /\(2 certificates\)/);
    assert.match(full, /names +localhost, \*\.localhost, 127\.0\.0\.1, ::1/);
    assert.match(full, /issuer +O=mpgate development CA, CN=mpgate dev CA/);
    assert.match(full, /valid +\d{4}-\d\d-\d\d → \d{4}-\d\d-\d\d, 397 days left/);
    assert.match(full, /key +EC P-256/);
    assert.match(full, /chain +complete: "localhost" → "mpgate dev CA [^"]*" \(root: in this file\)/);
    assert.match(block('ca.pem'), /chain +self-signed root CA/);
    assert.match(block('app.test.pem'), /names +app\.test, \*\.app\.test/);
  });

  it('cert list FILE: a leaf alone whose issuer is missing is reported incomplete', async () => {
    const t = await tempDir('cert-list');
    try {
      const root = await issue(t.dir, { name: 'r', commonName: 'List Root', ca: {} });
      const inter = await issue(t.dir, { name: 'i', commonName: 'List Intermediate', ca: { pathLen: 0 }, issuer: root });
      const leaf = await issue(t.dir, { name: 'leaf', names: ['list.test'], issuer: inter });
      const r = await runCli(['cert', 'list', leaf.certFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /chain +incomplete: issuer "CN=List Intermediate" of "list\.test" is not in the file \(a server needs the full-chain file\)/);
      assert.match(r.stdout, /days left/);
    } finally {
      await t.remove();
    }
  });

  it('usage: no subcommand and bad names exit 2; an empty directory exits 1; --help exits 0', async () => {
    assert.equal((await runCli(['cert'])).code, 2);
    const bad = await runCli(['cert', 'dev', '--dir', join(tmp.dir, 'x'), '--name', 'not valid']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--name not valid: not a DNS name/);
    const empty = await runCli(['cert', 'list', '--dir', tmp.dir]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no certificate files in .*mpgate cert dev --dir/);
    const help = await runCli(['cert', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: mpgate cert dev/);
  });
});
