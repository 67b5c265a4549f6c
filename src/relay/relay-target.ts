/**
 * Relay request targets: turns "/relay?method=api/items&x=1" or "/relay/api/items?x=1" into the
 * upstream target "/api/items?x=1". The relay exists so a mini-program can reach an un-filed
 * backend through a filed domain, so the one thing this file must guarantee is that the result is
 * always a path on the configured upstream (base path + allow-list), never an open proxy: no
 * scheme, no "//host", no userinfo, no dot segments, no header or query injection.
 *
 * One encoding model, used by every form (query, path, JSON body):
 *
 *   A backend path value is in *wire form*: the text that goes into the upstream request line,
 *   with its own percent-escapes. The carrier's encoding layer is removed exactly once before
 *   the value reaches checkRelayPath, and never again:
 *     - query form: takeParam decodes the parameter value once (form-urlencoded, "+" is a space,
 *       as PHP's $_GET does for the seed relay), so "method=a%2Fb" is "a/b" and
 *       "method=my%2520file" is "my%20file";
 *     - path form: the raw path after the mount is already wire form; nothing is decoded;
 *     - JSON-body form: JSON.parse is the one decoding; the string is passed as it is.
 *   checkRelayPath then looks *into* the remaining escapes (to see "%2e%2e" as "..") without ever
 *   producing a decoded path: the path it returns keeps the escapes as given.
 *
 * Rejected rather than repaired: anything non-ASCII (raw, or percent-encoded bytes >= 0x80),
 * because fullwidth and look-alike dots and slashes (U+FF0E, U+FF0F, U+2215, U+2024...) and
 * overlong UTF-8 ("%c0%ae") are only dangerous to backends that normalise them, and refusing
 * them all is the only rule that does not depend on what the backend does. A handful of harmless
 * printable characters that may not appear raw in a URL path (space, '"', '<', '>', '[', ']',
 * '^', '`', '{', '|', '}') are percent-encoded instead, so "method=my%20file.png" works.
 */
import { splitTarget } from '../core/path.js';

export interface RelayPolicy {
  /** Name of the query parameter carrying the backend path (default 'method'). */
  readonly param: string;
  /** Path of the upstream base URL without trailing slash, '' for none (e.g. '/v1' for https://b.example/v1). */
  readonly basePath: string;
  /**
   * Allowed upstream path prefixes, each starting with '/', matched on whole segments ('/api'
   * allows '/api' and '/api/x', not '/apix'). Default: [basePath || '/'] i.e. everything under
   * the base path. The default is filled in by the config layer: an empty list allows nothing
   * (fail closed), and entries not starting with '/' are ignored.
   */
  readonly allow: readonly string[];
}

/**
 * `missing` is set when the request is on the mount but names no backend path at all (query form
 * without the parameter): the caller may then look for it in a JSON body. Every other refusal is
 * final.
 */
export type RelayResult =
  | { ok: true; path: string; form: 'query' | 'path' }
  | { ok: false; reason: string; missing?: true };

export type RelayPathResult = { ok: true; path: string } | { ok: false; reason: string };

export type TakeParamResult =
  /** `value` is undefined when the parameter is absent; `rest` is '' or '?a=1&b=2'. */
  | { ok: true; value: string | undefined; rest: string }
  | { ok: false; reason: string };

/**
 * Maps a request on a relay mount to the upstream request target (path and query).
 *
 * mount: the route's path ('/relay', '/get.php'; a trailing slash is ignored, '/' mounts at the
 * root); url: the raw request target ('/relay/api/x?y=1').
 *
 * - Query form: the path is exactly the mount, or the mount plus a single '/' (which carries no
 *   backend path, so "/relay/?method=x" means the same as "/relay?method=x"). The backend path is
 *   the `policy.param` value (with or without a leading '/'); the other query pairs follow it in
 *   their original order and exact encoding. This is the seed's "get.php?method=path&a=1" shape.
 * - Path form: the path continues after mount + '/'; that remainder is the backend path (wire
 *   form, not decoded) and the query string is passed on byte for byte. A `policy.param`
 *   parameter in this form is not ours: the path form wins and the backend receives the
 *   parameter as its own, untouched — so a backend that itself uses "method" keeps working.
 *
 * On success `path` is the upstream request target: basePath + '/' + backend path + query. A
 * query-form request without the parameter fails with `missing: true` (see RelayResult).
 * Why a result and not an exception: every rejection is an ordinary bad request the caller turns
 * into a 400 with `reason` in the log.
 */
export function relayTarget(policy: RelayPolicy, mount: string, url: string): RelayResult {
  const { path, query } = splitTarget(url);
  const m = mount.replace(/\/+$/, '');
  if (path === m || path === `${m}/`) {
    const taken = takeParam(query, policy.param);
    if (!taken.ok) return taken;
    if (taken.value === undefined) return { ok: false, reason: `missing '${policy.param}' parameter`, missing: true };
    const checked = checkRelayPath(policy, taken.value);
    if (!checked.ok) return checked;
    return { ok: true, path: checked.path + taken.rest, form: 'query' };
  }
  if (path.startsWith(`${m}/`)) {
    // The remainder keeps its leading '/', so "/relay//host" is seen as "//host" and refused.
    const checked = checkRelayPath(policy, path.slice(m.length));
    if (!checked.ok) return checked;
    return { ok: true, path: checked.path + query, form: 'path' };
  }
  return reject('request path is not under the relay mount');
}

/**
 * Validates a backend path value and returns the upstream path (basePath + '/' + path), or a
 * rejection naming the rule that was broken. Shared by the query, path and JSON-body forms so
 * all three accept exactly the same paths.
 *
 * `value` is in wire form (see the top of this file): for the query form it is the parameter
 * value decoded once by takeParam, for the path form the raw remainder of the request path, for
 * the JSON-body form the JSON string. This function never decodes it again: escapes are only
 * inspected, and the returned path keeps them as given (hex case included).
 *
 * Rules, each a reason to refuse:
 * - empty (also '/' alone);
 * - control characters (CR, LF, NUL, TAB, DEL...), raw or percent-encoded: header injection;
 * - non-ASCII, raw or percent-encoded (bytes >= 0x80): look-alike dots/slashes, overlong UTF-8;
 * - backslash, raw or '%5c': some servers treat it as '/';
 * - '%2f': an encoded slash is a separator to some backends and not to others;
 * - '%25': an encoded '%' is a double encoding ("%252e" becomes ".." after two decodings);
 * - '?' or '#', raw or encoded: query or fragment injection into the upstream target;
 * - '@', raw or '%40': userinfo ("user@evil.com") in URL builders;
 * - a malformed escape ('%' not followed by two hex digits, e.g. IIS "%u002e");
 * - '//' after the optional single leading '/': protocol-relative "//host";
 * - ':' in the first segment (raw or '%3a'): "http:", "https:", "C:", "javascript:" — RFC 3986
 *   forbids it there in a relative reference anyway;
 * - an empty segment other than a trailing one ("a//b");
 * - a dot segment: a segment that, with escapes inspected and anything from the first ';' on
 *   dropped (Tomcat path parameters, "..;/"), is only dots and spaces ('.', '..', '...', '.. ').
 *   Segments that merely contain dots ('..a', '.well-known', 'a.b') are ordinary names;
 * - an upstream path outside `policy.allow` (compared on whole segments, on the path as sent,
 *   so "%61pi" does not match "/api": a false refusal, never a false acceptance).
 */
export function checkRelayPath(policy: RelayPolicy, value: string): RelayPathResult {
  if (value === '') return reject('backend path is empty');
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const code = value.charCodeAt(i);
    if (code === 0x25) {
      const hex = value.slice(i + 1, i + 3);
      if (!HEX2.test(hex)) return reject('malformed percent-escape in backend path');
      const problem = escapeProblem(Number.parseInt(hex, 16));
      if (problem !== undefined) return reject(problem);
      out += `%${hex}`;
      i += 2;
      continue;
    }
    const problem = rawProblem(code);
    if (problem !== undefined) return reject(problem);
    out += ENCODE_RAW.has(c) ? `%${code.toString(16).toUpperCase()}` : c;
  }

  const body = out.startsWith('/') ? out.slice(1) : out;
  if (body === '') return reject('backend path is empty');
  if (body.startsWith('/')) return reject('protocol-relative backend path (//host)');
  const segments = body.split('/');
  if (inspect(segments[0]!).includes(':')) return reject("absolute URL or scheme (':' in the first segment)");
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '') {
      if (i < segments.length - 1) return reject('empty segment (//) in backend path');
      continue;
    }
    if (isDotSegment(inspect(seg))) return reject("dot segment ('.' or '..') in backend path");
  }

  const path = `${policy.basePath.replace(/\/+$/, '')}/${body}`;
  if (!isAllowed(policy.allow, path)) return reject('backend path is outside the allowed paths');
  return { ok: true, path };
}

/**
 * Removes every `param` pair from a raw query string ('' or '?a=1&b=2', the leading '?' is
 * optional) and returns its value decoded once, plus the other pairs in their original order and
 * exact encoding ('' when none are left; empty pieces such as '&&' are dropped).
 *
 * Decoding is application/x-www-form-urlencoded as PHP's $_GET does it for the seed relay:
 * '+' is a space and %XX are UTF-8 bytes. Unlike PHP, a malformed escape or invalid UTF-8
 * (e.g. "%c0%ae", overlong '.') is refused instead of being passed on half-decoded. Parameter
 * names are compared after the same single decoding, so "%6Dethod" is also `method`.
 *
 * Two occurrences are refused: which one wins differs between PHP (last), Node (first) and the
 * backend, and a relay must not guess which path the client meant.
 */
export function takeParam(query: string, param: string): TakeParamResult {
  const q = query.startsWith('?') ? query.slice(1) : query;
  const kept: string[] = [];
  let found = false;
  let value: string | undefined;
  for (const pair of q.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    if (rawName !== param && formDecode(rawName) !== param) {
      kept.push(pair);
      continue;
    }
    if (found) return reject(`more than one '${param}' parameter`);
    found = true;
    const decoded = formDecode(eq === -1 ? '' : pair.slice(eq + 1));
    if (decoded === undefined) return reject(`malformed percent-encoding in the '${param}' parameter`);
    value = decoded;
  }
  return { ok: true, value, rest: kept.length > 0 ? `?${kept.join('&')}` : '' };
}

const HEX2 = /^[0-9A-Fa-f]{2}$/;

/** Printable ASCII that may not appear raw in a path (RFC 3986 §3.3) but is harmless encoded. */
const ENCODE_RAW = new Set([' ', '"', '<', '>', '[', ']', '^', '`', '{', '|', '}']);

function reject(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** Why a raw character may not appear in a backend path, or undefined when it may. */
function rawProblem(code: number): string | undefined {
  if (code < 0x20 || code === 0x7f) return 'control character (CR, LF, NUL, TAB...) in backend path';
  if (code > 0x7e) return 'non-ASCII character in backend path';
  if (code === 0x5c) return 'backslash in backend path';
  if (code === 0x3f || code === 0x23) return "'?' or '#' in backend path (query injection)";
  if (code === 0x40) return "'@' in backend path (userinfo)";
  return undefined;
}

/** Why a percent-encoded byte may not appear in a backend path, or undefined when it may. */
function escapeProblem(byte: number): string | undefined {
  if (byte < 0x20 || byte === 0x7f) return 'encoded control character (%0d, %0a, %00...) in backend path';
  if (byte >= 0x80) return 'encoded non-ASCII byte in backend path (overlong UTF-8 or Unicode look-alike)';
  if (byte === 0x2f || byte === 0x5c) return 'encoded slash or backslash (%2f, %5c) in backend path';
  if (byte === 0x25) return 'double percent-encoding (%25) in backend path';
  if (byte === 0x3f || byte === 0x23) return "encoded '?' or '#' in backend path (query injection)";
  if (byte === 0x40) return "encoded '@' (%40) in backend path (userinfo)";
  return undefined;
}

/**
 * A segment as a backend that decodes it would see it, for checks only. Safe to compute: every
 * escape has already been checked to be printable ASCII other than '/', '\', '%', '?', '#', '@'.
 */
function inspect(segment: string): string {
  return segment.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** '.', '..', and what servers turn into them: '..;x' (Tomcat), '...' and '.. ' (Windows). */
function isDotSegment(decoded: string): boolean {
  const core = decoded.split(';', 1)[0]!;
  return core.includes('.') && /^[. ]+$/.test(core);
}

function isAllowed(allow: readonly string[], path: string): boolean {
  for (const entry of allow) {
    if (!entry.startsWith('/')) continue;
    const prefix = entry.replace(/\/+$/, '');
    if (prefix === '') return true;
    if (path === prefix || path.startsWith(`${prefix}/`)) return true;
  }
  return false;
}

/** One application/x-www-form-urlencoded decoding; undefined on a malformed escape or bad UTF-8. */
function formDecode(s: string): string | undefined {
  if (!s.includes('%') && !s.includes('+')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX2.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (code === 0x2b) {
      bytes.push(0x20);
    } else if (code < 0x80) {
      bytes.push(code);
    } else {
      const cp = s.codePointAt(i)!;
      for (const b of UTF8_ENCODER.encode(String.fromCodePoint(cp))) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  try {
    return UTF8_DECODER.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

const UTF8_ENCODER = new TextEncoder();
// ignoreBOM: a leading "%EF%BB%BF" stays in the value (and is refused as non-ASCII) instead of
// silently disappearing.
const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
