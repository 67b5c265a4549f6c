/**
 * Request-target handling shared by routing and (later) the relay: split path and query, and
 * resolve dot segments so "/public/../admin" is routed as "/admin", never as "/public".
 */

export interface SplitTarget {
  path: string;
  /** Including the leading "?", or "" when there is no query. */
  query: string;
}

export function splitTarget(url: string): SplitTarget {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q) };
}

const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** True when the path contains "." or ".." segments, also percent-encoded ("%2e%2E"). */
export function hasDotSegments(path: string): boolean {
  return DOT_SEGMENT.test(path);
}

const HIDDEN_SEPARATOR = /%2f|%5c|\\/i;
const MAYBE_HIDDEN = /%2f|%5c|\\|;/i;

/**
 * True when a segment hides a dot segment behind an encoded slash or a backslash ("..%2fadmin",
 * "%2e%2e%5cx", "..\\x") or in front of path parameters ("..;/admin"): harmless to mpgate, which
 * splits on "/" only, but an upstream that decodes "%2f", reads "\\" as a separator or drops
 * ";params" before resolving dot segments (nginx, Tomcat and Spring, many frameworks) would
 * climb out of the path it was given.
 */
export function hidesDotSegments(path: string): boolean {
  if (!MAYBE_HIDDEN.test(path)) return false;
  for (const seg of path.split('/')) {
    if (!MAYBE_HIDDEN.test(seg)) continue;
    for (const piece of seg.split(HIDDEN_SEPARATOR)) {
      const semi = piece.indexOf(';');
      const decoded = (semi === -1 ? piece : piece.slice(0, semi)).replace(/%2e/gi, '.');
      if (decoded === '.' || decoded === '..') return true;
    }
  }
  return false;
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments, treating "%2e" as "." (nginx does the same when it
 * normalises a URI). Returns undefined when ".." would climb above the root.
 */
export function removeDotSegments(path: string): string | undefined {
  if (!hasDotSegments(path)) return path;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const decoded = seg.replace(/%2e/gi, '.');
    const last = i === segments.length - 1;
    if (decoded === '.') {
      if (last) out.push('');
    } else if (decoded === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return `/${out.join('/')}`;
}
