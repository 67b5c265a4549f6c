/**
 * The routing decision for one request head, shared by plain requests and WebSocket upgrades:
 * header rewrite → Host check → site → path → route → upstream path. Pure apart from reading the
 * table, so every branch is tested with plain values (test/resolve.test.ts).
 */
import { GatewayError } from '../core/errors.js';
import { getField, setField, upstreamHeaders, type UpstreamHead } from '../core/headers.js';
import { hidesDotSegments, removeDotSegments, splitTarget } from '../core/path.js';
import { RoutingTable, type Route, type Site } from './routing-table.js';

export interface Resolved {
  route: Route;
  head: UpstreamHead;
  /** Path and query to send upstream (before the upstream's base path is prepended). */
  path: string;
}

export interface ResolveInput {
  url: string;
  rawHeaders: readonly string[];
  peer: string;
  proto: string;
  upgrade?: boolean;
  /** "1.1", "1.0": HTTP/1.1 requires a Host field (RFC 9112 §3.2), 1.0 may omit it. */
  httpVersion?: string;
}

/** A plain-HTTP request for a site served over HTTPS: answered with a redirect. */
export interface Redirect {
  redirect: Site;
  head: UpstreamHead;
}

/** Routes a request head, or returns a GatewayError naming why not (with the site when known). */
export function resolve(table: RoutingTable, input: ResolveInput): Resolved | Redirect | { error: GatewayError; site?: Site; head: UpstreamHead } {
  const head = upstreamHeaders(input.rawHeaders, { peer: input.peer, proto: input.proto, trust: table.trust, upgrade: input.upgrade ?? false });
  if (input.rawHeaders.length > table.limits.maxHeaderCount * 2) return { error: new GatewayError('MPG_TOO_MANY_HEADERS'), head };
  if (head.hostCount > 1) return { error: new GatewayError('MPG_DUPLICATE_HOST'), head };
  if (head.hostCount === 0 && input.httpVersion === '1.1') return { error: new GatewayError('MPG_BAD_REQUEST', 'HTTP/1.1 request without Host'), head };

  const site = table.hosts.match(head.host);
  if (site === undefined) return { error: new GatewayError('MPG_NO_SITE'), head };
  if (site.disabled) return { error: new GatewayError('MPG_SITE_DISABLED'), site, head };
  // Behind a trusted TLS terminator the request already came in over https: no redirect loop.
  if (site.redirectHttp && input.proto === 'http' && input.upgrade !== true && getField(head.headers, 'x-forwarded-proto') !== 'https') return { redirect: site, head };

  // Absolute-form targets ("GET http://x/ HTTP/1.1") are for forward proxies; a reverse proxy
  // routes by Host alone, so only origin-form is accepted (RFC 9112 §3.2.1).
  if (input.url.charCodeAt(0) !== 47 /* / */) return { error: new GatewayError('MPG_BAD_PATH'), site, head };
  const { path: rawPath, query } = splitTarget(input.url);
  const path = removeDotSegments(rawPath);
  if (path === undefined) return { error: new GatewayError('MPG_BAD_PATH', 'path climbs above the root'), site, head };

  const route = RoutingTable.matchRoute(site, path);
  if (route === undefined) return { error: new GatewayError('MPG_NO_ROUTE'), site, head };
  // (A relay route checks its backend path itself, more strictly, and answers in its own terms.)
  if (route.relay === undefined && hidesDotSegments(rawPath)) return { error: new GatewayError('MPG_BAD_PATH', 'a dot segment hidden behind an encoded slash, a backslash or ";"'), site, head };

  let target: string;
  if (route.stripPrefix) {
    // A prefix without a trailing slash can end inside a segment ("/api" of "/api../x"), so what
    // is left can start with dot segments of its own: normalised again, they must not climb above
    // the upstream's base path (nginx's "off-by-slash" escape, /v1/../x).
    const rest = path.slice(route.path.length);
    const stripped = removeDotSegments(rest.startsWith('/') ? rest : `/${rest}`);
    if (stripped === undefined || hidesDotSegments(stripped)) return { error: new GatewayError('MPG_BAD_PATH', 'path climbs above the route'), site, head };
    target = stripped + query;
  } else {
    // Unchanged bytes when nothing had to be normalised: the upstream sees exactly what was sent.
    target = path === rawPath ? input.url : path + query;
  }

  // preserveHost: false leaves a placeholder; the upstream picked for this attempt fills it in.
  if (!route.preserveHost) setField(head.headers, 'host', '');
  if (route.extraHeaders) for (let i = 0; i < route.extraHeaders.length; i += 2) setField(head.headers, route.extraHeaders[i]!, route.extraHeaders[i + 1]!);
  return { route, head, path: target };
}
