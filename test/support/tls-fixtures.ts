/**
 * Certificates and TLS servers for the tls-/doctor/cert-dev tests. Good certificates come from the
 * product's own code (ensureDevCertificates, issueCertificate); the deliberately broken ones (expired,
 * self-signed, a chain with an intermediate, weak keys) are made with the openssl CLI. Servers are
 * real node:tls / node:https / node:http2 servers on 127.0.0.1 port 0.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { extensionConfig, issueCertificate, newPrivateKeyPem, runOpenssl, type KeyType } from '../../src/tls/openssl.js';

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `mpgate-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A certificate and its key on disk, and their PEM text. */
export interface Issued {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  x509: X509Certificate;
}

async function writeKey(file: string, type: KeyType | 'rsa1024'): Promise<void> {
  const pem = type === 'rsa1024'
    ? (generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
    : newPrivateKeyPem(type);
  await writeFile(file, pem, { mode: 0o600 });
}

async function loadIssued(certFile: string, keyFile: string): Promise<Issued> {
  const certPem = await readFile(certFile, 'utf8');
  return { certFile, keyFile, certPem, keyPem: await readFile(keyFile, 'utf8'), x509: new X509Certificate(certPem) };
}

export interface IssueSpec {
  /** File stem inside dir. */
  name: string;
  commonName?: string;
  /** subjectAltName entries (leaf). */
  names?: string[];
  ca?: { pathLen?: number };
  issuer?: Issued;
  days?: number;
  keyType?: KeyType | 'rsa1024';
}

/** A certificate made by the product's issueCertificate (openssl req / x509 -req). */
export async function issue(dir: string, spec: IssueSpec): Promise<Issued> {
  const keyFile = join(dir, `${spec.name}-key.pem`);
  const certFile = join(dir, `${spec.name}.pem`);
  await writeKey(keyFile, spec.keyType ?? 'ec');
  await issueCertificate({
    keyFile,
    outFile: certFile,
    commonName: spec.commonName ?? spec.names?.[0] ?? spec.name,
    ...(spec.names ? { names: spec.names } : {}),
    ...(spec.ca ? { ca: spec.ca } : {}),
    ...(spec.issuer ? { issuer: { certFile: spec.issuer.certFile, keyFile: spec.issuer.keyFile } } : {}),
    days: spec.days ?? 90,
  });
  return loadIssued(certFile, keyFile);
}

/**
 * A leaf with explicit validity dates (YYYYMMDDHHMMSSZ), signed by `issuer` with `openssl ca`, the
 * one openssl command that takes a start and an end date on every version (x509 -req only has -days).
 */
export async function issueWithDates(dir: string, spec: { name: string; names: string[]; issuer: Pick<Issued, 'certFile' | 'keyFile'>; notBefore: string; notAfter: string }): Promise<Issued> {
  const work = join(dir, `${spec.name}-ca-db`);
  await mkdir(work, { recursive: true });
  await writeFile(join(work, 'index.txt'), '');
  await writeFile(join(work, 'serial'), '1000\n');
  const cnf = join(work, 'ca.cnf');
  await writeFile(cnf, `${extensionConfig({ names: spec.names, issuer: { certFile: spec.issuer.certFile, keyFile: spec.issuer.keyFile } }, 'ec')}
[ca]
default_ca = d
[d]
database = ${join(work, 'index.txt')}
new_certs_dir = ${work}
serial = ${join(work, 'serial')}
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[p]
commonName = supplied
`);
  const keyFile = join(dir, `${spec.name}-key.pem`);
  const certFile = join(dir, `${spec.name}.pem`);
  const csr = join(work, 'req.csr');
  await writeKey(keyFile, 'ec');
  await runOpenssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${spec.names[0]}`, '-config', cnf, '-out', csr]);
  await runOpenssl(['ca', '-batch', '-config', cnf, '-in', csr, '-cert', spec.issuer.certFile, '-keyfile', spec.issuer.keyFile,
    '-startdate', spec.notBefore, '-enddate', spec.notAfter, '-extensions', 'ext', '-notext', '-out', certFile]);
  return loadIssued(certFile, keyFile);
}

export interface TlsServerSpec {
  key: string;
  /** PEM: the leaf, optionally followed by the chain. */
  cert: string;
  /** Offer h2 (http2 secure server with HTTP/1.1 fallback); default true. */
  h2?: boolean;
  /** Answer WebSocket upgrades on this path (others get 404). */
  wsPath?: string;
  /** Extra TLS options: minVersion, maxVersion, ciphers. */
  tls?: Pick<tls.SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'>;
}

export interface TlsServer {
  port: number;
  close(): Promise<void>;
}

/** A real HTTPS server on 127.0.0.1:0: "ok" to requests, WebSocket echo on wsPath. */
export async function startTlsServer(spec: TlsServerSpec): Promise<TlsServer> {
  const handler = (_req: unknown, res: { writeHead(s: number, h: Record<string, string>): void; end(b: string): void }) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
  };
  const options = { key: spec.key, cert: spec.cert, ...spec.tls };
  const server: net.Server & { on(e: 'upgrade', l: (req: import('node:http').IncomingMessage, socket: net.Socket, head: Buffer) => void): unknown } =
    spec.h2 === false ? https.createServer(options, handler) : http2.createSecureServer({ ...options, allowHTTP1: true }, handler);
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  server.on('upgrade', (req, socket, head) => {
    if (spec.wsPath !== undefined && req.url === spec.wsPath) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return;
    }
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Handshakes the doctor makes fail on purpose (TLS 1.0 against a modern server): not test errors.
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () => (closing ??= new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    })),
  };
}

/**
 * Whether this node's OpenSSL can complete a TLS 1.0 handshake with itself. Node 20's bundled
 * OpenSSL 3 can, at security level 0; a node linked against a system OpenSSL built without TLS 1.0
 * cannot, and then no TLS 1.0-only server can be built for a test.
 */
export async function canSpeakTls10(key: string, cert: string): Promise<boolean> {
  const legacy = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
  let server: tls.Server;
  try {
    server = tls.createServer({ key, cert, ...legacy }, (s) => s.end());
  } catch {
    return false;
  }
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<boolean>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...legacy }, () => {
        resolve(c.getProtocol() === 'TLSv1');
        c.destroy();
      });
      c.on('error', () => resolve(false));
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
}
