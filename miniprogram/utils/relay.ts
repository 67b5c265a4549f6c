/**
 * Promise wrappers around wx.request / wx.uploadFile / wx.downloadFile for pages that call an
 * un-filed backend through mpgate's relay (path form, see ./relay-url.ts).
 *
 * What they add to the plain wx calls, and nothing else:
 * - the URL: `${base}${mount}/${path}?${query}`, each path segment encoded, and a path the
 *   gateway would refuse rejected before any request is made;
 * - a Promise that resolves only for a 2xx answer. wx calls `success` for every HTTP status,
 *   so a 404 or a gateway 502 would otherwise look like success; here it rejects with a
 *   RelayError carrying `statusCode`, the body and, when the gateway itself answered, its error
 *   (`{ error: { code, message, detail } }`);
 * - uploadFile's `res.data`, which WeChat always hands over as a string, parsed as JSON when it is.
 *
 * Every other wx option (header, timeout, enableHttp2, enableQuic, enableCache, dataType,
 * responseType, formData, filePath...) is passed through unchanged; no header is added. The wx
 * task (abort, onProgressUpdate) is handed to `onTask`.
 */
import { createRelayUrl, type RelayQuery, type RelayUrlOptions } from './relay-url.js';

export { buildQuery, encodeRelayPath, type RelayQuery, type RelayQueryValue, type RelayUrlOptions } from './relay-url.js';

type AnyObject = WechatMiniprogram.IAnyObject;
/** What wx.request can hand back as `res.data`. */
export type RelayResponseData = string | AnyObject | ArrayBuffer;

/** The options every wrapper takes in place of `url`. */
export interface RelayTarget<Task> {
  /** Backend path, unencoded: `'api/items'` or `'/api/items'` (→ `/api/items` on the backend). */
  path: string;
  /** Query parameters appended to the URL (for GET, wx.request's `data` works too). */
  query?: RelayQuery;
  /** Receives the wx task right after the call, e.g. to `abort()` it or watch `onProgressUpdate`. */
  onTask?: (task: Task) => void;
}

type OwnKeys = 'url' | 'success' | 'fail' | 'complete';

export type RelayRequestOptions<T extends RelayResponseData = AnyObject> = Omit<WechatMiniprogram.RequestOption<T>, OwnKeys> &
  RelayTarget<WechatMiniprogram.RequestTask>;
export type RelayUploadOptions = Omit<WechatMiniprogram.UploadFileOption, OwnKeys> & RelayTarget<WechatMiniprogram.UploadTask>;
export type RelayDownloadOptions = Omit<WechatMiniprogram.DownloadFileOption, OwnKeys> & RelayTarget<WechatMiniprogram.DownloadTask>;

/**
 * uploadFile's answer: wx's result with `data` parsed. `json` tells whether `data` is the parsed
 * JSON (`true`) or the body text as WeChat gave it (`false`); `text` is always that text.
 */
export type RelayUploadResult<T = unknown> = Omit<WechatMiniprogram.UploadFileSuccessCallbackResult, 'data'> & { text: string } & (
    | { json: true; data: T }
    | { json: false; data: string }
  );

/** The body mpgate sends when the gateway itself refuses or fails a request (docs/errors.md). */
export interface GatewayErrorBody {
  /** HTTP status, same as `statusCode`. */
  status?: number;
  /** Stable code, always `MPG_...`, e.g. `MPG_RELAY_BAD_PATH`, `MPG_UPSTREAM_TIMEOUT`. */
  code: string;
  /** Short fixed text for the code, e.g. 'relay path refused'. */
  message: string;
  /** What exactly was wrong, when the gateway says more (e.g. which path rule was broken). */
  detail?: string;
  /** The mpgate site that answered. */
  site?: string;
}

/**
 * A relay call that did not give a 2xx answer.
 *
 * - HTTP answer other than 2xx: `statusCode` is set, `data` holds the body (parsed like a
 *   success would be; for downloadFile the body text when it could be read), and
 *   `gatewayError` is set when mpgate itself answered (a code starting with `MPG_`), not the
 *   backend. A backend's own error body is in `data`.
 * - No HTTP answer (timeout, DNS, TLS, domain not whitelisted, abort): `statusCode` is
 *   undefined and `errMsg` / `errno` are WeChat's (e.g. 'request:fail timeout').
 *
 * @example
 * try {
 *   await relay.request({ path: 'api/items' });
 * } catch (e) {
 *   if (e instanceof RelayError && e.gatewayError?.code === 'MPG_UPSTREAM_TIMEOUT') wx.showToast({ title: '服务器繁忙' });
 *   else throw e;
 * }
 */
export class RelayError extends Error {
  /** HTTP status, or undefined when no answer arrived. */
  readonly statusCode: number | undefined;
  /** The gateway's own error, when the answer came from mpgate rather than the backend. */
  readonly gatewayError: GatewayErrorBody | undefined;
  /** The response body (see the class comment). */
  readonly data: unknown;
  /** Response headers (wx.request only; uploadFile and downloadFile do not report them). */
  readonly header: AnyObject | undefined;
  /** WeChat's errMsg: the failure for a call without an answer, else the success errMsg. */
  readonly errMsg: string | undefined;
  /** WeChat's errno for a call without an answer (wx.request, base library ≥ 2.24.0). */
  readonly errno: number | undefined;
  /** The relay URL that was called. */
  readonly url: string;

  constructor(
    message: string,
    fields: { url: string; statusCode?: number; data?: unknown; header?: AnyObject; errMsg?: string; errno?: number },
  ) {
    super(message);
    // Keeps `instanceof RelayError` working when the page is compiled to ES5.
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = 'RelayError';
    this.url = fields.url;
    this.statusCode = fields.statusCode;
    this.data = fields.data;
    this.header = fields.header;
    this.errMsg = fields.errMsg;
    this.errno = fields.errno;
    this.gatewayError = fields.statusCode === undefined ? undefined : parseGatewayError(fields.data);
  }
}

export interface Relay {
  /** `base` as normalised by createRelay, e.g. `https://relay.a.com`. */
  readonly base: string;
  /** `mount` as normalised, e.g. `/relay` (`''` for a relay mounted at `/`). */
  readonly mount: string;
  /**
   * wx.request through the relay. Resolves with wx's result (`data`, `statusCode`, `header`,
   * `cookies`) for 2xx; rejects with RelayError otherwise. `T` is the type of `res.data`
   * (wx parses JSON answers by default, `dataType: 'json'`).
   *
   * @example
   * const { data } = await relay.request<{ items: Item[] }>({ path: 'api/items', data: { page: 1 } });
   * await relay.request({ path: 'api/items', method: 'POST', data: { name: 'x' }, timeout: 10000, enableHttp2: true });
   */
  request<T extends RelayResponseData = AnyObject>(options: RelayRequestOptions<T>): Promise<WechatMiniprogram.RequestSuccessCallbackResult<T>>;
  /**
   * wx.uploadFile through the relay (multipart: the file under `name`, text fields from
   * `formData`). Resolves for 2xx with `data` parsed as JSON when it is JSON (`json: true`).
   *
   * @example
   * const res = await relay.uploadFile<{ text: string }>({ path: 'api/ocr', filePath: tempFilePath, name: 'image' });
   * if (res.json) console.log(res.data.text);
   */
  uploadFile<T = unknown>(options: RelayUploadOptions): Promise<RelayUploadResult<T>>;
  /**
   * wx.downloadFile through the relay. Resolves for 2xx with `tempFilePath` (or `filePath` when
   * given); rejects with RelayError otherwise (WeChat saves error bodies to a file too).
   *
   * @example
   * const { tempFilePath } = await relay.downloadFile({ path: 'images/a.png' });
   * wx.previewImage({ urls: [tempFilePath] });
   */
  downloadFile(options: RelayDownloadOptions): Promise<WechatMiniprogram.DownloadFileSuccessCallbackResult>;
  /**
   * The relay URL for a backend path, for `<image src>` or another API. Throws for a path the
   * gateway would refuse.
   *
   * @example
   * relay.url('images/a b.png', { w: 100 }); // 'https://relay.a.com/relay/images/a%20b.png?w=100'
   */
  url(path: string, query?: RelayQuery): string;
}

/**
 * Creates the relay helper for one mpgate relay. Checks `base` and `mount` right away (throws an
 * Error for a non-https or malformed base); each call checks its path and rejects with an Error,
 * without calling wx, when the gateway would refuse it.
 *
 * @example
 * // utils/api.ts
 * import { createRelay } from './relay';
 * export const relay = createRelay({ base: 'https://relay.a.com' }); // mount defaults to '/relay'
 *
 * // pages/index/index.ts — the seed's wx.request({ url: 'https://webserver/path', data: { x, y } }) becomes:
 * const res = await relay.request({ path: 'path', data: { x: '', y: '' } });
 * console.log(res.data);
 */
export function createRelay(options: RelayUrlOptions): Relay {
  const builder = createRelayUrl(options);
  return {
    base: builder.base,
    mount: builder.mount,
    url: (path, query) => builder.url(path, query),

    request<T extends RelayResponseData = AnyObject>(opts: RelayRequestOptions<T>) {
      return new Promise<WechatMiniprogram.RequestSuccessCallbackResult<T>>((resolve, reject) => {
        const { path, query, onTask, ...rest } = opts;
        const url = builder.url(path, query); // throws → the Promise rejects before wx is called
        const what = `${rest.method ?? 'GET'} ${path}`;
        const task = wx.request<T>({
          ...rest,
          url,
          success(res) {
            if (is2xx(res.statusCode)) resolve(res);
            else reject(httpError(what, url, res.statusCode, res.data, res.header, res.errMsg));
          },
          fail(err) {
            reject(transportError(what, url, err.errMsg, err.errno));
          },
        });
        if (onTask) onTask(task);
      });
    },

    uploadFile<T = unknown>(opts: RelayUploadOptions) {
      return new Promise<RelayUploadResult<T>>((resolve, reject) => {
        const { path, query, onTask, ...rest } = opts;
        const url = builder.url(path, query);
        const what = `upload ${path}`;
        const task = wx.uploadFile({
          ...rest,
          url,
          success(res) {
            const text = typeof res.data === 'string' ? res.data : String(res.data);
            const parsed = parseJson(text);
            if (!is2xx(res.statusCode)) {
              reject(httpError(what, url, res.statusCode, parsed.ok ? parsed.value : text, undefined, res.errMsg));
              return;
            }
            const { data: _raw, ...meta } = res;
            resolve(parsed.ok ? { ...meta, text, json: true, data: parsed.value as T } : { ...meta, text, json: false, data: text });
          },
          fail(err) {
            reject(transportError(what, url, err.errMsg, undefined));
          },
        });
        if (onTask) onTask(task);
      });
    },

    downloadFile(opts: RelayDownloadOptions) {
      return new Promise<WechatMiniprogram.DownloadFileSuccessCallbackResult>((resolve, reject) => {
        const { path, query, onTask, ...rest } = opts;
        const url = builder.url(path, query);
        const what = `download ${path}`;
        const task = wx.downloadFile({
          ...rest,
          url,
          success(res) {
            if (is2xx(res.statusCode)) {
              resolve(res);
              return;
            }
            const text = readSmallText(res.filePath || res.tempFilePath);
            const parsed = text === undefined ? undefined : parseJson(text);
            reject(httpError(what, url, res.statusCode, parsed === undefined ? undefined : parsed.ok ? parsed.value : text, undefined, res.errMsg));
          },
          fail(err) {
            reject(transportError(what, url, err.errMsg, undefined));
          },
        });
        if (onTask) onTask(task);
      });
    },
  };
}

/**
 * The gateway's error from a response body: the JSON form `{ error: { code, message, ... } }`
 * (as an object or as text), or the plain-text form mpgate sends to clients that did not ask for
 * JSON (uploads): `413 request body too large: ... (MPG_BODY_TOO_LARGE, site bob)`. Only codes
 * starting with `MPG_` count, so a backend's look-alike error body is not taken for the gateway's.
 *
 * @example
 * parseGatewayError({ error: { status: 400, code: 'MPG_RELAY_BAD_PATH', message: 'relay path refused' } })
 * // → { status: 400, code: 'MPG_RELAY_BAD_PATH', message: 'relay path refused' }
 */
export function parseGatewayError(data: unknown): GatewayErrorBody | undefined {
  let value = data;
  if (typeof value === 'string') {
    const parsed = parseJson(value);
    if (!parsed.ok) return parseTextError(value);
    value = parsed.value;
  }
  if (!isObject(value) || !isObject(value.error)) return undefined;
  const e = value.error;
  if (typeof e.code !== 'string' || !e.code.startsWith('MPG_') || typeof e.message !== 'string') return undefined;
  const out: GatewayErrorBody = { code: e.code, message: e.message };
  if (typeof e.status === 'number') out.status = e.status;
  if (typeof e.detail === 'string') out.detail = e.detail;
  if (typeof e.site === 'string') out.site = e.site;
  return out;
}

const TEXT_ERROR = /^(\d{3}) (.+?)(?:: (.*))? \((MPG_[A-Z0-9_]+)(?:, site (.+))?\)\s*$/;

function parseTextError(text: string): GatewayErrorBody | undefined {
  const m = TEXT_ERROR.exec(text);
  if (m === null) return undefined;
  const out: GatewayErrorBody = { status: Number(m[1]), code: m[4]!, message: m[2]! };
  if (m[3] !== undefined) out.detail = m[3];
  if (m[5] !== undefined) out.site = m[5];
  return out;
}

function httpError(what: string, url: string, statusCode: number, data: unknown, header: AnyObject | undefined, errMsg: string | undefined): RelayError {
  const gw = parseGatewayError(data);
  const why = gw ? `: ${gw.code} ${gw.message}${gw.detail ? ` (${gw.detail})` : ''}` : '';
  const fields: ConstructorParameters<typeof RelayError>[1] = { url, statusCode, data };
  if (header !== undefined) fields.header = header;
  if (errMsg !== undefined) fields.errMsg = errMsg;
  return new RelayError(`relay: ${what} answered HTTP ${statusCode}${why}`, fields);
}

function transportError(what: string, url: string, errMsg: string | undefined, errno: number | undefined): RelayError {
  const fields: ConstructorParameters<typeof RelayError>[1] = { url };
  if (errMsg !== undefined) fields.errMsg = errMsg;
  if (typeof errno === 'number') fields.errno = errno;
  return new RelayError(`relay: ${what} failed: ${errMsg ?? 'no answer'}`, fields);
}

function is2xx(status: number): boolean {
  return status >= 200 && status <= 299;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text.trim() === '') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Best effort: the text of a downloaded error body, if it is small (≤ 64 KiB) and readable. */
function readSmallText(filePath: string | undefined): string | undefined {
  if (!filePath || typeof wx.getFileSystemManager !== 'function') return undefined;
  try {
    const fs = wx.getFileSystemManager();
    const stats = fs.statSync(filePath);
    if (Array.isArray(stats) || stats.size > 64 * 1024) return undefined;
    const text = fs.readFileSync(filePath, 'utf8');
    return typeof text === 'string' ? text : undefined;
  } catch {
    return undefined;
  }
}
