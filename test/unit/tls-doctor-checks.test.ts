/** The doctor's rules, one function at a time, on plain values (what the probes would have seen). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildAnchors, checkAppleRules, checkChain, checkDns, checkExpiry, checkHttp2, checkLegacyRefused, checkModernTls, checkName, checkTcp, checkUrl, checkWebSocket,
  EXPIRY_WARN_DAYS, parseDoctorUrl, parseResolve,
} from '../../src/tls/doctor-checks.js';
import { summarize } from '../../src/tls/cert-info.js';
import { websocketAccept, type HandshakeResult, type WsResult } from '../../src/tls/probes.js';
import { issue, tempDir, type Issued } from '../support/tls-fixtures.js';

type Ok = Extract<HandshakeResult, { ok: true }>;
const DAY = 86_400_000;

function hs(over: Partial<Ok> = {}): Ok {
  return { ok: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', alpn: 'h2', authorized: true, authorizationError: undefined, chain: [], ...over };
}
const refused = (code: string, message = code.toLowerCase()): HandshakeResult => ({ ok: false, error: { code, message } });

describe('doctor URL and --resolve parsing', () => {
  it('keeps an explicit ":443" that new URL() would drop', () => {
    const u = parseDoctorUrl('https://Api.Example.com:443/x?y=1');
    assert.equal(u.name, 'api.example.com');
    assert.equal(u.explicitPort, '443');
    assert.equal(u.port, 443);
    assert.equal(u.path, '/x?y=1');
    assert.equal(parseDoctorUrl('https://a.test').explicitPort, undefined);
    assert.equal(parseDoctorUrl('https://a.test:8443/').port, 8443);
    assert.equal(parseDoctorUrl('a.test').scheme, 'https');
    const v6 = parseDoctorUrl('https://[::1]:9443/');
    assert.equal(v6.name, '::1');
    assert.equal(v6.explicitPort, '9443');
    assert.equal(parseDoctorUrl('https://[::1]/').explicitPort, undefined);
    assert.equal(parseDoctorUrl('wss://a.test/socket').path, '/socket');
    assert.throws(() => parseDoctorUrl('https://'), TypeError);
  });

  it('--resolve takes NAME:IP, NAME:[v6], and curl NAME:PORT:IP', () => {
    assert.deepEqual(parseResolve('A.test:127.0.0.1'), { name: 'a.test', address: '127.0.0.1' });
    assert.deepEqual(parseResolve('a.test:::1'), { name: 'a.test', address: '::1' });
    assert.deepEqual(parseResolve('a.test:[::1]'), { name: 'a.test', address: '::1' });
    assert.deepEqual(parseResolve('a.test:443:10.0.0.1'), { name: 'a.test', address: '10.0.0.1' });
    assert.throws(() => parseResolve('a.test'), /expected NAME:IP/);
    assert.throws(() => parseResolve('a.test:nowhere'), /not an IP address/);
  });
});

describe('doctor checks', () => {
  it('url: https without a port passes; ":443" and http:// fail; IPs and localhost warn', () => {
    assert.equal(checkUrl(parseDoctorUrl('https://a.test/')).status, 'pass');
    assert.equal(checkUrl(parseDoctorUrl('wss://a.test/ws')).status, 'pass');
    const p443 = checkUrl(parseDoctorUrl('https://a.test:443/api'));
    assert.equal(p443.status, 'fail');
    assert.match(p443.fix!, /even :443: write https:\/\/a\.test\/api/);
    assert.equal(checkUrl(parseDoctorUrl('http://a.test/')).status, 'fail');
    assert.equal(checkUrl(parseDoctorUrl('https://127.0.0.1/')).status, 'warn');
    assert.equal(checkUrl(parseDoctorUrl('https://app.localhost/')).status, 'warn');
    // Another port is judged by the TCP check (a WARN there): tests and laptops cannot use 443.
    assert.equal(checkUrl(parseDoctorUrl('https://a.test:8443/')).status, 'pass');
  });

  it('dns and tcp', () => {
    assert.equal(checkDns('a.test', { addresses: [], source: 'dns', error: { code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND a.test' } }).status, 'fail');
    assert.match(checkDns('a.test', { addresses: [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }], source: 'dns' }).found, /192\.0\.2\.1, 2001:db8::1/);
    assert.equal(checkTcp(443, [{ address: '192.0.2.1', ok: true, ms: 3 }]).status, 'pass');
    assert.equal(checkTcp(8443, [{ address: '127.0.0.1', ok: true, ms: 1 }]).status, 'warn');
    assert.equal(checkTcp(443, [{ address: '192.0.2.1', ok: true, ms: 3 }, { address: '192.0.2.2', ok: false, ms: 5, error: { code: 'ECONNREFUSED', message: '' } }]).status, 'warn');
    const none = checkTcp(443, [{ address: '192.0.2.1', ok: false, ms: 5, error: { code: 'ETIMEDOUT', message: '' } }]);
    assert.equal(none.status, 'fail');
    assert.match(none.fix!, /firewall/);
  });

  it('TLS 1.2+: pass, 1.3-only warn, failure explained (plain HTTP or no modern version)', () => {
    assert.equal(checkModernTls(hs({ protocol: 'TLSv1.2' }), hs({ protocol: 'TLSv1.2' })).status, 'pass');
    assert.match(checkModernTls(hs(), hs({ protocol: 'TLSv1.2' })).found, /TLS 1\.2 accepted too/);
    assert.equal(checkModernTls(hs(), refused('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')).status, 'warn');
    assert.match(checkModernTls(refused('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), undefined).found, /plain HTTP/);
    const old = checkModernTls(refused('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'tlsv1 alert protocol version'), undefined);
    assert.equal(old.status, 'fail');
    assert.match(old.fix!, /ssl_protocols TLSv1\.2 TLSv1\.3/);
  });

  it('TLS < 1.2: accepted fails, refused passes, "cannot offer" locally warns', () => {
    assert.equal(checkLegacyRefused(hs({ protocol: 'TLSv1.1', cipher: 'ECDHE-ECDSA-AES128-SHA' })).status, 'fail');
    assert.equal(checkLegacyRefused(refused('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')).status, 'pass');
    assert.equal(checkLegacyRefused(refused('ECONNRESET')).status, 'pass');
    // What a client without SECLEVEL=0 sees from a TLS 1.0 server: the server said yes, we said no.
    assert.equal(checkLegacyRefused(refused('ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED')).status, 'fail');
    const local = checkLegacyRefused(refused('ERR_SSL_NO_PROTOCOLS_AVAILABLE', 'no protocols available'));
    assert.equal(local.status, 'warn');
    assert.match(local.found, /this machine's OpenSSL/);
  });

  it('h2 and ws', () => {
    assert.equal(checkHttp2(hs()).status, 'pass');
    assert.equal(checkHttp2(hs({ alpn: 'http/1.1' })).status, 'warn');
    assert.match(checkHttp2(hs({ alpn: undefined })).found, /ALPN none/);
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    // RFC 6455 §1.3's worked example.
    assert.equal(websocketAccept(key), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const ws = (over: Partial<WsResult>): WsResult => ({ status: 101, statusLine: 'HTTP/1.1 101 Switching Protocols', headers: {}, acceptOk: true, ...over });
    assert.equal(checkWebSocket('/ws', ws({})).status, 'pass');
    assert.match(checkWebSocket('/ws', ws({ acceptOk: false })).found, /missing/);
    assert.match(checkWebSocket('/ws', ws({ status: 400, statusLine: 'HTTP/1.1 400 Bad Request', acceptOk: false })).found, /400 Bad Request/);
    assert.match(checkWebSocket('/ws', ws({ status: 0, statusLine: '', acceptOk: false, error: { code: 'ETIMEDOUT', message: 'no answer' } })).found, /no HTTP answer/);
  });
});

describe('doctor certificate checks', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: Issued;
  let inter: Issued;
  let leaf: Issued;
  let noEku: Issued;
  let weak: Issued;
  let long: Issued;
  before(async () => {
    tmp = await tempDir('doctor-checks');
    root = await issue(tmp.dir, { name: 'root', commonName: 'Checks Root', ca: {}, days: 30 });
    inter = await issue(tmp.dir, { name: 'inter', commonName: 'Checks Intermediate', ca: {}, issuer: root, days: 30 });
    leaf = await issue(tmp.dir, { name: 'leaf', names: ['a.test'], issuer: inter, days: 20 });
    // A CA certificate used as a server certificate: no EKU at all.
    noEku = await issue(tmp.dir, { name: 'noeku', commonName: 'a.test', ca: {}, days: 20 });
    weak = await issue(tmp.dir, { name: 'weak', names: ['a.test'], issuer: root, keyType: 'rsa1024' });
    long = await issue(tmp.dir, { name: 'long', names: ['a.test'], issuer: root, days: 500 });
  });
  after(() => tmp.remove());

  it('chain: pass with the path and where trust came from; missing intermediate names fullchain', () => {
    const anchors = buildAnchors([{ label: '--ca root.pem', pem: root.certPem }]);
    const ok = checkChain(hs({ chain: [leaf.x509, inter.x509] }), anchors);
    assert.equal(ok.status, 'pass');
    assert.match(ok.found, /"a\.test" → "Checks Intermediate" → "Checks Root" \(trusted via --ca root\.pem\)/);
    const missing = checkChain(hs({ chain: [leaf.x509], authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), anchors);
    assert.equal(missing.status, 'fail');
    assert.match(missing.found, /only the leaf/);
    assert.match(missing.fix!, /serve fullchain\.pem/);
    // Dates are the expiry check's business: a complete chain with an expired leaf passes here.
    assert.equal(checkChain(hs({ chain: [leaf.x509, inter.x509], authorized: false, authorizationError: 'CERT_HAS_EXPIRED' }), anchors).status, 'pass');
    // OpenSSL has the last word on anything else.
    assert.equal(checkChain(hs({ chain: [leaf.x509, inter.x509], authorized: false, authorizationError: 'INVALID_PURPOSE' }), anchors).status, 'fail');
    const untrusted = checkChain(hs({ chain: [leaf.x509, inter.x509, root.x509], authorized: false }), buildAnchors([]));
    assert.match(untrusted.found, /"Checks Root" is not trusted/);
  });

  it('name', () => {
    assert.equal(checkName(leaf.x509, 'a.test').status, 'pass');
    const miss = checkName(leaf.x509, 'b.test');
    assert.equal(miss.status, 'fail');
    assert.match(miss.found, /not among the certificate names: a\.test/);
    // Only a CN: iOS and Chrome ignore it.
    assert.match(checkName(noEku.x509, 'a.test').found, /no subjectAltName \(CN=a\.test/);
  });

  it('expiry: pass, WARN under 14 days, FAIL once expired or not yet valid, FAIL for an expired intermediate', () => {
    const end = summarize(leaf.x509).notAfter.getTime();
    assert.equal(checkExpiry([leaf.x509], new Date(end - 15 * DAY)).status, 'pass');
    const soon = checkExpiry([leaf.x509], new Date(end - (EXPIRY_WARN_DAYS - 1) * DAY));
    assert.equal(soon.status, 'warn');
    assert.match(soon.found, /^13 days left/);
    const gone = checkExpiry([leaf.x509], new Date(end + 3 * DAY));
    assert.equal(gone.status, 'fail');
    assert.match(gone.found, /expired on .* \(3 days ago\)/);
    assert.equal(checkExpiry([leaf.x509], new Date(summarize(leaf.x509).notBefore.getTime() - DAY)).status, 'fail');
    const interEnd = summarize(inter.x509).notAfter.getTime();
    assert.match(checkExpiry([leaf.x509, inter.x509], new Date(interEnd + DAY)).found, /chain certificate "Checks Intermediate" expired/);
  });

  it("Apple's rules: EKU serverAuth, RSA >= 2048, lifetime", () => {
    assert.equal(checkAppleRules([leaf.x509, inter.x509]).status, 'pass');
    assert.match(checkAppleRules([noEku.x509]).found, /no extendedKeyUsage/);
    const w = checkAppleRules([weak.x509, root.x509]);
    assert.equal(w.status, 'fail');
    assert.match(w.found, /1024-bit RSA key/);
    const l = checkAppleRules([long.x509]);
    assert.equal(l.status, 'warn');
    assert.match(l.found, /500 days/);
  });
});
