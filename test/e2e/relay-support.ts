/**
 * Real-socket tools for the relay e2e tests: a private CA and server certificate made with the
 * openssl CLI, an HTTPS (or HTTP) backend that records every request with its exact body bytes, a
 * TCP trap that counts connections (the "evil" host a relay must never reach), an in-process
 * gateway whose operational log is captured, and raw HTTP for requests no client library would
 * send unchanged (dot segments, backslashes, encoded control characters).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { configFromObject } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Gateway } from '../../src/server/gateway.js';
import { rawRequest, type RawResponse } from '../helpers.js';

const execFileP = promisify(execFile);

export interface TestCerts {
  /** PEM file of the private CA (what `relay.ca` points at). */
  caFile: string;
  key: string;
  cert: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is not installed; the relay TLS tests need it: apt-get install -y openssl');
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** A private CA and a server certificate for 127.0.0.1 and localhost, signed by it, in `dir`. */
export async function makeCerts(dir: string): Promise<TestCerts> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mpgate relay test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  await writeFile(join(dir, 'server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x4d5047', '-days', '2',
    '-extfile', 'server.ext', '-out', 'server.pem'], dir);
  return {
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
  };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One request as the backend received it. `body` is filled in once the body has been read. */
export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  complete: boolean;
}

export type RecordingHandler = (rec: Recorded, req: IncomingMessage, res: ServerResponse) => void;

export interface RecordingBackend {
  server: Server;
  port: number;
  origin: string;
  requests: Recorded[];
  /** TCP connections accepted so far (also those whose TLS handshake failed). */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * A backend on 127.0.0.1:0 (HTTPS when `tls` is given) that records each request head at once and
 * its body bytes as they arrive, then calls `handler` when the body is complete.
 */
export async function startRecordingBackend(handler: RecordingHandler, tls?: { key: string; cert: string }): Promise<RecordingBackend> {
  const requests: Recorded[] = [];
  let connections = 0;
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const rec: Recorded = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), complete: false };
    requests.push(rec);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      rec.body = Buffer.concat(chunks);
      rec.complete = true;
      handler(rec, req, res);
    });
  };
  const server: Server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, listener) : http.createServer(listener);
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server, port, origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, requests,
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A TCP listener that counts (and drops) every connection: where an escaped relay would land. */
export interface Trap {
  port: number;
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTrap(): Promise<Trap> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nEVIL');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

export interface LoggedGateway {
  gateway: Gateway;
  port: number;
  /** Operational log lines (parsed pino JSON). */
  log: { level: number; msg: string; reason?: string; url?: string }[];
  close(): Promise<void>;
}

/** An in-process gateway on 127.0.0.1:0 whose operational log is kept for assertions. */
export async function startLoggedGateway(config: ConfigInput): Promise<LoggedGateway> {
  const log: LoggedGateway['log'] = [];
  const sink = { write: (line: string) => void log.push(JSON.parse(line) as LoggedGateway['log'][number]) };
  const cfg = configFromObject({ accessLog: false, watch: false, ...config, listen: ['127.0.0.1:0'] }, 'relay-test');
  const gateway = await Gateway.start(cfg, { log: pino({ level: 'info' }, sink) });
  return { gateway, port: gateway.addresses()[0]!.port, log, close: () => gateway.close(2000) };
}

/**
 * One request written byte for byte on a fresh connection (Connection: close), so the target
 * reaches the gateway exactly as given: no client-side URL normalisation.
 */
export async function rawHttp(port: number, method: string, target: string, host: string, body?: { type: string; data: string | Buffer }): Promise<RawResponse> {
  const data = body === undefined ? undefined : Buffer.isBuffer(body.data) ? body.data : Buffer.from(body.data, 'utf8');
  const head = `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n` +
    (data ? `Content-Type: ${body!.type}\r\nContent-Length: ${data.length}\r\n` : '') + '\r\n';
  return rawRequest(port, data ? Buffer.concat([Buffer.from(head, 'latin1'), data]) : head, 5000);
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS, Linux). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
