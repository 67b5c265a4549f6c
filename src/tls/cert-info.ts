/**
 * What a certificate says, and whether a list of certificates forms a chain to a trusted root. Pure
 * functions over node:crypto X509Certificate values: `mpgate cert list` and `mpgate doctor` both use
 * them, and the gateway's own HTTPS (planned) should use them to refuse a bad certificate at load.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { TlsToolError } from './errors.js';

const DAY_MS = 86_400_000;
/** id-kp-serverAuth (RFC 5280 §4.2.1.12). */
export const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM text (other blocks, such as keys, are skipped). */
export function parsePemCertificates(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

/** The certificates in a file: PEM (one or many) or a single DER certificate. */
export async function readCertificates(file: string): Promise<X509Certificate[]> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    throw new TlsToolError('MPG_CERT_UNREADABLE', `${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const text = data.toString('latin1');
  try {
    if (text.includes('-----BEGIN')) {
      const certs = parsePemCertificates(text);
      if (certs.length === 0) throw new Error('no "BEGIN CERTIFICATE" block');
      return certs;
    }
    return [new X509Certificate(data)];
  } catch (err) {
    throw new TlsToolError('MPG_CERT_UNREADABLE', `${file}: not a certificate file (${(err as Error).message})`, { cause: err });
  }
}

/** True when the PEM text holds a private key and no certificate. */
export function isKeyOnlyPem(text: string): boolean {
  return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) && !text.includes('-----BEGIN CERTIFICATE-----');
}

/** "CN=x, O=y" from node's one-attribute-per-line form. */
export function oneLineDn(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/** The CN of a DN, or the whole DN when it has none. */
export function shortDn(dn: string): string {
  const cn = dn.split('\n').find((l) => l.startsWith('CN='));
  return cn ? cn.slice(3) : oneLineDn(dn);
}

/** A canonical IP text (IPv6 compressed, as people write it). */
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/**
 * DNS names and IP addresses of the subjectAltName extension. Node prints values that contain
 * separators as JSON strings (since the CVE-2021-44532 fix), so quoted values are decoded.
 */
export function subjectAltNames(x: X509Certificate): string[] {
  const text = x.subjectAltName;
  if (!text) return [];
  const out: string[] = [];
  const re = /(DNS|IP Address|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(text); m !== null && m[0] !== ''; m = re.exec(text)) {
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    if (m[1] === 'DNS') out.push(value);
    else if (m[1] === 'IP Address') out.push(canonicalIp(value));
  }
  return out;
}

/** "EC P-256", "RSA 2048", "Ed25519". */
export function describeKey(x: X509Certificate): string {
  const k = x.publicKey;
  const d = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === 'ec') {
    const curves: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
    return `EC ${curves[d.namedCurve ?? ''] ?? d.namedCurve ?? '?'}`;
  }
  if (k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'rsa-pss') return `RSA ${d.modulusLength ?? '?'}`;
  return k.asymmetricKeyType === 'ed25519' ? 'Ed25519' : (k.asymmetricKeyType ?? 'unknown');
}

/** Subject and issuer are the same name and the certificate verifies with its own key. */
export function isSelfSigned(x: X509Certificate): boolean {
  // Not x.checkIssued(x): OpenSSL's check also wants keyCertSign, which a self-signed leaf lacks.
  return x.subject === x.issuer && x.verify(x.publicKey);
}

/** `child` names `parent` as issuer (names, key identifiers, keyCertSign) and parent's key signed it. */
export function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && parent.ca && child.verify(parent.publicKey);
}

export interface CertSummary {
  subject: string;
  issuer: string;
  /** subjectAltName DNS names and IPs, in order. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** Days until notAfter, rounded up (half a day left is "1 day"); 0 or negative once expired. */
  daysLeft: number;
  /** now is after notAfter. */
  expired: boolean;
  /** now is before notBefore (a wrong clock on one side, or a certificate issued for later). */
  notYetValid: boolean;
  /** Total validity in days (Apple: at most 825, publicly trusted at most 398). */
  lifetimeDays: number;
  key: string;
  isCa: boolean;
  selfSigned: boolean;
  /** The extended key usage OIDs, or undefined when the certificate has no EKU extension. */
  extendedKeyUsage: string[] | undefined;
  fingerprint256: string;
}

export function summarize(x: X509Certificate, now: Date = new Date()): CertSummary {
  const notBefore = new Date(x.validFrom);
  const notAfter = new Date(x.validTo);
  return {
    subject: oneLineDn(x.subject),
    issuer: oneLineDn(x.issuer),
    names: subjectAltNames(x),
    notBefore,
    notAfter,
    daysLeft: Math.ceil((notAfter.getTime() - now.getTime()) / DAY_MS),
    expired: now.getTime() > notAfter.getTime(),
    notYetValid: now.getTime() < notBefore.getTime(),
    lifetimeDays: Math.round((notAfter.getTime() - notBefore.getTime()) / DAY_MS),
    key: describeKey(x),
    isCa: x.ca,
    selfSigned: isSelfSigned(x),
    extendedKeyUsage: x.keyUsage,
    fingerprint256: x.fingerprint256,
  };
}

/** YYYY-MM-DD (UTC). */
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Whether the certificate covers `name` the way browsers and phones match it (RFC 6125): only the
 * subjectAltName counts (iOS 13+ and Chrome ignore the CN), a wildcard stands for exactly one whole
 * left-most label (`*.a.test` covers `b.a.test`, not `a.test` nor `c.b.a.test`), IPs need an IP entry.
 */
export function coveringName(x: X509Certificate, name: string): string | undefined {
  if (isIP(name)) return x.checkIP(name) === undefined ? undefined : name;
  return x.checkHost(name, { subject: 'never', wildcards: true, partialWildcards: false, multiLabelWildcards: false, singleLabelSubdomains: false });
}

export type ChainProblem = 'empty' | 'self-signed' | 'untrusted-root' | 'missing-issuer';

export interface ChainAnalysis {
  /** Leaf first, then each issuer found among the given certificates. */
  path: X509Certificate[];
  /** The trust anchor that issued (or is) the last certificate of path. */
  anchor?: X509Certificate;
  trusted: boolean;
  problem?: ChainProblem;
  /** DN of the issuer that is neither among the certificates nor trusted ('missing-issuer'). */
  missingIssuer?: string;
  /** Certificates that are not part of the path (a wrong file concatenated in). */
  unused: X509Certificate[];
  /** The path is not in the order given (TLS 1.2 wants leaf first, each next certifying the previous: RFC 5246 §7.4.2). */
  outOfOrder: boolean;
}

/**
 * Builds the chain from `certs[0]` (the leaf) through the other certificates to one of `anchors`.
 * Signatures are verified; validity dates are not (they are a separate check, so an expired leaf is
 * reported as expired, not as "untrusted").
 */
export function analyzeChain(certs: readonly X509Certificate[], anchors: readonly X509Certificate[]): ChainAnalysis {
  const leaf = certs[0];
  if (!leaf) return { path: [], trusted: false, problem: 'empty', unused: [], outOfOrder: false };
  const anchorPrints = new Set(anchors.map((a) => a.fingerprint256));
  const path = [leaf];
  const pool = certs.slice(1);
  let result: Omit<ChainAnalysis, 'path' | 'unused' | 'outOfOrder'>;
  for (;;) {
    const cur = path[path.length - 1]!;
    if (anchorPrints.has(cur.fingerprint256) && path.length > 1) {
      result = { trusted: true, anchor: cur };
      break;
    }
    const anchor = anchors.find((a) => issuedBy(cur, a));
    if (anchor) {
      // A root that was also sent belongs on the path (it is not an unused extra).
      const sent = pool.find((c) => c.fingerprint256 === anchor.fingerprint256 && !path.includes(c));
      if (sent) path.push(sent);
      result = { trusted: true, anchor: sent ?? anchor };
      break;
    }
    if (isSelfSigned(cur)) {
      result = { trusted: false, problem: path.length === 1 ? 'self-signed' : 'untrusted-root' };
      break;
    }
    const next = pool.find((c) => !path.includes(c) && issuedBy(cur, c));
    if (!next) {
      result = { trusted: false, problem: 'missing-issuer', missingIssuer: oneLineDn(cur.issuer) };
      break;
    }
    path.push(next);
  }
  const unused = pool.filter((c) => !path.includes(c));
  const outOfOrder = path.some((c, i) => certs[i] !== c);
  return { path, unused, outOfOrder, ...result };
}
