/**
 * The ACME storage directory: safe directory names, modes (keys 0600, directories 0700), atomic
 * replacement, refusing a mismatched key, the state file, and `mpgate cert list` reading it.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeStore, accountDirName, isAcmeStorage, listStoredSites, parseIssued, siteDirName, type SiteState } from '../../src/tls/acme/store.js';
import { runCli } from '../helpers.js';
import { issue, tempDir, type Issued } from '../support/tls-fixtures.js';

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('acme store', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: Issued;
  let leaf: Issued;
  let other: Issued;
  before(async () => {
    tmp = await tempDir('acme-store');
    ca = await issue(tmp.dir, { name: 'ca', commonName: 'Store Test CA', ca: {} });
    leaf = await issue(tmp.dir, { name: 'leaf', names: ['a.test', 'www.a.test'], issuer: ca });
    other = await issue(tmp.dir, { name: 'other', names: ['a.test'], issuer: ca });
  });
  after(() => tmp.remove());

  it('gives every site its own directory name, even for names that are not file names', () => {
    assert.equal(siteDirName('shop'), 'shop');
    assert.equal(siteDirName('a.test'), 'a.test');
    const names = ['a/b', 'a_b', '..', '.', 'Ünï cödé', 'x'.repeat(300)].map(siteDirName);
    assert.equal(new Set(names).size, names.length);
    for (const n of names) {
      assert.match(n, /^[A-Za-z0-9._-]+$/);
      assert.ok(n !== '.' && n !== '..' && n.length <= 80, n);
    }
    assert.match(accountDirName('https://acme-v02.api.letsencrypt.org/directory'), /^acme-v02\.api\.letsencrypt\.org-[0-9a-f]{8}$/);
    assert.notEqual(accountDirName('https://ca.test/a'), accountDirName('https://ca.test/b'));
  });

  it('writes the key 0600 and directories 0700, atomically; reads back what it wrote', async () => {
    const store = new AcmeStore(join(tmp.dir, 'store'));
    assert.equal(store.readCert('shop'), undefined);
    const { issued } = parseIssued(leaf.certPem + ca.certPem, leaf.keyPem);
    await store.writeCert('shop', issued);
    assert.equal(await mode(store.dir), 0o700);
    assert.equal(await mode(join(store.dir, 'sites')), 0o700);
    assert.equal(await mode(join(store.siteDir('shop'), 'key.pem')), 0o600);
    const back = store.readCert('shop')!;
    assert.equal(back.cert, issued.cert);
    assert.equal(back.key, leaf.keyPem);
    assert.equal(back.notAfter.getTime(), new Date(leaf.x509.validTo).getTime());
    assert.equal(back.issuer, 'CN=Store Test CA');

    // Replacing leaves no temporary files behind.
    await store.writeCert('shop', parseIssued(other.certPem, other.keyPem).issued);
    assert.deepEqual((await readdir(store.siteDir('shop'))).sort(), ['cert.pem', 'key.pem']);
    assert.equal(store.readCert('shop')!.cert, other.certPem);

    const key = await store.accountKey('https://ca.test/dir', async () => Buffer.from(leaf.keyPem));
    assert.equal(key.created, true);
    const again = await store.accountKey('https://ca.test/dir', async () => assert.fail('must not create twice'));
    assert.equal(again.created, false);
    assert.equal(again.key.toString(), leaf.keyPem);
    assert.equal(await mode(join(store.dir, 'accounts', accountDirName('https://ca.test/dir'), 'account.key')), 0o600);
  });

  it('treats a key that does not match the certificate, or a damaged file, as no certificate', async () => {
    const store = new AcmeStore(join(tmp.dir, 'mismatch'));
    await store.writeCert('s', parseIssued(leaf.certPem, leaf.keyPem).issued);
    await writeFile(join(store.siteDir('s'), 'key.pem'), other.keyPem);
    assert.equal(store.readCert('s'), undefined);
    assert.throws(() => parseIssued(leaf.certPem, other.keyPem), /does not belong/);
    assert.throws(() => parseIssued('no pem here', leaf.keyPem), /no certificate/);
    await writeFile(join(store.siteDir('s'), 'key.pem'), 'not a key');
    assert.equal(store.readCert('s'), undefined);
  });

  it('keeps a state file per site, and cert list shows state, last error and next attempt', async () => {
    const dir = join(tmp.dir, 'listed');
    const store = new AcmeStore(dir);
    assert.equal(await isAcmeStorage(dir), false);
    await store.writeCert('shop', parseIssued(leaf.certPem + ca.certPem, leaf.keyPem).issued);
    const valid: SiteState = { version: 1, site: 'shop', names: ['a.test', 'www.a.test'], state: 'valid', failures: 0, issuedAt: '2025-01-01T00:00:00.000Z', nextAttempt: '2099-03-01T00:00:00.000Z', certDirectory: 'https://ca.test/dir' };
    const failed: SiteState = { version: 1, site: 'new/site', names: ['n.test'], state: 'failed', failures: 3, lastError: 'n.test: http-01 challenge failed: connection refused', lastErrorCode: 'MPG_ACME_CHALLENGE', nextAttempt: '2099-01-01T00:04:00.000Z' };
    await store.writeState(valid);
    await store.writeState(failed);
    assert.deepEqual(store.readState('new/site'), failed);
    assert.equal(JSON.parse(await readFile(join(store.siteDir('shop'), 'state.json'), 'utf8')).state, 'valid');
    assert.equal(await isAcmeStorage(dir), true);
    const sites = await listStoredSites(dir);
    assert.deepEqual(sites.map((s) => [s.site, s.certFile !== undefined, s.state?.state]), [['new/site', false, 'failed'], ['shop', true, 'valid']]);

    const r = await runCli(['cert', 'list', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const blocks = r.stdout.split('\n\n');
    const shop = blocks.find((b) => b.includes('site      shop'))!;
    assert.match(shop, /sites\/shop\/cert\.pem \(2 certificates\)/);
    assert.match(shop, /names +a\.test, www\.a\.test/);
    assert.match(shop, /site +shop \(a\.test, www\.a\.test\), tls: auto/);
    assert.match(shop, /state +valid, issued 2025-01-01T00:00:00\.000Z by https:\/\/ca\.test\/dir/);
    assert.match(shop, /next +2099-03-01T00:00:00\.000Z \(renewal\)/);
    const pending = blocks.find((b) => b.includes('site      new/site'))!;
    assert.match(pending, /\(no certificate yet\)/);
    assert.match(pending, /state +failed \(3 attempts\): n\.test: http-01 challenge failed: connection refused/);
    assert.match(pending, /next +2099-01-01T00:04:00\.000Z \(retry\)/);

    const empty = join(tmp.dir, 'empty-store');
    await new AcmeStore(empty).accountKey('https://ca.test/dir', async () => Buffer.from(leaf.keyPem));
    const none = await runCli(['cert', 'list', '--dir', empty]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /ACME storage without sites yet/);
  });
});
