/**
 * `mpgate doctor` against real TLS servers on 127.0.0.1: a good setup and each way WeChat's client
 * would refuse one (expired, self-signed, missing intermediate, TLS 1.0 only, wrong name), plus the
 * softer findings (no HTTP/2, TLS 1.3 only, a wrong WebSocket path). Certificates are made in before():
 * the good ones by `cert dev`'s code, the broken ones with openssl.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runDoctor, type CheckId, type DoctorReport, type Status } from '../../src/tls/doctor-checks.js';
import { ensureDevCertificates } from '../../src/tls/dev-ca.js';
import { closedPort, runCli, startBackend } from '../helpers.js';
import { canSpeakTls10, issue, issueWithDates, startTlsServer, tempDir, type Issued, type TlsServer } from '../support/tls-fixtures.js';

/** Runs the doctor with --json for `name` pinned to 127.0.0.1 and returns the exit code and the report. */
async function doctor(name: string, port: number, extra: string[] = []): Promise<{ code: number; report: DoctorReport; stderr: string }> {
  const r = await runCli(['doctor', `https://${name}:${port}/`, '--resolve', `${name}:127.0.0.1`, '--timeout', '4000', '--json', ...extra]);
  let report: DoctorReport;
  try {
    report = JSON.parse(r.stdout) as DoctorReport;
  } catch {
    assert.fail(`doctor printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/**
 * The same checks in-process (runDoctor is what the CLI calls): most cases below only need the
 * verdicts, and a CLI process costs most of a second of start-up on a loaded machine.
 */
async function doctorIn(name: string, port: number, opts: { ca?: string; ws?: string } = {}): Promise<DoctorReport> {
  return runDoctor({
    url: `https://${name}:${port}/`, resolve: [{ name, address: '127.0.0.1' }], timeoutMs: 4000, env: {},
    ...(opts.ca ? { caFiles: [opts.ca] } : {}), ...(opts.ws ? { wsPath: opts.ws } : {}),
  });
}

function statusOf(report: DoctorReport): Partial<Record<CheckId, Status>> {
  return Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
}

function check(report: DoctorReport, id: CheckId) {
  const c = report.checks.find((x) => x.id === id);
  assert.ok(c, `no ${id} check in ${JSON.stringify(report.checks.map((x) => x.id))}`);
  return c;
}

describe('mpgate doctor', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let caFile: string;
  let good: { key: string; fullchain: string; leafOnly: string };
  let privateRoot: Issued;
  let chainLeaf: Issued;
  let intermediate: Issued;
  let expired: Issued;
  let selfSigned: Issued;
  const servers: TlsServer[] = [];
  const serve = async (spec: Parameters<typeof startTlsServer>[0]) => {
    const s = await startTlsServer(spec);
    servers.push(s);
    return s;
  };

  before(async () => {
    tmp = await tempDir('doctor');
    const dev = await ensureDevCertificates({ dir: join(tmp.dir, 'dev'), names: ['good.test', '*.good.test'] });
    caFile = dev.files.caCert;
    good = { key: await readFile(dev.files.key, 'utf8'), fullchain: await readFile(dev.files.fullchain, 'utf8'), leafOnly: await readFile(dev.files.cert, 'utf8') };
    const devCa = { certFile: dev.files.caCert, keyFile: dev.files.caKey };
    // CA → intermediate → leaf, as public CAs do it.
    privateRoot = await issue(tmp.dir, { name: 'root', commonName: 'Test Root', ca: {}, days: 365 });
    intermediate = await issue(tmp.dir, { name: 'intermediate', commonName: 'Test Intermediate', ca: { pathLen: 0 }, issuer: privateRoot, days: 365 });
    chainLeaf = await issue(tmp.dir, { name: 'chain', names: ['chain.test'], issuer: intermediate });
    expired = await issueWithDates(tmp.dir, { name: 'expired', names: ['expired.test'], issuer: devCa, notBefore: '20200101000000Z', notAfter: '20200301000000Z' });
    selfSigned = await issue(tmp.dir, { name: 'self', names: ['self.test'] });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await tmp.remove();
  });

  it('good setup (CA via --ca, full chain, h2 + http/1.1, wss): every check passes, exit 0', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain, wsPath: '/ws' });
    const { code, report } = await doctor('good.test', s.port, ['--ca', caFile, '--ws', '/ws']);
    assert.equal(code, 0, JSON.stringify(report, null, 2));
    assert.deepEqual(statusOf(report), {
      url: 'pass', dns: 'pass',
      // The only WARN: the test server cannot listen on 443, and WeChat only connects there.
      tcp: 'warn',
      tls12: 'pass', legacy: 'pass', chain: 'pass', name: 'pass', expiry: 'pass', apple: 'pass', h2: 'pass', ws: 'pass',
    });
    assert.match(check(report, 'tcp').fix!, /443/);
    assert.match(check(report, 'chain').found, /trusted via --ca/);
    assert.match(check(report, 'h2').found, /h2/);
    assert.match(check(report, 'expiry').found, /39[67] days left/);
    assert.equal(report.ok, true);
  });

  it('prints one PASS/WARN/FAIL line per check and the fix under a failure', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain, wsPath: '/ws' });
    const r = await runCli(['doctor', `https://good.test:${s.port}/`, '--resolve', 'good.test:127.0.0.1', '--ws', '/nope']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^PASS {2}TLS 1\.2\+ offered +TLSv1\.[23]/m);
    assert.match(r.stdout, /^FAIL {2}chain complete and trusted +.*"mpgate dev CA[^"]*" is not trusted/m);
    assert.match(r.stdout, /^ {6}fix: .*--ca FILE/m);
    assert.match(r.stdout, /^WARN {2}TCP connect/m);
    assert.match(r.stdout, /checks: \d+ pass, 1 warn, 2 fail/);
  });

  it('wrong WebSocket path: ws FAIL with the status it got and the proxy fix', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain, wsPath: '/ws' });
    const report = await doctorIn('good.test', s.port, { ca: caFile, ws: '/nope' });
    assert.equal(report.ok, false);
    const ws = check(report, 'ws');
    assert.equal(ws.status, 'fail');
    assert.match(ws.found, /404 Not Found/);
    assert.match(ws.fix!, /Upgrade/);
    assert.equal(report.checks.filter((c) => c.status === 'fail').length, 1);
  });

  it('expired certificate: expiry FAIL with the date and the renew fix (the chain itself still passes)', async () => {
    const s = await serve({ key: expired.keyPem, cert: expired.certPem });
    const report = await doctorIn('expired.test', s.port, { ca: caFile });
    assert.equal(report.ok, false);
    const e = check(report, 'expiry');
    assert.equal(e.status, 'fail');
    assert.match(e.found, /expired on 2020-03-01/);
    assert.match(e.fix!, /renew/);
    assert.equal(check(report, 'chain').status, 'pass');
  });

  it('self-signed leaf: chain FAIL saying self-signed, with the public-CA fix', async () => {
    const s = await serve({ key: selfSigned.keyPem, cert: selfSigned.certPem });
    const report = await doctorIn('self.test', s.port);
    assert.equal(report.ok, false);
    const c = check(report, 'chain');
    assert.equal(c.status, 'fail');
    assert.match(c.found, /self-signed/);
    assert.match(c.fix!, /public CA/);
    assert.equal(check(report, 'name').status, 'pass');
  });

  it('missing intermediate (server sends the leaf only): chain FAIL with the fullchain fix', async () => {
    const s = await serve({ key: chainLeaf.keyPem, cert: chainLeaf.certPem });
    const { code, report } = await doctor('chain.test', s.port, ['--ca', privateRoot.certFile]);
    assert.equal(code, 1);
    const c = check(report, 'chain');
    assert.equal(c.status, 'fail');
    assert.match(c.found, /only the leaf certificate/);
    assert.match(c.found, /Test Intermediate/);
    assert.match(c.fix!, /fullchain\.pem/);
  });

  it('the same leaf served with its intermediate: chain PASS through both', async () => {
    const s = await serve({ key: chainLeaf.keyPem, cert: chainLeaf.certPem + intermediate.certPem });
    const report = await doctorIn('chain.test', s.port, { ca: privateRoot.certFile });
    assert.equal(report.ok, true, JSON.stringify(report.checks, null, 2));
    assert.match(check(report, 'chain').found, /"chain\.test" → "Test Intermediate" → "Test Root"/);
  });

  it('private root not given with --ca: chain FAIL, root not trusted', async () => {
    const s = await serve({ key: chainLeaf.keyPem, cert: chainLeaf.certPem + intermediate.certPem + privateRoot.certPem });
    const report = await doctorIn('chain.test', s.port);
    const c = check(report, 'chain');
    assert.equal(c.status, 'fail');
    assert.match(c.found, /"Test Root" is not trusted/);
  });

  it('TLS 1.0-only server: TLS 1.2+ FAIL and TLS < 1.2 FAIL; the certificate is still judged', async () => {
    if (!(await canSpeakTls10(good.key, good.fullchain))) {
      // This node's OpenSSL cannot handshake TLS 1.0 even with itself (built without it), so no
      // TLS 1.0-only server can exist here: check the other half, that a modern server's refusal is seen.
      const s = await serve({ key: good.key, cert: good.fullchain });
      const report = await doctorIn('good.test', s.port, { ca: caFile });
      assert.notEqual(check(report, 'legacy').status, 'fail');
      return;
    }
    // Node's OpenSSL 3 speaks TLS 1.0 only at security level 0 (SHA-1 handshake signatures), on both
    // sides; the doctor's probe sets the same level, which is what lets it see this server at all.
    const s = await serve({ key: good.key, cert: good.fullchain, h2: false, tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } });
    const { code, report } = await doctor('good.test', s.port, ['--ca', caFile]);
    assert.equal(code, 1);
    assert.equal(check(report, 'tls12').status, 'fail');
    assert.match(check(report, 'tls12').fix!, /TLSv1\.2/);
    const legacy = check(report, 'legacy');
    assert.equal(legacy.status, 'fail');
    assert.match(legacy.found, /accepts TLSv1 /);
    assert.match(legacy.fix!, /ssl_protocols TLSv1\.2 TLSv1\.3/);
    assert.equal(check(report, 'chain').status, 'pass');
    assert.match(check(report, 'chain').found, /from the TLSv1 handshake/);
    assert.equal(check(report, 'h2').status, 'skip');
  });

  it('a modern server refuses TLS 1.0/1.1: TLS < 1.2 PASS', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain });
    const legacy = check(await doctorIn('good.test', s.port, { ca: caFile }), 'legacy');
    assert.equal(legacy.status, 'pass');
    assert.match(legacy.found, /refused \(tlsv1 alert protocol version\)/);
  });

  it('name not covered: name FAIL listing the names it has; a wildcard covers one label only', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain });
    const other = await doctorIn('other.test', s.port, { ca: caFile });
    assert.equal(other.ok, false);
    assert.equal(check(other, 'name').status, 'fail');
    assert.match(check(other, 'name').found, /good\.test, \*\.good\.test/);
    assert.match(check(other, 'name').fix!, /subjectAltName/);
    assert.equal(check(await doctorIn('a.b.good.test', s.port, { ca: caFile }), 'name').status, 'fail');
    assert.equal(check(await doctorIn('good.test.evil', s.port, { ca: caFile }), 'name').status, 'fail');
    const one = await doctorIn('api.good.test', s.port, { ca: caFile });
    assert.equal(check(one, 'name').status, 'pass');
    assert.match(check(one, 'name').found, /"\*\.good\.test"/);
  });

  it('no HTTP/2: h2 WARN, exit still 0', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain, h2: false });
    const report = await doctorIn('good.test', s.port, { ca: caFile });
    assert.equal(report.ok, true);
    assert.equal(check(report, 'h2').status, 'warn');
    assert.match(check(report, 'h2').fix!, /enableHttp2/);
  });

  it('TLS 1.3 only: TLS 1.2+ WARN (older phones)', async () => {
    const s = await serve({ key: good.key, cert: good.fullchain, tls: { minVersion: 'TLSv1.3' } });
    const report = await doctorIn('good.test', s.port, { ca: caFile });
    const t = check(report, 'tls12');
    assert.equal(t.status, 'warn');
    assert.match(t.found, /TLSv1\.3.*TLS 1\.2 is refused/);
  });

  it('plain HTTP on the port: TLS FAIL saying so, certificate checks skipped', async () => {
    const backend = await startBackend();
    try {
      const report = await doctorIn('good.test', backend.port);
      assert.equal(report.ok, false);
      assert.match(check(report, 'tls12').found, /plain HTTP/);
      assert.equal(check(report, 'chain').status, 'skip');
    } finally {
      await backend.close();
    }
  });

  it('nothing listening: TCP FAIL, the rest skipped', async () => {
    const port = await closedPort();
    const report = await doctorIn('good.test', port);
    assert.equal(report.ok, false);
    assert.equal(check(report, 'tcp').status, 'fail');
    assert.match(check(report, 'tcp').found, /ECONNREFUSED/);
    assert.ok(report.checks.filter((c) => c.status === 'skip').length >= 6);
  });

  it('URL rules and usage: ":443" FAIL, http:// FAIL, exit 2 without a URL or with a bad --resolve', async () => {
    const port = await closedPort();
    const http = await runDoctor({ url: `http://good.test:${port}/`, env: {} });
    assert.equal(check(http, 'url').status, 'fail');
    assert.equal(http.checks.filter((c) => c.status === 'skip').length, http.checks.length - 1);
    const r443 = await runDoctor({ url: 'https://good.test:443/', resolve: [{ name: 'good.test', address: '127.0.0.1' }], timeoutMs: 500, env: {} });
    assert.equal(r443.ok, false);
    const url = check(r443, 'url');
    assert.equal(url.status, 'fail');
    assert.match(url.fix!, /write https:\/\/good\.test$/);
    assert.equal((await runCli(['doctor'])).code, 2);
    const bad = await runCli(['doctor', 'https://good.test/', '--resolve', 'good.test']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--resolve good\.test: expected NAME:IP/);
    const noCa = await runCli(['doctor', 'https://good.test/', '--ca', join(tmp.dir, 'missing.pem')]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /--ca .*missing\.pem: cannot read the file \(ENOENT\)/);
    const help = await runCli(['doctor', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: mpgate doctor/);
  });
});
