/**
 * Header rewriting between client and upstream, as pure functions over flat raw header lists
 * (["Name", "value", ...], the shape node:http's rawHeaders and undici use), so no header object
 * is built on the hot path. One fixed sequence, no passes registered at runtime.
 */
import type { ProxyTrust } from './trust.js';

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) plus the pre-RFC 7230 ones still seen in the wild
 * (Keep-Alive, Proxy-Connection; Trailer per RFC 2616 §13.5.1). Proxy-Authorization/-Authenticate are
 * meant for a proxy hop, never for the site behind it. Fields named in `Connection` are removed too.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);

const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip']);

/**
 * Other fields that make claims about the client or the original request, which frameworks act
 * on: RFC 7239 `Forwarded` (Spring, Rails), the client-address fields the `request-ip` package
 * reads before X-Forwarded-For, Envoy's client-certificate field, and X-Original-URL /
 * X-Rewrite-URL (IIS, Symfony: they replace the path routing saw). Passed on only from a trusted
 * proxy; from anyone else they are dropped (as is every other `X-Forwarded-*` field, see
 * isForwardedFamily).
 */
const CLAIMS = new Set([
  'forwarded', 'x-forwarded', 'forwarded-for', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-original-forwarded-for',
]);

/** `X-Forwarded-Port`, `-Prefix`, `-Server`, `-Ssl`, `-Client-Cert`, ...: any name in the family, any length. */
function isForwardedFamily(name: string): boolean {
  return name.length > 12 && (name.charCodeAt(0) | 0x20) === 0x78 && name.charCodeAt(1) === 0x2d && name.slice(2, 12).toLowerCase() === 'forwarded-';
}

/**
 * Lengths of every field name this module acts on. A name of any other length cannot be one of
 * them, so the hot loops skip lower-casing it (most fields: content-type, authorization, ...).
 */
const WATCHED_LENGTHS = new Uint8Array(32);
for (const n of [...HOP_BY_HOP, ...FORWARDING, ...CLAIMS, 'host', 'content-length', 'expect']) WATCHED_LENGTHS[n.length] = 1;

/** The lower-cased name when its length is one we act on, otherwise ''. */
function watchedName(name: string): string {
  return name.length < 32 && WATCHED_LENGTHS[name.length] === 1 ? name.toLowerCase() : '';
}

export interface ForwardContext {
  /** Address of the peer that opened the connection. */
  peer: string;
  /** "http" or "https": how the client reached mpgate. */
  proto: string;
  trust: ProxyTrust;
  /** When set, replaces the client's Host (preserveHost: false). */
  hostOverride?: string | undefined;
  /** Extra fields from the route (setHeaders), already validated. */
  extra?: readonly string[] | undefined;
  /** Keep Upgrade/Connection: upgrade (WebSocket handshake). */
  upgrade?: boolean;
}

export interface UpstreamHead {
  headers: string[];
  /** The client's Host value ('' when absent). */
  host: string;
  /** Number of Host fields the client sent; more than one is a 400 (RFC 9112 §3.2). */
  hostCount: number;
  /** The client address mpgate believes (X-Real-IP). */
  clientIp: string;
  /** Content-Length as sent (undefined when absent); node:http has already checked its framing. */
  contentLength: string | undefined;
  /** Transfer-Encoding was present (chunked: node:http refuses any other coding). */
  chunked: boolean;
}

/** Builds the header list sent upstream from the client's raw headers. */
export function upstreamHeaders(raw: readonly string[], ctx: ForwardContext): UpstreamHead {
  const trusted = ctx.trust.isTrusted(ctx.peer);
  const out: string[] = [];
  let host = '';
  let hostCount = 0;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let connectionTokens: string[] | undefined;
  let contentLength: string | undefined;
  let chunked = false;

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = watchedName(name);
    if (lower === '') {
      if (trusted || !isForwardedFamily(name)) out.push(name, value);
      continue;
    }
    if (lower === 'expect') {
      // node:http has already answered it ("100 Continue", or our 413 instead); the body is then
      // streamed upstream as usual. undici refuses to send the field at all (NotSupportedError).
      continue;
    }
    if (lower === 'content-length') {
      contentLength = value;
      out.push(name, value);
      continue;
    }
    if (lower === 'host') {
      hostCount++;
      if (hostCount === 1) host = value;
      if (ctx.hostOverride === undefined && hostCount === 1) out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        for (const t of value.split(',')) {
          const token = t.trim().toLowerCase();
          // A client may not use Connection to strip the Host that routing depends on (RFC 9110
          // §7.6.1 lets proxies drop listed fields, never required ones).
          if (token && token !== 'close' && token !== 'keep-alive' && token !== 'upgrade' && token !== 'host') (connectionTokens ??= []).push(token);
        }
      } else if (lower === 'transfer-encoding') {
        chunked = true;
      }
      continue;
    }
    if (FORWARDING.has(lower)) {
      // Only a trusted proxy may tell us who the client is; anyone else's claim is dropped.
      if (trusted) {
        if (lower === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
        else if (lower === 'x-forwarded-proto') xfProto ??= value;
        else if (lower === 'x-forwarded-host') xfHost ??= value;
      }
      continue;
    }
    if (!trusted && (CLAIMS.has(lower) || isForwardedFamily(name))) continue;
    out.push(name, value);
  }

  if (connectionTokens) removeNamed(out, connectionTokens);
  if (ctx.hostOverride !== undefined) out.push('host', ctx.hostOverride);
  if (ctx.extra) for (let i = 0; i < ctx.extra.length; i += 2) setField(out, ctx.extra[i]!, ctx.extra[i + 1]!);

  const clientIp = trusted && xff !== undefined ? ctx.trust.clientFrom(xff, ctx.peer) : ctx.peer;
  out.push(
    'x-real-ip', clientIp,
    'x-forwarded-for', xff === undefined ? ctx.peer : `${xff}, ${ctx.peer}`,
    'x-forwarded-proto', xfProto ?? ctx.proto,
  );
  const forwardedHost = xfHost ?? host;
  if (forwardedHost !== '') out.push('x-forwarded-host', forwardedHost);
  if (ctx.upgrade) out.push('connection', 'upgrade', 'upgrade', 'websocket');
  return { headers: out, host, hostCount, clientIp, contentLength, chunked };
}

export interface ResponseMeta {
  /** The response's Content-Length, -1 when absent. */
  contentLength: number;
}

/**
 * Filters an upstream response's raw headers for the client:
 * hop-by-hop fields and those named in Connection are dropped; the framing is redone by node:http.
 * `meta` receives the Content-Length, so a body that arrives whole can be sent in one write.
 * With Transfer-Encoding present the body was framed by it, not by Content-Length (RFC 9112 §6.3:
 * a proxy must remove the Content-Length before forwarding such a message), so that goes too.
 */
export function downstreamHeaders(raw: readonly string[], meta?: ResponseMeta): string[] {
  const out: string[] = [];
  let connectionTokens: string[] | undefined;
  let transferEncoding = false;
  if (meta) meta.contentLength = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = watchedName(name);
    if (lower === 'content-length' && meta) {
      const value = raw[i + 1]!;
      meta.contentLength = /^\d+$/.test(value) ? Number(value) : -1;
      out.push(name, value);
      continue;
    }
    if (lower !== '' && HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        for (const t of raw[i + 1]!.split(',')) {
          const token = t.trim().toLowerCase();
          if (token && token !== 'close' && token !== 'keep-alive') (connectionTokens ??= []).push(token);
        }
      } else if (lower === 'transfer-encoding') {
        transferEncoding = true;
      }
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (transferEncoding) {
    (connectionTokens ??= []).push('content-length');
    if (meta) meta.contentLength = -1;
  }
  if (connectionTokens) removeNamed(out, connectionTokens);
  return out;
}

function removeNamed(list: string[], lowerNames: readonly string[]): void {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (lowerNames.includes(list[i]!.toLowerCase())) list.splice(i, 2);
  }
}

/** Replaces every field called `name` with one field `name: value`. */
export function setField(list: string[], name: string, value: string): void {
  removeNamed(list, [name.toLowerCase()]);
  list.push(name, value);
}

/** Reads one field from a flat raw list (first occurrence), case-insensitively. */
export function getField(list: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === lowerName) return list[i + 1];
  return undefined;
}

/** Fills the Host placeholder `resolve` leaves for preserveHost: false, once the upstream is known. */
export function applyUpstreamHost(headers: string[], authority: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i] === 'host') {
      headers[i + 1] = authority;
      return;
    }
  }
}

/**
 * An HTTP/2 request's fields as an HTTP/1.1 upstream needs them (RFC 9113 §8.3.1, §8.2.3): the
 * pseudo-header fields go (the method and path travel separately), `:authority` becomes Host
 * unless a Host field was sent as well, and the cookie crumbs HTTP/2 allows are joined into one
 * field with "; ".
 */
export function h2ToH1Headers(raw: readonly string[]): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  let hasHost = false;
  let cookies: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') {
      cookies = cookies === undefined ? value : `${cookies}; ${value}`;
      continue;
    }
    if (name === 'host') hasHost = true;
    out.push(name, value);
  }
  if (!hasHost && authority !== undefined) out.unshift('host', authority);
  if (cookies !== undefined) out.push('cookie', cookies);
  return out;
}

/**
 * The Strict-Transport-Security value for a site's `hsts` setting (`true`: one year), or none.
 * One definition for the gateway and for `mpgate nginx export`, so both send the same field.
 */
export function hstsValue(hsts: boolean | { maxAge: number; includeSubDomains: boolean; preload: boolean }): string | undefined {
  if (hsts === false) return undefined;
  const h = hsts === true ? { maxAge: 31_536_000_000, includeSubDomains: false, preload: false } : hsts;
  return `max-age=${Math.floor(h.maxAge / 1000)}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}
