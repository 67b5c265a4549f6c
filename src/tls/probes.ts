/**
 * The network half of `mpgate doctor`: each probe does one thing on the wire and returns what it saw
 * as a plain value (never throws for a network failure). doctor-checks.ts judges the values.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls, { type SecureVersion } from 'node:tls';

export interface ProbeError {
  /** errno or OpenSSL-derived code: ECONNREFUSED, ETIMEDOUT, ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION, ... */
  code: string;
  /** One line a person can read ("tlsv1 alert protocol version"). */
  message: string;
}

function probeError(err: unknown): ProbeError {
  const e = err as NodeJS.ErrnoException;
  const raw = e?.message ?? String(err);
  // OpenSSL's text is "<id>:error:<code>:SSL routines:<function>:<reason>:<file>:<line>:..." — keep the reason.
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(raw)?.[1];
  return { code: e?.code ?? 'ERROR', message: reason ?? raw.split('\n')[0]! };
}

/** Where one probe connects: the address, the port and the name sent as SNI. */
export interface Endpoint {
  address: string;
  port: number;
  /** The DNS name for SNI and Host; undefined when the URL names an IP (RFC 6066 §3 forbids IP SNI). */
  servername: string | undefined;
  timeoutMs: number;
}

export interface LookupResult {
  addresses: { address: string; family: number }[];
  source: 'dns' | '--resolve' | 'literal';
  error?: ProbeError;
}

/** The addresses for `name`: from --resolve, from the name itself when it is an IP, else dns.lookup (all). */
export async function lookupName(name: string, pinned: string | undefined, timeoutMs: number): Promise<LookupResult> {
  if (pinned !== undefined) return { addresses: [{ address: pinned, family: net.isIP(pinned) }], source: '--resolve' };
  if (net.isIP(name)) return { addresses: [{ address: name, family: net.isIP(name) }], source: 'literal' };
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await Promise.race([
      lookup(name, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
      }),
    ]);
    return { addresses, source: 'dns' };
  } catch (err) {
    return { addresses: [], source: 'dns', error: probeError(err) };
  } finally {
    clearTimeout(timer);
  }
}

export interface TcpResult {
  address: string;
  ok: boolean;
  ms: number;
  error?: ProbeError;
}

export function tcpConnect(address: string, port: number, timeoutMs: number): Promise<TcpResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const done = (error?: ProbeError) => {
      socket.destroy();
      resolve({ address, ok: error === undefined, ms: Math.round(performance.now() - started), ...(error ? { error } : {}) });
    };
    socket.setTimeout(timeoutMs, () => done({ code: 'ETIMEDOUT', message: `no answer in ${timeoutMs} ms` }));
    socket.once('connect', () => done());
    socket.once('error', (err) => done(probeError(err)));
  });
}

export interface HandshakeOptions {
  minVersion: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher string; 'DEFAULT@SECLEVEL=0' is what it takes for OpenSSL 3 to offer TLS 1.0/1.1 at all. */
  ciphers?: string;
  alpn?: string[];
  /** Trust anchors (PEM). Decides `authorized`; the handshake itself never fails on trust. */
  ca: readonly string[];
}

export type HandshakeResult =
  | {
      ok: true;
      protocol: string;
      cipher: string;
      /** The ALPN protocol the server picked, if any. */
      alpn: string | undefined;
      /** OpenSSL's verdict on the chain against `ca` (the name is checked separately). */
      authorized: boolean;
      authorizationError: string | undefined;
      /**
       * The peer's chain, leaf first, in issuing order. It is what the server sent, except that OpenSSL
       * may append the root from `ca` when the last certificate sent was issued by it.
       */
      chain: X509Certificate[];
    }
  | { ok: false; error: ProbeError };

function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return chain;
}

function connectTls(ep: Endpoint, opts: HandshakeOptions): tls.TLSSocket {
  return tls.connect({
    host: ep.address,
    port: ep.port,
    ...(ep.servername ? { servername: ep.servername } : {}),
    minVersion: opts.minVersion,
    ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    ...(opts.ciphers ? { ciphers: opts.ciphers } : {}),
    ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
    ca: [...opts.ca],
    rejectUnauthorized: false,
    // The name is its own check; without this node folds a name mismatch into `authorized`.
    checkServerIdentity: () => undefined,
  });
}

/** One TLS handshake; the result says what was negotiated and what the server presented. */
export function tlsHandshake(ep: Endpoint, opts: HandshakeOptions): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = connectTls(ep, opts);
    let settled = false;
    const finish = (r: HandshakeResult) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(ep.timeoutMs, () => finish({ ok: false, error: { code: 'ETIMEDOUT', message: `no TLS handshake within ${ep.timeoutMs} ms` } }));
    socket.once('error', (err) => finish({ ok: false, error: probeError(err) }));
    socket.once('secureConnect', () => {
      const alpn = socket.alpnProtocol;
      finish({
        ok: true,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher().name,
        alpn: typeof alpn === 'string' ? alpn : undefined,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError),
        chain: peerChain(socket),
      });
    });
  });
}

/** RFC 6455 §1.3: the server proves it read the key by hashing it with this GUID. */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface WsResult {
  /** Status code of the answer (0 when none came). */
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  /** Sec-WebSocket-Accept matches the key we sent. */
  acceptOk: boolean;
  error?: ProbeError;
}

/**
 * A WebSocket opening handshake (RFC 6455 §4.1) over TLS with ALPN http/1.1, as wx.connectSocket
 * makes it. Written by hand so the answer is seen exactly as sent; the connection is closed after.
 */
export function wsUpgrade(ep: Endpoint, host: string, path: string, opts: HandshakeOptions): Promise<WsResult> {
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve) => {
    const socket = connectTls(ep, { ...opts, alpn: ['http/1.1'] });
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (error?: ProbeError) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = (end === -1 ? text : text.slice(0, end)).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const status = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(statusLine)?.[1];
      const result: WsResult = { status: status ? Number(status) : 0, statusLine, headers, acceptOk: headers['sec-websocket-accept'] === websocketAccept(key) };
      resolve(end === -1 && !error ? { ...result, error: { code: 'EPROTO', message: buf.length ? 'the answer has no complete HTTP head' : 'the server closed the connection without an answer' } } : error ? { ...result, error } : result);
    };
    socket.setTimeout(ep.timeoutMs, () => finish({ code: 'ETIMEDOUT', message: `no answer within ${ep.timeoutMs} ms` }));
    socket.once('error', (err) => finish(probeError(err)));
    socket.once('close', () => finish());
    socket.once('secureConnect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: mpgate-doctor\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.includes('\r\n\r\n') || buf.length > 64 * 1024) finish();
    });
  });
}
