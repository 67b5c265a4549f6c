/**
 * OCR by WeChat's own printed-text service, `POST /cv/ocr/comm?access_token=TOKEN` with the image as
 * multipart field `img` (docs reference wechat.md § Printed-text OCR). It answers in the format the
 * local engine (pipeline.ts) imitates, so the two are interchangeable behind `recognize()`.
 *
 * - Images over `maxImageBytes` (WeChat's 2 MB) are refused here with 101002 before any call: WeChat
 *   would refuse them with the same code after the upload. They are not downscaled: re-encoding is
 *   the local engine's business (sharp), and a silently altered image would give positions in a
 *   frame the caller never sent.
 * - A token WeChat rejects (40001, 40014, 42001) is reported to the token source and the call is
 *   sent once more with a fresh token.
 * - errcode -1 (busy) and failures to connect are retried after the waits in `retryDelays`; a
 *   timeout or a connection lost mid-exchange is not, as WeChat may have read (and counted) the image.
 * - WeChat's errcodes reach the client unchanged where OCR_ERRORS has them (-1, 41005, 101000,
 *   101002, 101003); anything else becomes OCR_UPSTREAM_FAILED / OCR_UPSTREAM_AUTH with WeChat's
 *   errcode and errmsg kept in the error's `cause` (a WechatApiError) for the log.
 */
import { Blob } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, FormData, request, type Dispatcher } from 'undici';
import { OcrError, type OcrErrorCode } from './errors.js';
import type { OcrItem, OcrResult, RecognizeOptions } from './pipeline.js';
import { apiUrl, WECHAT_API_BASE, WechatTokenError, type AccessTokenSource } from './wechat-token.js';

export interface WechatOcrOptions {
  /** Where tokens come from: an AccessTokenManager (not closed by close()) or any AccessTokenSource. */
  tokens: AccessTokenSource;
  /** WeChat's API base (a path prefix is kept); tests point it at a local server. Default https://api.weixin.qq.com. */
  baseUrl?: string;
  /** Larger images are refused before any call (101002). Default 2 MiB, WeChat's limit. */
  maxImageBytes?: number;
  /** One OCR exchange, connect to last byte (ms); then OCR_TIMEOUT. Default 15_000. */
  timeout?: number;
  /** Waits (ms) before each retry after errcode -1 or a failed connect; its length bounds the retries. Default [500]. */
  retryDelays?: readonly number[];
  /** HTTP dispatcher to use (not closed by close()). Default: an own undici Agent. */
  dispatcher?: Dispatcher;
}

export const WECHAT_OCR_DEFAULTS = Object.freeze({
  baseUrl: WECHAT_API_BASE,
  maxImageBytes: 2 * 1024 * 1024,
  timeout: 15_000,
  retryDelays: Object.freeze([500]) as readonly number[],
});

/** WeChat's `{errcode, errmsg}` for a failed call, kept as the `cause` of the OcrError it became. */
export class WechatApiError extends Error {
  constructor(readonly errcode: number, readonly errmsg: string) {
    super(`WeChat answered errcode ${errcode}: ${errmsg}`);
    this.name = 'WechatApiError';
  }
}

/** "invalid credential", "invalid access_token", "access_token expired": a fresh token may cure these. */
export const TOKEN_ERRCODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);

/** WeChat errcodes the client sees unchanged. */
const ERRCODE_TO_OCR: ReadonlyMap<number, OcrErrorCode> = new Map<number, OcrErrorCode>([
  [-1, 'OCR_BUSY'],
  [41005, 'OCR_NO_IMAGE'],
  [101000, 'OCR_BAD_IMAGE_URL'],
  // WeChat uses 101002 for both "cannot decode" and "too large" and says no more.
  [101002, 'OCR_DECODE_FAILED'],
  [101003, 'OCR_QUOTA'],
]);

/** Failures before the request reached WeChat: sending it again cannot count twice. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

type Attempt = { ok: true; answer: Record<string, unknown> } | { ok: false; errcode: number; errmsg: string };

/**
 * OCR through WeChat's cv/ocr/comm.
 * @example
 * const tokens = new AccessTokenManager({ appid, secret });
 * const ocr = new WechatOcrEngine({ tokens });
 * const answer = await ocr.recognize(await readFile('photo.jpg'));
 * await ocr.close(); await tokens.close();
 */
export class WechatOcrEngine {
  readonly #tokens: AccessTokenSource;
  readonly #url: string;
  readonly #maxBytes: number;
  readonly #timeout: number;
  readonly #retryDelays: readonly number[];
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: WechatOcrOptions) {
    if (options.tokens === undefined) throw new TypeError('WechatOcrEngine needs a token source');
    const retryDelays = options.retryDelays ?? WECHAT_OCR_DEFAULTS.retryDelays;
    for (const [name, v] of [['maxImageBytes', options.maxImageBytes], ['timeout', options.timeout], ...retryDelays.map((d) => ['retryDelays', d] as const)] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new TypeError(`WechatOcrEngine: ${name} must be a number >= 0, got ${String(v)}`);
    }
    this.#tokens = options.tokens;
    this.#url = apiUrl(options.baseUrl ?? WECHAT_OCR_DEFAULTS.baseUrl, 'cv/ocr/comm');
    this.#maxBytes = options.maxImageBytes ?? WECHAT_OCR_DEFAULTS.maxImageBytes;
    this.#timeout = options.timeout ?? WECHAT_OCR_DEFAULTS.timeout;
    this.#retryDelays = [...retryDelays];
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 8 });
  }

  /**
   * Reads the text of one image through WeChat. The answer is WeChat's, with only missing fields
   * filled in (`items` → [], `img_size` → {w:0,h:0}). WeChat gives no confidences, so
   * `options.score` adds nothing.
   * @throws OcrError OCR_NO_IMAGE, OCR_IMAGE_TOO_LARGE, OCR_DECODE_FAILED, OCR_BAD_IMAGE_URL, OCR_QUOTA,
   *   OCR_BUSY, OCR_TIMEOUT, OCR_UPSTREAM_FAILED, OCR_UPSTREAM_AUTH, OCR_CLOSED
   */
  recognize(image: Uint8Array, _options: RecognizeOptions = {}): Promise<OcrResult> {
    if (this.#closed) return Promise.reject(new OcrError('OCR_CLOSED', 'WeChat OCR engine is closed'));
    if (!(image instanceof Uint8Array) || image.length === 0) return Promise.reject(new OcrError('OCR_NO_IMAGE', 'no image data'));
    if (image.length > this.#maxBytes) {
      return Promise.reject(new OcrError('OCR_IMAGE_TOO_LARGE', `image is ${image.length} bytes; WeChat OCR takes at most ${this.#maxBytes}`));
    }
    const run = this.#run(image);
    this.#inflight.add(run);
    const done = () => this.#inflight.delete(run);
    run.then(done, done);
    return run;
  }

  /** Refuses new images and waits for those in flight (each bounded by `timeout`). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await Promise.allSettled([...this.#inflight]);
      if (this.#ownsDispatcher) await this.#dispatcher.close();
    })();
    return this.#closing;
  }

  async #run(image: Uint8Array): Promise<OcrResult> {
    const part = imagePart(image);
    let tokenRetried = false;
    let retries = 0;
    for (;;) {
      const token = await this.#token();
      let attempt: Attempt;
      try {
        attempt = await this.#post(token, part);
      } catch (err) {
        const delay = this.#retryDelays[retries];
        if (err instanceof RetryableConnectError && delay !== undefined) {
          retries++;
          await sleep(delay);
          continue;
        }
        throw err instanceof RetryableConnectError ? err.ocrError : err;
      }
      if (attempt.ok) return toResult(attempt.answer);
      const { errcode, errmsg } = attempt;
      if (TOKEN_ERRCODES.has(errcode) && !tokenRetried) {
        tokenRetried = true;
        this.#tokens.invalidate(token);
        continue;
      }
      if (errcode === -1 && this.#retryDelays[retries] !== undefined) {
        await sleep(this.#retryDelays[retries++]!);
        continue;
      }
      const cause = new WechatApiError(errcode, errmsg);
      const code = ERRCODE_TO_OCR.get(errcode) ?? (TOKEN_ERRCODES.has(errcode) ? 'OCR_UPSTREAM_AUTH' : 'OCR_UPSTREAM_FAILED');
      throw new OcrError(code, `cv/ocr/comm: ${cause.message}`, { cause });
    }
  }

  async #token(): Promise<string> {
    try {
      return await this.#tokens.get();
    } catch (err) {
      const code: OcrErrorCode =
        !(err instanceof WechatTokenError) ? 'OCR_UPSTREAM_FAILED'
        : err.code === 'WX_TOKEN_CLOSED' ? 'OCR_CLOSED'
        : err.code === 'WX_TOKEN_BUSY' ? 'OCR_BUSY'
        : err.code === 'WX_TOKEN_CREDENTIALS' || err.code === 'WX_TOKEN_REJECTED' ? 'OCR_UPSTREAM_AUTH'
        : 'OCR_UPSTREAM_FAILED';
      throw new OcrError(code, `no access token: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /** One cv/ocr/comm exchange. */
  async #post(token: string, part: ImagePart): Promise<Attempt> {
    const form = new FormData();
    form.append('img', part.blob, part.filename);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#timeout);
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.#url}?access_token=${encodeURIComponent(token)}`, { method: 'POST', body: form, dispatcher: this.#dispatcher, signal: abort.signal });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      if (abort.signal.aborted) throw new OcrError('OCR_TIMEOUT', `cv/ocr/comm gave no answer within ${this.#timeout} ms`, { cause: err });
      const code = errorCode(err);
      const ocrError = new OcrError('OCR_UPSTREAM_FAILED', `cv/ocr/comm request failed: ${code ?? (err as Error)?.message}`, { cause: err });
      if (code !== undefined && CONNECT_ERRORS.has(code)) throw new RetryableConnectError(ocrError);
      throw ocrError;
    } finally {
      clearTimeout(timer);
    }
    // WeChat answers 200 even for errors; another status comes from something in front of it.
    if (status !== 200) throw new OcrError('OCR_UPSTREAM_FAILED', `cv/ocr/comm answered HTTP ${status}`);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch (err) {
      throw new OcrError('OCR_UPSTREAM_FAILED', 'cv/ocr/comm answer is not JSON', { cause: err });
    }
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) throw new OcrError('OCR_UPSTREAM_FAILED', 'cv/ocr/comm answer is not an object');
    const { errcode, errmsg } = answer as { errcode?: unknown; errmsg?: unknown };
    if (errcode === undefined || errcode === 0) return { ok: true, answer: answer as Record<string, unknown> };
    if (typeof errcode !== 'number') throw new OcrError('OCR_UPSTREAM_FAILED', 'cv/ocr/comm answer has a non-numeric errcode');
    return { ok: false, errcode, errmsg: typeof errmsg === 'string' ? errmsg : '' };
  }
}

/** Carries a connect failure out of #post so #run can retry it. */
class RetryableConnectError extends Error {
  constructor(readonly ocrError: OcrError) {
    super(ocrError.message);
  }
}

interface ImagePart {
  blob: Blob;
  filename: string;
}

/** The multipart file part, typed from the image's magic bytes (WeChat takes common raster formats). */
function imagePart(image: Uint8Array): ImagePart {
  const [type, ext] = sniff(image);
  // A copy: the caller may reuse its buffer while the upload streams.
  return { blob: new Blob([new Uint8Array(image)], { type }), filename: `image.${ext}` };
}

function sniff(b: Uint8Array): [string, string] {
  const at = (i: number) => b[i] ?? -1;
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return ['image/jpeg', 'jpg'];
  if (at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47) return ['image/png', 'png'];
  if (at(0) === 0x47 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x38) return ['image/gif', 'gif'];
  if (at(0) === 0x52 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x46 && at(8) === 0x57 && at(9) === 0x45 && at(10) === 0x42 && at(11) === 0x50) return ['image/webp', 'webp'];
  if (at(0) === 0x42 && at(1) === 0x4d) return ['image/bmp', 'bmp'];
  return ['application/octet-stream', 'bin'];
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isPoint = (v: unknown): boolean => isObject(v) && typeof v.x === 'number' && typeof v.y === 'number';
const CORNERS = ['left_top', 'right_top', 'right_bottom', 'left_bottom'] as const;

/**
 * WeChat's success answer as OcrResult: items and img_size exactly as given (only checked, never
 * rebuilt), missing ones filled in; anything not shaped like the documented answer is an upstream failure.
 */
function toResult(answer: Record<string, unknown>): OcrResult {
  const items = answer.items ?? [];
  if (!Array.isArray(items) || !items.every((it) => isObject(it) && typeof it.text === 'string' && isObject(it.pos) && CORNERS.every((c) => isPoint((it.pos as Record<string, unknown>)[c])))) {
    throw new OcrError('OCR_UPSTREAM_FAILED', 'cv/ocr/comm answer has malformed items');
  }
  const imgSize = answer.img_size ?? { w: 0, h: 0 };
  if (!isObject(imgSize) || typeof imgSize.w !== 'number' || typeof imgSize.h !== 'number') throw new OcrError('OCR_UPSTREAM_FAILED', 'cv/ocr/comm answer has a malformed img_size');
  return { errcode: 0, errmsg: 'ok', items: items as OcrItem[], img_size: imgSize as { w: number; h: number } };
}
