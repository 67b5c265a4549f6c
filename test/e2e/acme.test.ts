/**
 * AcmeManager against a real ACME server: Debian's pebble on loopback, validating http-01 and
 * tls-alpn-01 for real against the challenge responders in test/support/pebble.ts (which ask the
 * manager for their answers, as the gateway does). Nothing ACME-side is mocked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type net from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { configFromObject } from '../../src/config/load.js';
import type { AcmeConfig, ConfigInput } from '../../src/config/schema.js';
import { AcmeManager, type AcmeSite, type IssuedCert } from '../../src/tls/acme/acme-manager.js';
import { analyzeChain, parsePemCertificates, subjectAltNames } from '../../src/tls/cert-info.js';
import { closedPort, ROOT, runCli, waitFor } from '../helpers.js';
import { startPebble, startResponders, type Pebble, type Responders } from '../support/pebble.js';
import { tempDir } from '../support/tls-fixtures.js';

type AcmeInput = NonNullable<ConfigInput['acme']>;
interface LogLine { msg: string; time: number; site?: string; [k: string]: unknown }

interface Harness {
  manager: AcmeManager;
  /** Each certificate handed over, with the site's state.json as it was on disk at that moment. */
  issued: { site: string; cert: IssuedCert; stateOnDisk: string | undefined }[];
  logs: LogLine[];
  messages(site?: string): string[];
}

function acmeConfig(input: AcmeInput): AcmeConfig {
  return configFromObject({ acme: input }, 'test').acme;
}

/** A manager whose pino output is kept as parsed lines, and whose onCertificate calls are recorded. */
function harness(config: AcmeConfig, now?: () => number): Harness {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const issued: Harness['issued'] = [];
  const stateOnDisk = (site: string) => {
    try {
      return readFileSync(join(config.storage, 'sites', site, 'state.json'), 'utf8');
    } catch {
      return undefined;
    }
  };
  const onCertificate = (site: string, cert: IssuedCert) => issued.push({ site, cert, stateOnDisk: stateOnDisk(site) });
  const manager = new AcmeManager({ config, log: pino({ level: 'info' }, sink), onCertificate, ...(now ? { now } : {}) });
  return { manager, issued, logs, messages: (site) => logs.filter((l) => site === undefined || l.site === site).map((l) => l.msg) };
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

async function assertChainsTo(cert: IssuedCert, names: string[], root: X509Certificate): Promise<X509Certificate> {
  const certs = parsePemCertificates(cert.cert);
  assert.ok(certs.length >= 2, 'leaf and intermediate');
  const chain = analyzeChain(certs, [root]);
  assert.equal(chain.trusted, true, `chain: ${chain.problem ?? ''} ${chain.missingIssuer ?? ''}`);
  const leaf = certs[0]!;
  assert.deepEqual(subjectAltNames(leaf).sort(), [...names].sort());
  assert.ok(leaf.checkPrivateKey(createPrivateKey(cert.key)), 'key belongs to the leaf');
  assert.equal(cert.notAfter.getTime(), new Date(leaf.validTo).getTime());
  assert.match(cert.issuer, /Pebble Intermediate CA/);
  return leaf;
}

describe('AcmeManager with pebble', { timeout: 120_000 }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let responders: Responders;
  let pebble: Pebble;
  let root: X509Certificate;
  const open: AcmeManager[] = [];
  const track = (h: Harness) => {
    open.push(h.manager);
    responders.source = h.manager;
    return h;
  };
  const base = (storage: string): AcmeInput => ({ directory: pebble.directory, ca: pebble.caFile, storage: join(tmp.dir, storage), retryMin: 300, retryMax: 5000 });
  const SHOP: AcmeSite = { site: 'shop', names: ['a.test', 'www.a.test'] };

  before(async () => {
    tmp = await tempDir('acme');
    responders = await startResponders();
    pebble = await startPebble({ dir: tmp.dir, httpPort: responders.httpPort, tlsPort: responders.tlsPort });
    root = await pebble.root();
  });
  after(async () => {
    await Promise.all(open.map((m) => m.close()));
    await pebble?.close();
    await responders?.close();
    await tmp?.remove();
  });

  it('cold start with an empty store: issues via http-01 (first of the default order), chain verifies, keys 0600, dir 0700', async () => {
    const h = track(harness(acmeConfig(base('store-http'))));
    const started = Date.now();
    h.manager.update([SHOP]);
    assert.deepEqual(h.manager.status().map((s) => [s.site, s.state]), [['shop', 'issuing']], 'update returns at once, work in the background');
    await waitFor(() => h.issued.length === 1, 30_000, `the certificate (${pebble.output().slice(-2000)})`);
    const elapsed = Date.now() - started;

    const { site, cert, stateOnDisk } = h.issued[0]!;
    assert.equal(site, 'shop');
    await assertChainsTo(cert, SHOP.names, root);
    // The store is complete before anyone hears of the certificate (CI once read state.json too early).
    assert.equal((JSON.parse(stateOnDisk ?? '{}') as { state?: string }).state, 'valid', 'state.json written before onCertificate');
    assert.ok(responders.httpHits.some((hit) => hit.startsWith('a.test:')) && responders.httpHits.some((hit) => hit.startsWith('www.a.test:')), `http-01 hits: ${responders.httpHits.join(', ')}`);
    assert.equal(responders.alpnHits.length, 0, 'tls-alpn-01 not used when http-01 comes first');

    const [st] = h.manager.status();
    assert.equal(st!.state, 'valid');
    assert.equal(st!.notAfter, cert.notAfter.toISOString());
    assert.equal(st!.lastError, undefined);
    // Pebble's default lifetime is 5 years: renewal at 2/3 of it.
    const renewAt = Date.parse(st!.nextAttempt!);
    const expected = cert.notAfter.getTime() - (cert.notAfter.getTime() - cert.notBefore.getTime()) / 3;
    assert.ok(Math.abs(renewAt - expected) < 1000, `renewal at ${st!.nextAttempt}`);

    const storage = join(tmp.dir, 'store-http');
    assert.equal(await mode(storage), 0o700);
    assert.equal(await mode(join(storage, 'sites', 'shop', 'key.pem')), 0o600);
    assert.equal(await readFile(join(storage, 'sites', 'shop', 'cert.pem'), 'utf8'), cert.cert);
    assert.equal(await readFile(join(storage, 'sites', 'shop', 'key.pem'), 'utf8'), cert.key);
    const [accountDir] = await readdir(join(storage, 'accounts'));
    assert.match(accountDir!, /^127\.0\.0\.1_\d+-[0-9a-f]{8}$/);
    assert.equal(await mode(join(storage, 'accounts', accountDir!, 'account.key')), 0o600);
    const account = JSON.parse(await readFile(join(storage, 'accounts', accountDir!, 'account.json'), 'utf8')) as { url: string };
    assert.match(account.url, /^https:\/\/127\.0\.0\.1:\d+\//);
    const state = JSON.parse(await readFile(join(storage, 'sites', 'shop', 'state.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(state.state, 'valid');
    assert.equal(state.failures, 0);
    assert.equal(state.certDirectory, pebble.directory);
    assert.deepEqual(state.names, SHOP.names);
    assert.equal((await readdir(join(storage, 'sites', 'shop'))).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary files left');

    // The answers are published only while the CA validates.
    const token = responders.httpHits[0]!.split('/').pop()!;
    assert.equal(h.manager.httpChallenge(token), undefined);
    const msgs = h.messages();
    for (const m of ['acme certificate needed', 'acme issuing certificate', 'acme account ready', 'acme order placed', 'acme challenge ready', 'acme challenges validated', 'acme certificate issued', 'acme renewal scheduled']) {
      assert.ok(msgs.includes(m), `log has "${m}": ${msgs.join(' | ')}`);
    }
    const challengeLines = h.logs.filter((l) => l.msg === 'acme challenge ready');
    assert.deepEqual(challengeLines.map((l) => [l.name, l.type]).sort(), [['a.test', 'http-01'], ['www.a.test', 'http-01']]);
    assert.ok(elapsed < 20_000, `issued in ${elapsed} ms`);
    await h.manager.close();
  });

  it('tls-alpn-01 only: the challenge certificate is served for acme-tls/1 and validated', async () => {
    const h = track(harness(acmeConfig({ ...base('store-alpn'), challenges: ['tls-alpn-01'], email: 'ops@example.com' })));
    const httpBefore = responders.httpHits.length;
    h.manager.update([{ site: 'alpn', names: ['b.test'] }]);
    await waitFor(() => h.issued.length === 1 || h.manager.status()[0]?.state === 'failed', 30_000, 'the certificate');
    assert.equal(h.manager.status()[0]!.state, 'valid', h.manager.status()[0]!.lastError);
    await assertChainsTo(h.issued[0]!.cert, ['b.test'], root);
    assert.ok(responders.alpnHits.includes('b.test'), `alpn hits: ${responders.alpnHits.join(', ')}`);
    assert.equal(responders.httpHits.length, httpBefore, 'no http-01 request');
    assert.equal(h.manager.alpnChallenge('b.test'), undefined, 'challenge context removed after validation');
    assert.deepEqual(h.logs.filter((l) => l.msg === 'acme challenge ready').map((l) => l.type), ['tls-alpn-01']);
    await h.manager.close();
  });

  it('restart: stored() returns the certificate and update() schedules renewal without contacting the CA', async () => {
    const storage = join(tmp.dir, 'store-http');
    const previous = await readFile(join(storage, 'sites', 'shop', 'cert.pem'), 'utf8');
    const h = track(harness(acmeConfig(base('store-http'))));
    const stored = h.manager.stored(SHOP);
    assert.ok(stored);
    assert.equal(stored.cert, previous);
    await assertChainsTo(stored, SHOP.names, root);
    assert.equal(h.manager.stored({ site: 'nothing-here', names: ['z.test'] }), undefined);

    h.manager.update([SHOP]);
    // Valid synchronously: nothing was fetched.
    assert.equal(h.manager.status()[0]!.state, 'valid');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(h.messages(), ['acme renewal scheduled']);
    assert.equal(h.issued.length, 0);

    // A reload with the same names (another order) changes nothing; a removed site is forgotten.
    h.manager.update([{ site: 'shop', names: ['WWW.a.test', 'a.test'] }]);
    assert.deepEqual(h.messages(), ['acme renewal scheduled']);
    h.manager.update([]);
    assert.deepEqual(h.manager.status(), []);
    await h.manager.close();
  });

  it('stored(): a key that does not match the certificate, or a damaged file, reads as none', async () => {
    const storage = join(tmp.dir, 'store-damaged');
    await cp(join(tmp.dir, 'store-alpn'), storage, { recursive: true });
    const h = track(harness(acmeConfig(base('store-damaged'))));
    const site = { site: 'alpn', names: ['b.test'] };
    assert.ok(h.manager.stored(site));
    const otherKey = await readFile(join(tmp.dir, 'store-http', 'sites', 'shop', 'key.pem'), 'utf8');
    await writeFile(join(storage, 'sites', 'alpn', 'key.pem'), otherKey);
    assert.equal(h.manager.stored(site), undefined);
    await writeFile(join(storage, 'sites', 'alpn', 'cert.pem'), 'garbage');
    assert.equal(h.manager.stored(site), undefined);
    await h.manager.close();
  });

  it('renewal by the clock: with `now` past 2/3 of the lifetime, a restart renews at once', async () => {
    const storage = join(tmp.dir, 'store-renew-now');
    await cp(join(tmp.dir, 'store-http'), storage, { recursive: true });
    const old = new X509Certificate(await readFile(join(storage, 'sites', 'shop', 'cert.pem'), 'utf8'));
    const lifetime = Date.parse(old.validTo) - Date.parse(old.validFrom);
    const skew = Math.ceil(lifetime * 0.7);
    const h = track(harness(acmeConfig(base('store-renew-now')), () => Date.now() + skew));
    h.manager.update([SHOP]);
    await waitFor(() => h.issued.length === 1, 30_000, 'the renewed certificate').catch((err: Error) => {
      throw new Error(`${err.message}\n${h.logs.map((l) => JSON.stringify(l)).join('\n')}`);
    });
    const fresh = await assertChainsTo(h.issued[0]!.cert, SHOP.names, root);
    assert.notEqual(fresh.serialNumber, old.serialNumber);
    assert.equal(h.logs.find((l) => l.msg === 'acme certificate needed')?.reason, 'renewal is due');
    assert.equal(h.logs.find((l) => l.msg === 'acme issuing certificate')?.renewal, true);
    assert.equal(await readFile(join(storage, 'sites', 'shop', 'cert.pem'), 'utf8'), h.issued[0]!.cert.cert);
    // Seen from the shifted clock the new certificate is due too: no order loop, the next renewal
    // waits a tenth of the lifetime.
    assert.ok(h.messages().includes('acme: the new certificate is already due for renewal (short lifetime or clock skew)'));
    const next = Date.parse(h.manager.status()[0]!.nextAttempt!) - (Date.now() + skew);
    assert.ok(Math.abs(next - lifetime / 10) < 60_000, `next renewal in ${next} ms`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(h.issued.length, 1);
    await h.manager.close();
  });

  it('failure: wrong directory → failed with lastError, backoff doubles, onCertificate never called, previous certificate kept', async () => {
    const storage = join(tmp.dir, 'store-wrongdir');
    await cp(join(tmp.dir, 'store-http'), storage, { recursive: true });
    const wrong = pebble.directory.replace(/\/dir$/, '/no-such-directory');
    // `now` a year past expiry: the stored certificate must be replaced, and cannot be.
    const h = track(harness(acmeConfig({ ...base('store-wrongdir'), directory: wrong }), () => Date.now() + 6 * 365 * 86_400_000));
    const previous = h.manager.stored(SHOP)!;
    h.manager.update([SHOP]);
    await waitFor(() => h.logs.filter((l) => l.msg === 'acme issuance failed').length >= 2, 20_000, 'two failed attempts');
    const fails = h.logs.filter((l) => l.msg === 'acme issuance failed');
    assert.equal(fails[0]!.code, 'MPG_ACME_DIRECTORY');
    assert.equal(fails[0]!.err, `ACME directory ${wrong}: HTTP 404 (is this the directory URL of an ACME CA?)`);
    assert.equal(fails[0]!.servingPrevious, true);
    // retryMin 300 ms, then 600 ms (`now` is shifted, so compare against it, not the log time).
    const delays = fails.map((l) => Date.parse(String(l.nextAttempt)) - (l.time + 6 * 365 * 86_400_000));
    assert.ok(Math.abs(delays[0]! - 300) < 150 && Math.abs(delays[1]! - 600) < 150, `delays ${delays.join(', ')}`);

    const st = h.manager.status()[0]!;
    assert.ok(st.state === 'failed' || st.state === 'issuing');
    assert.match(st.lastError!, /404/);
    assert.equal(st.notAfter, previous.notAfter.toISOString(), 'still reports the certificate it serves');
    assert.equal(h.issued.length, 0);
    assert.equal(h.manager.stored(SHOP)?.cert, previous.cert, 'files untouched');
    await h.manager.close();
    const state = JSON.parse(await readFile(join(storage, 'sites', 'shop', 'state.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(state.state, 'failed');
    assert.ok(Number(state.failures) >= 2);
    assert.match(String(state.lastError), /404/);
    assert.equal(state.lastErrorCode, 'MPG_ACME_DIRECTORY');
    assert.ok(typeof state.nextAttempt === 'string');

    // mpgate cert list shows the failure from the storage directory.
    const list = await runCli(['cert', 'list', '--dir', storage]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /site +shop \(a\.test, www\.a\.test\)/);
    assert.match(list.stdout, /state +failed \(\d+ attempts?\): .*404/);
    assert.match(list.stdout, /next +\d{4}-\d\d-\d\dT/);
  });

  it('failure: challenge responder down → challenge error names the host, no certificate', async () => {
    // A second pebble whose http-01 port has nothing listening.
    const down = await startPebble({ dir: join(tmp.dir, 'pebble-down'), httpPort: await closedPort(), tlsPort: await closedPort() });
    try {
      const h = track(harness(acmeConfig({ directory: down.directory, ca: down.caFile, storage: join(tmp.dir, 'store-down'), challenges: ['http-01'], retryMin: 60_000 })));
      h.manager.update([{ site: 'down', names: ['c.test'] }]);
      await waitFor(() => h.manager.status()[0]?.state === 'failed', 20_000, 'the failure');
      const st = h.manager.status()[0]!;
      assert.match(st.lastError!, /^c\.test: http-01 challenge failed: .*(refused|connect)/i);
      assert.match(st.lastError!, /port 80/);
      const next = Date.parse(st.nextAttempt!);
      assert.ok(next - Date.now() > 55_000 && next - Date.now() <= 60_000, `next attempt ${st.nextAttempt}`);
      assert.equal(h.issued.length, 0);
      assert.equal(h.manager.stored({ site: 'down', names: ['c.test'] }), undefined);
      assert.ok(h.messages().includes('acme issuance failed'));
      const t0 = Date.now();
      await h.manager.close();
      assert.ok(Date.now() - t0 < 500, 'close clears the retry timer at once');
    } finally {
      await down.close();
    }
  });

  it('close() aborts an order in flight promptly and is idempotent; update() after close is ignored', async () => {
    // An HTTPS "CA" that accepts requests and never answers.
    const tlsDir = join(tmp.dir, 'pebble-tls');
    const stuck: net.Socket[] = [];
    let requests = 0;
    const server = https.createServer({ cert: await readFile(join(tlsDir, 'localhost.pem')), key: await readFile(join(tlsDir, 'localhost-key.pem')) }, () => {
      requests++;
    });
    server.on('connection', (s: net.Socket) => stuck.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    try {
      const h = track(harness(acmeConfig({ ...base('store-stuck'), directory: `https://127.0.0.1:${port}/dir` })));
      h.manager.update([{ site: 'stuck', names: ['d.test'] }]);
      await waitFor(() => requests > 0, 10_000, 'the directory request');
      const t0 = Date.now();
      await h.manager.close();
      const took = Date.now() - t0;
      assert.ok(took < 1000, `close took ${took} ms`);
      await h.manager.close();
      h.manager.update([{ site: 'x', names: ['x.test'] }]);
      assert.ok(h.messages().includes('acme update ignored: the manager is closed'));
      assert.equal(h.issued.length, 0);
      assert.equal(h.logs.filter((l) => l.msg === 'acme issuance failed').length, 0, 'an abort is not reported as a failure');
    } finally {
      for (const s of stuck) s.destroy();
      server.close();
    }
  });

  it('a process with a manager exits by itself: renewal and retry timers do not hold it', async () => {
    const manager = fileURLToPath(new URL('../../src/tls/acme/acme-manager.js', import.meta.url));
    const load = fileURLToPath(new URL('../../src/config/load.js', import.meta.url));
    const valid = { directory: pebble.directory, ca: pebble.caFile, storage: join(tmp.dir, 'store-http') };
    const failing = { directory: pebble.directory.replace(/\/dir$/, '/nope'), ca: pebble.caFile, storage: join(tmp.dir, 'store-exit'), retryMin: 3_600_000 };
    const script = `
      import { AcmeManager } from ${JSON.stringify(manager)};
      import { configFromObject } from ${JSON.stringify(load)};
      import { pino } from 'pino';
      const log = pino({ level: 'silent' });
      const cfg = (a) => configFromObject({ acme: a }, 'child').acme;
      const a = new AcmeManager({ config: cfg(${JSON.stringify(valid)}), log, onCertificate() {} });
      a.update([{ site: 'shop', names: ['a.test', 'www.a.test'] }]);
      const b = new AcmeManager({ config: cfg(${JSON.stringify(failing)}), log, onCertificate() {} });
      b.update([{ site: 'f', names: ['f.test'] }]);
      while (b.status()[0].state !== 'failed') await new Promise((r) => setTimeout(r, 20));
      console.log(JSON.stringify([a.status()[0], b.status()[0]]));
      // Neither manager is closed: the renewal (years away) and the retry (an hour away) stay pending.
    `;
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    assert.equal(code, 0, `exit ${code} after ${Date.now() - t0} ms\n${err}`);
    const [a, b] = JSON.parse(out) as [{ state: string; nextAttempt: string }, { state: string; nextAttempt: string }];
    assert.equal(a.state, 'valid');
    assert.equal(b.state, 'failed');
    assert.ok(Date.parse(b.nextAttempt) - Date.now() > 3_000_000);
  });
});

describe('AcmeManager renewal with short-lived certificates', { timeout: 60_000 }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let responders: Responders;
  let pebble: Pebble;
  let manager: AcmeManager | undefined;

  before(async () => {
    tmp = await tempDir('acme-renew');
    responders = await startResponders();
    // 8 s certificates, renewed with half the lifetime left: a renewal about 4 s after issuance.
    pebble = await startPebble({ dir: tmp.dir, httpPort: responders.httpPort, tlsPort: responders.tlsPort, validitySeconds: 8 });
  });
  after(async () => {
    await manager?.close();
    await pebble?.close();
    await responders?.close();
    await tmp?.remove();
  });

  it('renews by itself on the timer and hands over each new certificate', async () => {
    const config = configFromObject({ acme: { directory: pebble.directory, ca: pebble.caFile, storage: join(tmp.dir, 'store'), renewBefore: 0.5, retryMin: 500 } }, 'test').acme;
    const h = harness(config);
    manager = h.manager;
    responders.source = h.manager;
    h.manager.update([{ site: 'short', names: ['e.test'] }]);
    await waitFor(() => h.issued.length >= 2, 30_000, `two certificates (${pebble.output().slice(-1500)})`);
    const [first, second] = h.issued.map((i) => new X509Certificate(i.cert.cert));
    const lifetime = Date.parse(first!.validTo) - Date.parse(first!.validFrom);
    assert.ok(lifetime <= 8000, `pebble honoured certificateValidityPeriod: ${lifetime} ms`);
    assert.notEqual(first!.serialNumber, second!.serialNumber);
    assert.ok(Date.parse(second!.validFrom) >= Date.parse(first!.validFrom));
    const root = await pebble.root();
    for (const i of h.issued.slice(0, 2)) assert.equal(analyzeChain(parsePemCertificates(i.cert.cert), [root]).trusted, true);
    const scheduled = h.logs.filter((l) => l.msg === 'acme renewal scheduled');
    assert.ok(scheduled.length >= 2);
    const renewAt = Date.parse(String(scheduled[0]!.renewAt));
    const expected = Date.parse(first!.validTo) - lifetime / 2;
    assert.ok(Math.abs(renewAt - expected) < 1000, `renewal at ${scheduled[0]!.renewAt}, expected ~${new Date(expected).toISOString()}`);
    const stored = await readFile(join(tmp.dir, 'store', 'sites', 'short', 'cert.pem'), 'utf8');
    assert.ok(h.issued.some((i) => i.cert.cert === stored), 'the newest certificate is on disk');
  });
});
