/**
 * URL building for mpgate's relay, path form: `${base}${mount}/${path}?${query}`, e.g.
 * `https://relay.a.com/relay/api/items?page=2`, which mpgate forwards to `/api/items?page=2` on
 * the un-filed backend.
 *
 * The path form is used rather than the seed's query form (`/relay?method=api/items&page=2`)
 * because it leaves the whole query string to the backend: a backend API that has a `method`
 * parameter of its own keeps working.
 *
 * No wx globals and no DOM or Node APIs (the mini-program runtime has no `URL`), so this file
 * runs unchanged in WeChat and in Node's test runner.
 *
 * Paths are checked here with the same rules the gateway applies (src/relay/relay-target.ts), so
 * a path the gateway would answer with 400 MPG_RELAY_BAD_PATH fails in the page, before any
 * request, with an Error that says what to change.
 */

/** One query value; numbers and booleans are sent as `String(value)`. */
export type RelayQueryValue = string | number | boolean;

/**
 * Query parameters appended to the URL. An array repeats the key (`{ id: [1, 2] }` → `id=1&id=2`);
 * `undefined` and `null` leave the key out. Keys keep their insertion order.
 */
export type RelayQuery = Record<string, RelayQueryValue | readonly RelayQueryValue[] | null | undefined>;

export interface RelayUrlOptions {
  /**
   * The relay's origin on your filed, whitelisted domain: `https://relay.a.com` (an optional base
   * path such as `https://a.com/gw` is kept). No query, fragment or user info. Note that WeChat
   * refuses a port in the URL unless the whitelisted domain has one, `:443` included.
   */
  base: string;
  /** The relay route's path in mpgate's config (`path: /relay`). Default `'/relay'`. */
  mount?: string;
  /**
   * Allow an `http://` base. Only for WeChat DevTools with "不校验合法域名" (skip domain check)
   * turned on, e.g. against `mpgate serve` on http://127.0.0.1:8080; real clients only call
   * `https://`. Default `false`.
   */
  allowHttp?: boolean;
}

/** A relay URL builder with its options checked and normalised. */
export interface RelayUrlBuilder {
  /** `base` without a trailing slash, e.g. `https://relay.a.com`. */
  readonly base: string;
  /** `mount` without a trailing slash, `''` for a relay mounted at `/`. */
  readonly mount: string;
  /**
   * The full relay URL for a backend path; throws an Error for a path the gateway would refuse.
   *
   * @example
   * createRelayUrl({ base: 'https://relay.a.com' }).url('api/items', { page: 2 })
   * // → 'https://relay.a.com/relay/api/items?page=2'
   */
  url(path: string, query?: RelayQuery): string;
}

/**
 * Checks the options once and returns a builder.
 *
 * @throws Error when `base` is not an absolute `https://` URL (or `http://` with `allowHttp`), or
 *   `mount` does not start with `/`.
 *
 * @example
 * const relay = createRelayUrl({ base: 'https://relay.a.com', mount: '/relay' });
 * relay.url('/images/a b.png');            // 'https://relay.a.com/relay/images/a%20b.png'
 * relay.url('api/search', { q: '腾讯' });   // 'https://relay.a.com/relay/api/search?q=%E8%85%BE%E8%AE%AF'
 * relay.url('../admin');                   // throws: dot segment
 */
export function createRelayUrl(options: RelayUrlOptions): RelayUrlBuilder {
  if (options === null || typeof options !== 'object') throw new Error("relay: createRelay needs options, e.g. { base: 'https://relay.a.com' }");
  const base = normaliseBase(options.base, options.allowHttp === true);
  const mount = normaliseMount(options.mount === undefined ? '/relay' : options.mount);
  return {
    base,
    mount,
    url(path: string, query?: RelayQuery): string {
      return `${base}${mount}/${encodeRelayPath(path)}${buildQuery(query)}`;
    },
  };
}

/**
 * Encodes a backend path for the path form: one optional leading `/` is dropped, the rest is
 * split on `/` and every segment is passed through `encodeURIComponent`. Give the path as text,
 * not already percent-encoded (`'files/a b.txt'`, not `'files/a%20b.txt'`).
 *
 * Refused with an Error (each is a 400 from the gateway otherwise, or not a path at all):
 * - an empty path (also `'/'`);
 * - an absolute URL (`'https://x/y'`), `'//host'`, or any `:` in the first segment;
 * - `?` or `#`: the query goes in `query` / `data`;
 * - `'.'` and `'..'` segments, and what some servers turn into them (`'...'`, `'.. '`, `'..;x'`);
 * - an empty segment in the middle (`'a//b'`; a trailing `/` is kept);
 * - `%` (it would become `%25`, refused as double encoding), `@`, `\`, control characters, and
 *   any non-ASCII character (the gateway refuses them in paths because look-alike dots and
 *   slashes are only dangerous to some backends; send such text in the query or body).
 *
 * @example
 * encodeRelayPath('/api/v1/items');   // 'api/v1/items'
 * encodeRelayPath('docs/a b&c.txt');  // 'docs/a%20b%26c.txt'
 */
export function encodeRelayPath(path: string): string {
  if (typeof path !== 'string') throw new Error(`relay: the backend path must be a string, got ${typeof path}`);
  if (path.startsWith('//') || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) {
    throw new Error(`relay: ${JSON.stringify(path)} is an absolute URL; give only the backend path ('api/items'), the relay's base is set in createRelay`);
  }
  for (let i = 0; i < path.length; i++) {
    const problem = charProblem(path.charCodeAt(i));
    if (problem !== undefined) throw new Error(`relay: backend path ${JSON.stringify(path)}: ${problem}`);
  }
  const body = path.startsWith('/') ? path.slice(1) : path;
  if (body === '') throw new Error('relay: the backend path is empty');
  const segments = body.split('/');
  if (segments[0]!.includes(':')) {
    throw new Error(`relay: backend path ${JSON.stringify(path)}: ':' in the first segment reads as a URL scheme; the gateway refuses it`);
  }
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '' && i < segments.length - 1) throw new Error(`relay: backend path ${JSON.stringify(path)} has an empty segment ('//')`);
    if (isDotSegment(seg)) throw new Error(`relay: backend path ${JSON.stringify(path)} has a '.' or '..' segment; the gateway never resolves them`);
  }
  return segments.map((s) => encodeURIComponent(s)).join('/');
}

/**
 * Builds `'?k=v&k2=v2'` (or `''` when nothing is left) with `encodeURIComponent` on keys and values,
 * the same encoding wx.request uses for a GET's `data`.
 *
 * @example
 * buildQuery({ q: 'a b', page: 2, tag: ['x', 'y'], skip: undefined }); // '?q=a%20b&page=2&tag=x&tag=y'
 */
export function buildQuery(query?: RelayQuery): string {
  if (query === undefined || query === null) return '';
  if (typeof query !== 'object' || isList(query)) throw new Error('relay: query must be an object of parameters, e.g. { page: 2 }');
  const parts: string[] = [];
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    for (const item of isList(value) ? value : [value]) {
      if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
        throw new Error(`relay: query parameter '${key}' must be a string, number or boolean (or an array of them)`);
      }
      try {
        parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(item))}`);
      } catch {
        // encodeURIComponent throws URIError on a lone UTF-16 surrogate.
        throw new Error(`relay: query parameter '${key}' is not valid Unicode text`);
      }
    }
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

function normaliseBase(base: unknown, allowHttp: boolean): string {
  const m = typeof base === 'string' ? /^(https?):\/\/([^/?#@\s\\]+)(\/[^?#\s\\]*)?$/i.exec(base) : null;
  if (m === null) {
    throw new Error(`relay: base must be an absolute URL such as 'https://relay.a.com' (no query, fragment or user info), got ${JSON.stringify(base)}`);
  }
  if (m[1]!.toLowerCase() === 'http' && !allowHttp) {
    throw new Error(`relay: base ${JSON.stringify(base)} is http; mini-programs only call https:// (allowHttp: true is for DevTools with the domain check off)`);
  }
  return `${m[1]!.toLowerCase()}://${m[2]!}${(m[3] ?? '').replace(/\/+$/, '')}`;
}

function normaliseMount(mount: unknown): string {
  if (typeof mount !== 'string' || !/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/.test(mount)) {
    throw new Error(`relay: mount must be the relay route's path, such as '/relay', got ${JSON.stringify(mount)}`);
  }
  return mount.replace(/\/+$/, '');
}

function charProblem(code: number): string | undefined {
  if (code < 0x20 || code === 0x7f) return 'control characters are not allowed';
  if (code > 0x7e) return 'non-ASCII characters are refused by the gateway in paths; send such text in the query or body';
  if (code === 0x3f || code === 0x23) return "'?' and '#' cannot be in the path; put parameters in query (or data)";
  if (code === 0x25) return "'%' is not allowed: give the path unencoded (segments are encoded for you; the gateway refuses '%25')";
  if (code === 0x40) return "'@' is refused by the gateway (URL user info)";
  if (code === 0x5c) return "'\\' is refused by the gateway (some servers read it as '/')";
  return undefined;
}

/** The gateway's rule: '.', '..', and '...', '.. ', '..;x' (what Windows and Tomcat turn into them). */
function isDotSegment(segment: string): boolean {
  const core = segment.split(';', 1)[0]!;
  return core.includes('.') && /^[. ]+$/.test(core);
}

function isList(value: unknown): value is readonly RelayQueryValue[] {
  return Array.isArray(value);
}
