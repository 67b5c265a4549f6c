/**
 * The HTTPS side's certificate table: one SecureContext per site, from files or from ACME, chosen
 * by SNI with the same server_name precedence as Host routing.
 *
 * Files are read and checked (parseable, key matches) when the config loads, so a bad certificate is
 * a config error naming the file — never a crash at the first handshake. An expired one is served
 * with a warning, as nginx does: refusing it would take every other site down with it on a restart. They are
 * watched afterwards: a renewed fullchain.pem (certbot, a cron job, `mpgate cert dev`) is served on
 * the next handshake; a broken rewrite is logged and the previous certificate kept.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { siteName, type CertFiles, type Config, type HttpsConfig } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { HostRouter } from '../core/host-router.js';
import { parsePemCertificates, shortDn, subjectAltNames } from './cert-info.js';

/**
 * TLS 1.3 suites first (all AEAD), then the TLS 1.2 ECDHE + AEAD suites of Mozilla's
 * "intermediate" profile: forward secrecy only, no CBC, no RSA key exchange.
 */
export const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
export const DEFAULT_CIPHERS = [
  TLS13_SUITES,
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const DAY_MS = 86_400_000;
const ACME_TLS_PROTOCOL = 'acme-tls/1';
const kChallenge = Symbol('mpgate.acmeChallenge');

/** What the ACME manager offers the listener (src/tls/acme/acme-manager.ts). */
export interface AcmeHooks {
  alpnChallenge(servername: string): SecureContext | undefined;
}

export interface LoadedCert {
  readonly context: SecureContext;
  /** The PEM texts it was made from (a listener's base context is rebuilt from them). */
  readonly pem: { readonly cert: string; readonly key: string };
  readonly leaf: X509Certificate;
  readonly names: readonly string[];
  readonly notAfter: Date;
  readonly issuer: string;
}

export interface CertStatus {
  site: string;
  source: 'files' | 'auto';
  /** Names the certificate covers (SANs); empty while none is loaded. */
  names: string[];
  notAfter?: string;
  daysLeft?: number;
  issuer?: string;
  /** The cert file, for `source: files`. */
  file?: string;
  /** Why the current certificate could not be (re)loaded; the previous one is still served. */
  error?: string;
}

interface Entry {
  site: string;
  source: 'files' | 'auto';
  files: CertFiles | undefined;
  cert: LoadedCert | undefined;
  error: string | undefined;
}

type SecureOptions = Pick<HttpsConfig, 'minVersion' | 'ciphers'>;

/** The context options every certificate is served with. */
function contextOptions(opts: SecureOptions): { minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; honorCipherOrder: true } {
  // A user list of TLS 1.2 names alone would otherwise leave TLS 1.3 without suites.
  const ciphers = opts.ciphers === undefined ? DEFAULT_CIPHERS : opts.ciphers.includes('TLS_') ? opts.ciphers : `${TLS13_SUITES}:${opts.ciphers}`;
  return { minVersion: opts.minVersion, ciphers, honorCipherOrder: true };
}

/**
 * Builds a serving context from PEM texts, checking what would otherwise only fail at the first
 * handshake: no certificate, a key that is not the certificate's.
 */
export function certFromPem(certPem: string, keyPem: string, opts: SecureOptions): LoadedCert {
  const chain = parsePemCertificates(certPem);
  const leaf = chain[0];
  if (leaf === undefined) throw new PemError('cert', 'no "BEGIN CERTIFICATE" block in the certificate file');
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new PemError('key', `the key file holds no readable private key (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key)) throw new PemError('key', `the key does not belong to the certificate for ${leaf.subject.replace(/\n/g, ', ')}`);
  const notAfter = new Date(leaf.validTo);
  const context = createSecureContext({ cert: certPem, key: keyPem, ...contextOptions(opts) });
  return { context, pem: { cert: certPem, key: keyPem }, leaf, names: subjectAltNames(leaf), notAfter, issuer: shortDn(leaf.issuer) };
}

/** Reads a cert/key pair from files; errors name the file at fault. */
export function loadCertFiles(files: CertFiles, opts: SecureOptions): LoadedCert {
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new CertFileError(file, `cannot read the ${what} file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  };
  const certPem = read(files.cert, 'certificate');
  const keyPem = read(files.key, 'key');
  try {
    return certFromPem(certPem, keyPem, opts);
  } catch (err) {
    if (!(err instanceof PemError)) throw err;
    throw new CertFileError(err.part === 'key' ? files.key : files.cert, err.message);
  }
}

/** What is wrong with a PEM pair, and in which of the two. */
export class PemError extends Error {
  constructor(readonly part: 'cert' | 'key', message: string) {
    super(message);
    this.name = 'PemError';
  }
}

/** What is wrong with a certificate file pair: the file at fault, and why (`reason`). */
export class CertFileError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'CertFileError';
  }
}

export class Certificates {
  readonly #log: Logger;
  #opts: SecureOptions = { minVersion: 'TLSv1.2' };
  #unknownSni: HttpsConfig['unknownSni'] = 'default';
  #http2 = true;
  #entries = new Map<string, Entry>();
  #router = new HostRouter<Entry>();
  #defaultFiles: CertFiles | undefined;
  #default: LoadedCert | undefined;
  #acme: AcmeHooks | undefined;
  #watchers = new Map<string, FSWatcher>();
  #reloadTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Called when the default certificate changes, so listeners can swap their base context. */
  onDefaultChange: (() => void) | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Whether any site (or a default certificate) needs HTTPS listeners. */
  static needed(config: Config): boolean {
    return config.https.defaultCert !== undefined || config.sites.some((s) => s.tls !== undefined);
  }

  /**
   * Applies a config: every certificate file is read and checked first; if any fails, a
   * ConfigError lists them all and the running table is left as it was.
   */
  configure(config: Config): void {
    const opts = { minVersion: config.https.minVersion, ciphers: config.https.ciphers };
    const problems: ConfigError['problems'][number][] = [];
    const entries = new Map<string, Entry>();
    const router = new HostRouter<Entry>();
    const load = (files: CertFiles, key: string): LoadedCert | undefined => {
      try {
        return loadCertFiles(files, opts);
      } catch (err) {
        if (!(err instanceof CertFileError)) throw err;
        problems.push({ file: err.file, line: 0, column: 0, key, message: err.reason, hint: 'give the PEM certificate chain (fullchain.pem) and its private key' });
        return undefined;
      }
    };
    config.sites.forEach((sc, i) => {
      if (sc.tls === undefined) return;
      const site = siteName(sc);
      const previous = this.#entries.get(site);
      const entry: Entry = sc.tls === 'auto'
        // An issued certificate survives reloads; a site switching from files to auto starts without one.
        ? { site, source: 'auto', files: undefined, cert: previous?.source === 'auto' ? previous.cert : undefined, error: previous?.source === 'auto' ? previous.error : undefined }
        : { site, source: 'files', files: sc.tls, cert: load(sc.tls, `sites[${i}].tls`), error: undefined };
      entries.set(site, entry);
      for (const h of sc.hosts) router.add(h, entry);
    });
    const defaultCert = config.https.defaultCert ? load(config.https.defaultCert, 'https.defaultCert') : undefined;
    if (problems.length > 0) {
      throw new ConfigError(problems.map((p) => `${p.file} ${p.key}: ${p.message}`).join('\n'), problems);
    }
    this.#opts = opts;
    this.#unknownSni = config.https.unknownSni;
    this.#http2 = config.https.http2;
    this.#entries = entries;
    this.#router = router;
    this.#defaultFiles = config.https.defaultCert;
    this.#default = defaultCert;
    this.#watchFiles();
    this.onDefaultChange?.();
    for (const e of entries.values()) this.#warnIfExpired(e);
  }

  #warnIfExpired(e: Entry, now = Date.now()): void {
    if (e.cert !== undefined && e.cert.notAfter.getTime() < now) {
      this.#log.warn({ site: e.site, file: e.files?.cert, notAfter: e.cert.notAfter.toISOString() }, 'certificate expired: clients will refuse it (mpgate doctor, mpgate cert list)');
    }
  }

  attachAcme(acme: AcmeHooks | undefined): void {
    this.#acme = acme;
  }

  /** An ACME-issued certificate for a `tls: auto` site (served from the next handshake on). */
  setIssued(site: string, certPem: string, keyPem: string): void {
    const entry = this.#entries.get(site);
    if (entry === undefined || entry.source !== 'auto') return;
    const hadDefault = this.defaultCert() !== undefined;
    try {
      entry.cert = certFromPem(certPem, keyPem, this.#opts);
      entry.error = undefined;
    } catch (err) {
      entry.error = (err as Error).message;
      this.#log.error({ site, err: entry.error }, 'issued certificate refused, keeping the previous one');
      return;
    }
    if (!hadDefault) this.onDefaultChange?.();
  }

  /** ACME trouble shown next to the certificate it concerns. */
  setError(site: string, error: string | undefined): void {
    const entry = this.#entries.get(site);
    if (entry !== undefined) entry.error = error;
  }

  /** The certificate for clients without SNI or with unknown names (none with unknownSni: reject). */
  defaultCert(): LoadedCert | undefined {
    if (this.#default !== undefined) return this.#default;
    for (const e of this.#entries.values()) if (e.cert !== undefined) return e.cert;
    return undefined;
  }

  /** The context for a server name, or undefined (→ handshake alert). */
  contextFor(servername: string): SecureContext | undefined {
    const entry = this.#router.match(servername);
    if (entry?.cert !== undefined) return entry.cert.context;
    return this.#unknownSni === 'default' ? this.defaultCert()?.context : undefined;
  }

  /** tls.Server `SNICallback`: `this` is the socket (Node calls it so), marked by alpnCallback. */
  readonly sniCallback = (socket: TLSSocket | undefined, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    if (socket !== undefined && (socket as TLSSocket & { [kChallenge]?: boolean })[kChallenge]) {
      const ctx = this.#acme?.alpnChallenge(servername);
      if (ctx !== undefined) return cb(null, ctx);
    }
    const ctx = this.contextFor(servername);
    if (ctx === undefined) return cb(new Error(`no certificate for "${servername}"`));
    cb(null, ctx);
  };

  /**
   * tls.Server `ALPNCallback`, which runs before SNI: h2 when offered, else http/1.1; an ACME
   * validator offering only acme-tls/1 (RFC 8737) gets the challenge certificate instead.
   */
  readonly alpnCallback = (socket: TLSSocket | undefined, servername: string, protocols: readonly string[]): string | undefined => {
    if (protocols.includes(ACME_TLS_PROTOCOL) && this.#acme?.alpnChallenge(servername) !== undefined) {
      if (socket !== undefined) (socket as TLSSocket & { [kChallenge]?: boolean })[kChallenge] = true;
      return ACME_TLS_PROTOCOL;
    }
    if (this.#http2 && protocols.includes('h2')) return 'h2';
    if (protocols.includes('http/1.1')) return 'http/1.1';
    return undefined;
  }

  /**
   * Options for the listener's base context (clients without SNI), from the certificate already
   * loaded and checked — never from the files again, which may be mid-rewrite.
   */
  baseOptions(): { cert?: string; key?: string; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string; honorCipherOrder: true } {
    const opts = contextOptions(this.#opts);
    const cert = this.#unknownSni === 'default' ? this.defaultCert() : undefined;
    return cert === undefined ? opts : { ...opts, cert: cert.pem.cert, key: cert.pem.key };
  }

  status(now = Date.now()): CertStatus[] {
    return [...this.#entries.values()].map((e) => ({
      site: e.site,
      source: e.source,
      names: e.cert ? [...e.cert.names] : [],
      ...(e.cert ? { notAfter: e.cert.notAfter.toISOString(), daysLeft: Math.floor((e.cert.notAfter.getTime() - now) / DAY_MS), issuer: e.cert.issuer } : {}),
      ...(e.files ? { file: e.files.cert } : {}),
      ...(e.error ? { error: e.error } : {}),
    }));
  }

  /**
   * Watches the directories holding certificate files (a directory, not the file: certbot and
   * editors replace files by rename, which a file watch would lose track of).
   */
  #watchFiles(): void {
    if (this.#closed) return;
    const dirs = new Set(this.#files().map((f) => dirname(f)));
    for (const [dir, w] of this.#watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || this.#files().some((f) => resolve(f) === resolve(dir, String(name)))) this.#scheduleReread();
        });
        w.on('error', () => w.close());
        this.#watchers.set(dir, w);
      } catch (err) {
        this.#log.warn({ dir, err: (err as Error).message }, 'cannot watch certificate directory; changes need a reload (SIGHUP)');
      }
    }
  }

  /** Every certificate and key file served from. */
  #files(): string[] {
    const pairs = [...[...this.#entries.values()].map((e) => e.files), this.#defaultFiles];
    return pairs.flatMap((f) => (f === undefined ? [] : [f.cert, f.key]));
  }

  // A cert and its key are usually written one after the other: wait for both.
  #scheduleReread(): void {
    clearTimeout(this.#reloadTimer);
    this.#reloadTimer = setTimeout(() => this.#reread(), 150);
    this.#reloadTimer.unref();
  }

  /** Re-reads every file certificate; one that fails keeps being served as it was, with the error. */
  #reread(): void {
    if (this.#closed) return;
    for (const e of this.#entries.values()) {
      if (e.files === undefined) continue;
      try {
        const next = loadCertFiles(e.files, this.#opts);
        if (e.cert === undefined || next.leaf.fingerprint256 !== e.cert.leaf.fingerprint256 || e.error !== undefined) {
          this.#log.info({ site: e.site, file: e.files.cert, notAfter: next.notAfter.toISOString() }, 'certificate reloaded');
        }
        e.cert = next;
        e.error = undefined;
        this.#warnIfExpired(e);
      } catch (err) {
        if (e.error !== (err as Error).message) this.#log.error({ site: e.site, err: (err as Error).message }, 'certificate files changed but cannot be used; serving the previous certificate');
        e.error = (err as Error).message;
      }
    }
    if (this.#defaultFiles !== undefined) {
      try {
        this.#default = loadCertFiles(this.#defaultFiles, this.#opts);
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'default certificate files changed but cannot be used; keeping the previous one');
      }
    }
    this.onDefaultChange?.();
  }

  /** Stops watching files; idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#reloadTimer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}
