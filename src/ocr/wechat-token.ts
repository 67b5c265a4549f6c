/**
 * WeChat's server-side access_token, kept the way WeChat asks: one central refresher per appid.
 * Tokens come from `POST /cgi-bin/stable_token` (docs reference wechat.md § access_token), whose
 * normal mode hands back the current token and never invalidates earlier ones, so a restart, a
 * second process or a retry cannot knock out the token other servers hold, as the classic
 * `GET /cgi-bin/token` does.
 *
 * Policy in one place:
 * - `get()` serves the cached token until `refreshMargin` (5 min) before it expires, then refreshes;
 *   concurrent callers share one in-flight refresh (never two requests at once).
 * - If that refresh fails while the cached token has not yet expired, the cached token is served
 *   (it is still valid) and the next `get()` tries again; the failure goes to the diagnostics channel.
 * - `invalidate(token)` after an API said 40001/42001/40014: the next `get()` first asks in normal mode.
 *   When the token changed under us (another party force-refreshed: the usual reason for a 40001 with
 *   stable tokens), that returns the new token and no forced refresh is spent. Only when normal mode
 *   hands back the very token the API rejected is `force_refresh: true` used, at most one per
 *   `forceRefreshInterval` (30 s) and `forceRefreshPerDay` (20) per rolling 24 h, WeChat's limits.
 *   Forcing on every 40001 instead would let two servers invalidate each other's fresh token in
 *   turn until the day's 20 were gone.
 * - Only retryable failures (errcode -1, network, HTTP 5xx) are retried, with the short fixed delays
 *   of `retryDelays`; a forced refresh is never retried (it may have taken effect).
 */
import { channel } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';

export const WECHAT_API_BASE = 'https://api.weixin.qq.com';

/** `path` under `base`, keeping a path prefix in `base` (a proxy at https://gw.example/wx/ works). */
export function apiUrl(base: string, path: string): string {
  return new URL(path, base.endsWith('/') ? base : `${base}/`).href;
}

/**
 * What an API client needs from a token holder. AccessTokenManager is the central refresher; a
 * process that only reads a token another server refreshes can implement this too.
 */
export interface AccessTokenSource {
  /** A token believed valid. */
  get(): Promise<string>;
  /**
   * Reports that an API rejected `token` (40001, 42001, 40014). Returns true when it was the current
   * token (the next `get()` refreshes), false when it was already replaced.
   */
  invalidate(token: string): boolean;
}

export interface AccessTokenOptions {
  appid: string;
  secret: string;
  /** WeChat's API base (a path prefix is kept); tests point it at a local server. Default https://api.weixin.qq.com. */
  baseUrl?: string;
  /** Refresh once less than this (ms) of the token's life remains. Default 300_000 (WeChat's 5 minutes). */
  refreshMargin?: number;
  /** Least time (ms) between two forced refreshes. Default 30_000 (WeChat's limit). */
  forceRefreshInterval?: number;
  /** Forced refreshes allowed in any 24 h. Default 20 (WeChat's daily limit). */
  forceRefreshPerDay?: number;
  /** One token request, connect to last byte (ms). Default 10_000. */
  timeout?: number;
  /** Waits (ms) before each retry of a retryable failure; its length bounds the retries. Default [200, 800]. */
  retryDelays?: readonly number[];
  /** Clock (ms since the epoch) for token lifetimes and force spacing. Default Date.now. */
  now?: () => number;
  /** HTTP dispatcher to use (not closed by close()). Default: an own undici Agent. */
  dispatcher?: Dispatcher;
}

export const TOKEN_DEFAULTS = Object.freeze({
  baseUrl: WECHAT_API_BASE,
  refreshMargin: 300_000,
  forceRefreshInterval: 30_000,
  forceRefreshPerDay: 20,
  timeout: 10_000,
  retryDelays: Object.freeze([200, 800]) as readonly number[],
});

export type WechatTokenErrorCode =
  | 'WX_TOKEN_CREDENTIALS'
  | 'WX_TOKEN_BUSY'
  | 'WX_TOKEN_LIMITED'
  | 'WX_TOKEN_REJECTED'
  | 'WX_TOKEN_FAILED'
  | 'WX_TOKEN_NETWORK'
  | 'WX_TOKEN_CLOSED';

/** Which failures the same request may cure by being sent again later. */
const RETRYABLE: Record<WechatTokenErrorCode, boolean> = {
  WX_TOKEN_CREDENTIALS: false, // appid/secret/IP whitelist: a person has to act
  WX_TOKEN_BUSY: true, // -1 "system busy, try again later"
  WX_TOKEN_LIMITED: false, // 45009/45011 and the local force limits: not within seconds
  WX_TOKEN_REJECTED: false, // an API rejects the token and no forced refresh is allowed yet
  WX_TOKEN_FAILED: false, // an errcode this module does not know
  WX_TOKEN_NETWORK: true, // socket error, timeout, HTTP 5xx, unreadable answer
  WX_TOKEN_CLOSED: false,
};

/**
 * A token request failed. `errcode`/`errmsg` are WeChat's, unchanged, when WeChat answered (a local
 * refusal to force-refresh carries the 40001 that caused it); undefined for network failures.
 */
export class WechatTokenError extends Error {
  readonly code: WechatTokenErrorCode;
  readonly errcode: number | undefined;
  readonly errmsg: string | undefined;
  readonly retryable: boolean;

  constructor(code: WechatTokenErrorCode, message: string, wechat?: { errcode: number; errmsg?: string }, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WechatTokenError';
    this.code = code;
    this.errcode = wechat?.errcode;
    this.errmsg = wechat?.errmsg;
    this.retryable = options?.retryable ?? RETRYABLE[code];
  }
}

export function isWechatTokenError(err: unknown): err is WechatTokenError {
  return err instanceof WechatTokenError;
}

/** stable_token errcodes about the account's credentials (WeChat's getStableAccessToken error list). */
const CREDENTIAL_ERRCODES = new Set([
  40002, // invalid grant_type
  40013, // invalid appid
  40125, // invalid appsecret
  40164, // caller IP not in the API whitelist
  40243, // AppSecret frozen
  41002, // appid missing
  41004, // appsecret missing
]);
/** 45009 daily limit, 45011 call frequency limit. */
const LIMIT_ERRCODES = new Set([45009, 45011]);

/** Published on `mpgate:wechat:token` (free when nobody subscribes). Never carries a token or the secret. */
export interface TokenRefreshEvent {
  force: boolean;
  ok: boolean;
  /** Set when the token changed. */
  changed?: boolean;
  code?: WechatTokenErrorCode;
  errcode?: number;
  /** A failed refresh was covered by serving the cached, still unexpired token. */
  servedStale?: boolean;
}
const refreshChannel = channel('mpgate:wechat:token');

interface CachedToken {
  value: string;
  /** When WeChat stops accepting it (ms, injected clock). */
  expiresAt: number;
  /** When get() starts refreshing it. */
  refreshAt: number;
}

const DAY = 86_400_000;

/**
 * The central access_token refresher for one appid.
 * @example
 * const tokens = new AccessTokenManager({ appid: 'wx123', secret: process.env.WX_SECRET! });
 * const token = await tokens.get();
 * // after an API answered 40001 for `token`:
 * tokens.invalidate(token);
 */
export class AccessTokenManager implements AccessTokenSource {
  readonly #appid: string;
  readonly #secret: string;
  readonly #url: string;
  readonly #margin: number;
  readonly #forceInterval: number;
  readonly #forcePerDay: number;
  readonly #timeout: number;
  readonly #retryDelays: readonly number[];
  readonly #now: () => number;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  #current: CachedToken | undefined;
  /** The token an API rejected, until a refresh replaces it. */
  #rejected: string | undefined;
  #inflight: Promise<string> | undefined;
  /** Start times of forced refreshes within the last 24 h. */
  #forced: number[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: AccessTokenOptions) {
    if (!options.appid || !options.secret) throw new TypeError('AccessTokenManager needs appid and secret');
    const retryDelays = options.retryDelays ?? TOKEN_DEFAULTS.retryDelays;
    for (const [name, v] of [['refreshMargin', options.refreshMargin], ['forceRefreshInterval', options.forceRefreshInterval], ['forceRefreshPerDay', options.forceRefreshPerDay], ['timeout', options.timeout], ...retryDelays.map((d) => ['retryDelays', d] as const)] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new TypeError(`AccessTokenManager: ${name} must be a number >= 0, got ${String(v)}`);
    }
    this.#appid = options.appid;
    this.#secret = options.secret;
    this.#url = apiUrl(options.baseUrl ?? TOKEN_DEFAULTS.baseUrl, 'cgi-bin/stable_token');
    this.#margin = options.refreshMargin ?? TOKEN_DEFAULTS.refreshMargin;
    this.#forceInterval = options.forceRefreshInterval ?? TOKEN_DEFAULTS.forceRefreshInterval;
    this.#forcePerDay = options.forceRefreshPerDay ?? TOKEN_DEFAULTS.forceRefreshPerDay;
    this.#timeout = options.timeout ?? TOKEN_DEFAULTS.timeout;
    this.#retryDelays = [...retryDelays];
    this.#now = options.now ?? Date.now;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 2 });
  }

  /**
   * The current token, refreshed first when less than `refreshMargin` of its life remains or an API
   * rejected it. Concurrent calls share one refresh.
   * @throws WechatTokenError
   */
  get(): Promise<string> {
    if (this.#closed) return Promise.reject(new WechatTokenError('WX_TOKEN_CLOSED', 'access token manager is closed'));
    const cached = this.#current;
    if (cached !== undefined && cached.value !== this.#rejected && this.#now() < cached.refreshAt) return Promise.resolve(cached.value);
    this.#inflight ??= this.#refresh().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /** @see AccessTokenSource.invalidate */
  invalidate(token: string): boolean {
    if (this.#current === undefined || token !== this.#current.value) return false;
    this.#rejected = token;
    return true;
  }

  /** Whether a forced refresh may be sent now (WeChat's spacing and daily count). */
  get canForceRefresh(): boolean {
    const now = this.#now();
    this.#forced = this.#forced.filter((t) => now - t < DAY);
    const last = this.#forced[this.#forced.length - 1];
    return this.#forced.length < this.#forcePerDay && (last === undefined || now - last >= this.#forceInterval);
  }

  /**
   * Stops taking requests. A refresh in flight completes (its callers get their token); later get()
   * calls fail with WX_TOKEN_CLOSED. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#inflight?.catch(() => {});
      if (this.#ownsDispatcher) await this.#dispatcher.close();
    })();
    return this.#closing;
  }

  async #refresh(): Promise<string> {
    const cached = this.#current;
    const rejected = this.#rejected;
    let force = false;
    try {
      let fresh = await this.#fetchWithRetry();
      if (rejected !== undefined && fresh.value === rejected) {
        // Normal mode handed back the token an API just rejected: only a forced refresh replaces it.
        if (!this.canForceRefresh) {
          throw new WechatTokenError(
            'WX_TOKEN_REJECTED',
            `the API rejected the current access token and a forced refresh is not allowed before ${new Date(this.#nextForceAt()).toISOString()} (WeChat: ${this.#forceInterval / 1000} s apart, ${this.#forcePerDay} a day)`,
            { errcode: 40001, errmsg: 'invalid credential' },
          );
        }
        force = true;
        // Counted when sent: WeChat may count an attempt whose answer we never see.
        this.#forced.push(this.#now());
        fresh = await this.#fetchOnce(true);
      }
      const changed = fresh.value !== cached?.value;
      this.#current = fresh;
      if (this.#rejected !== fresh.value) this.#rejected = undefined;
      if (refreshChannel.hasSubscribers) refreshChannel.publish({ force, ok: true, changed } satisfies TokenRefreshEvent);
      return fresh.value;
    } catch (err) {
      const e = err instanceof WechatTokenError ? err : new WechatTokenError('WX_TOKEN_NETWORK', (err as Error)?.message ?? String(err), undefined, { cause: err });
      // A failed early refresh is no reason to fail callers while the cached token still works.
      const servedStale = cached !== undefined && cached.value !== this.#rejected && this.#now() < cached.expiresAt && !this.#closed;
      if (refreshChannel.hasSubscribers) {
        refreshChannel.publish({ force, ok: false, code: e.code, ...(e.errcode !== undefined ? { errcode: e.errcode } : {}), servedStale } satisfies TokenRefreshEvent);
      }
      if (servedStale) return cached.value;
      throw e;
    }
  }

  #nextForceAt(): number {
    const now = this.#now();
    const last = this.#forced[this.#forced.length - 1] ?? now;
    const byInterval = last + this.#forceInterval;
    const byDay = this.#forced.length >= this.#forcePerDay ? this.#forced[this.#forced.length - this.#forcePerDay]! + DAY : now;
    return Math.max(byInterval, byDay, now);
  }

  async #fetchWithRetry(): Promise<CachedToken> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#fetchOnce(false);
      } catch (err) {
        const delay = this.#retryDelays[attempt];
        if (!(err instanceof WechatTokenError) || !err.retryable || delay === undefined || this.#closed) throw err;
        await sleep(delay);
      }
    }
  }

  /** One stable_token request. */
  async #fetchOnce(force: boolean): Promise<CachedToken> {
    const started = this.#now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#timeout);
    let text: string;
    let status: number;
    try {
      const res = await request(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credential', appid: this.#appid, secret: this.#secret, force_refresh: force }),
        dispatcher: this.#dispatcher,
        signal: abort.signal,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const what = abort.signal.aborted ? `timed out after ${this.#timeout} ms` : ((err as { code?: string }).code ?? (err as Error).message);
      throw new WechatTokenError('WX_TOKEN_NETWORK', `stable_token request failed: ${what}`, undefined, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    // WeChat answers 200 even for errors; anything else comes from a proxy in front of it, and only
    // a 5xx from it may cure itself.
    if (status !== 200) throw new WechatTokenError('WX_TOKEN_NETWORK', `HTTP ${status} from stable_token`, undefined, { retryable: status >= 500 });
    let answer: { access_token?: unknown; expires_in?: unknown; errcode?: unknown; errmsg?: unknown };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch (err) {
      throw new WechatTokenError('WX_TOKEN_NETWORK', 'stable_token answer is not JSON', undefined, { cause: err });
    }
    if (typeof answer.errcode === 'number' && answer.errcode !== 0) throw tokenErrorFor(answer.errcode, typeof answer.errmsg === 'string' ? answer.errmsg : '');
    const { access_token: value, expires_in: expiresIn } = answer;
    if (typeof value !== 'string' || value === '' || typeof expiresIn !== 'number' || !(expiresIn > 0)) {
      throw new WechatTokenError('WX_TOKEN_NETWORK', 'stable_token answer has no access_token/expires_in');
    }
    // Lifetime counted from when the request left: never later than WeChat's own count.
    const life = expiresIn * 1000;
    // Refresh `margin` before expiry; a token handed out with less than twice the margin left is
    // used for half its remaining life first, so a short expires_in cannot make every get() refresh.
    return { value, expiresAt: started + life, refreshAt: started + Math.max(life - this.#margin, life / 2) };
  }
}

/** Maps a stable_token `{errcode, errmsg}` to a typed error keeping both. */
export function tokenErrorFor(errcode: number, errmsg: string): WechatTokenError {
  const code: WechatTokenErrorCode =
    errcode === -1 ? 'WX_TOKEN_BUSY' : CREDENTIAL_ERRCODES.has(errcode) ? 'WX_TOKEN_CREDENTIALS' : LIMIT_ERRCODES.has(errcode) ? 'WX_TOKEN_LIMITED' : 'WX_TOKEN_FAILED';
  return new WechatTokenError(code, `stable_token answered errcode ${errcode}: ${errmsg}`, { errcode, errmsg });
}
