/**
 * `mpgate doctor https://NAME`: what a WeChat client checks before it talks to a server
 * (../shared/reference/wechat.md): https only, no port in the URL, TLS 1.2 or newer, a complete and
 * trusted chain, the name in the certificate, not expired; plus what makes it work well (HTTP/2, the
 * wss upgrade). Each check is a pure function from what the probes saw to a CheckResult, so the rules
 * are unit-tested with plain values; runDoctor() wires probes and checks together.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { analyzeChain, coveringName, isoDay, parsePemCertificates, SERVER_AUTH_OID, shortDn, summarize, subjectAltNames } from './cert-info.js';
import { TlsToolError } from './errors.js';
import { lookupName, tcpConnect, tlsHandshake, wsUpgrade, type Endpoint, type HandshakeOptions, type HandshakeResult, type LookupResult, type TcpResult, type WsResult } from './probes.js';

export type Status = 'pass' | 'warn' | 'fail' | 'skip';

export type CheckId = 'url' | 'dns' | 'tcp' | 'tls12' | 'legacy' | 'chain' | 'name' | 'expiry' | 'apple' | 'h2' | 'ws';

export interface CheckResult {
  id: CheckId;
  title: string;
  status: Status;
  /** What was found, in one line. */
  found: string;
  /** What to change, when the status is fail or warn. */
  fix?: string;
}

export const TITLES: Record<CheckId, string> = {
  url: 'URL is https:// (wss://), no port',
  dns: 'name resolves',
  tcp: 'TCP connect',
  tls12: 'TLS 1.2+ offered',
  legacy: 'TLS < 1.2 refused',
  chain: 'chain complete and trusted',
  name: 'name covered by the certificate',
  expiry: 'days to expiry',
  apple: "Apple's certificate rules (iOS)",
  h2: 'HTTP/2 offered (ALPN)',
  ws: 'wss upgrade',
};

/** WARN when fewer days than this are left (Let's Encrypt renews at 30; 14 leaves two weeks to notice). */
export const EXPIRY_WARN_DAYS = 14;

function result(id: CheckId, status: Status, found: string, fix?: string): CheckResult {
  return { id, title: TITLES[id], status, found, ...(fix === undefined ? {} : { fix }) };
}

export function skipped(id: CheckId, why: string): CheckResult {
  return result(id, 'skip', why);
}

// ---------------------------------------------------------------------------------------------
// The URL

export interface DoctorUrl {
  input: string;
  scheme: string;
  /** Host name as the client sends it (lower case, punycode), without IPv6 brackets. */
  name: string;
  /** The port written in the URL, verbatim ("443" counts), or undefined. */
  explicitPort: string | undefined;
  /** The port to connect to. */
  port: number;
  path: string;
}

/** Parses the argument of `mpgate doctor`; a bare name means https://name/. Throws TypeError when unusable. */
export function parseDoctorUrl(input: string): DoctorUrl {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`"${input}" is not a URL (expected https://NAME[/PATH])`);
  }
  if (!url.hostname) throw new TypeError(`"${input}" has no host name`);
  // new URL() drops a default port (":443" reads as ""), but WeChat refuses the URL as written: look at the text.
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(withScheme)![1]!.replace(/^.*@/, '');
  const explicitPort = /^(?:\[[^\]]*\]|[^:]*):(\d*)$/.exec(authority)?.[1];
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  const name = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = explicitPort ? Number(explicitPort) : scheme === 'http' || scheme === 'ws' ? 80 : 443;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`"${input}": port ${explicitPort} is out of range`);
  return { input, scheme, name, explicitPort: explicitPort === '' ? undefined : explicitPort, port, path: `${url.pathname}${url.search}` };
}

/** `--resolve NAME:IP` (or curl's NAME:PORT:IP). Throws TypeError when it is neither. */
export function parseResolve(spec: string): { name: string; address: string } {
  const c = spec.indexOf(':');
  if (c <= 0) throw new TypeError(`--resolve ${spec}: expected NAME:IP`);
  const name = spec.slice(0, c).toLowerCase();
  const rest = spec.slice(c + 1).replace(/^\[(.*)\]$/, '$1');
  if (isIP(rest)) return { name, address: rest };
  const curl = /^\d+:\[?([^\]]+)\]?$/.exec(rest);
  if (curl && isIP(curl[1]!)) return { name, address: curl[1]! };
  throw new TypeError(`--resolve ${spec}: "${rest}" is not an IP address (expected NAME:IP)`);
}

function isLocalName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

export function checkUrl(u: DoctorUrl): CheckResult {
  if (u.scheme !== 'https' && u.scheme !== 'wss') {
    return result('url', 'fail', `${u.scheme}:// URL`, 'WeChat only calls https:// (wx.request, uploadFile, downloadFile) and wss:// (wx.connectSocket): serve HTTPS on port 443 and use https://NAME');
  }
  if (u.explicitPort === '443') {
    return result('url', 'fail', 'the URL says ":443"', `WeChat refuses a port in a URL whose whitelisted domain has none, even :443: write ${u.scheme}://${u.name}${u.path === '/' ? '' : u.path}`);
  }
  if (isIP(u.name) || isLocalName(u.name)) {
    return result('url', 'warn', `${u.name} is ${isIP(u.name) ? 'an IP address' : 'localhost'}`, "WeChat's domain whitelist takes neither IP addresses nor localhost (fine for a try-out with the devtools' \"do not verify domain names\"); production needs an ICP-filed domain");
  }
  return result('url', 'pass', `${u.scheme}://${u.name}${u.explicitPort ? ` (port ${u.explicitPort} given for a local test: see TCP)` : ', no port'}`);
}

// ---------------------------------------------------------------------------------------------
// Name and TCP

export function checkDns(name: string, r: LookupResult): CheckResult {
  if (r.error || r.addresses.length === 0) {
    return result('dns', 'fail', `${name} does not resolve (${r.error?.code ?? 'no address'}: ${r.error?.message ?? 'empty answer'})`, `add an A (and AAAA, if the server has IPv6) record for ${name} at your DNS provider`);
  }
  const list = r.addresses.map((a) => a.address).join(', ');
  return result('dns', 'pass', r.source === '--resolve' ? `${name} → ${list} (pinned by --resolve)` : r.source === 'literal' ? `${name} is an address` : `${name} → ${list}`);
}

export function checkTcp(port: number, results: readonly TcpResult[]): CheckResult {
  const ok = results.filter((r) => r.ok);
  const bad = results.filter((r) => !r.ok);
  const badText = bad.map((r) => `${r.address}: ${r.error?.code ?? 'failed'}`).join(', ');
  if (ok.length === 0) {
    return result('tcp', 'fail', `cannot connect to port ${port} (${badText})`, `start the server on port ${port} and open it in the firewall / cloud security group (ECONNREFUSED: nothing listens; ETIMEDOUT: a firewall drops it)`);
  }
  const okText = ok.map((r) => `${r.address}:${port} in ${r.ms} ms`).join(', ');
  if (bad.length > 0) {
    return result('tcp', 'warn', `connected to ${okText}; failed: ${badText}`, 'every address in DNS must answer, clients pick any: remove dead records or fix those hosts');
  }
  if (port !== 443) {
    return result('tcp', 'warn', `connected to ${okText}`, `port ${port} is fine for a local test, but WeChat connects to 443 with no port in the URL: serve this on 443`);
  }
  return result('tcp', 'pass', `connected to ${okText}`);
}

// ---------------------------------------------------------------------------------------------
// TLS versions

/** Errors that say the port does not speak TLS at all (plain HTTP answered the ClientHello). */
const NOT_TLS = /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL/i;
/** Errors that come from our side: the local OpenSSL cannot offer the old versions at all. */
const CANNOT_OFFER = /NO_PROTOCOLS_AVAILABLE|NO_SUPPORTED_VERSIONS|INVALID_PROTOCOL_VERSION|NO_CIPHERS_AVAILABLE/i;

/**
 * `modern` is a handshake allowing TLS 1.2 and 1.3; `exact12` one allowing only 1.2 (to tell a
 * TLS-1.3-only server, which older phones cannot reach).
 */
export function checkModernTls(modern: HandshakeResult, exact12: HandshakeResult | undefined): CheckResult {
  if (!modern.ok) {
    const e = modern.error;
    if (NOT_TLS.test(e.code) || NOT_TLS.test(e.message)) {
      return result('tls12', 'fail', `no TLS on this port (${e.message}): it answered like plain HTTP`, 'configure TLS on this port (nginx: listen 443 ssl; ssl_certificate fullchain.pem; ssl_certificate_key privkey.pem)');
    }
    return result('tls12', 'fail', `no TLS 1.2/1.3 handshake (${e.code}: ${e.message})`, 'offer TLS 1.2 and 1.3 (nginx: ssl_protocols TLSv1.2 TLSv1.3; Node: the default minVersion TLSv1.2); WeChat requires TLS 1.2 or newer');
  }
  const found = `${modern.protocol} (${modern.cipher})`;
  if (modern.protocol === 'TLSv1.3' && exact12 && !exact12.ok) {
    return result('tls12', 'warn', `${found}, but TLS 1.2 is refused (${exact12.error.message})`, 'also offer TLS 1.2 (nginx: ssl_protocols TLSv1.2 TLSv1.3;): phones without TLS 1.3 (Android < 10, iOS < 12.2) cannot connect');
  }
  return result('tls12', 'pass', modern.protocol === 'TLSv1.3' && exact12?.ok ? `${found}; TLS 1.2 accepted too` : found);
}

/**
 * A handshake allowing only TLS 1.0 and 1.1 must fail. OpenSSL 3 needs `DEFAULT@SECLEVEL=0` on both
 * sides for those versions (their handshake signatures use SHA-1/MD5, below security level 1), so
 * the probe sets it. Without it the client itself stops a TLS 1.0 server's handshake with
 * "legacy sigalg disallowed" (checked on node 20 / OpenSSL 3.0), which a naive probe would count as
 * a refusal; that error is therefore read as "the server agreed to the old version". When even
 * level 0 cannot offer the old versions (an OpenSSL built without them), the check says it could not run.
 */
export function checkLegacyRefused(legacy: HandshakeResult): CheckResult {
  const fix = "turn off TLS 1.0 and 1.1 (nginx: ssl_protocols TLSv1.2 TLSv1.3; Node: don't lower minVersion below 'TLSv1.2')";
  if (legacy.ok) return result('legacy', 'fail', `the server accepts ${legacy.protocol} (${legacy.cipher})`, fix);
  if (/LEGACY_SIGALG/i.test(legacy.error.code)) {
    return result('legacy', 'fail', `the server agreed to TLS 1.0/1.1 (the handshake stopped on this side: ${legacy.error.message})`, fix);
  }
  if (CANNOT_OFFER.test(legacy.error.code) || CANNOT_OFFER.test(legacy.error.message)) {
    return result('legacy', 'warn', `not tested: this machine's OpenSSL cannot offer TLS 1.0/1.1 (${legacy.error.message})`, 'run the doctor from a machine whose OpenSSL still offers TLS 1.0 (or test with: openssl s_client -tls1 -cipher DEFAULT@SECLEVEL=0)');
  }
  return result('legacy', 'pass', `TLS 1.0/1.1 refused (${legacy.error.message})`);
}

// ---------------------------------------------------------------------------------------------
// The certificate

/** The certificates trusted for the chain check, and where each came from. */
export interface Anchors {
  certs: X509Certificate[];
  pems: string[];
  /** fingerprint256 → "--ca FILE" / "NODE_EXTRA_CA_CERTS"; public roots are not listed. */
  source: Map<string, string>;
}

/** Node's bundled Mozilla roots (what public clients trust) plus the private ones given. */
export function buildAnchors(extra: readonly { label: string; pem: string }[]): Anchors {
  const pems = [...tls.rootCertificates];
  const source = new Map<string, string>();
  for (const e of extra) {
    for (const c of parsePemCertificates(e.pem)) {
      pems.push(c.toString());
      source.set(c.fingerprint256, e.label);
    }
  }
  return { certs: pems.map((p) => new X509Certificate(p)), pems, source };
}

/** OpenSSL verification errors about dates: the expiry check reports those. */
const TIME_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export function checkChain(h: Extract<HandshakeResult, { ok: true }>, anchors: Anchors): CheckResult {
  const a = analyzeChain(h.chain, anchors.certs);
  const leaf = h.chain[0];
  if (!leaf) return result('chain', 'fail', 'the server presented no certificate', 'configure a certificate (ssl_certificate fullchain.pem)');
  const pathText = a.path.map((c) => `"${shortDn(c.subject)}"`).join(' → ');
  if (a.problem === 'self-signed') {
    return result('chain', 'fail', `self-signed certificate ${pathText}`, 'WeChat refuses self-signed certificates (iOS always): get one from a public CA (Let\'s Encrypt via certbot or acme.sh); for a laptop try-out use "mpgate cert dev" and pass its CA with --ca');
  }
  if (a.problem === 'missing-issuer') {
    const sent = a.path.length === 1 ? 'the server sent only the leaf certificate' : `the server sent ${pathText}`;
    return result('chain', 'fail', `incomplete chain: ${sent}; its issuer "${a.missingIssuer}" is neither sent nor a trusted root`, `serve fullchain.pem (leaf, then the intermediates) instead of cert.pem: nginx ssl_certificate fullchain.pem; Node/mpgate cert: the fullchain file. If "${a.missingIssuer}" is your own private root, pass it with --ca FILE`);
  }
  if (a.problem === 'untrusted-root') {
    const root = a.path[a.path.length - 1]!;
    return result('chain', 'fail', `${pathText}: the root "${shortDn(root.subject)}" is not trusted`, 'use a certificate from a publicly trusted CA; to test a private CA here pass its root with --ca FILE (phones will still refuse it)');
  }
  const by = a.anchor ? (anchors.source.get(a.anchor.fingerprint256) ?? 'a public root') : 'a trusted root';
  const full = `${pathText}${a.anchor && !a.path.includes(a.anchor) ? ` → "${shortDn(a.anchor.subject)}"` : ''} (trusted via ${by})`;
  if (h.authorized || (h.authorizationError !== undefined && TIME_ERRORS.has(h.authorizationError))) {
    return result('chain', 'pass', h.authorized ? full : `${full}; dates: see expiry`);
  }
  return result('chain', 'fail', `OpenSSL refuses the chain ${full}: ${h.authorizationError ?? 'unknown error'}`, 'reissue the certificate from your CA; check the intermediate is the current one from the CA');
}

export function checkName(leaf: X509Certificate, name: string): CheckResult {
  const by = coveringName(leaf, name);
  const names = subjectAltNames(leaf);
  if (by !== undefined) return result('name', 'pass', `${name} matches ${by === name ? 'exactly' : `"${by}"`} (certificate names: ${names.join(', ')})`);
  const cn = /^CN=(.*)$/m.exec(leaf.subject)?.[1];
  const why = names.length === 0
    ? `the certificate has no subjectAltName${cn ? ` (CN=${cn}, which iOS and Chrome ignore)` : ''}`
    : `${name} is not among the certificate names: ${names.join(', ')}`;
  return result('name', 'fail', why, `issue a certificate that lists ${name} in subjectAltName (certbot -d ${name}); a wildcard "*.example.com" covers exactly one label: not example.com, not a.b.example.com`);
}

export function checkExpiry(chain: readonly X509Certificate[], now: Date): CheckResult {
  const leaf = summarize(chain[0]!, now);
  const until = isoDay(leaf.notAfter);
  for (const c of chain.slice(1)) {
    const s = summarize(c, now);
    if (s.expired) {
      return result('expiry', 'fail', `the chain certificate "${shortDn(c.subject)}" expired on ${isoDay(s.notAfter)}`, 'download the current intermediate from your CA and rebuild fullchain.pem (certbot renew does both)');
    }
  }
  if (leaf.notYetValid) {
    return result('expiry', 'fail', `not valid before ${leaf.notBefore.toISOString()}`, "check the server's and this machine's clocks (NTP), or wait until the certificate's start date");
  }
  if (leaf.expired) {
    const ago = Math.floor((now.getTime() - leaf.notAfter.getTime()) / 86_400_000);
    return result('expiry', 'fail', `expired on ${until} (${ago} day${ago === 1 ? '' : 's'} ago)`, 'renew the certificate (certbot renew / acme.sh --renew), reload the server, and automate renewal (certbot.timer, acme.sh cron)');
  }
  if (leaf.daysLeft < EXPIRY_WARN_DAYS) {
    return result('expiry', 'warn', `${leaf.daysLeft} day${leaf.daysLeft === 1 ? '' : 's'} left (until ${until})`, 'renew now and check that automatic renewal runs (certbot renew --dry-run)');
  }
  return result('expiry', 'pass', `${leaf.daysLeft} days left (until ${until})`);
}

/**
 * Apple's requirements for TLS server certificates (support.apple.com/HT210176 and HT211025), which
 * WeChat on iOS inherits: serverAuth in the EKU, RSA keys of 2048 bits or more, a validity of at
 * most 825 days (398 for publicly trusted certificates). The SHA-2 signature rule is not checked:
 * node 20's X509Certificate does not expose the signature algorithm.
 */
export function checkAppleRules(chain: readonly X509Certificate[]): CheckResult {
  const leaf = summarize(chain[0]!);
  const problems: string[] = [];
  if (leaf.extendedKeyUsage === undefined) problems.push('no extendedKeyUsage extension (needs serverAuth)');
  else if (!leaf.extendedKeyUsage.includes(SERVER_AUTH_OID)) problems.push(`extendedKeyUsage lacks serverAuth (${leaf.extendedKeyUsage.join(', ')})`);
  for (const c of chain) {
    const s = summarize(c);
    const bits = /^RSA (\d+)$/.exec(s.key)?.[1];
    if (bits && Number(bits) < 2048) problems.push(`"${shortDn(c.subject)}" has a ${bits}-bit RSA key (minimum 2048)`);
  }
  if (leaf.lifetimeDays > 825) problems.push(`valid for ${leaf.lifetimeDays} days (maximum 825)`);
  if (problems.length > 0) {
    return result('apple', 'fail', problems.join('; '), 'reissue the certificate: EC P-256 or RSA ≥ 2048 key, extendedKeyUsage serverAuth, at most 398 days (every public CA does this; mpgate cert dev too)');
  }
  if (leaf.lifetimeDays > 398) {
    return result('apple', 'warn', `valid for ${leaf.lifetimeDays} days`, 'iOS and Safari refuse publicly trusted certificates valid for more than 398 days; fine only for a private CA');
  }
  return result('apple', 'pass', `${leaf.key}, serverAuth, ${leaf.lifetimeDays}-day validity`);
}

export function checkHttp2(modern: Extract<HandshakeResult, { ok: true }>): CheckResult {
  if (modern.alpn === 'h2') return result('h2', 'pass', 'ALPN h2');
  return result('h2', 'warn', `ALPN ${modern.alpn ?? 'none'}: no HTTP/2`, 'enable HTTP/2 (nginx: http2 on;) so wx.request({ enableHttp2: true }) multiplexes instead of opening up to 10 connections');
}

export function checkWebSocket(path: string, ws: WsResult): CheckResult {
  if (ws.status === 101 && ws.acceptOk) return result('ws', 'pass', `${path}: 101 Switching Protocols, Sec-WebSocket-Accept correct`);
  const fix = `route WebSocket upgrades for ${path} to the WebSocket backend (a proxy must pass Upgrade and Connection: nginx proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade")`;
  if (ws.status === 101) return result('ws', 'fail', `${path}: 101 but Sec-WebSocket-Accept is ${ws.headers['sec-websocket-accept'] ? 'wrong' : 'missing'}`, 'the server or a proxy in between rewrites the handshake: let the WebSocket server answer it');
  if (ws.status === 0) return result('ws', 'fail', `${path}: no HTTP answer (${ws.error?.message ?? 'connection closed'})`, fix);
  return result('ws', 'fail', `${path}: answered "${ws.statusLine}" instead of 101`, fix);
}

// ---------------------------------------------------------------------------------------------
// Running it all

export interface DoctorOptions {
  url: string;
  /** PEM files with extra trusted CAs (--ca). */
  caFiles?: readonly string[];
  /** Path for the wss upgrade check (--ws); a wss:// URL implies its own path. */
  wsPath?: string;
  /** --resolve pins. */
  resolve?: readonly { name: string; address: string }[];
  timeoutMs?: number;
  now?: Date;
  env?: NodeJS.ProcessEnv;
}

export interface DoctorReport {
  url: string;
  name: string;
  port: number;
  address?: string;
  checks: CheckResult[];
  counts: Record<Status, number>;
  /** No check failed. */
  ok: boolean;
}

/** Reads the --ca files (and NODE_EXTRA_CA_CERTS, which node itself would honour). */
async function extraAnchors(caFiles: readonly string[], env: NodeJS.ProcessEnv): Promise<{ label: string; pem: string }[]> {
  const out: { label: string; pem: string }[] = [];
  const sources = [...caFiles.map((f) => ({ file: f, label: `--ca ${f}` })), ...(env.NODE_EXTRA_CA_CERTS ? [{ file: env.NODE_EXTRA_CA_CERTS, label: 'NODE_EXTRA_CA_CERTS' }] : [])];
  for (const s of sources) {
    let pem: string;
    try {
      pem = await readFile(s.file, 'utf8');
    } catch (err) {
      throw new TlsToolError('MPG_CERT_UNREADABLE', `${s.label}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
    if (parsePemCertificates(pem).length === 0) throw new TlsToolError('MPG_CERT_UNREADABLE', `${s.label}: no PEM certificate in the file`);
    out.push({ label: s.label, pem });
  }
  return out;
}

function countOf(checks: readonly CheckResult[]): Record<Status, number> {
  const counts: Record<Status, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) counts[c.status]++;
  return counts;
}

/**
 * Runs every check against the live server. The TLS probes run in parallel after TCP: the normal
 * handshake (TLS 1.2–1.3, ALPN h2 + http/1.1), a TLS-1.2-only one, a TLS 1.0–1.1 one, and the wss
 * upgrade. The certificate checks use the normal handshake, or the old-TLS one when that is all the
 * server speaks, so a TLS 1.0-only server still gets its certificate judged.
 */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const u = parseDoctorUrl(opts.url);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const now = opts.now ?? new Date();
  const anchors = buildAnchors(await extraAnchors(opts.caFiles ?? [], opts.env ?? process.env));
  const wsPath = opts.wsPath ?? (u.scheme === 'wss' ? u.path : undefined);
  const checks: CheckResult[] = [];
  const report = (address?: string): DoctorReport => {
    const counts = countOf(checks);
    return { url: u.input, name: u.name, port: u.port, ...(address ? { address } : {}), checks, counts, ok: counts.fail === 0 };
  };
  const skipRest = (why: string) => {
    for (const id of ['dns', 'tcp', 'tls12', 'legacy', 'chain', 'name', 'expiry', 'apple', 'h2', 'ws'] as const) {
      if (id === 'ws' && wsPath === undefined) continue;
      if (!checks.some((c) => c.id === id)) checks.push(skipped(id, why));
    }
  };

  const url = checkUrl(u);
  checks.push(url);
  if (u.scheme !== 'https' && u.scheme !== 'wss') {
    skipRest('not an https:// URL');
    return report();
  }

  const pinned = opts.resolve?.find((r) => r.name === u.name.toLowerCase())?.address;
  const looked = await lookupName(u.name, pinned, timeoutMs);
  checks.push(checkDns(u.name, looked));
  if (looked.addresses.length === 0) {
    skipRest('the name does not resolve');
    return report();
  }

  const tcp = await Promise.all(looked.addresses.map((a) => tcpConnect(a.address, u.port, timeoutMs)));
  checks.push(checkTcp(u.port, tcp));
  const reachable = tcp.find((t) => t.ok);
  if (!reachable) {
    skipRest('no TCP connection');
    return report();
  }

  const ep: Endpoint = { address: reachable.address, port: u.port, servername: isIP(u.name) ? undefined : u.name, timeoutMs };
  const base: HandshakeOptions = { minVersion: 'TLSv1.2', ca: anchors.pems };
  const hostHeader = `${isIP(u.name) === 6 ? `[${u.name}]` : u.name}${u.port === 443 ? '' : `:${u.port}`}`;
  const [modern, exact12, legacy, ws] = await Promise.all([
    tlsHandshake(ep, { ...base, alpn: ['h2', 'http/1.1'] }),
    tlsHandshake(ep, { ...base, maxVersion: 'TLSv1.2' }),
    tlsHandshake(ep, { ...base, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    wsPath === undefined ? undefined : wsUpgrade(ep, hostHeader, wsPath, base),
  ]);
  checks.push(checkModernTls(modern, exact12));
  checks.push(checkLegacyRefused(legacy));

  const withCert = modern.ok ? modern : legacy.ok ? legacy : undefined;
  if (withCert && withCert.chain.length > 0) {
    const note = withCert === legacy ? ` [from the ${legacy.ok ? legacy.protocol : ''} handshake]` : '';
    const tag = (c: CheckResult): CheckResult => (note ? { ...c, found: c.found + note } : c);
    checks.push(tag(checkChain(withCert, anchors)));
    checks.push(tag(checkName(withCert.chain[0]!, u.name)));
    checks.push(tag(checkExpiry(withCert.chain, now)));
    checks.push(tag(checkAppleRules(withCert.chain)));
  } else {
    const why = 'no TLS handshake succeeded, so no certificate to look at';
    for (const id of ['chain', 'name', 'expiry', 'apple'] as const) checks.push(skipped(id, why));
  }
  checks.push(modern.ok ? checkHttp2(modern) : skipped('h2', 'no TLS 1.2+ handshake'));
  if (wsPath !== undefined) checks.push(ws && modern.ok ? checkWebSocket(wsPath, ws) : skipped('ws', 'no TLS 1.2+ handshake'));
  return report(reachable.address);
}
