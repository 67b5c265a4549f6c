/**
 * Every failure mpgate reports has a stable code. The table below is the only place that decides
 * which HTTP status a failure becomes (the way Caddy's reverseproxy keeps one mapping), so logs,
 * error answers and docs/errors.md stay in step (test/errors.test.ts checks the docs).
 */

export interface ErrorSpec {
  status: number;
  /** Short text for the client; the same for every occurrence. */
  message: string;
}

export const ERROR_CODES = {
  // Client side.
  MPG_BAD_REQUEST: { status: 400, message: 'malformed request' },
  MPG_DUPLICATE_HOST: { status: 400, message: 'more than one Host header' }, // RFC 9112 §3.2
  MPG_BAD_PATH: { status: 400, message: 'request path cannot be routed' },
  MPG_UPGRADE_UNSUPPORTED: { status: 400, message: 'only WebSocket upgrades are proxied' },
  MPG_RELAY_BAD_PATH: { status: 400, message: 'relay path refused' },
  MPG_RELAY_NO_PATH: { status: 400, message: 'relay request names no backend path' },
  MPG_NO_SITE: { status: 404, message: 'no site for this host' },
  MPG_NO_ROUTE: { status: 404, message: 'no route for this path' },
  // A gateway, not a forward proxy: no tunnels to arbitrary authorities (nor RFC 8441's extended CONNECT).
  MPG_CONNECT_UNSUPPORTED: { status: 405, message: 'CONNECT is not proxied' },
  MPG_CLIENT_TIMEOUT: { status: 408, message: 'request not received in time' },
  MPG_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  MPG_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  MPG_TOO_MANY_HEADERS: { status: 431, message: 'too many request headers' },
  // 499 is nginx's "client closed request": nobody reads it, but the access log should say it.
  MPG_CLIENT_GONE: { status: 499, message: 'client closed the connection' },
  // llhttp also parses HTTP/0.9-style and "HTTP/2.0" request lines; only 1.0 and 1.1 are served over
  // HTTP/1 (HTTP/2 is served over TLS, by ALPN).
  MPG_HTTP_VERSION: { status: 505, message: 'HTTP version not supported' },
  // Gateway and upstream side.
  MPG_INTERNAL: { status: 500, message: 'internal gateway error' },
  MPG_UPSTREAM_REFUSED: { status: 502, message: 'upstream refused the connection' },
  MPG_UPSTREAM_RESET: { status: 502, message: 'upstream closed the connection' },
  MPG_UPSTREAM_UNREACHABLE: { status: 502, message: 'upstream address cannot be reached' },
  MPG_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'upstream sent an invalid response' },
  MPG_UPSTREAM_TLS: { status: 502, message: 'upstream certificate not trusted' },
  MPG_SHUTTING_DOWN: { status: 503, message: 'gateway is shutting down' },
  MPG_SITE_DISABLED: { status: 503, message: 'site is disabled' },
  // RFC 9110 §15.6.5: 504 when the upstream did not answer in time.
  MPG_UPSTREAM_CONNECT_TIMEOUT: { status: 504, message: 'upstream connection timed out' },
  MPG_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream did not answer in time' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure with a stable code; `cause` keeps the original error for the log. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? ERROR_CODES[code].message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

/** Config validation failed; `problems` lists each with file, line and key. */
export class ConfigError extends Error {
  readonly code = 'MPG_CONFIG_INVALID';
  constructor(message: string, readonly problems: readonly { file: string; line: number; column: number; key: string; message: string; hint?: string }[], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/**
 * Maps anything thrown while proxying to a GatewayError. The upstream client (proxy/h1-client.ts)
 * reports its own failures as GatewayErrors and passes socket and TLS errors through with their
 * errno or OpenSSL code.
 */
export function classifyError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string } | null)?.code;
  // Own keys only: a code such as "constructor" or "toString" must not reach Object.prototype.
  const mapped = typeof code === 'string' && Object.hasOwn(UPSTREAM_ERRNO, code) ? UPSTREAM_ERRNO[code] : undefined;
  return new GatewayError(mapped ?? 'MPG_UPSTREAM_BAD_RESPONSE', undefined, { cause: err });
}

const UPSTREAM_ERRNO: Record<string, ErrorCode> = {
  ECONNREFUSED: 'MPG_UPSTREAM_REFUSED',
  ECONNRESET: 'MPG_UPSTREAM_RESET',
  EPIPE: 'MPG_UPSTREAM_RESET',
  ENOTFOUND: 'MPG_UPSTREAM_UNREACHABLE',
  EAI_AGAIN: 'MPG_UPSTREAM_UNREACHABLE',
  EHOSTUNREACH: 'MPG_UPSTREAM_UNREACHABLE',
  ENETUNREACH: 'MPG_UPSTREAM_UNREACHABLE',
  EADDRNOTAVAIL: 'MPG_UPSTREAM_UNREACHABLE',
  ETIMEDOUT: 'MPG_UPSTREAM_CONNECT_TIMEOUT',
  // Certificate checks on https upstreams (always on; relay.ca adds a private CA).
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'MPG_UPSTREAM_TLS',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'MPG_UPSTREAM_TLS',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'MPG_UPSTREAM_TLS',
  SELF_SIGNED_CERT_IN_CHAIN: 'MPG_UPSTREAM_TLS',
  CERT_HAS_EXPIRED: 'MPG_UPSTREAM_TLS',
  CERT_NOT_YET_VALID: 'MPG_UPSTREAM_TLS',
  ERR_TLS_CERT_ALTNAME_INVALID: 'MPG_UPSTREAM_TLS',
  EPROTO: 'MPG_UPSTREAM_TLS',
};

/** True when the request never reached the upstream, so another upstream may be tried. */
export function isConnectFailure(err: GatewayError): boolean {
  return err.code === 'MPG_UPSTREAM_REFUSED' || err.code === 'MPG_UPSTREAM_CONNECT_TIMEOUT' || err.code === 'MPG_UPSTREAM_UNREACHABLE';
}
