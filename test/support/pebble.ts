/**
 * A real ACME server for the acme tests: Debian's `pebble` (Let's Encrypt's test CA), resolving every
 * name to 127.0.0.1 through `pebble-challtestsrv` as its DNS server, so it validates http-01 and
 * tls-alpn-01 for made-up names ("a.test") against the challenge responders below, on loopback.
 * Validation is real (PEBBLE_VA_ALWAYS_VALID is never set); only the random sleeps and the rejected
 * nonces are turned off, to keep runs fast and deterministic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http, { type Server } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { join } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import { ensureDevCertificates } from '../../src/tls/dev-ca.js';
import { closedPort } from '../helpers.js';

const PEBBLE = '/usr/bin/pebble';
const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';
const INSTALL_HINT = 'pebble is not installed: run `apt-get install -y pebble` (scripts/install-test-deps.sh does it); it provides /usr/bin/pebble and /usr/bin/pebble-challtestsrv';

/** Throws the install hint when pebble is missing: the acme tests fail loudly rather than skip. */
export function requirePebble(): void {
  for (const bin of [PEBBLE, CHALLTESTSRV]) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      throw new Error(`${INSTALL_HINT} (${bin} not found)`);
    }
  }
}

export interface Pebble {
  /** ACME directory URL (https://127.0.0.1:PORT/dir). */
  directory: string;
  /** PEM file of the throwaway CA that signs pebble's own HTTPS certificate: `acme.ca`. */
  caFile: string;
  /** Management API base URL (roots, intermediates). */
  management: string;
  /** The root that issues the certificates (regenerated every start), from the management API. */
  root(): Promise<X509Certificate>;
  /** pebble's and challtestsrv's output so far, for failure messages. */
  output(): string;
  close(): Promise<void>;
}

export interface PebbleOptions {
  /** Working directory for the config and pebble's TLS files. */
  dir: string;
  /** Where pebble validates http-01 (http://NAME:httpPort) and tls-alpn-01 (NAME:tlsPort). */
  httpPort: number;
  tlsPort: number;
  /** certificateValidityPeriod in seconds (pebble's default is five years). */
  validitySeconds?: number;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Proc {
  const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  child.on('error', (err) => (out += `\nspawn error: ${err.message}`));
  // A test process that dies without its after() hooks must not leave a CA listening.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  return { child, out: () => out };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  await exited;
}

/** GET over https trusting `ca`; resolves with status and body (never rejects on HTTP status). */
export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url}: timed out`)));
  });
}

/**
 * The part of an mpgate config that points a gateway at this pebble: HTTP and HTTPS listeners on
 * the ports pebble validates http-01 and tls-alpn-01 against, and the `acme` section.
 */
export function gatewayYaml(pebble: Pebble, opts: { httpPort: number; httpsPort: number; storage: string; challenges?: string[] }): string {
  return `listen: ["127.0.0.1:${opts.httpPort}"]
https:
  listen: ["127.0.0.1:${opts.httpsPort}"]
acme:
  directory: ${pebble.directory}
  ca: ${pebble.caFile}
  storage: ${opts.storage}
${opts.challenges ? `  challenges: [${opts.challenges.join(', ')}]\n` : ''}  retryMin: 500ms
`;
}

/**
 * Starts challtestsrv (DNS only: every A query answers 127.0.0.1, no AAAA) and pebble. Their ports are
 * fixed in their configs, so they are picked free just before; a start that loses that race is retried.
 */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  requirePebble();
  await mkdir(opts.dir, { recursive: true });
  // pebble's HTTPS certificate, from the product's own dev CA (openssl), for localhost and 127.0.0.1.
  const dev = await ensureDevCertificates({ dir: join(opts.dir, 'pebble-tls'), names: ['localhost', '127.0.0.1'] });
  const caPem = await readFile(dev.files.caCert, 'utf8');
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [acmePort, mgmtPort, dnsPort, dnsMgmtPort] = [await closedPort(), await closedPort(), await closedPort(), await closedPort()];
    const configFile = join(opts.dir, 'pebble-config.json');
    await writeFile(configFile, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: dev.files.cert,
        privateKey: dev.files.key,
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }, null, 2));
    const dns = run(CHALLTESTSRV, ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsMgmtPort}`], {}, opts.dir);
    const pebble = run(PEBBLE, ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'], {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      // Every order validates afresh: with the default 50 % reuse, whether a test sees a challenge is a coin toss.
      PEBBLE_AUTHZREUSE: '0',
    }, opts.dir);
    const output = () => `--- pebble ---\n${pebble.out()}\n--- pebble-challtestsrv ---\n${dns.out()}`;
    const closeAll = async () => {
      await Promise.all([stop(pebble), stop(dns)]);
    };
    const directory = `https://127.0.0.1:${acmePort}/dir`;
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (Date.now() < deadline) {
      if (pebble.child.exitCode !== null || dns.child.exitCode !== null) break;
      const dnsUp = dns.out().includes('Starting management server');
      const r = dnsUp ? await httpsGet(directory, caPem).catch(() => undefined) : undefined;
      if (r?.status === 200) {
        ready = true;
        break;
      }
      await new Promise((r2) => setTimeout(r2, 50));
    }
    if (!ready) {
      lastOutput = output();
      await closeAll();
      if (/address already in use/i.test(lastOutput)) continue;
      throw new Error(`pebble did not start within 10 s\n${lastOutput}`);
    }
    const management = `https://127.0.0.1:${mgmtPort}`;
    return {
      directory,
      caFile: dev.files.caCert,
      management,
      async root() {
        const r = await httpsGet(`${management}/roots/0`, caPem);
        if (r.status !== 200) throw new Error(`pebble /roots/0: HTTP ${r.status}`);
        return new X509Certificate(r.body);
      },
      output,
      close: closeAll,
    };
  }
  throw new Error(`pebble could not get free ports after 3 attempts\n${lastOutput}`);
}

/** What the responders ask for answers: the AcmeManager (or nothing, and they answer 404 / refuse). */
export interface ChallengeSource {
  httpChallenge(token: string): string | undefined;
  alpnChallenge(servername: string): SecureContext | undefined;
}

export interface Responders {
  httpPort: number;
  tlsPort: number;
  /** Host header + path of each http-01 request answered 200. */
  httpHits: string[];
  /** Server names of each completed acme-tls/1 handshake. */
  alpnHits: string[];
  source: ChallengeSource | undefined;
  close(): Promise<void>;
}

/**
 * The two challenge responders a gateway would run, in miniature: an HTTP server answering
 * /.well-known/acme-challenge/TOKEN, and a TLS server that answers a handshake offering ALPN
 * "acme-tls/1" with the challenge certificate for the SNI name (RFC 8737 §3).
 */
export async function startResponders(): Promise<Responders> {
  const state: Responders = { httpPort: 0, tlsPort: 0, httpHits: [], alpnHits: [], source: undefined, close: async () => {} };
  const prefix = '/.well-known/acme-challenge/';
  const httpServer: Server = http.createServer((req, res) => {
    const answer = req.url?.startsWith(prefix) ? state.source?.httpChallenge(req.url.slice(prefix.length)) : undefined;
    if (answer === undefined) {
      res.writeHead(404).end();
      return;
    }
    state.httpHits.push(`${req.headers.host ?? ''}${req.url}`);
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
  });
  const marked = new WeakSet<tls.TLSSocket>();
  const tlsServer = tls.createServer({
    // Node 20 calls ALPNCallback before SNICallback, both with the TLSSocket as `this`: ALPN marks the
    // socket as a validator's, SNI then hands it the challenge context. Anything else is refused.
    ALPNCallback(this: tls.TLSSocket, { protocols }: { servername: string; protocols: string[] }) {
      if (!protocols.includes('acme-tls/1')) return undefined;
      marked.add(this);
      return 'acme-tls/1';
    },
    SNICallback(this: tls.TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
      const ctx = marked.has(this) ? state.source?.alpnChallenge(servername) : undefined;
      if (ctx) cb(null, ctx);
      else cb(new Error(`no acme-tls/1 challenge for ${servername}`));
    },
  } as tls.TlsOptions, (socket) => {
    if (socket.alpnProtocol === 'acme-tls/1') state.alpnHits.push(socket.servername || '');
    socket.end();
  });
  tlsServer.on('tlsClientError', () => {});
  httpServer.listen(0, '127.0.0.1');
  tlsServer.listen(0, '127.0.0.1');
  await Promise.all([once(httpServer, 'listening'), once(tlsServer, 'listening')]);
  state.httpPort = (httpServer.address() as net.AddressInfo).port;
  state.tlsPort = (tlsServer.address() as net.AddressInfo).port;
  state.close = async () => {
    httpServer.closeAllConnections();
    await Promise.all([
      new Promise<void>((r) => httpServer.close(() => r())),
      new Promise<void>((r) => tlsServer.close(() => r())),
    ]);
  };
  return state;
}
