/**
 * A stand-in for WeChat's API (api.weixin.qq.com), the one peer the tests cannot reach for real: a
 * real node:http server on 127.0.0.1 port 0 following the contract in docs reference wechat.md.
 *
 * Endpoints:
 * - POST /cgi-bin/stable_token  JSON {grant_type, appid, secret, force_refresh}
 * - GET  /cgi-bin/token?grant_type=client_credential&appid=…&secret=…  (classic)
 * - POST /cv/ocr/comm?access_token=…  multipart, file field `img`
 *
 * Where wechat.md is silent the fake assumes the following (each is marked ASSUMPTION):
 * - ASSUMPTION: stable_token's `expires_in` is the token's remaining life in seconds (7200 when new).
 * - ASSUMPTION: normal mode issues a new stable token once less than 5 minutes of the current one
 *   remain ("refresh when less than 5 minutes remain"); the previous one stays valid until it expires
 *   (normal mode never invalidates earlier tokens).
 * - ASSUMPTION: force_refresh invalidates the previous stable token at once (WeChat's
 *   getStableAccessToken page: "causes the last access_token to be invalidated"), with no overlap.
 * - ASSUMPTION: a forced refresh within 30 s of the previous one answers 45011 ("api minute-quota
 *   reach limit"), the 21st in 24 h answers 45009 ("reach max api daily quota limit"); refused forced
 *   refreshes change nothing. The day is a rolling 24 h window here, WeChat's may be calendar days.
 * - ASSUMPTION: stable and classic tokens are separate families (the stable page says the two
 *   interfaces are isolated); a classic fetch keeps the previous classic token valid 5 minutes.
 * - ASSUMPTION: the classic endpoint answers a wrong secret with 40001 and stable_token with 40125;
 *   a body that is not JSON / not multipart gets 47001 ("data format error").
 * - ASSUMPTION: cv/ocr/comm checks the token first: missing → 41001, unknown or invalidated → 40001,
 *   expired → 42001; then a missing `img` file → 41005; more than 2 MiB → 101002; `img_url` → 101000
 *   (the fake fetches nothing).
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';

export interface FakeWechatOptions {
  appid?: string;
  secret?: string;
  /** Clock (ms), shared with the code under test so token lifetimes need no sleeps. */
  now?: () => number;
  /** Seconds a new token lives. Default 7200. */
  tokenLife?: number;
  forceRefreshInterval?: number;
  forceRefreshPerDay?: number;
  maxImageBytes?: number;
}

/**
 * One scripted answer, used once, in order. `delay` (ms) comes first; then `destroy` drops the
 * connection, `status` + `body` send that raw, `errcode` answers `{errcode, errmsg}`; with none of
 * those the request is then handled normally (a delay alone).
 */
export interface Scripted {
  delay?: number;
  destroy?: boolean;
  status?: number;
  body?: string;
  errcode?: number;
  errmsg?: string;
}

export interface OcrSuccess {
  errcode: 0;
  errmsg: 'ok';
  items: { text: string; pos: Record<'left_top' | 'right_top' | 'right_bottom' | 'left_bottom', { x: number; y: number }> }[];
  img_size: { w: number; h: number };
  [extra: string]: unknown;
}

export interface OcrSeen {
  token: string | null;
  /** The `img` file, when one arrived. */
  img?: { bytes: Uint8Array; filename: string; type: string };
  /** The answer's errcode. */
  errcode: number;
}

interface TokenState {
  family: 'stable' | 'classic';
  expiresAt: number;
  invalid: boolean;
}

const OCR_ERRMSG: Record<number, string> = {
  [-1]: 'system error',
  101000: 'invalid image url',
  101002: 'invalid image data',
  101003: 'not enough market quota',
};

/** WeChat's own sample answer (wechat.md), plus a line that identifies the image received. */
export function defaultOcrAnswer(img: Uint8Array): OcrSuccess {
  const digest = createHash('sha256').update(img).digest('hex').slice(0, 12);
  return {
    errcode: 0,
    errmsg: 'ok',
    items: [
      { text: '腾讯', pos: { left_top: { x: 575, y: 519 }, right_top: { x: 744, y: 519 }, right_bottom: { x: 744, y: 532 }, left_bottom: { x: 573, y: 532 } } },
      { text: `${img.length} bytes ${digest}`, pos: { left_top: { x: 10, y: 20 }, right_top: { x: 300, y: 20 }, right_bottom: { x: 300, y: 44 }, left_bottom: { x: 10, y: 44 } } },
    ],
    img_size: { w: 1280, h: 720 },
  };
}

export class FakeWechat {
  readonly appid: string;
  secret: string;
  /** Answer 40243 "AppSecret frozen" to every token request. */
  secretFrozen = false;
  /** Builds the success answer for an image. */
  answer: (img: Uint8Array) => unknown = defaultOcrAnswer;
  readonly counts = { stableToken: 0, forcedRefresh: 0, forcedRefused: 0, classicToken: 0, ocr: 0 };
  /** Each stable_token request body's force_refresh, in order. */
  readonly stableTokenRequests: { force: boolean; at: number }[] = [];
  readonly ocrRequests: OcrSeen[] = [];
  readonly url: string;

  readonly #server: http.Server;
  readonly #now: () => number;
  readonly #life: number;
  readonly #forceInterval: number;
  readonly #forcePerDay: number;
  readonly #maxImageBytes: number;
  readonly #tokens = new Map<string, TokenState>();
  /** Tokens APIs refuse although stable_token's normal mode still hands them out. */
  readonly #rejected = new Set<string>();
  readonly #forcedAt: number[] = [];
  readonly #scriptToken: Scripted[] = [];
  readonly #scriptOcr: Scripted[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #stable: string | undefined;
  #classic: string | undefined;
  #serial = 0;
  #closing: Promise<void> | undefined;

  private constructor(server: http.Server, options: FakeWechatOptions) {
    this.#server = server;
    this.appid = options.appid ?? 'wx00fake00000001';
    this.secret = options.secret ?? 'fake-secret-0123456789abcdef';
    this.#now = options.now ?? Date.now;
    this.#life = options.tokenLife ?? 7200;
    this.#forceInterval = options.forceRefreshInterval ?? 30_000;
    this.#forcePerDay = options.forceRefreshPerDay ?? 20;
    this.#maxImageBytes = options.maxImageBytes ?? 2 * 1024 * 1024;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(options: FakeWechatOptions = {}): Promise<FakeWechat> {
    let fake: FakeWechat | undefined;
    const server = http.createServer((req, res) => {
      fake!.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
        else res.destroy();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    fake = new FakeWechat(server, options);
    return fake;
  }

  /** Queue answers for the next stable_token requests. */
  scriptStableToken(...answers: Scripted[]): void {
    this.#scriptToken.push(...answers);
  }

  /** Queue answers for the next cv/ocr/comm requests (applied after the token check). */
  scriptOcr(...answers: Scripted[]): void {
    this.#scriptOcr.push(...answers);
  }

  /** The stable token normal mode hands out now (undefined before the first request). */
  get currentStableToken(): string | undefined {
    return this.#stable;
  }

  /**
   * APIs answer 40001 for `token` while stable_token's normal mode keeps handing it out: the state a
   * forced refresh exists for (e.g. WeChat revoked a leaked token).
   */
  rejectToken(token: string): void {
    this.#rejected.add(token);
  }

  /** Another server force-refreshed: the current stable token is invalid and a new one is current. */
  forceRefreshElsewhere(): string {
    if (this.#stable !== undefined) this.#tokens.get(this.#stable)!.invalid = true;
    return (this.#stable = this.#issue('stable'));
  }

  /** Whether cv/ocr/comm would accept `token` now. */
  tokenValid(token: string): boolean {
    return this.#checkToken(token) === 0;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }

  // ---- handlers --------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = await readBody(req, 16 * 1024 * 1024);
    if (url.pathname === '/cgi-bin/stable_token' && req.method === 'POST') return this.#stableToken(body, res);
    if (url.pathname === '/cgi-bin/token' && req.method === 'GET') return this.#classicToken(url, res);
    if (url.pathname === '/cv/ocr/comm' && req.method === 'POST') return this.#ocr(url, req, body, res);
    // WeChat answers unknown paths with 404 and a JSON errcode; 404 is what matters to a client.
    json(res, { errcode: 40066, errmsg: 'invalid url' }, 404);
  }

  async #stableToken(body: Buffer, res: ServerResponse): Promise<void> {
    this.counts.stableToken++;
    let input: { grant_type?: unknown; appid?: unknown; secret?: unknown; force_refresh?: unknown };
    try {
      input = JSON.parse(body.toString('utf8')) as typeof input;
      if (input === null || typeof input !== 'object') throw new Error('not an object');
    } catch {
      return json(res, { errcode: 47001, errmsg: 'data format error' });
    }
    const force = input.force_refresh === true;
    this.stableTokenRequests.push({ force, at: this.#now() });
    if (force) this.counts.forcedRefresh++;
    if (await this.#scripted(this.#scriptToken, res)) return;
    const credentials = this.#checkCredentials(input.grant_type, input.appid, input.secret, 40125);
    if (credentials) return json(res, credentials);
    const now = this.#now();
    if (force) {
      while (this.#forcedAt.length > 0 && now - this.#forcedAt[0]! >= 86_400_000) this.#forcedAt.shift();
      const last = this.#forcedAt[this.#forcedAt.length - 1];
      if (this.#forcedAt.length >= this.#forcePerDay) {
        this.counts.forcedRefused++;
        return json(res, { errcode: 45009, errmsg: 'reach max api daily quota limit' });
      }
      if (last !== undefined && now - last < this.#forceInterval) {
        this.counts.forcedRefused++;
        return json(res, { errcode: 45011, errmsg: 'api minute-quota reach limit' });
      }
      this.#forcedAt.push(now);
      this.forceRefreshElsewhere();
    } else {
      const cur = this.#stable === undefined ? undefined : this.#tokens.get(this.#stable)!;
      if (cur === undefined || cur.invalid || cur.expiresAt - now < 300_000) this.#stable = this.#issue('stable');
    }
    const state = this.#tokens.get(this.#stable!)!;
    json(res, { access_token: this.#stable, expires_in: Math.floor((state.expiresAt - now) / 1000) });
  }

  #classicToken(url: URL, res: ServerResponse): void {
    this.counts.classicToken++;
    const q = url.searchParams;
    const credentials = this.#checkCredentials(q.get('grant_type') ?? undefined, q.get('appid') ?? undefined, q.get('secret') ?? undefined, 40001);
    if (credentials) return json(res, credentials);
    // A new classic token; the previous one keeps working 5 more minutes (wechat.md).
    if (this.#classic !== undefined) {
      const old = this.#tokens.get(this.#classic)!;
      old.expiresAt = Math.min(old.expiresAt, this.#now() + 300_000);
    }
    this.#classic = this.#issue('classic');
    json(res, { access_token: this.#classic, expires_in: this.#life });
  }

  async #ocr(url: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    this.counts.ocr++;
    const token = url.searchParams.get('access_token');
    const seen: OcrSeen = { token, errcode: 0 };
    this.ocrRequests.push(seen);
    const answer = (a: { errcode: number; errmsg: string } | unknown) => {
      seen.errcode = (a as { errcode?: number }).errcode ?? 0;
      json(res, a);
    };
    const tokenError = token === null || token === '' ? 41001 : this.#checkToken(token);
    if (tokenError !== 0) {
      return answer({ errcode: tokenError, errmsg: { 41001: 'access_token missing', 40001: 'invalid credential, access_token is invalid or not latest', 42001: 'access_token expired' }[tokenError] ?? '' });
    }
    if (await this.#scripted(this.#scriptOcr, res, (errcode) => (seen.errcode = errcode))) return;
    if (url.searchParams.has('img_url')) return answer({ errcode: 101000, errmsg: OCR_ERRMSG[101000] });
    let form: FormData;
    try {
      form = await new Response(body, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
    } catch {
      return answer({ errcode: 47001, errmsg: 'data format error' });
    }
    const img = form.get('img');
    if (img === null || typeof img === 'string') return answer({ errcode: 41005, errmsg: 'media data missing' });
    const bytes = new Uint8Array(await img.arrayBuffer());
    seen.img = { bytes, filename: (img as File).name, type: img.type };
    if (bytes.length > this.#maxImageBytes) return answer({ errcode: 101002, errmsg: OCR_ERRMSG[101002] });
    answer(this.answer(bytes));
  }

  // ---- helpers ---------------------------------------------------------------------------------

  #checkCredentials(grantType: unknown, appid: unknown, secret: unknown, badSecret: number): { errcode: number; errmsg: string } | undefined {
    if (grantType !== 'client_credential') return { errcode: 40002, errmsg: 'invalid grant_type' };
    if (appid === undefined || appid === '') return { errcode: 41002, errmsg: 'appid missing' };
    if (appid !== this.appid) return { errcode: 40013, errmsg: 'invalid appid' };
    if (secret === undefined || secret === '') return { errcode: 41004, errmsg: 'appsecret missing' };
    if (this.secretFrozen) return { errcode: 40243, errmsg: 'AppSecret is frozen' };
    if (secret !== this.secret) return { errcode: badSecret, errmsg: badSecret === 40125 ? 'invalid appsecret' : 'invalid credential, access_token is invalid or not latest' };
    return undefined;
  }

  /** 0, or the errcode cv/ocr/comm gives for this token. */
  #checkToken(token: string): number {
    const state = this.#tokens.get(token);
    if (state === undefined || state.invalid || this.#rejected.has(token)) return 40001;
    if (this.#now() >= state.expiresAt) return 42001;
    return 0;
  }

  #issue(family: TokenState['family']): string {
    const value = `${family === 'stable' ? 'ST' : 'AT'}_${++this.#serial}_${createHash('sha256').update(`${this.appid}:${this.#serial}`).digest('hex').slice(0, 24)}`;
    this.#tokens.set(value, { family, expiresAt: this.#now() + this.#life * 1000, invalid: false });
    return value;
  }

  /** Applies the next scripted answer, if any. True when it answered. */
  async #scripted(queue: Scripted[], res: ServerResponse, onErrcode?: (errcode: number) => void): Promise<boolean> {
    const s = queue.shift();
    if (s === undefined) return false;
    if (s.delay !== undefined) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, s.delay);
        this.#timers.add(t);
      });
      if (res.destroyed) return true;
    }
    if (s.destroy) {
      res.socket?.destroy();
      return true;
    }
    if (s.status !== undefined) {
      res.writeHead(s.status, { 'content-type': 'text/plain' }).end(s.body ?? '');
      return true;
    }
    if (s.errcode !== undefined) {
      onErrcode?.(s.errcode);
      json(res, { errcode: s.errcode, errmsg: s.errmsg ?? OCR_ERRMSG[s.errcode] ?? 'error' });
      return true;
    }
    return false;
  }
}

function json(res: ServerResponse, value: unknown, status = 200): void {
  if (res.destroyed) return;
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; encoding=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new Error(`request body over ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
