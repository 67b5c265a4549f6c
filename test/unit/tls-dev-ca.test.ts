/** cert dev's building blocks: names, file names, trust commands, the openssl config, CA reuse rules. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issuedBy } from '../../src/tls/cert-info.js';
import { defaultCertDir, ensureDevCertificates, invalidName, leafStem, shellQuote, trustHint } from '../../src/tls/dev-ca.js';
import { TlsToolError } from '../../src/tls/errors.js';
import { extensionConfig, opensslInstallHint } from '../../src/tls/openssl.js';
import { tempDir } from '../support/tls-fixtures.js';

describe('cert dev helpers', () => {
  it('accepts DNS names, one-label wildcards and IPs; refuses the rest with a reason', () => {
    for (const ok of ['localhost', '*.localhost', 'a.test', '*.a.test', 'xn--fiqs8s.test', '127.0.0.1', '::1']) assert.equal(invalidName(ok), undefined, ok);
    for (const bad of ['a b', '*', '*.com', 'a.*.test', 'foo_bar.test', '-a.test', 'a..test', '']) assert.ok(invalidName(bad), bad);
  });

  it('names leaf files after the first name', () => {
    assert.equal(leafStem(['localhost', '::1']), 'localhost');
    assert.equal(leafStem(['*.a.test']), '_wildcard.a.test');
    assert.equal(leafStem(['::1']), '__1');
  });

  it('default directory: $MPGATE_CERT_DIR, else the per-user data directory of the OS', () => {
    assert.equal(defaultCertDir({ MPGATE_CERT_DIR: '/x' }, 'linux'), '/x');
    assert.equal(defaultCertDir({ XDG_DATA_HOME: '/data' }, 'linux'), '/data/mpgate/certs');
    assert.match(defaultCertDir({}, 'linux'), /\.local\/share\/mpgate\/certs$/);
    assert.match(defaultCertDir({}, 'darwin'), /Library\/Application Support\/mpgate\/certs$/);
  });

  it('prints the trust command for the OS, with the path quoted for the shell', () => {
    const deb = trustHint('/d/ca.pem', 'linux', (p) => p === '/usr/sbin/update-ca-certificates');
    assert.deepEqual(deb.commands, ['sudo cp /d/ca.pem /usr/local/share/ca-certificates/mpgate-dev-ca.crt && sudo update-ca-certificates']);
    const rhel = trustHint('/d/ca.pem', 'linux', (p) => p === '/usr/bin/update-ca-trust');
    assert.match(rhel.commands[0]!, /update-ca-trust$/);
    const mac = trustHint('/Users/me/Library/Application Support/mpgate/certs/ca.pem', 'darwin');
    assert.equal(mac.commands[0], "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain '/Users/me/Library/Application Support/mpgate/certs/ca.pem'");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.match(opensslInstallHint('linux'), /apt-get install -y openssl/);
  });

  it('openssl extensions: CA vs leaf, EKU serverAuth, SANs split into DNS and IP', () => {
    const leaf = extensionConfig({ names: ['a.test', '*.a.test', '127.0.0.1', '::1'], issuer: { certFile: 'c', keyFile: 'k' } }, 'ec');
    assert.match(leaf, /basicConstraints = critical,CA:FALSE/);
    assert.match(leaf, /keyUsage = critical,digitalSignature\n/);
    assert.match(leaf, /extendedKeyUsage = serverAuth/);
    assert.match(leaf, /authorityKeyIdentifier = keyid,issuer/);
    assert.match(leaf, /DNS\.1 = a\.test\nDNS\.2 = \*\.a\.test\nIP\.1 = 127\.0\.0\.1\nIP\.2 = ::1/);
    assert.match(extensionConfig({ names: ['a.test'] }, 'rsa'), /digitalSignature,keyEncipherment/);
    const ca = extensionConfig({ ca: { pathLen: 0 } }, 'ec');
    assert.match(ca, /CA:TRUE,pathlen:0/);
    assert.doesNotMatch(ca, /extendedKeyUsage|subjectAltName|authorityKeyIdentifier/);
  });
});

describe('ensureDevCertificates', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir('dev-ca');
  });
  after(() => tmp.remove());

  it('reuses everything on a second run, reissues the leaf when names change, keeps the CA', async () => {
    const dir = join(tmp.dir, 'reuse');
    const first = await ensureDevCertificates({ dir });
    assert.equal(first.ca.created, true);
    assert.equal(first.leaf.state, 'created');
    assert.deepEqual(first.leaf.names, ['localhost', '*.localhost', '127.0.0.1', '::1']);
    const caBefore = await readFile(first.files.caCert, 'utf8');
    const second = await ensureDevCertificates({ dir });
    assert.equal(second.ca.created, false);
    assert.equal(second.leaf.state, 'reused');
    const third = await ensureDevCertificates({ dir, names: ['localhost', 'api.localhost'] });
    assert.equal(third.leaf.state, 'names changed');
    assert.equal(await readFile(third.files.caCert, 'utf8'), caBefore);
    const leaf = new X509Certificate(await readFile(third.files.cert, 'utf8'));
    assert.ok(issuedBy(leaf, new X509Certificate(caBefore)));
  });

  it('renews a leaf close to expiry', async () => {
    const dir = join(tmp.dir, 'renew');
    const first = await ensureDevCertificates({ dir });
    const later = new Date(first.leaf.notAfter.getTime() - 10 * 86_400_000);
    assert.equal((await ensureDevCertificates({ dir, now: later })).leaf.state, 'expiring');
  });

  it('never replaces a broken CA without force; with force it makes a new one and reissues the leaf', async () => {
    const dir = join(tmp.dir, 'conflict');
    const first = await ensureDevCertificates({ dir });
    await rm(first.files.caKey);
    await assert.rejects(ensureDevCertificates({ dir }), (e: unknown) => e instanceof TlsToolError && e.code === 'MPG_DEV_CA_CONFLICT' && /ca-key\.pem is missing.*--force/.test(e.message));
    const other = await ensureDevCertificates({ dir: join(tmp.dir, 'other') });
    await writeFile(first.files.caKey, await readFile(other.files.caKey, 'utf8'));
    await assert.rejects(ensureDevCertificates({ dir }), /does not belong to ca\.pem/);
    const forced = await ensureDevCertificates({ dir, force: true });
    assert.equal(forced.ca.created, true);
    assert.equal(forced.leaf.state, 'new CA');
  });

  it('tightens a key file that became readable by others', async () => {
    const dir = join(tmp.dir, 'mode');
    const first = await ensureDevCertificates({ dir });
    await chmod(first.files.key, 0o644);
    const again = await ensureDevCertificates({ dir });
    assert.deepEqual(again.fixedModes, [first.files.key]);
    assert.equal((await stat(first.files.key)).mode & 0o777, 0o600);
  });

  it('refuses invalid names before touching the disk', async () => {
    await assert.rejects(ensureDevCertificates({ dir: join(tmp.dir, 'bad'), names: ['not a name'] }), TypeError);
  });
});
