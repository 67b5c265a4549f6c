/** cert-info: names, key types, name matching and chain building, on certificates made by openssl. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeChain, coveringName, describeKey, isKeyOnlyPem, isSelfSigned, issuedBy, parsePemCertificates, readCertificates, shortDn, subjectAltNames, summarize } from '../../src/tls/cert-info.js';
import { TlsToolError } from '../../src/tls/errors.js';
import { issue, tempDir, type Issued } from '../support/tls-fixtures.js';

describe('cert-info', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: Issued;
  let inter: Issued;
  let leaf: Issued;
  let rsaLeaf: Issued;
  let self: Issued;
  let otherRoot: Issued;

  before(async () => {
    tmp = await tempDir('cert-info');
    root = await issue(tmp.dir, { name: 'root', commonName: 'Unit Root', ca: {}, days: 30 });
    inter = await issue(tmp.dir, { name: 'inter', commonName: 'Unit Intermediate', ca: { pathLen: 0 }, issuer: root, days: 30 });
    leaf = await issue(tmp.dir, { name: 'leaf', names: ['a.test', '*.b.test', '192.0.2.7', '2001:db8::1'], issuer: inter, days: 10 });
    rsaLeaf = await issue(tmp.dir, { name: 'rsa', names: ['rsa.test'], issuer: root, keyType: 'rsa' });
    self = await issue(tmp.dir, { name: 'self', names: ['self.test'] });
    otherRoot = await issue(tmp.dir, { name: 'other', commonName: 'Other Root', ca: {}, days: 30 });
  });
  after(() => tmp.remove());

  it('reads DNS names and IPs from subjectAltName (IPv6 compressed)', () => {
    assert.deepEqual(subjectAltNames(leaf.x509), ['a.test', '*.b.test', '192.0.2.7', '2001:db8::1']);
    assert.deepEqual(subjectAltNames(root.x509), []);
  });

  it('describes keys and summarizes dates', () => {
    assert.equal(describeKey(leaf.x509), 'EC P-256');
    assert.equal(describeKey(rsaLeaf.x509), 'RSA 2048');
    const s = summarize(leaf.x509, new Date());
    assert.equal(s.daysLeft, 10);
    assert.equal(s.lifetimeDays, 10);
    assert.equal(s.expired, false);
    assert.deepEqual(s.extendedKeyUsage, ['1.3.6.1.5.5.7.3.1']);
    const later = summarize(leaf.x509, new Date(s.notAfter.getTime() + 1000));
    assert.equal(later.expired, true);
    assert.equal(summarize(leaf.x509, new Date(s.notBefore.getTime() - 1000)).notYetValid, true);
    assert.equal(shortDn(inter.x509.subject), 'Unit Intermediate');
  });

  it('matches names like browsers: one-label wildcards, no CN, IPs only by IP entries', () => {
    assert.equal(coveringName(leaf.x509, 'a.test'), 'a.test');
    assert.equal(coveringName(leaf.x509, 'A.TEST'), 'a.test');
    assert.equal(coveringName(leaf.x509, 'x.b.test'), '*.b.test');
    assert.equal(coveringName(leaf.x509, 'b.test'), undefined);
    assert.equal(coveringName(leaf.x509, 'y.x.b.test'), undefined);
    assert.equal(coveringName(leaf.x509, 'a.test.evil'), undefined);
    assert.equal(coveringName(leaf.x509, '192.0.2.7'), '192.0.2.7');
    assert.equal(coveringName(leaf.x509, '2001:db8::1'), '2001:db8::1');
    assert.equal(coveringName(leaf.x509, '192.0.2.8'), undefined);
    // The CN of a certificate without SANs does not count.
    assert.equal(coveringName(root.x509, 'Unit Root'), undefined);
  });

  it('tells self-signed certificates and issuers apart', () => {
    assert.equal(isSelfSigned(self.x509), true);
    assert.equal(isSelfSigned(root.x509), true);
    assert.equal(isSelfSigned(leaf.x509), false);
    assert.equal(issuedBy(leaf.x509, inter.x509), true);
    assert.equal(issuedBy(leaf.x509, root.x509), false);
    assert.equal(issuedBy(inter.x509, root.x509), true);
    assert.equal(issuedBy(inter.x509, otherRoot.x509), false);
  });

  it('analyzeChain: complete chain to an anchor, with or without the root sent', () => {
    const a = analyzeChain([leaf.x509, inter.x509], [otherRoot.x509, root.x509]);
    assert.equal(a.trusted, true);
    assert.equal(a.problem, undefined);
    assert.equal(a.anchor, root.x509);
    assert.deepEqual(a.path, [leaf.x509, inter.x509]);
    const withRoot = analyzeChain([leaf.x509, inter.x509, root.x509], [root.x509]);
    assert.equal(withRoot.trusted, true);
    assert.equal(withRoot.path.length, 3);
    assert.deepEqual(withRoot.unused, []);
  });

  it('analyzeChain: missing intermediate names the missing issuer', () => {
    const a = analyzeChain([leaf.x509], [root.x509]);
    assert.equal(a.trusted, false);
    assert.equal(a.problem, 'missing-issuer');
    assert.match(a.missingIssuer!, /CN=Unit Intermediate/);
  });

  it('analyzeChain: self-signed leaf, untrusted root, empty', () => {
    assert.equal(analyzeChain([self.x509], [root.x509]).problem, 'self-signed');
    // A self-signed leaf stays "self-signed" even when it is given as an anchor: WeChat refuses it anyway.
    assert.equal(analyzeChain([self.x509], [self.x509]).problem, 'self-signed');
    const u = analyzeChain([leaf.x509, inter.x509, root.x509], [otherRoot.x509]);
    assert.equal(u.problem, 'untrusted-root');
    assert.equal(analyzeChain([], [root.x509]).problem, 'empty');
  });

  it('analyzeChain: order and unrelated certificates are reported', () => {
    const a = analyzeChain([leaf.x509, otherRoot.x509, inter.x509], [root.x509]);
    assert.equal(a.trusted, true);
    assert.equal(a.outOfOrder, true);
    assert.deepEqual(a.unused, [otherRoot.x509]);
  });

  it('reads PEM bundles and DER; refuses files without a certificate', async () => {
    const bundle = join(tmp.dir, 'bundle.pem');
    await writeFile(bundle, `junk\n${leaf.certPem}${inter.certPem}`);
    assert.equal((await readCertificates(bundle)).length, 2);
    const der = join(tmp.dir, 'leaf.der');
    await writeFile(der, leaf.x509.raw);
    assert.equal((await readCertificates(der))[0]!.fingerprint256, leaf.x509.fingerprint256);
    const keyOnly = join(tmp.dir, 'key.pem');
    await writeFile(keyOnly, leaf.keyPem);
    assert.equal(isKeyOnlyPem(leaf.keyPem), true);
    assert.equal(isKeyOnlyPem(leaf.keyPem + leaf.certPem), false);
    await assert.rejects(readCertificates(keyOnly), (e: unknown) => e instanceof TlsToolError && e.code === 'MPG_CERT_UNREADABLE');
    await assert.rejects(readCertificates(join(tmp.dir, 'missing.pem')), /cannot read the file \(ENOENT\)/);
    assert.equal(parsePemCertificates(leaf.certPem + root.certPem).length, 2);
    assert.ok(parsePemCertificates(leaf.certPem)[0] instanceof X509Certificate);
  });
});
