/**
 * Certificates for the sites with `tls: auto`, from an ACME CA (Let's Encrypt by default): issued at
 * start when the store has none, renewed when `acme.renewBefore` of the lifetime is left, retried with
 * exponential backoff after a failure. The gateway's HTTPS listener asks this manager for challenge
 * answers (httpChallenge, alpnChallenge) and is handed each new certificate through `onCertificate`.
 *
 * One order runs at a time (a queue): orders are a few seconds each, the CA's rate limits count per
 * account, and a cold start with many sites should not open many validations at once. A failure never
 * leaves this class as an exception: the site keeps the certificate it had (the gateway goes on
 * serving it), and the error is in `status()`, in the site's state file and in the log.
 */
import type { X509Certificate } from 'node:crypto';
import type https from 'node:https';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { SecureContext } from 'node:tls';
import { Client, crypto as acmeCrypto } from 'acme-client';
import type { Logger } from 'pino';
import type { AcmeConfig } from '../../config/schema.js';
import { coveringName, parsePemCertificates, subjectAltNames } from '../cert-info.js';
import { createAlpnChallengeCert } from './alpn-cert.js';
import { AcmeError, errorText } from './errors.js';
import { orderCertificate, type ChallengeResponder, type ChallengeType } from './order.js';
import { renewalTime, retryDelay, timerDelay } from './schedule.js';
import { AcmeStore, parseIssued, type SiteState } from './store.js';
import { acmeAgent, directoryUrl, probeDirectory, withTransport } from './transport.js';
import type { AcmeSite, AcmeStatus, IssuedCert } from './types.js';

export type { AcmeSite, AcmeStatus, IssuedCert } from './types.js';
export { AcmeError, type AcmeErrorCode } from './errors.js';

export interface AcmeManagerOptions {
  config: AcmeConfig;
  log: Logger;
  /** Called with every certificate issued (not with the ones read from storage: see stored()). */
  onCertificate: (site: string, cert: IssuedCert) => void;
  /** Clock for renewal and retry decisions (tests move it forward); timers still run in real time. */
  now?: () => number;
}

/** What the manager knows about one site. Replaced (not mutated) when the site's names change. */
interface Entry {
  site: string;
  /** Lower-case, without a trailing dot, deduplicated, in config order (the first is the CSR's CN). */
  names: string[];
  cert?: IssuedCert;
  leaf?: X509Certificate;
  /** Directory URL that issued `cert`, when known from the state file. */
  certDirectory?: string;
  state: AcmeStatus['state'];
  failures: number;
  lastError?: string;
  lastErrorCode?: string;
  lastAttempt?: number;
  /** When the certificate in hand was issued (from the state file after a restart). */
  issuedAt?: number;
  /** When the manager acts next: the retry after a failure or the renewal of a valid certificate. */
  nextAt?: number;
  timer?: NodeJS.Timeout;
  /** Set while this entry's order runs. */
  abort?: AbortController;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** How long close() waits for an aborted order to settle. */
const CLOSE_WAIT_MS = 2_000;

export class AcmeManager {
  readonly #config: AcmeConfig;
  readonly #log: Logger;
  readonly #onCertificate: (site: string, cert: IssuedCert) => void;
  readonly #now: () => number;
  readonly #store: AcmeStore;
  readonly #directory: string;
  readonly #entries = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  #running: Promise<void> | undefined;
  #agent: Promise<https.Agent> | undefined;
  #agentValue: https.Agent | undefined;
  #account: Promise<Client> | undefined;
  #closed = false;
  /** http-01: token → key authorization, while the CA validates. */
  readonly #httpAnswers = new Map<string, string>();
  /** tls-alpn-01: name → context with the acmeIdentifier certificate, while the CA validates. */
  readonly #alpnAnswers = new Map<string, SecureContext>();
  readonly #responder: ChallengeResponder;

  constructor(opts: AcmeManagerOptions) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#onCertificate = opts.onCertificate;
    this.#now = opts.now ?? Date.now;
    this.#store = new AcmeStore(resolve(opts.config.storage));
    this.#directory = directoryUrl(opts.config.directory);
    this.#responder = {
      add: async (type: ChallengeType, name: string, token: string, keyAuthorization: string) => {
        if (type === 'http-01') this.#httpAnswers.set(token, keyAuthorization);
        else this.#alpnAnswers.set(name.toLowerCase(), (await createAlpnChallengeCert(name, keyAuthorization)).context);
      },
      remove: (type: ChallengeType, name: string, token: string) => {
        if (type === 'http-01') this.#httpAnswers.delete(token);
        else this.#alpnAnswers.delete(name.toLowerCase());
      },
    };
  }

  /** Certificates already in storage for these sites, read synchronously so a restart serves at once (undefined when none or unreadable). */
  stored(site: AcmeSite): IssuedCert | undefined {
    return this.#store.readCert(site.site);
  }

  /** The set of tls:auto sites (called at start and on every reload): starts issuance for sites without a valid cert, schedules renewal, forgets removed sites. Never throws; returns immediately (work runs in the background). */
  update(sites: AcmeSite[]): void {
    if (this.#closed) {
      this.#log.warn({ sites: sites.length }, 'acme update ignored: the manager is closed');
      return;
    }
    try {
      const wanted = new Map(sites.map((s) => [s.site, normalizeNames(s.names)] as const));
      for (const entry of [...this.#entries.values()]) {
        if (!wanted.has(entry.site)) {
          this.#forget(entry);
          this.#log.info({ site: entry.site }, 'acme site removed; its files stay in storage');
        }
      }
      for (const [site, names] of wanted) {
        const known = this.#entries.get(site);
        if (known && sameNames(known.names, names)) continue;
        if (known) this.#forget(known);
        this.#plan(this.#load(site, names));
      }
    } catch (err) {
      // Only a bug gets here (storage reads are caught in the store); the gateway must not fall over.
      this.#log.error({ err }, 'acme update failed');
    }
  }

  /** HTTP-01: the key authorization for GET /.well-known/acme-challenge/TOKEN, while that challenge is pending. */
  httpChallenge(token: string): string | undefined {
    return this.#httpAnswers.get(token);
  }

  /** TLS-ALPN-01: the SecureContext with the acmeIdentifier certificate for `servername`, while pending. */
  alpnChallenge(servername: string): SecureContext | undefined {
    return this.#alpnAnswers.get(servername.toLowerCase());
  }

  status(): AcmeStatus[] {
    return [...this.#entries.values()].map((e) => ({
      site: e.site,
      names: [...e.names],
      state: e.state,
      ...(e.cert ? { notAfter: e.cert.notAfter.toISOString(), issuer: e.cert.issuer } : {}),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
      ...(e.nextAt !== undefined ? { nextAttempt: iso(e.nextAt) } : {}),
    }));
  }

  /** Stops timers and pending work; idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#queue.length = 0;
      for (const entry of this.#entries.values()) {
        clearTimeout(entry.timer);
        entry.timer = undefined;
        entry.abort?.abort();
      }
    }
    // An aborted order settles at once (its requests and our sleeps are cancelled), unless acme-client
    // is inside one of its own retry pauses (up to 25 s, not cancellable): then close() does not wait
    // for it; the order ends by itself afterwards and changes nothing (#current is false).
    const running = this.#running;
    if (running !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS).unref()))]);
      clearTimeout(timer);
    }
    this.#agentValue?.destroy();
    this.#httpAnswers.clear();
    this.#alpnAnswers.clear();
  }

  /** A new entry for `site`, with what storage holds: the certificate, and the failure count of the last attempts. */
  #load(site: string, names: string[]): Entry {
    const entry: Entry = { site, names, state: 'waiting', failures: 0 };
    const cert = this.#store.readCert(site);
    const saved = this.#store.readState(site);
    if (cert) {
      entry.cert = cert;
      entry.leaf = parsePemCertificates(cert.cert)[0];
      if (saved?.certDirectory) entry.certDirectory = saved.certDirectory;
      const issuedAt = saved?.issuedAt === undefined ? NaN : Date.parse(saved.issuedAt);
      if (!Number.isNaN(issuedAt)) entry.issuedAt = issuedAt;
    }
    if (saved?.state === 'failed' && sameNames(saved.names, names)) {
      // The count survives a restart so backoff keeps growing; the attempt itself is not delayed: a
      // restart is usually someone who fixed the cause. New names start a new count.
      entry.failures = saved.failures;
      if (saved.lastError !== undefined) entry.lastError = saved.lastError;
      if (saved.lastErrorCode !== undefined) entry.lastErrorCode = saved.lastErrorCode;
    }
    this.#entries.set(site, entry);
    return entry;
  }

  #forget(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.abort?.abort();
    const i = this.#queue.indexOf(entry);
    if (i >= 0) this.#queue.splice(i, 1);
    if (this.#entries.get(entry.site) === entry) this.#entries.delete(entry.site);
  }

  /** Still the live entry of its site, and the manager still open: results may be applied. */
  #current(entry: Entry): boolean {
    return !this.#closed && this.#entries.get(entry.site) === entry;
  }

  /** Why the entry needs a new certificate now, or undefined when its certificate is good until renewal. */
  #due(entry: Entry, now: number): string | undefined {
    if (!entry.cert || !entry.leaf) return 'no certificate in storage';
    const missing = entry.names.filter((n) => coveringName(entry.leaf!, n) === undefined);
    if (missing.length) return `the certificate does not cover ${missing.join(', ')}`;
    if (entry.certDirectory !== undefined && entry.certDirectory !== this.#directory) return `the certificate came from another CA (${entry.certDirectory})`;
    if (now >= this.#renewAt(entry.cert)) return now >= entry.cert.notAfter.getTime() ? 'the certificate has expired' : 'renewal is due';
    return undefined;
  }

  #renewAt(cert: IssuedCert): number {
    return renewalTime(cert.notBefore.getTime(), cert.notAfter.getTime(), this.#config.renewBefore);
  }

  /** Decides the entry's next step: queue an order now, or sleep until the renewal time. */
  #plan(entry: Entry): void {
    const now = this.#now();
    const reason = this.#due(entry, now);
    if (reason === undefined) {
      entry.state = 'valid';
      const at = this.#renewAt(entry.cert!);
      this.#schedule(entry, at);
      this.#log.info({ site: entry.site, renewAt: iso(at), notAfter: entry.cert!.notAfter.toISOString() }, 'acme renewal scheduled');
      return;
    }
    this.#log.info({ site: entry.site, names: entry.names, reason }, 'acme certificate needed');
    this.#enqueue(entry);
  }

  /** Wakes the entry at `at` (in `now` time). Long delays are split: setTimeout caps at 24.8 days. */
  #schedule(entry: Entry, at: number): void {
    clearTimeout(entry.timer);
    entry.nextAt = at;
    const timer = setTimeout(() => {
      entry.timer = undefined;
      if (!this.#current(entry)) return;
      if (this.#now() < at) this.#schedule(entry, at);
      else if (entry.state === 'failed') this.#enqueue(entry);
      else this.#plan(entry);
    }, timerDelay(at, this.#now()));
    // A gateway is kept alive by its listeners; a pending renewal alone must not keep a process up.
    timer.unref();
    entry.timer = timer;
  }

  #enqueue(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.state !== 'failed') entry.state = 'waiting';
    if (!this.#queue.includes(entry) && entry.abort === undefined) this.#queue.push(entry);
    this.#pump();
  }

  #pump(): void {
    if (this.#running !== undefined || this.#closed) return;
    const entry = this.#queue.shift();
    if (entry === undefined) return;
    this.#running = this.#issue(entry).finally(() => {
      this.#running = undefined;
      this.#pump();
    });
  }

  /** One order for the entry; never rejects. */
  async #issue(entry: Entry): Promise<void> {
    const abort = new AbortController();
    entry.abort = abort;
    entry.state = 'issuing';
    entry.nextAt = undefined;
    entry.lastAttempt = this.#now();
    const log = this.#log.child({ site: entry.site });
    log.info({ names: entry.names, directory: this.#directory, renewal: entry.cert !== undefined }, 'acme issuing certificate');
    try {
      const agent = await this.#transportAgent();
      const transport = { agent, signal: abort.signal, log };
      await probeDirectory(this.#directory, transport);
      const raw = await withTransport(transport, async () => {
        const client = await this.#client(log);
        return orderCertificate({ client, names: entry.names, challenges: this.#config.challenges, responder: this.#responder, signal: abort.signal, log });
      });
      const { issued, leaf } = checkIssued(raw.cert, raw.key, entry.names);
      if (!this.#current(entry)) return;
      await this.#store.writeCert(entry.site, issued);
      if (!this.#current(entry)) return;
      Object.assign(entry, { cert: issued, leaf, certDirectory: this.#directory, failures: 0, issuedAt: this.#now() });
      entry.lastError = undefined;
      entry.lastErrorCode = undefined;
      log.info({ names: entry.names, notAfter: issued.notAfter.toISOString(), issuer: issued.issuer }, 'acme certificate issued');
      this.#afterSuccess(entry, log);
      // The state file is written before the listener hears of the certificate, so whoever reacts to
      // the new certificate (the dashboard, a test, an operator reading the store) finds the store
      // complete; the write is one small atomic file, so serving starts no later in any way that matters.
      await this.#saveState(entry, log);
      if (!this.#current(entry)) return;
      try {
        this.#onCertificate(entry.site, issued);
      } catch (err) {
        log.error({ err }, 'acme: the new certificate was not accepted by the listener');
      }
    } catch (err) {
      if (!this.#current(entry)) return;
      const e = err instanceof AcmeError ? err : new AcmeError('MPG_ACME_ORDER', errorText(err), { cause: err });
      entry.failures += 1;
      entry.lastError = e.message;
      entry.lastErrorCode = e.code;
      entry.state = 'failed';
      const at = this.#now() + retryDelay(entry.failures, this.#config.retryMin, this.#config.retryMax);
      this.#schedule(entry, at);
      log.error({ code: e.code, err: e.message, failures: entry.failures, nextAttempt: iso(at), servingPrevious: entry.cert !== undefined }, 'acme issuance failed');
      await this.#saveState(entry, log);
    } finally {
      entry.abort = undefined;
    }
  }

  /**
   * Schedules the renewal of a just-issued certificate. A certificate already due on arrival (a CA
   * clock far behind, a lifetime shorter than expected) is renewed after a tenth of its lifetime
   * (at least retryMin) rather than at once, so it cannot turn into an order loop.
   */
  #afterSuccess(entry: Entry, log: Logger): void {
    entry.state = 'valid';
    const now = this.#now();
    const cert = entry.cert!;
    let at = this.#renewAt(cert);
    if (at <= now) {
      at = now + Math.max(this.#config.retryMin, (cert.notAfter.getTime() - cert.notBefore.getTime()) / 10);
      log.warn({ notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() }, 'acme: the new certificate is already due for renewal (short lifetime or clock skew)');
    }
    this.#schedule(entry, at);
    log.info({ renewAt: iso(at) }, 'acme renewal scheduled');
  }

  async #saveState(entry: Entry, log: Logger): Promise<void> {
    const state: SiteState = {
      version: 1,
      site: entry.site,
      names: entry.names,
      state: entry.state === 'failed' ? 'failed' : 'valid',
      failures: entry.failures,
      ...(entry.lastError !== undefined ? { lastError: entry.lastError, lastErrorCode: entry.lastErrorCode } : {}),
      ...(entry.lastAttempt !== undefined ? { lastAttempt: iso(entry.lastAttempt) } : {}),
      ...(entry.nextAt !== undefined ? { nextAttempt: iso(entry.nextAt) } : {}),
      ...(entry.certDirectory !== undefined ? { certDirectory: entry.certDirectory } : {}),
      ...(entry.issuedAt !== undefined ? { issuedAt: iso(entry.issuedAt) } : {}),
    };
    try {
      await this.#store.writeState(state);
    } catch (err) {
      log.warn({ err: errorText(err) }, 'acme: could not save the site state file');
    }
  }

  /** The https.Agent for the CA (trusting acme.ca when set); made once. */
  #transportAgent(): Promise<https.Agent> {
    this.#agent ??= (async () => {
      let caPem: string | undefined;
      const caFile = this.#config.ca;
      if (caFile !== undefined) {
        try {
          caPem = await readFile(caFile, 'utf8');
        } catch (err) {
          throw new AcmeError('MPG_ACME_CA_FILE', `acme.ca ${caFile}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`, { cause: err });
        }
        if (parsePemCertificates(caPem).length === 0) throw new AcmeError('MPG_ACME_CA_FILE', `acme.ca ${caFile}: no PEM certificate in the file`);
      }
      this.#agentValue = acmeAgent(caPem);
      return this.#agentValue;
    })();
    // A failure (file missing) is retried on the next attempt: the file may appear.
    this.#agent.catch(() => (this.#agent = undefined));
    return this.#agent;
  }

  /**
   * The ACME client with its account, registered once per manager. newAccount with a known key returns
   * the existing account (RFC 8555 §7.3.1), so registering each run also recovers from a CA that lost it.
   */
  #client(log: Logger): Promise<Client> {
    this.#account ??= (async () => {
      const { key, created } = await this.#store.accountKey(this.#directory, () => acmeCrypto.createPrivateEcdsaKey('P-256'));
      const client = new Client({ directoryUrl: this.#directory, accountKey: key });
      try {
        // contact is always sent, [] without acme.email: for a key the CA knows, acme-client follows
        // newAccount's 200 with an account update carrying the same fields, and an update of
        // termsOfServiceAgreed alone is refused (pebble: "Use POST-as-GET ... instead of doing an empty
        // update"). With contact it is a real update that keeps the account's address equal to the config.
        await client.createAccount({ termsOfServiceAgreed: true, contact: this.#config.email ? [`mailto:${this.#config.email}`] : [] });
      } catch (err) {
        throw new AcmeError('MPG_ACME_ACCOUNT', `ACME account at ${this.#directory}: ${errorText(err)}`, { cause: err });
      }
      const url = client.getAccountUrl();
      await this.#store.writeAccount(this.#directory, url).catch((err: unknown) => log.warn({ err: errorText(err) }, 'acme: could not save account.json'));
      log.info({ directory: this.#directory, account: url, newKey: created }, 'acme account ready');
      return client;
    })();
    this.#account.catch(() => (this.#account = undefined));
    return this.#account;
  }
}

/** The CA's answer, checked before it replaces anything: parses, matches our key, covers every name. */
function checkIssued(certPem: string, keyPem: string, names: readonly string[]): ReturnType<typeof parseIssued> {
  let parsed: ReturnType<typeof parseIssued>;
  try {
    parsed = parseIssued(certPem, keyPem);
  } catch (err) {
    throw new AcmeError('MPG_ACME_FINALIZE', `the CA sent an unusable certificate: ${errorText(err)}`, { cause: err });
  }
  const missing = names.filter((n) => coveringName(parsed.leaf, n) === undefined);
  if (missing.length) {
    throw new AcmeError('MPG_ACME_FINALIZE', `the CA's certificate does not cover ${missing.join(', ')} (it names ${subjectAltNames(parsed.leaf).join(', ')})`);
  }
  return parsed;
}

function normalizeNames(names: readonly string[]): string[] {
  return [...new Set(names.map((n) => n.trim().toLowerCase().replace(/\.$/, '')).filter(Boolean))];
}

/** Same set of names: a reordered host list needs no new certificate. */
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && b.every((n) => a.includes(n));
}
