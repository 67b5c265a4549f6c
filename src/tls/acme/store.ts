/**
 * The ACME storage directory (`acme.storage`): account keys per CA, and per site its certificate, key
 * and a small state file (last error, next attempt) that `mpgate cert list` reads.
 *
 *   <storage>/                        0700
 *     accounts/<ca-host>-<hash>/      one account per directory URL (a key registered at staging means
 *       account.key  0600              nothing to production)
 *       account.json                  { directory, url }
 *     sites/<site>/
 *       cert.pem                      leaf + chain
 *       key.pem      0600
 *       state.json                    SiteState
 *
 * Every file is written to a temporary name, synced and renamed over the old one, so a crash leaves
 * either the old or the new file, never half of one. The certificate is read synchronously at start
 * (`stored()`), so a restarted gateway serves HTTPS before it talks to any CA.
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { oneLineDn, parsePemCertificates } from '../cert-info.js';
import { AcmeError, errorText } from './errors.js';
import type { IssuedCert } from './types.js';

/** What state.json holds for a site. Times are ISO strings so the file reads well by eye. */
export interface SiteState {
  version: 1;
  site: string;
  /** The names of the last order (the certificate's names once it succeeded). */
  names: string[];
  /** Outcome of the last attempt. */
  state: 'valid' | 'failed';
  /** Consecutive failed attempts; 0 after a success. The next retry waits retryMin·2^(failures-1). */
  failures: number;
  lastError?: string;
  lastErrorCode?: string;
  lastAttempt?: string;
  nextAttempt?: string;
  /** Directory URL of the CA that issued cert.pem: switching from staging to production reissues. */
  certDirectory?: string;
  issuedAt?: string;
}

const KEY_MODE = 0o600;
const FILE_MODE = 0o644;
const DIR_MODE = 0o700;

/**
 * A directory name for a site name. Site names are free text in the config; anything beyond
 * [A-Za-z0-9._-] (or a name like "..") gets a hash suffix so two sites never share a directory.
 */
export function siteDirName(site: string): string {
  const safe = site.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  if (safe === site && site !== '.' && site !== '..') return site;
  return `${safe}-${createHash('sha256').update(site).digest('hex').slice(0, 10)}`;
}

/** "acme-v02.api.letsencrypt.org-1a2b3c4d": the CA's host, readable, plus a hash of the whole URL. */
export function accountDirName(directoryUrl: string): string {
  let host = 'ca';
  try {
    host = new URL(directoryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_');
  } catch {
    // The config validated the URL; a hash alone still keeps accounts apart.
  }
  return `${host}-${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 8)}`;
}

/**
 * The certificate and key as the manager hands them out, checked: the PEM holds a certificate, the key
 * parses and belongs to the leaf. Throws a plain Error saying which of these failed.
 */
export function parseIssued(certPem: string, keyPem: string): { issued: IssuedCert; leaf: X509Certificate } {
  const certs = parsePemCertificates(certPem);
  const leaf = certs[0];
  if (!leaf) throw new Error('no certificate in the PEM text');
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('the private key does not belong to the certificate');
  return {
    issued: { cert: certPem, key: keyPem, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo), issuer: oneLineDn(leaf.issuer) },
    leaf,
  };
}

/** Writes via a synced temporary file and rename (POSIX rename replaces atomically). */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    // Without the sync, a power loss after the rename can leave an empty file under the final name.
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseState(text: string): SiteState | undefined {
  try {
    const v = JSON.parse(text) as Partial<SiteState>;
    return v && v.version === 1 && typeof v.site === 'string' && Array.isArray(v.names) ? (v as SiteState) : undefined;
  } catch {
    return undefined;
  }
}

export class AcmeStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  siteDir(site: string): string {
    return join(this.dir, 'sites', siteDirName(site));
  }

  /** The stored certificate of a site, or undefined when there is none or it is unreadable or mismatched. */
  readCert(site: string): IssuedCert | undefined {
    const dir = this.siteDir(site);
    try {
      const cert = readIfExists(join(dir, 'cert.pem'));
      const key = readIfExists(join(dir, 'key.pem'));
      if (cert === undefined || key === undefined) return undefined;
      return parseIssued(cert, key).issued;
    } catch {
      // Unreadable or damaged files are treated as absent: the manager orders a new certificate and
      // overwrites them. The manager logs what it found (see AcmeManager.#load).
      return undefined;
    }
  }

  /** The site's state file, or undefined when absent or not ours. */
  readState(site: string): SiteState | undefined {
    try {
      const text = readIfExists(join(this.siteDir(site), 'state.json'));
      return text === undefined ? undefined : parseState(text);
    } catch {
      return undefined;
    }
  }

  /** Key first, then the certificate: a crash in between leaves a mismatch that readCert refuses. */
  async writeCert(site: string, cert: IssuedCert): Promise<void> {
    await this.#guard(`saving the certificate of site "${site}"`, async () => {
      const dir = await this.#mkdirs(this.siteDir(site));
      await writeAtomic(join(dir, 'key.pem'), cert.key, KEY_MODE);
      await writeAtomic(join(dir, 'cert.pem'), cert.cert, FILE_MODE);
    });
  }

  async writeState(state: SiteState): Promise<void> {
    await this.#guard(`saving the state of site "${state.site}"`, async () => {
      const dir = await this.#mkdirs(this.siteDir(state.site));
      await writeAtomic(join(dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, FILE_MODE);
    });
  }

  /** The account key for a CA: read, or made by `create` and saved (0600) on first use. */
  async accountKey(directoryUrl: string, create: () => Promise<Buffer>): Promise<{ key: Buffer; created: boolean }> {
    const file = join(this.dir, 'accounts', accountDirName(directoryUrl), 'account.key');
    return this.#guard('reading the ACME account key', async () => {
      try {
        return { key: await readFile(file), created: false };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const key = await create();
      await this.#mkdirs(join(this.dir, 'accounts', accountDirName(directoryUrl)));
      await writeAtomic(file, key.toString(), KEY_MODE);
      return { key, created: true };
    });
  }

  /** Records the account URL next to its key (for people and for support; the key alone identifies it). */
  async writeAccount(directoryUrl: string, url: string): Promise<void> {
    const dir = await this.#mkdirs(join(this.dir, 'accounts', accountDirName(directoryUrl)));
    await writeAtomic(join(dir, 'account.json'), `${JSON.stringify({ directory: directoryUrl, url }, null, 2)}\n`, FILE_MODE);
  }

  /** Creates the storage root and `sub` (mode 0700; existing directories keep their mode). */
  async #mkdirs(sub: string): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: DIR_MODE });
    await mkdir(sub, { recursive: true, mode: DIR_MODE });
    return sub;
  }

  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new AcmeError('MPG_ACME_STORAGE', `${what} in ${this.dir} failed: ${code ?? errorText(err)}`, { cause: err });
    }
  }
}

/** One site found in a storage directory, for `mpgate cert list`. */
export interface StoredSite {
  /** Site name (from state.json; the directory name when there is no state file). */
  site: string;
  dir: string;
  /** cert.pem, when present. */
  certFile?: string;
  state?: SiteState;
}

/** True when `dir` looks like an ACME storage directory (it has sites/ or accounts/). */
export async function isAcmeStorage(dir: string): Promise<boolean> {
  try {
    const names = await readdir(dir);
    return names.includes('sites') || names.includes('accounts');
  } catch {
    return false;
  }
}

/** Every site under `<dir>/sites`, sorted by name; [] when there is none. */
export async function listStoredSites(dir: string): Promise<StoredSite[]> {
  const root = join(dir, 'sites');
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  const out: StoredSite[] = [];
  for (const name of entries) {
    const siteDir = join(root, name);
    let files: string[];
    try {
      files = await readdir(siteDir);
    } catch {
      continue;
    }
    const stateText = files.includes('state.json') ? await readFile(join(siteDir, 'state.json'), 'utf8').catch(() => undefined) : undefined;
    const state = stateText === undefined ? undefined : parseState(stateText);
    out.push({ site: state?.site ?? name, dir: siteDir, ...(files.includes('cert.pem') ? { certFile: join(siteDir, 'cert.pem') } : {}), ...(state ? { state } : {}) });
  }
  return out.sort((a, b) => a.site.localeCompare(b.site));
}
