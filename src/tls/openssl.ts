/**
 * Certificate issuance through the `openssl` command line. Why the CLI and not an npm package: it is
 * on every Debian/Ubuntu and macOS machine already, it is the tool people use to inspect the result,
 * and X.509 encoding is exactly the kind of code we do not want to own. Keys are made by node:crypto
 * (so they are written 0600 from the start); openssl only builds and signs certificates. The flags
 * used (`req -new -x509`, `x509 -req -extfile`, a config file instead of `-addext`) also work with the
 * LibreSSL that macOS ships as `openssl`.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsToolError } from './errors.js';

/** What to run when `openssl` is missing, for this OS. */
export function opensslInstallHint(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') return 'macOS ships one at /usr/bin/openssl; or: brew install openssl';
  if (platform === 'win32') return 'install it with: winget install ShiningLight.OpenSSL.Light (or use WSL)';
  return 'install it with: sudo apt-get install -y openssl (Debian/Ubuntu) or sudo dnf install -y openssl';
}

/** Runs `openssl ARGS…` and returns stdout; stderr goes into the error when it fails. */
export function runOpenssl(args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new TlsToolError('MPG_OPENSSL_MISSING', `the openssl program was not found: ${opensslInstallHint()}`, { cause: err }));
      }
      reject(new TlsToolError('MPG_OPENSSL_FAILED', `openssl ${args[0] ?? ''} failed: ${(stderr || err.message).trim()}`, { cause: err }));
    });
  });
}

export type KeyType = 'ec' | 'rsa';

/**
 * A new private key as PKCS#8 PEM. ECDSA P-256 by default: every TLS 1.2 client WeChat runs on
 * supports it and it is made in a millisecond; RSA 2048 is the Apple minimum for RSA.
 */
export function newPrivateKeyPem(type: KeyType = 'ec'): string {
  const { privateKey } = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export interface IssueRequest {
  /** The subject's private key (PEM file). */
  keyFile: string;
  /** Where the certificate (PEM) is written. */
  outFile: string;
  commonName: string;
  organization?: string;
  /** subjectAltName entries: DNS names (`*.` allowed) or IP addresses. Required for a leaf. */
  names?: readonly string[];
  /** Issue a CA certificate; pathLen 0 means it may sign leaves only. */
  ca?: { pathLen?: number };
  /** Signed by this CA; self-signed when absent. */
  issuer?: { certFile: string; keyFile: string };
  days: number;
}

/** The openssl config snippet (extensions) for a request; exported for the unit tests. */
export function extensionConfig(req: Pick<IssueRequest, 'names' | 'ca' | 'issuer'>, keyType: string): string {
  const lines = ['[req]', 'distinguished_name = dn', '[dn]', '[ext]'];
  if (req.ca) {
    lines.push(`basicConstraints = critical,CA:TRUE${req.ca.pathLen === undefined ? '' : `,pathlen:${req.ca.pathLen}`}`);
    lines.push('keyUsage = critical,keyCertSign,cRLSign');
  } else {
    lines.push('basicConstraints = critical,CA:FALSE');
    // keyEncipherment only means something for RSA key transport; ECDSA keys only sign.
    lines.push(`keyUsage = critical,digitalSignature${keyType === 'rsa' ? ',keyEncipherment' : ''}`);
    // Apple requires serverAuth in the EKU of TLS server certificates (support.apple.com/HT210176).
    lines.push('extendedKeyUsage = serverAuth');
  }
  lines.push('subjectKeyIdentifier = hash');
  // Lets clients pick the right issuer when a CA has renewed its key (RFC 5280 §4.2.1.1).
  if (req.issuer) lines.push('authorityKeyIdentifier = keyid,issuer');
  if (req.names && req.names.length > 0) {
    lines.push('subjectAltName = @san', '[san]');
    let dns = 0;
    let ip = 0;
    for (const n of req.names) lines.push(isIP(n) ? `IP.${++ip} = ${n}` : `DNS.${++dns} = ${n}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `-subj` value; `/`, `+`, `=` and `\` are escaped the way openssl reads them. */
function subject(req: IssueRequest): string {
  const esc = (v: string) => v.replace(/[\\/+=]/g, (c) => `\\${c}`);
  return `${req.organization ? `/O=${esc(req.organization)}` : ''}/CN=${esc(req.commonName.slice(0, 64))}`;
}

/** A positive 128-bit serial in hex (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
}

/** Builds and signs one certificate with openssl (see the module comment for the flags chosen). */
export async function issueCertificate(req: IssueRequest): Promise<void> {
  if (!req.ca && !req.names?.length) throw new TypeError('a leaf certificate needs at least one name');
  const keyType = createPrivateKey(await readFile(req.keyFile, 'utf8')).asymmetricKeyType ?? 'ec';
  const work = await mkdtemp(join(tmpdir(), 'mpgate-openssl-'));
  try {
    const cnf = join(work, 'openssl.cnf');
    await writeFile(cnf, extensionConfig(req, keyType));
    const common = ['-days', String(req.days), '-sha256', '-set_serial', serial(), '-out', req.outFile];
    if (!req.issuer) {
      await runOpenssl(['req', '-new', '-x509', '-key', req.keyFile, '-subj', subject(req), '-config', cnf, '-extensions', 'ext', ...common]);
      return;
    }
    const csr = join(work, 'req.csr');
    await runOpenssl(['req', '-new', '-key', req.keyFile, '-subj', subject(req), '-config', cnf, '-out', csr]);
    await runOpenssl(['x509', '-req', '-in', csr, '-CA', req.issuer.certFile, '-CAkey', req.issuer.keyFile, '-extfile', cnf, '-extensions', 'ext', ...common]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
