/**
 * How acme-client's requests reach the CA: the directory names, the per-order context on
 * acme-client's one shared axios instance (each order's agent trusts its own CA; an abort ends a
 * request at once), the directory probe, and the readable message for a request that got no answer.
 * Real HTTPS servers on loopback, certificates from openssl.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { axios } from 'acme-client';
import { pino } from 'pino';
import { acmeAgent, directoryUrl, probeDirectory, withTransport } from '../../src/tls/acme/transport.js';
import { closedPort } from '../helpers.js';
import { issue, tempDir, type Issued } from '../support/tls-fixtures.js';

const log = pino({ level: 'silent' });

interface Site { port: number; server: https.Server; sockets: Set<net.Socket> }

/** An HTTPS "CA": /dir is an ACME directory, /404 a 404, /text plain text, /bare JSON without endpoints, /hang never answers. */
async function startCa(leaf: Issued): Promise<Site> {
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    if (req.url === '/hang') return;
    if (req.url === '/dir') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ newNonce: 'https://x/n', newAccount: 'https://x/a', newOrder: 'https://x/o' }));
    if (req.url === '/bare') return res.writeHead(200).end('{"meta":{}}');
    if (req.url === '/text') return res.writeHead(200).end('ok');
    res.writeHead(404).end();
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server, sockets };
}

describe('acme transport', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const cas: Issued[] = [];
  const sites: Site[] = [];
  const url = (i: number, path: string) => `https://127.0.0.1:${sites[i]!.port}${path}`;
  const ctx = (ca: Issued | undefined, signal = new AbortController().signal) => ({ agent: acmeAgent(ca?.certPem), signal, log });

  before(async () => {
    tmp = await tempDir('acme-transport');
    for (const name of ['one', 'two']) {
      const ca = await issue(tmp.dir, { name: `${name}-ca`, commonName: `CA ${name}`, ca: {} });
      cas.push(ca);
      sites.push(await startCa(await issue(tmp.dir, { name, names: ['127.0.0.1'], issuer: ca })));
    }
  });
  after(async () => {
    for (const s of sites) {
      for (const so of s.sockets) so.destroy();
      s.server.close();
    }
    await tmp.remove();
  });

  it('maps the directory names to Let\'s Encrypt and passes URLs through', () => {
    assert.equal(directoryUrl('letsencrypt'), 'https://acme-v02.api.letsencrypt.org/directory');
    assert.equal(directoryUrl('letsencrypt-staging'), 'https://acme-staging-v02.api.letsencrypt.org/directory');
    assert.equal(directoryUrl('https://ca.example/dir'), 'https://ca.example/dir');
  });

  it('gives each order its own trust: concurrent requests to CAs signed by different roots both succeed', async () => {
    const get = (i: number) => withTransport(ctx(cas[i]), async () => String((await axios.get(url(i, '/text'), { responseType: 'text' })).data));
    assert.deepEqual(await Promise.all([get(0), get(1), get(0)]), ['ok', 'ok', 'ok']);
  });

  it('probeDirectory: accepts a directory, refuses at once with the reason otherwise', async () => {
    await probeDirectory(url(0, '/dir'), ctx(cas[0]));
    const t0 = Date.now();
    await assert.rejects(probeDirectory(url(0, '/dir'), ctx(cas[1])), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MPG_ACME_DIRECTORY');
      assert.match(err.message, /not trusted; set acme\.ca to the PEM file of the CA that signs it/);
      return true;
    });
    await assert.rejects(probeDirectory(url(0, '/dir'), ctx(undefined)), /acme\.ca/);
    await assert.rejects(probeDirectory(url(0, '/nope'), ctx(cas[0])), /: HTTP 404 \(is this the directory URL of an ACME CA\?\)$/);
    await assert.rejects(probeDirectory(url(0, '/text'), ctx(cas[0])), /the answer is not JSON/);
    await assert.rejects(probeDirectory(url(0, '/bare'), ctx(cas[0])), /not an ACME directory: no newNonce, newAccount, newOrder/);
    const port = await closedPort();
    await assert.rejects(probeDirectory(`https://127.0.0.1:${port}/dir`, ctx(cas[0])), /ECONNREFUSED/);
    assert.ok(Date.now() - t0 < 3000, `no retries: ${Date.now() - t0} ms`);
  });

  it('a request that gets no answer is reported with the socket error, not acme-client\'s TypeError', async () => {
    // acme-client would first retry five times with 5-25 s pauses; this test process does without.
    const settings = (axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings;
    const saved = settings.retryMaxAttempts;
    settings.retryMaxAttempts = 0;
    try {
      await assert.rejects(withTransport(ctx(cas[1]), () => axios.get(url(0, '/dir'))), (err: Error) => {
        assert.match(err.message, new RegExp(`^${url(0, '/dir').replace(/[.]/g, '\\.')}: .*not trusted; set acme\\.ca`));
        return true;
      });
      // Outside an order's context acme-client's behaviour is left alone.
      await assert.rejects(axios.get(`https://127.0.0.1:${await closedPort()}/`), TypeError);
    } finally {
      settings.retryMaxAttempts = saved;
    }
  });

  it('an abort ends a request at once, without acme-client\'s retry pause, and refuses the next one', async () => {
    const ctl = new AbortController();
    const c = ctx(cas[0], ctl.signal);
    const p = withTransport(c, () => axios.get(url(0, '/hang')));
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    ctl.abort();
    await assert.rejects(p);
    assert.ok(Date.now() - t0 < 1000, `rejected after ${Date.now() - t0} ms`);
    await assert.rejects(withTransport(c, () => axios.get(url(0, '/text'))), /aborted/);
    c.agent.destroy();
  });
});
