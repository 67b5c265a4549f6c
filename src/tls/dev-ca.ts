/**
 * `mpgate cert dev`: a local CA and a leaf certificate signed by it, for trying HTTPS on a laptop
 * (the way mkcert does it). The CA is created once and never replaced without `force`; the leaf is
 * reissued only when its names change, it was signed by another CA, or it has under 30 days left.
 * Nothing here is for production: WeChat on a phone only trusts publicly trusted CAs.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname, userInfo } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { isoDay, issuedBy, subjectAltNames, summarize } from './cert-info.js';
import { TlsToolError } from './errors.js';
import { issueCertificate, newPrivateKeyPem } from './openssl.js';

export const DEFAULT_DEV_NAMES: readonly string[] = ['localhost', '*.localhost', '127.0.0.1', '::1'];
/** Ten years: a CA that outlives the laptop; it never leaves this machine. */
export const CA_DAYS = 3650;
/** Under Apple's 398-day limit, so Safari and iOS accept the leaf too (support.apple.com/HT211025). */
export const LEAF_DAYS = 397;
/** A leaf with fewer days left than this is reissued on the next run. */
export const RENEW_DAYS = 30;

/**
 * Where `cert dev` keeps its files unless told otherwise: $MPGATE_CERT_DIR, else the per-user data
 * directory ($XDG_DATA_HOME/mpgate/certs, ~/Library/Application Support/mpgate/certs on macOS,
 * %LOCALAPPDATA%\mpgate\certs on Windows).
 */
export function defaultCertDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.MPGATE_CERT_DIR) return env.MPGATE_CERT_DIR;
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'mpgate', 'certs');
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'mpgate', 'certs');
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'mpgate', 'certs');
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Why `name` cannot go into a certificate, or undefined when it can. */
export function invalidName(name: string): string | undefined {
  if (isIP(name)) return undefined;
  if (name.length > 253 || !DNS_NAME.test(name)) return 'not a DNS name (letters, digits, "-", dots; "*." only as the whole first label) nor an IP address';
  if (name.startsWith('*.') && !name.slice(2).includes('.') && name !== '*.localhost') return 'a wildcard needs at least two labels after "*." (browsers refuse "*.com")';
  return undefined;
}

/** File stem for a leaf named after its first name: "localhost", "_wildcard.example.test", "127.0.0.1". */
export function leafStem(names: readonly string[]): string {
  return names[0]!.replace(/^\*/, '_wildcard').replace(/[^a-z0-9._-]/gi, '_');
}

export interface DevCertFiles {
  dir: string;
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
  fullchain: string;
}

export function devCertFiles(dir: string, names: readonly string[]): DevCertFiles {
  const stem = leafStem(names);
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    cert: join(dir, `${stem}.pem`),
    key: join(dir, `${stem}-key.pem`),
    fullchain: join(dir, `${stem}-fullchain.pem`),
  };
}

export type LeafState = 'created' | 'reused' | 'names changed' | 'expiring' | 'new CA';

export interface DevCertResult {
  files: DevCertFiles;
  ca: { created: boolean; subject: string; notAfter: Date; daysLeft: number };
  leaf: { state: LeafState; names: string[]; notAfter: Date; daysLeft: number };
  /** Key files whose permissions were tightened to 0600 on this run. */
  fixedModes: string[];
}

export interface DevCertOptions {
  dir: string;
  names?: readonly string[];
  /** Replace an existing CA (certificates it signed stop being trusted). */
  force?: boolean;
  now?: Date;
}

async function readIf(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes via a temporary file and rename, so a crash never leaves half a key or certificate. */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'w' });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/** Writes only when the content changed, so a rerun leaves files (and their times) alone. */
async function writeIfChanged(file: string, data: string, mode: number): Promise<void> {
  if ((await readIf(file)) !== data) await writeAtomic(file, data, mode);
}

async function ensureKeyMode(file: string, fixed: string[]): Promise<void> {
  if (process.platform === 'win32') return;
  if (((await stat(file)).mode & 0o777) !== 0o600) {
    await chmod(file, 0o600);
    fixed.push(file);
  }
}

function caSubjectName(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the name is only a label.
  }
  return `mpgate dev CA ${user}@${hostname()}`.replace(/[^A-Za-z0-9 ._@-]/g, '_');
}

/** Creates (or reuses) the CA and the leaf; see the module comment for when each is replaced. */
export async function ensureDevCertificates(opts: DevCertOptions): Promise<DevCertResult> {
  const names = [...new Set((opts.names?.length ? opts.names : DEFAULT_DEV_NAMES).map((n) => n.toLowerCase()))];
  for (const n of names) {
    const why = invalidName(n);
    if (why) throw new TypeError(`--name ${n}: ${why}`);
  }
  const now = opts.now ?? new Date();
  const files = devCertFiles(opts.dir, names);
  const fixedModes: string[] = [];
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });

  // The CA.
  const caPem = await readIf(files.caCert);
  const caKeyPem = await readIf(files.caKey);
  let ca: X509Certificate;
  const caCreated = opts.force === true || (caPem === undefined && caKeyPem === undefined);
  if (caCreated) ca = await createCa(files);
  else {
    const problem = caProblem(caPem, caKeyPem, now);
    if (problem !== undefined) {
      throw new TlsToolError('MPG_DEV_CA_CONFLICT', `${opts.dir}: ${problem}; run again with --force to replace the CA (certificates it signed will no longer be trusted)`);
    }
    ca = new X509Certificate(caPem!);
    await ensureKeyMode(files.caKey, fixedModes);
  }

  // The leaf.
  let state: LeafState = 'reused';
  const leafPem = await readIf(files.cert);
  const leafKeyPem = await readIf(files.key);
  if (leafPem === undefined || leafKeyPem === undefined) state = 'created';
  else {
    const leaf = safeCert(leafPem);
    if (!leaf || !keyMatches(leaf, leafKeyPem)) state = 'created';
    else if (!issuedBy(leaf, ca)) state = 'new CA';
    else if (!sameNames(subjectAltNames(leaf), names)) state = 'names changed';
    else if (summarize(leaf, now).daysLeft < RENEW_DAYS) state = 'expiring';
  }
  if (state !== 'reused') {
    await writeAtomic(files.key, newPrivateKeyPem('ec'), 0o600);
    const out = `${files.cert}.${process.pid}.tmp`;
    try {
      await issueCertificate({ keyFile: files.key, outFile: out, commonName: names[0]!, organization: 'mpgate development certificate', names, issuer: { certFile: files.caCert, keyFile: files.caKey }, days: LEAF_DAYS });
      await chmod(out, 0o644);
      await rename(out, files.cert);
    } finally {
      await rm(out, { force: true });
    }
  } else {
    await ensureKeyMode(files.key, fixedModes);
  }
  const leafCertPem = (await readFile(files.cert, 'utf8')).trim();
  // The root is included on purpose: harmless for clients (RFC 8446 §4.4.2 lets them ignore it) and it
  // makes the file a complete chain on its own for `openssl verify` and `mpgate cert list`.
  await writeIfChanged(files.fullchain, `${leafCertPem}\n${ca.toString().trim()}\n`, 0o644);

  // Days left are counted from now, after issuing: `now` was taken before openssl stamped notBefore,
  // so it would show a fresh 397-day certificate as having 398 days.
  const shown = opts.now ?? new Date();
  const leaf = summarize(new X509Certificate(leafCertPem), shown);
  const caSum = summarize(ca, shown);
  return {
    files,
    ca: { created: caCreated, subject: caSum.subject, notAfter: caSum.notAfter, daysLeft: caSum.daysLeft },
    leaf: { state, names: leaf.names, notAfter: leaf.notAfter, daysLeft: leaf.daysLeft },
    fixedModes,
  };
}

function safeCert(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const norm = (l: readonly string[]) => [...l].map((n) => n.toLowerCase()).sort().join(',');
  return norm(a) === norm(b);
}

/** Why the files in the directory are not a usable CA, or undefined when they are. */
function caProblem(certPem: string | undefined, keyPem: string | undefined, now: Date): string | undefined {
  if (certPem === undefined) return 'ca-key.pem exists but ca.pem is missing';
  if (keyPem === undefined) return 'ca.pem exists but ca-key.pem is missing';
  const cert = safeCert(certPem);
  if (!cert) return 'ca.pem is not a certificate';
  if (!cert.ca) return 'ca.pem is not a CA certificate';
  if (!keyMatches(cert, keyPem)) return 'ca-key.pem does not belong to ca.pem';
  const s = summarize(cert, now);
  if (s.expired) return `the CA expired on ${isoDay(s.notAfter)}`;
  return undefined;
}

async function createCa(files: DevCertFiles): Promise<X509Certificate> {
  await writeAtomic(files.caKey, newPrivateKeyPem('ec'), 0o600);
  const out = `${files.caCert}.${process.pid}.tmp`;
  try {
    await issueCertificate({ keyFile: files.caKey, outFile: out, commonName: caSubjectName(), organization: 'mpgate development CA', ca: { pathLen: 0 }, days: CA_DAYS });
    await chmod(out, 0o644);
    await rename(out, files.caCert);
  } finally {
    await rm(out, { force: true });
  }
  return new X509Certificate(await readFile(files.caCert, 'utf8'));
}

export interface TrustHint {
  /** What the commands are for ("Debian/Ubuntu", "macOS", ...). */
  label: string;
  commands: string[];
}

/** Quotes a path for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that makes this OS trust the CA, for the OS we run on. On Linux the family is told by
 * the tool that is installed (update-ca-certificates: Debian/Ubuntu/Alpine; update-ca-trust: Fedora/RHEL).
 */
export function trustHint(caCert: string, platform: NodeJS.Platform = process.platform, exists: (p: string) => boolean = existsSync): TrustHint {
  const q = shellQuote(caCert);
  if (platform === 'darwin') {
    return { label: 'macOS', commands: [`sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${q}`] };
  }
  if (platform === 'win32') return { label: 'Windows (admin prompt)', commands: [`certutil -addstore -f ROOT "${caCert}"`] };
  if (!exists('/usr/sbin/update-ca-certificates') && exists('/usr/bin/update-ca-trust')) {
    return { label: 'Fedora/RHEL', commands: [`sudo cp ${q} /etc/pki/ca-trust/source/anchors/mpgate-dev-ca.pem && sudo update-ca-trust`] };
  }
  // The .crt extension is required: update-ca-certificates ignores other files in that directory.
  return { label: 'Debian/Ubuntu', commands: [`sudo cp ${q} /usr/local/share/ca-certificates/mpgate-dev-ca.crt && sudo update-ca-certificates`] };
}
