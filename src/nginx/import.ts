/**
 * nginx `server` blocks → mpgate config (the object configFromObject validates), plus a finding for
 * every directive that was not carried over or only approximately. Pure: the tree comes from
 * parse.ts / load.ts, the YAML text is built here with the yaml Document API so it can carry comments.
 *
 * What is translated (everything else is a finding):
 *   listen ADDR [default_server]     → top-level listen (deduplicated; `listen 80` + `listen [::]:80`
 *                                      become "80", all interfaces); default_server → defaultSite
 *   server_name                      → hosts (exact, *.a.com, www.a.*, .a.com, ~regex)
 *   location [^~] /prefix            → a route (longest prefix wins in both)
 *   location = /exact                → dropped when mpgate already routes that one path the same
 *                                      way (the export's guard against nginx's trailing-slash
 *                                      redirect), otherwise a prefix route plus a finding
 *   location … { return 404; }       → dropped when mpgate answers 404 there too
 *   proxy_pass URL[/uri]             → upstream; a URI part replaces the location prefix in nginx,
 *                                      so it becomes stripPrefix + base path (or a base path alone
 *                                      when the URI ends with the prefix); `rewrite ^/p/?(.*)$ /b/$1
 *                                      break` before a URI-less proxy_pass is stripPrefix too
 *   upstream NAME { server …; }      → an upstream list (weight, backup, down, … are findings)
 *   proxy_set_header                 → Host $host/$http_host: preserveHost (the default);
 *                                      Host $proxy_host or no Host at all (nginx's default):
 *                                      preserveHost: false; X-Real-IP, X-Forwarded-…, Upgrade,
 *                                      Connection with the usual values: mpgate does it itself;
 *                                      other literal values: setHeaders. nginx's inheritance rule
 *                                      holds: a level with any proxy_set_header replaces the outer list.
 *   client_max_body_size             → limits.maxBodySize (http) or the site's maxBodySize (server)
 *   set_real_ip_from                 → trustedProxies
 *   proxy_connect_timeout, proxy_read_timeout, client_header_timeout, keepalive_timeout and the
 *   upstream servers' max_fails/fail_timeout → the global upstream/limits settings (mpgate has one
 *   value for all sites: a finding when servers disagree)
 *   listen … ssl [http2], ssl on,    → https.listen (deduplicated the same way); no HTTP/2 on any
 *   http2 on                           HTTPS listen (nginx's default) → https.http2: false
 *   ssl_certificate + _key           → the site's tls: {cert, key} (server level, or inherited from
 *                                      http); one missing, or none for a listen … ssl → a finding.
 *                                      Let's Encrypt paths stay files (mpgate re-reads them when
 *                                      certbot renews; a YAML comment says tls: auto can replace certbot)
 *   ssl_protocols                    → https.minVersion (TLSv1.2 when 1.2 is the lowest listed,
 *                                      TLSv1.3 when only 1.3); anything below 1.2 is a finding
 *   ssl_ciphers (+ ssl_conf_command  → https.ciphers when every suite is ECDHE (or TLS 1.3) with
 *   Ciphersuites)                      AES-GCM or ChaCha20; anything else is a finding (mpgate's list applies)
 *   ssl_prefer_server_ciphers on, ssl_reject_handshake / the certificate of a catch-all default
 *   server → accepted / https.unknownSni: reject / https.defaultCert
 *   add_header Strict-Transport-Security "max-age=N[; includeSubDomains][; preload]" [always]
 *                                    → the site's hsts
 *   a server that only redirects plain HTTP to https://$host$request_uri ($server_name, $http_host or
 *   a literal name; 301/302/303/307/308; also certbot's `if ($host = NAME) { return 301 …; }`) for
 *   names an HTTPS server serves → no site of its own: that site's redirectHttp (the default).
 *   A plain server proxying the same names as an HTTPS one, or one server listening on both
 *   → one site with redirectHttp: false (`if ($scheme = http) { return 301 https://… }` keeps true)
 *   return 503 at server level       → disabled: true (its locations are translated as usual)
 *   Other ssl_* (session cache/tickets, dhparam, curves, stapling, client certificates) → findings:
 *   mpgate's TLS defaults apply.
 * nginx defaults that are not written in the file are not copied (client_max_body_size 1m, the
 * timeouts); mpgate's own defaults apply. The one exception is Host: nginx sends the upstream's own
 * name unless told otherwise, and that changes what the backend sees, so it becomes preserveHost: false.
 * (HTTP/2 is the other way round: nginx leaves it off unless told, so no http2 anywhere turns it off.)
 */
import { Document, isMap, isSeq, type YAMLMap, type YAMLSeq } from 'yaml';
import { configFromObject } from '../config/load.js';
import { configSchema, hostPattern, routeSchema, upstreamUrl, type ConfigInput } from '../config/schema.js';
import { formatDuration, formatSize } from '../config/units.js';
import { DEFAULT_CIPHERS, TLS13_SUITES } from '../tls/certificates.js';
import type { NginxDirective, NginxFinding } from './parse.js';

type SiteInput = NonNullable<ConfigInput['sites']>[number];
type RouteInput = NonNullable<SiteInput['routes']>[number];

export interface ImportResult {
  /** Validated with configFromObject before it is returned. */
  config: ConfigInput;
  /** Everything not translated (or translated approximately), in file order. */
  findings: NginxFinding[];
  /** The config as commented YAML. */
  yaml: string;
}

export interface ImportOptions {
  /** Name of the imported file, for the YAML header comment. */
  source?: string;
  /** Findings made before the import (load.ts's includes), merged into the list. */
  findings?: readonly NginxFinding[];
}

/** Variables the export defines; an import of an export recognises them. */
export const MPGATE_VARIABLES = {
  connectionUpgrade: 'mpgate_connection_upgrade',
  forwardedFor: 'mpgate_forwarded_for',
  forwardedProto: 'mpgate_forwarded_proto',
  forwardedHost: 'mpgate_forwarded_host',
  trusted: 'mpgate_trusted_peer',
  dollar: 'mpgate_dollar',
} as const;

const STATIC = 'static files are not served by mpgate; not translated';
const OTHER_PROTOCOL = (what: string) => `${what} is not in mpgate (it proxies HTTP only); not translated`;
const TLS_DEFAULTS = 'mpgate\'s defaults apply';

/** TLS settings mpgate does not take from nginx: its own defaults apply (and why that is fine). */
const SSL_MESSAGES: Record<string, string> = {
  ssl_session_cache: `${TLS_DEFAULTS} (node's TLS session resumption); not translated`,
  ssl_session_timeout: `${TLS_DEFAULTS} (node's TLS session resumption); not translated`,
  ssl_session_tickets: `${TLS_DEFAULTS} (node's TLS session resumption); not translated`,
  ssl_session_ticket_key: `${TLS_DEFAULTS} (node's TLS session resumption); not translated`,
  ssl_prefer_server_ciphers: `${TLS_DEFAULTS}: the server's cipher order is preferred; not translated`,
  ssl_dhparam: `${TLS_DEFAULTS}: its TLS 1.2 suites use ECDHE only, so no DH parameters are needed; not translated`,
  ssl_ecdh_curve: `${TLS_DEFAULTS} (X25519, P-256, P-384); not translated`,
  ssl_stapling: `OCSP stapling is not in mpgate (${TLS_DEFAULTS}); not translated`,
  ssl_stapling_verify: `OCSP stapling is not in mpgate (${TLS_DEFAULTS}); not translated`,
  ssl_stapling_file: `OCSP stapling is not in mpgate (${TLS_DEFAULTS}); not translated`,
  ssl_stapling_responder: `OCSP stapling is not in mpgate (${TLS_DEFAULTS}); not translated`,
  ssl_trusted_certificate: `OCSP stapling and client certificates are not in mpgate (${TLS_DEFAULTS}); not translated`,
  ssl_client_certificate: 'client certificates are not in mpgate; not translated',
  ssl_verify_client: 'client certificates are not in mpgate; not translated',
  ssl_verify_depth: 'client certificates are not in mpgate; not translated',
  ssl_crl: 'client certificates are not in mpgate; not translated',
  ssl_early_data: 'TLS 1.3 early data (0-RTT) is not in mpgate; not translated',
};

/** Better words than "not translated" for directives people often have. */
const MESSAGES: Record<string, string> = {
  root: STATIC, alias: STATIC, index: STATIC, try_files: STATIC, autoindex: STATIC, expires: STATIC,
  fastcgi_pass: OTHER_PROTOCOL('FastCGI (PHP-FPM)'), uwsgi_pass: OTHER_PROTOCOL('uwsgi'), scgi_pass: OTHER_PROTOCOL('SCGI'),
  grpc_pass: OTHER_PROTOCOL('gRPC'), memcached_pass: OTHER_PROTOCOL('memcached'),
  rewrite: 'rewrites are not translated (mpgate routes by path prefix; stripPrefix covers removing one)',
  if: 'conditional configuration is not translated',
  set: 'variables are not in mpgate; not translated',
  add_header: 'mpgate does not add response headers; not translated',
  proxy_hide_header: 'mpgate does not remove response headers; not translated',
  proxy_pass_header: 'not translated (mpgate passes response headers through, except hop-by-hop ones)',
  proxy_cookie_domain: 'mpgate does not rewrite cookies; not translated',
  proxy_cookie_path: 'mpgate does not rewrite cookies; not translated',
  access_log: 'not translated (mpgate\'s access log is the accessLog setting)',
  error_log: 'not translated (mpgate\'s log is the logLevel setting)',
  auth_basic: 'authentication is not in mpgate; not translated', auth_request: 'authentication is not in mpgate; not translated',
  allow: 'address-based access control is not in mpgate; not translated', deny: 'address-based access control is not in mpgate; not translated',
  limit_req: 'rate limiting is not in mpgate; not translated', limit_conn: 'connection limits are not in mpgate; not translated',
  gzip: 'compression is not in mpgate; not translated',
  proxy_cache: 'caching is not in mpgate; not translated',
  proxy_buffering: 'mpgate always streams responses (proxy_buffering off); not translated',
  proxy_request_buffering: 'mpgate always streams request bodies (proxy_request_buffering off); not translated',
  proxy_redirect: 'mpgate does not rewrite Location headers (proxy_redirect off); not translated',
  proxy_ssl_verify: 'mpgate always verifies https upstreams (against the system CAs); not translated',
  proxy_ssl_trusted_certificate: 'mpgate verifies https upstreams against the system CAs only (a relay route can add its own "ca"); not translated',
  proxy_http_version: 'mpgate always speaks HTTP/1.1 to upstreams; not translated',
  proxy_send_timeout: 'not translated (mpgate has no upstream send timeout; limits.idleTimeout covers stalled transfers)',
  client_body_timeout: 'not translated (mpgate: limits.requestTimeout for the whole request)',
  send_timeout: 'not translated (mpgate: limits.idleTimeout)',
  large_client_header_buffers: 'not translated (mpgate: limits.maxHeaderSize)',
  server_tokens: 'not translated (mpgate sends no Server header of its own)',
  error_page: 'custom error pages are not in mpgate; not translated',
  limit_except: 'method restrictions are not in mpgate; not translated',
  sub_filter: 'response rewriting is not in mpgate; not translated',
};

/** Main-context settings of the nginx process itself. */
const PROCESS = new Set(['user', 'worker_processes', 'pid', 'worker_rlimit_nofile', 'worker_cpu_affinity', 'worker_priority', 'load_module', 'daemon', 'master_process', 'pcre_jit', 'env', 'thread_pool', 'lock_file', 'timer_resolution', 'working_directory', 'worker_shutdown_timeout', 'ssl_engine', 'debug_points', 'google_perftools_profiles']);

/** Silently accepted: mpgate already behaves like this. */
const ALREADY = new Map<string, (args: string[]) => boolean>([
  ['proxy_http_version', (a) => a[0] === '1.1'],
  ['proxy_buffering', (a) => a[0] === 'off'],
  ['proxy_request_buffering', (a) => a[0] === 'off'],
  ['proxy_redirect', (a) => a[0] === 'off'],
  ['proxy_ssl_server_name', (a) => a[0] === 'on'],
  ['proxy_ssl_verify', (a) => a[0] === 'on'],
  // The system bundle (what the export writes); mpgate verifies proxy upstreams against it only.
  ['proxy_ssl_trusted_certificate', (a) => a[0] === '/etc/ssl/certs/ca-certificates.crt'],
  ['real_ip_header', (a) => a[0]?.toLowerCase() === 'x-forwarded-for'],
  ['real_ip_recursive', (a) => a[0] === 'on'],
]);

type GlobalKey = 'upstream.connectTimeout' | 'upstream.responseTimeout' | 'upstream.bodyIdleTimeout' | 'limits.headersTimeout' | 'limits.keepAliveTimeout' | 'upstream.maxFails' | 'upstream.failTimeout';

interface Setting {
  key: GlobalKey;
  value: number;
  text: string;
  d: NginxDirective;
  level: 'http' | 'server' | 'upstream';
  /** Index of the server block it was set in (server level). */
  server?: number;
}

/** The global settings timeouts map to. */
const TIMEOUTS: Record<string, GlobalKey[]> = {
  proxy_connect_timeout: ['upstream.connectTimeout'],
  proxy_read_timeout: ['upstream.responseTimeout', 'upstream.bodyIdleTimeout'],
  client_header_timeout: ['limits.headersTimeout'],
  keepalive_timeout: ['limits.keepAliveTimeout'],
};

/** One proxy_set_header, classified once where it is written. */
type HeaderRule =
  | { kind: 'host'; preserve: boolean }
  | { kind: 'builtin' }
  | { kind: 'set'; name: string; value: string }
  | { kind: 'skip' };

/** What nginx does with one request path, to compare with what mpgate would do. */
type Effect = { status: 404 } | { urls: string[]; preserveHost: boolean; setHeaders: string } | undefined;

interface RouteDraft {
  d: NginxDirective;
  path: string;
  route: RouteInput;
  /** For `location =`: what nginx does with exactly that path. */
  exactEffect?: Effect;
}

interface LocationDraft {
  d: NginxDirective;
  path: string;
  exact: boolean;
  result: { kind: 'proxy'; route: RouteInput; effect: Effect } | { kind: '404' } | { kind: 'none' };
}

interface ServerDraft {
  d: NginxDirective;
  index: number;
  hosts: string[];
  /** Names as written, for the comment. */
  names: string[];
  maxBodySize?: number;
  routes: RouteInput[];
  comments: string[];
  /** The first listen … default_server, plain or HTTPS. */
  defaultServer?: NginxDirective;
  /** default_server on a plain-HTTP / an HTTPS listen. */
  defaultPlain: boolean;
  defaultTls: boolean;
  /** Plain-HTTP listen addresses (normalised) and the directive of each. */
  listens: Listen[];
  /** HTTPS listen addresses (listen … ssl, or every listen under `ssl on`). */
  httpsListens: Listen[];
  /** HTTP/2 enabled on one of its HTTPS listens (or `http2 on`). */
  http2: boolean;
  /** Its own ssl_certificate / ssl_certificate_key directives (else the http level's apply). */
  certs: NginxDirective[];
  keys: NginxDirective[];
  /** The certificate files in effect, when both are there and usable. */
  tls?: { cert: string; key: string };
  /** Its own add_header directives (else the http level's apply). */
  addHeaders: NginxDirective[];
  hsts?: HstsInput;
  /** `ssl_reject_handshake on`. */
  rejectHandshake?: NginxDirective;
  /** A plain-HTTP server that only redirects these names to https. */
  redirect?: HttpsRedirect;
  /** A default server redirecting every name (server_name _) to https: mpgate does that for every site with tls. */
  catchAllRedirect?: boolean;
  /** `if ($scheme = http) { return 301 https://… }` in a server listening on both. */
  schemeRedirect?: NginxDirective;
  /** `return 503` at server level in front of its locations: a disabled site. */
  disabled?: NginxDirective;
  /** The HTTPS server whose site this one became part of (a redirect or a plain twin). */
  mergedInto?: ServerDraft;
  /** Plain-HTTP servers proxying the same names, merged into this HTTPS one. */
  twins: ServerDraft[];
  /** The server answers everything with a plain 404 (a catch-all). */
  only404: boolean;
  translated: boolean;
}

interface Listen {
  addr: string;
  dual: boolean;
  d: NginxDirective;
}

type HstsInput = NonNullable<SiteInput['hsts']>;

/** A recognised `return 30x https://HOST$request_uri`. */
interface HttpsRedirect {
  /** The names it redirects (all of server_name, or those of certbot's `if ($host = …)`). */
  names: string[];
  d: NginxDirective;
  /** The target's host: $host, $server_name, $http_host or a name. */
  host: string;
  /** Explicit port in the target, if any. */
  port?: number;
}

/** A TLS setting mpgate has one value of, where it was written. */
interface TlsSetting {
  d: NginxDirective;
  level: 'http' | 'server';
}

interface UpstreamBlock {
  d: NginxDirective;
  used: boolean;
  /** host[:port] of each usable server, computed (and reported) once. */
  servers?: string[];
}

export function importNginx(directives: readonly NginxDirective[], opts: ImportOptions = {}): ImportResult {
  return new Importer(opts).run(directives);
}

class Importer {
  readonly #findings: NginxFinding[] = [];
  readonly #seen = new Set<string>();
  readonly #upstreams = new Map<string, UpstreamBlock>();
  readonly #settings: Setting[] = [];
  /** set_real_ip_from, with the server block it was set in (none: http level). */
  readonly #trusted: { addr: string; d: NginxDirective; server?: number }[] = [];
  readonly #servers: ServerDraft[] = [];
  #httpHeaders: HeaderRule[] | undefined;
  #httpBodySize: number | undefined;
  #connectionVars = new Set<string>([MPGATE_VARIABLES.connectionUpgrade, 'connection_upgrade']);
  /** http-level ssl_certificate / _key, add_header, `ssl on`, `http2 on` (inherited by servers). */
  #httpCerts: NginxDirective[] = [];
  #httpKeys: NginxDirective[] = [];
  #httpCertsUsed = false;
  #httpHstsUsed = false;
  /** No HTTPS listen had HTTP/2: https.http2 is false, with a comment in the YAML. */
  #http2Off = false;
  #httpAddHeaders: NginxDirective[] = [];
  #httpSslOn = false;
  #httpHttp2 = false;
  /** ssl_protocols, ssl_ciphers, ssl_conf_command Ciphersuites: one value for every site in mpgate. */
  readonly #tlsSettings: { protocols: TlsSetting[]; ciphers: TlsSetting[]; suites: TlsSetting[] } = { protocols: [], ciphers: [], suites: [] };
  /** Servers of the upstream blocks in use, to tell whether a max_fails applies to all of them. */
  #upstreamServerCount = 0;

  constructor(readonly opts: ImportOptions) {
    for (const f of opts.findings ?? []) this.#report(f.file, f.line, f.directive, f.message);
  }

  #report(file: string, line: number, directive: string, message: string): void {
    const key = `${file}\0${line}\0${directive}\0${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#findings.push({ file, line, directive, message });
  }

  #find(d: NginxDirective, message: string): void {
    this.#report(d.file, d.line, d.name, message);
  }

  /** The generic finding for a directive nothing here translates. */
  #untranslated(d: NginxDirective, context: string): void {
    if (d.name.startsWith('ssl_') || d.name === 'ssl' || d.name === 'http2') return this.#find(d, SSL_MESSAGES[d.name] ?? `${TLS_DEFAULTS} (TLS is set per HTTPS listener and site in mpgate); not translated`);
    if (d.name.startsWith('proxy_cache')) return this.#find(d, MESSAGES.proxy_cache!);
    if (d.name.startsWith('gzip')) return this.#find(d, MESSAGES.gzip!);
    if (d.name === 'return') return this.#find(d, returnMessage(d));
    if (d.name === 'include') return this.#find(d, 'not followed (only relative includes next to the imported file are read); its directives are not translated');
    this.#find(d, MESSAGES[d.name] ?? `not translated (no mpgate equivalent in ${context})`);
  }

  run(top: readonly NginxDirective[]): ImportResult {
    const http: NginxDirective[] = [];
    const hasHttp = top.some((d) => d.name === 'http' && d.block);
    for (const d of top) {
      if (d.name === 'http' && d.block) http.push(...d.block);
      else if (d.name === 'events' || PROCESS.has(d.name)) this.#find(d, 'nginx process setting; mpgate has none (not translated)');
      else if (d.name === 'stream' || d.name === 'mail') this.#find(d, `the ${d.name} module (TCP/mail proxying) is not in mpgate; not translated`);
      else if (hasHttp && d.name !== 'error_log') this.#untranslated(d, 'the main context');
      else if (hasHttp) this.#find(d, MESSAGES.error_log!);
      // A file without http { } is a snippet included inside one (conf.d/, sites-enabled/).
      else http.push(d);
    }
    this.#http(http);
    return this.#assemble();
  }

  // ---- http context ------------------------------------------------------------------------------

  #http(list: NginxDirective[]): void {
    for (const d of list) if (d.name === 'upstream' && d.block && d.args.length === 1) this.#upstreams.set(d.args[0]!, { d, used: false });
    const headers = list.filter((d) => d.name === 'proxy_set_header');
    this.#httpHeaders = headers.length ? headers.map((d) => this.#classifyHeader(d)) : undefined;
    // Inherited by every server without its own, wherever they stand in the http block.
    this.#httpCerts = list.filter((d) => d.name === 'ssl_certificate');
    this.#httpKeys = list.filter((d) => d.name === 'ssl_certificate_key');
    this.#httpAddHeaders = list.filter((d) => d.name === 'add_header');
    this.#httpSslOn = list.some((d) => d.name === 'ssl' && d.args[0] === 'on');
    this.#httpHttp2 = list.some((d) => d.name === 'http2' && d.args[0] === 'on');
    for (const d of list) {
      switch (d.name) {
        case 'server':
          if (d.block) this.#servers.push(this.#server(d, this.#servers.length));
          else this.#find(d, 'a server directive without a block; not translated');
          break;
        case 'upstream':
          if (!d.block || d.args.length !== 1) this.#untranslated(d, 'the http context');
          break;
        case 'proxy_set_header':
          break;
        case 'client_max_body_size':
          this.#httpBodySize = this.#bodySize(d) ?? this.#httpBodySize;
          break;
        case 'map':
        case 'geo':
          this.#mapOrGeo(d);
          break;
        case 'ssl_certificate':
        case 'ssl_certificate_key':
          // Taken by the HTTPS servers that inherit them (#tls); unused ones are reported in #assemble.
          break;
        case 'add_header':
          // An HSTS header is read per server (#hsts); other headers are not mpgate's.
          if (!isHstsHeader(d)) this.#untranslated(d, 'the http context');
          break;
        default:
          if (!this.#tlsDirective(d, 'http') && !this.#common(d, 'http')) this.#untranslated(d, 'the http context');
      }
    }
    for (const [name, u] of this.#upstreams) if (!u.used) this.#find(u.d, `upstream "${name}" is not used by any translated proxy_pass; not translated`);
  }

  /**
   * TLS directives at http or server level (certificates and add_header are read apart). Returns
   * false when `d` is none of them.
   */
  #tlsDirective(d: NginxDirective, level: 'http' | 'server', draft?: ServerDraft): boolean {
    const on = d.args.length === 1 && d.args[0] === 'on';
    const off = d.args.length === 1 && d.args[0] === 'off';
    switch (d.name) {
      case 'ssl':
      case 'http2':
        // `ssl on` (before nginx 1.25) makes every listen an HTTPS one; `http2 on` (nginx 1.25.1+)
        // is the newer form of listen … http2. Both are read where listens are.
        if (!on && !off) this.#find(d, `expects on or off; not translated`);
        return true;
      case 'ssl_protocols':
        this.#tlsSettings.protocols.push({ d, level });
        return true;
      case 'ssl_ciphers':
        this.#tlsSettings.ciphers.push({ d, level });
        return true;
      case 'ssl_conf_command':
        if (d.args.length === 2 && d.args[0]!.toLowerCase() === 'ciphersuites') this.#tlsSettings.suites.push({ d, level });
        else this.#untranslated(d, `the ${level} context`);
        return true;
      case 'ssl_prefer_server_ciphers':
        // mpgate prefers its own order too (honorCipherOrder).
        if (!on) this.#untranslated(d, `the ${level} context`);
        return true;
      case 'ssl_reject_handshake':
        if (on && draft) draft.rejectHandshake = d;
        else if (!off) this.#find(d, 'only a catch-all default server\'s is translated (https.unknownSni: reject); not translated');
        return true;
      default:
        if (!d.name.startsWith('ssl_')) return false;
        this.#untranslated(d, `the ${level} context`);
        return true;
    }
  }

  /** `map $http_upgrade $connection_upgrade` (WebSocket) and the export's own maps are understood. */
  #mapOrGeo(d: NginxDirective): void {
    const out = d.args[d.args.length - 1]?.replace(/^\$/, '') ?? '';
    if (d.name === 'map' && d.args[0] === '$http_upgrade') {
      this.#connectionVars.add(out);
      return;
    }
    if (out.startsWith('mpgate_')) return;
    this.#find(d, `variables from ${d.name} blocks are not in mpgate; not translated`);
  }

  /**
   * Directives valid at http, server and location level. Returns false when `d` is none of them.
   * `server` is the index of the server block at server level.
   */
  #common(d: NginxDirective, level: 'http' | 'server' | 'location', server?: number): boolean {
    const accepted = ALREADY.get(d.name);
    if (accepted) {
      if (!accepted(d.args)) this.#untranslated(d, `the ${level} context`);
      return true;
    }
    const keys = TIMEOUTS[d.name];
    if (keys) {
      if (level === 'location') {
        this.#find(d, 'mpgate has one value for all sites; a location\'s own value is not applied');
        return true;
      }
      const ms = parseNginxTime(d.args[0] ?? '');
      if (ms === undefined || (d.name === 'keepalive_timeout' ? d.args.length > 2 : d.args.length !== 1)) {
        this.#find(d, `cannot read "${d.args.join(' ')}" as a time; not translated`);
        return true;
      }
      if (d.args.length === 2) this.#find(d, `the second value (the Keep-Alive response header) is not translated`);
      for (const key of keys) this.#settings.push({ key, value: ms, text: d.args[0]!, d, level, ...(server === undefined ? {} : { server }) });
      return true;
    }
    if (d.name === 'set_real_ip_from') {
      const addr = d.args[0] ?? '';
      const ok = configSchema.shape.trustedProxies.safeParse([addr]).success;
      if (!ok) this.#find(d, `"${addr}" is not an IP address or CIDR mpgate can trust (unix: and host names are not supported); not translated`);
      else this.#trusted.push({ addr, d, ...(server === undefined ? {} : { server }) });
      return true;
    }
    return false;
  }

  #bodySize(d: NginxDirective): number | undefined {
    const bytes = parseNginxSize(d.args[0] ?? '');
    if (bytes === undefined || d.args.length !== 1) {
      this.#find(d, `cannot read "${d.args.join(' ')}" as a size; not translated`);
      return undefined;
    }
    if (bytes === 0) {
      this.#find(d, '0 means no limit in nginx; mpgate always has one, so the default (10MiB) stays: set maxBodySize to the largest upload you expect');
      return undefined;
    }
    return bytes;
  }

  // ---- proxy_set_header --------------------------------------------------------------------------

  #classifyHeader(d: NginxDirective): HeaderRule {
    if (d.args.length !== 2) {
      this.#find(d, 'expects a name and a value; not translated');
      return { kind: 'skip' };
    }
    const name = d.args[0]!;
    // The export writes a literal "$" as ${mpgate_dollar} (nginx has no escape for it).
    const raw = d.args[1]!.replaceAll(`\${${MPGATE_VARIABLES.dollar}}`, '\0');
    const hasVariable = raw.includes('$');
    const value = raw.replaceAll('\0', '$');
    const lower = name.toLowerCase();
    const is = (...values: string[]) => values.includes(value);
    const v = MPGATE_VARIABLES;
    const literal = (): HeaderRule => {
      if (value === '') {
        this.#find(d, `an empty value removes ${name} in nginx; mpgate cannot remove a request header (not translated)`);
        return { kind: 'skip' };
      }
      const route = routeSchema.safeParse({ upstream: 'http://x', setHeaders: { [name]: value } });
      if (!route.success) {
        this.#find(d, `"${name}: ${value}" is not a valid header for setHeaders; not translated`);
        return { kind: 'skip' };
      }
      return { kind: 'set', name, value };
    };
    switch (lower) {
      case 'host':
        if (is('$host', '$http_host')) return { kind: 'host', preserve: true };
        if (is('$proxy_host')) return { kind: 'host', preserve: false };
        if (!hasVariable) return literal();
        this.#find(d, `"${d.args[1]}" is not translated: the client's Host is sent as it came (preserveHost: true)`);
        return { kind: 'host', preserve: true };
      case 'x-real-ip':
        if (is('$remote_addr')) return { kind: 'builtin' };
        break;
      case 'x-forwarded-for':
        if (is('$proxy_add_x_forwarded_for', '$remote_addr', `$${v.forwardedFor}`)) return { kind: 'builtin' };
        break;
      case 'x-forwarded-proto':
        if (is('$scheme', `$${v.forwardedProto}`)) return { kind: 'builtin' };
        if (!hasVariable) return literal();
        break;
      case 'x-forwarded-host':
        if (is('$host', '$http_host', `$${v.forwardedHost}`)) return { kind: 'builtin' };
        if (!hasVariable) return literal();
        break;
      case 'upgrade':
      case 'connection':
        // Hop-by-hop: mpgate manages Connection itself and relays WebSocket upgrades on its own.
        if (lower === 'upgrade' || !hasVariable || [...this.#connectionVars].some((n) => is(`$${n}`)) || is('$http_connection')) return { kind: 'builtin' };
        break;
      default:
        if (!hasVariable) return literal();
    }
    if (['x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].includes(lower)) {
      this.#find(d, `mpgate always sets ${name} itself (the client address/scheme/host, trustedProxies decides whose claims count); "${d.args[1]}" is not translated`);
    } else {
      this.#find(d, `values with nginx variables are not in mpgate (setHeaders takes fixed values); not translated`);
    }
    return { kind: 'skip' };
  }

  // ---- server ------------------------------------------------------------------------------------

  #server(d: NginxDirective, index: number): ServerDraft {
    const body = d.block!;
    const draft: ServerDraft = {
      d, index, hosts: [], names: [], routes: [], comments: [], listens: [], httpsListens: [], http2: this.#httpHttp2,
      certs: [], keys: [], addHeaders: [], twins: [], defaultPlain: false, defaultTls: false, only404: false, translated: false,
    };
    const sslOn = body.some((x) => x.name === 'ssl' && x.args[0] === 'on') || (this.#httpSslOn && !body.some((x) => x.name === 'ssl' && x.args[0] === 'off'));
    if (body.some((x) => x.name === 'http2')) draft.http2 = body.some((x) => x.name === 'http2' && x.args[0] === 'on');
    const serverHeaders = body.filter((x) => x.name === 'proxy_set_header');
    const headers = serverHeaders.length ? serverHeaders.map((x) => this.#classifyHeader(x)) : this.#httpHeaders;
    const locations: LocationDraft[] = [];
    const ifs: NginxDirective[] = [];
    let returns: NginxDirective | undefined;
    let sawListen = false;
    for (const x of body) {
      switch (x.name) {
        case 'listen':
          sawListen = true;
          this.#listen(x, draft, sslOn);
          break;
        case 'server_name':
          draft.names.push(...x.args);
          break;
        case 'location':
          if (x.block) locations.push(this.#location(x, headers));
          else this.#find(x, 'a location without a block; not translated');
          break;
        case 'proxy_set_header':
          break;
        case 'client_max_body_size':
          draft.maxBodySize = this.#bodySize(x) ?? draft.maxBodySize;
          break;
        case 'ssl_certificate':
          draft.certs.push(x);
          break;
        case 'ssl_certificate_key':
          draft.keys.push(x);
          break;
        case 'add_header':
          draft.addHeaders.push(x);
          if (!isHstsHeader(x)) this.#untranslated(x, 'a server block');
          break;
        case 'if':
          // Redirect forms are recognised below; any other `if` is reported there.
          if (x.block) ifs.push(x);
          else this.#untranslated(x, 'a server block');
          break;
        case 'return':
          returns ??= x;
          break;
        case 'proxy_pass':
          this.#find(x, 'proxy_pass belongs in a location; not translated');
          break;
        default:
          if (!this.#tlsDirective(x, 'server', draft) && !this.#common(x, 'server', index)) this.#untranslated(x, 'a server block');
      }
    }
    // nginx's default when a server has no listen: *:80 (over TLS under `ssl on`).
    if (!sawListen) (sslOn ? draft.httpsListens : draft.listens).push({ addr: '0.0.0.0:80', dual: false, d });
    this.#hosts(draft);
    this.#tls(draft);
    this.#hsts(draft);

    // Redirects to https: a whole server (return 30x https://…) or certbot's per-name `if`s.
    const understood = new Set<NginxDirective>();
    const plainOnly = draft.httpsListens.length === 0;
    const main = returns && plainOnly ? this.#httpsRedirect(returns, draft) : undefined;
    const hostIfs: { name: string; d: NginxDirective; r: HttpsRedirect }[] = [];
    for (const x of ifs) {
      const cond = ifCondition(x);
      const inner = x.block!.length === 1 && x.block![0]!.name === 'return' ? x.block![0]! : undefined;
      const target = inner ? parseHttpsRedirect(inner) : undefined;
      if (!cond || !target) continue;
      if (cond.variable === '$host' && cond.op === '=' && plainOnly && !cond.value.includes('$')) {
        const r = this.#httpsRedirect(inner!, draft, [cond.value]);
        if (r) {
          hostIfs.push({ name: cond.value, d: x, r });
          understood.add(x);
        }
      } else if (cond.variable === '$request_method' && cond.op === '!~' && /^\^\((\?:)?GET\|HEAD\)\$$/.test(cond.value) && main && target.code === 308 && target.host === main.host) {
        // The export's own form: 308 for methods other than GET/HEAD, like mpgate.
        understood.add(x);
      } else if (cond.variable === '$scheme' && ((cond.op === '=' && cond.value === 'http') || (cond.op === '!=' && cond.value === 'https')) && !plainOnly && draft.listens.length > 0) {
        draft.schemeRedirect = x;
        understood.add(x);
      }
    }
    for (const x of ifs) if (!understood.has(x)) this.#untranslated(x, 'a server block');
    const unreachable = () => {
      if (locations.length) this.#find(returns!, `the server-level return answers before any location (${locations.length} location${locations.length === 1 ? ' is' : 's are'} unreachable in nginx too); not translated`);
    };
    if (main) {
      draft.redirect = main;
      unreachable();
      return draft;
    }
    const plain404 = returns !== undefined && returns.args.length === 1 && returns.args[0] === '404';
    if (hostIfs.length > 0 && (returns === undefined || plain404)) {
      // certbot: `if ($host = a.com) { return 301 https://$host$request_uri; }` … `return 404;`
      draft.redirect = { ...hostIfs[0]!.r, names: hostIfs.map((h) => h.name), d: hostIfs[0]!.d };
      if (returns) unreachable();
      return draft;
    }
    for (const h of hostIfs) this.#untranslated(h.d, 'a server block');
    if (returns && returns.args.length === 1 && returns.args[0] === '503' && locations.length > 0) {
      // Every request gets 503 in nginx, the locations stay for when it comes back: a disabled site.
      draft.disabled = returns;
    } else if (returns) {
      // A server-level return answers before any location is looked at.
      if (plain404 && locations.length === 0) {
        draft.only404 = true;
        if (!draft.defaultServer) this.#find(returns, 'a plain 404 for these names: mpgate answers 404 for names it does not serve, so nothing to translate');
      } else {
        this.#find(returns, `${returnMessage(returns)}; the whole server block is not translated${locations.length ? ` (its ${locations.length} location${locations.length === 1 ? ' is' : 's are'} unreachable in nginx too)` : ''}`);
      }
      return draft;
    }
    draft.routes = this.#routes(locations);
    if (draft.routes.length === 0) {
      this.#find(d, 'server block not translated: it has no location with a proxy_pass mpgate can serve');
    } else if (draft.hosts.length === 0) {
      this.#find(d, draft.names.length ? 'server block not translated: none of its server_name values can be used by mpgate' : 'server block not translated: it has no server_name (in nginx it only answers as the default server or for requests without Host)');
    } else {
      draft.translated = true;
      if (draft.names.length === 0) this.#find(d, 'no server_name: the site is named "_" (it answers unknown hosts as defaultSite)');
    }
    return draft;
  }

  /**
   * `return` as a redirect of plain HTTP to the same URL over https, for `names` (default: the
   * server's). Reports what mpgate's redirect does differently; undefined when it is not one.
   */
  #httpsRedirect(ret: NginxDirective, draft: ServerDraft, names?: string[]): HttpsRedirect | undefined {
    const target = parseHttpsRedirect(ret);
    if (!target) return undefined;
    const list = names ?? draft.hosts;
    if (list.length === 0) return undefined;
    if (target.code !== 301 && target.code !== 308) {
      this.#find(ret, `a temporary redirect (${target.code}) becomes mpgate's permanent one (301 for GET/HEAD, 308 for other methods)`);
    }
    const literal = target.host.startsWith('$') ? undefined : target.host.toLowerCase();
    if (target.host === '$server_name' && draft.names.length > 1 && names === undefined) {
      this.#find(ret, `nginx redirects every name here to https://${draft.names[0]}; mpgate redirects each name to itself`);
    } else if (literal !== undefined && list.some((n) => n.toLowerCase() !== literal)) {
      this.#find(ret, `nginx redirects ${list.length === 1 ? list[0] : 'every name here'} to https://${target.host}; mpgate redirects each name to itself`);
    }
    return { names: list, d: ret, host: target.host, ...(target.port === undefined ? {} : { port: target.port }) };
  }

  #listen(d: NginxDirective, draft: ServerDraft, sslOn: boolean): void {
    const [addr = '', ...params] = d.args;
    let ssl = sslOn;
    let dual = false;
    let http2 = false;
    let isDefault = false;
    for (const p of params) {
      if (p === 'default_server' || p === 'default') isDefault = true;
      else if (p === 'ssl') ssl = true;
      else if (p === 'ipv6only=off') dual = true;
      else if (p === 'ipv6only=on') continue;
      else if (p === 'http2') http2 = true;
      else if (p === 'quic') this.#find(d, 'quic: HTTP/3 is not in mpgate (HTTP/2 and HTTP/1.1 over TLS); not translated');
      else if (p === 'proxy_protocol') this.#find(d, 'proxy_protocol: mpgate does not read the PROXY protocol; not translated');
      else this.#find(d, `listen parameter "${p}" not translated`);
    }
    const normal = normalizeListen(addr);
    if (normal === undefined || !configSchema.shape.listen.safeParse([normal]).success) {
      this.#find(d, `"${addr}" is not an address mpgate can listen on (host:port); not translated`);
      return;
    }
    if (http2 && !ssl) this.#find(d, 'http2 without ssl (cleartext HTTP/2, h2c) is not in mpgate; not translated');
    if (http2 && ssl) draft.http2 = true;
    if (isDefault) {
      draft.defaultServer ??= d;
      if (ssl) draft.defaultTls = true;
      else draft.defaultPlain = true;
    }
    (ssl ? draft.httpsListens : draft.listens).push({ addr: normal, dual: dual && normal.startsWith('['), d });
  }

  /** The certificate files in effect for an HTTPS server: its own, else the http level's. */
  #tls(draft: ServerDraft): void {
    if (draft.httpsListens.length === 0) {
      for (const x of [...draft.certs, ...draft.keys]) this.#find(x, 'this server has no listen … ssl, so nginx does not use it either; not translated');
      return;
    }
    const inherited = draft.certs.length === 0 && draft.keys.length === 0;
    const certs = draft.certs.length ? draft.certs : this.#httpCerts;
    const keys = draft.keys.length ? draft.keys : this.#httpKeys;
    if (inherited && certs.length + keys.length > 0) this.#httpCertsUsed = true;
    const listen = draft.httpsListens[0]!.d;
    if (certs.length === 0 && keys.length === 0) {
      // A catch-all that refuses unknown names needs none (ssl_reject_handshake).
      if (!draft.rejectHandshake) {
        this.#find(listen, 'no ssl_certificate for this HTTPS server: the site is imported without tls (give it tls: {cert, key}, or tls: auto for a certificate from Let\'s Encrypt)');
      }
      return;
    }
    if (certs.length === 0 || keys.length === 0) {
      const [have, missing] = certs.length === 0 ? [keys[0]!, 'ssl_certificate'] : [certs[0]!, 'ssl_certificate_key'];
      this.#find(have, `no ${missing} goes with it: the site is imported without tls (tls needs both cert and key)`);
      return;
    }
    const [cert, key] = [certs[0]!, keys[0]!];
    for (const x of [cert, key]) {
      if (x.args.length !== 1 || x.args[0] === '' || x.args[0]!.includes('$') || x.args[0]!.startsWith('data:')) {
        this.#find(x, `"${x.args.join(' ')}": only a file name is translated (no variables or data:); the site is imported without tls`);
        return;
      }
    }
    for (const x of [...certs.slice(1), ...keys.slice(1)]) {
      this.#find(x, `mpgate serves one certificate per site: the first pair (${cert.args[0]}) is used; not translated`);
    }
    for (const x of [cert, key]) {
      if (!x.args[0]!.startsWith('/')) this.#find(x, `relative path: nginx reads it from its configuration directory (/etc/nginx on Debian), mpgate from the directory of its config file; written as given, check it`);
    }
    draft.tls = { cert: cert.args[0]!, key: key.args[0]! };
  }

  /** Strict-Transport-Security from the add_header list in effect (its own, else the http level's). */
  #hsts(draft: ServerDraft): void {
    const list = draft.addHeaders.length ? draft.addHeaders : this.#httpAddHeaders;
    const d = list.filter(isHstsHeader).pop();
    if (!d) return;
    if (draft.httpsListens.length === 0) {
      // Redirect servers often carry it too; browsers ignore it over plain HTTP.
      if (draft.addHeaders.includes(d)) this.#find(d, 'browsers ignore Strict-Transport-Security over plain HTTP, and mpgate sends it over HTTPS only; not translated');
      return;
    }
    const parsed = parseHsts(d.args[1] ?? '');
    if (typeof parsed === 'string') {
      this.#find(d, `${parsed}; not translated`);
      return;
    }
    if (d.args.length > 3 || (d.args.length === 3 && d.args[2] !== 'always')) {
      this.#find(d, `"${d.args.join(' ')}" is not translated`);
      return;
    }
    if (!draft.addHeaders.includes(d)) this.#httpHstsUsed = true;
    draft.hsts = parsed;
  }

  #hosts(draft: ServerDraft): void {
    const d = draft.d;
    const nameDirective = d.block!.find((x) => x.name === 'server_name') ?? d;
    for (const name of draft.names) {
      if (name === '') {
        this.#find(nameDirective, 'the empty name (requests without Host) is not translated: mpgate sends those to defaultSite');
        continue;
      }
      if (!name.startsWith('~') && name.includes('$')) {
        this.#find(nameDirective, `"${name}": variables are not in mpgate; not translated`);
        continue;
      }
      if (!hostPattern.safeParse(name).success) {
        this.#find(nameDirective, `"${name}" is not a host name, wildcard or (JavaScript) regex mpgate accepts; not translated`);
        continue;
      }
      draft.hosts.push(name);
    }
    if (draft.names.length === 0 && draft.defaultServer) {
      // No server_name at all means "" in nginx; a default server still needs a name here
      // (reported in #server once it is known to become a site).
      draft.hosts.push('_');
    }
  }

  // ---- location ----------------------------------------------------------------------------------

  #location(d: NginxDirective, inherited: HeaderRule[] | undefined): LocationDraft {
    let [mod, path] = d.args.length >= 2 ? [d.args[0]!, d.args[1]!] : ['', d.args[0] ?? ''];
    // nginx also accepts the modifier glued on: "location =/x".
    for (const m of ['^~', '~*', '=', '~']) {
      if (d.args.length === 1 && path.startsWith(m) && path.length > m.length) {
        mod = m;
        path = path.slice(m.length);
        break;
      }
    }
    const none: LocationDraft = { d, path, exact: false, result: { kind: 'none' } };
    if (mod === '~' || mod === '~*') {
      this.#find(d, `regex location "${d.args.join(' ')}" is not translated, nor anything in it (mpgate routes by path prefix)`);
      return none;
    }
    if (path.startsWith('@')) {
      this.#find(d, `named location ${path} is not translated, nor anything in it`);
      return none;
    }
    if ((mod !== '' && mod !== '=' && mod !== '^~') || !path.startsWith('/') || d.args.length > 2) {
      this.#find(d, `"location ${d.args.join(' ')}" is not a prefix mpgate can route; not translated`);
      return none;
    }
    const exact = mod === '=';
    const body = d.block!;
    const own = body.filter((x) => x.name === 'proxy_set_header');
    const headers = own.length ? own.map((x) => this.#classifyHeader(x)) : inherited;
    let proxyPass: NginxDirective | undefined;
    let rewrite: NginxDirective | undefined;
    let returns: NginxDirective | undefined;
    for (const x of body) {
      switch (x.name) {
        case 'proxy_pass':
          proxyPass ??= x;
          break;
        case 'proxy_set_header':
          break;
        case 'rewrite':
          if (rewrite === undefined && stripRewrite(x, path) !== undefined) rewrite = x;
          else this.#untranslated(x, 'a location');
          break;
        case 'return':
          returns ??= x;
          break;
        case 'location':
          this.#find(x, 'nested locations are not translated');
          break;
        case 'client_max_body_size':
          this.#find(x, 'mpgate has no per-route body limit (the site\'s maxBodySize applies); not translated');
          break;
        default:
          if (!this.#common(x, 'location')) this.#untranslated(x, 'a location');
      }
    }
    if (returns) {
      if (returns.args.length === 1 && returns.args[0] === '404') return { d, path, exact, result: { kind: '404' } };
      this.#find(returns, returnMessage(returns));
      this.#find(d, `location ${d.args.join(' ')} not translated (it answers with return${proxyPass ? ' before proxy_pass is reached' : ''})`);
      return { ...none, exact };
    }
    if (!proxyPass) {
      this.#find(d, `location ${d.args.join(' ')} not translated: no proxy_pass (mpgate routes only proxy); ${exact ? 'that path goes' : 'its paths go'} to the next shorter route`);
      return { ...none, exact };
    }
    const route = this.#proxyRoute(proxyPass, path, exact, rewrite, headers);
    if (!route) return { ...none, exact };
    return { d, path, exact, result: route };
  }

  /** proxy_pass (+ the headers in effect) → a route for `path`, and what nginx does for an exact location. */
  #proxyRoute(pp: NginxDirective, path: string, exact: boolean, rewrite: NginxDirective | undefined, headers: HeaderRule[] | undefined): { kind: 'proxy'; route: RouteInput; effect: Effect } | undefined {
    const target = pp.args[0] ?? '';
    if (pp.args.length !== 1 || target.includes('$')) {
      this.#find(pp, `"${pp.args.join(' ')}": proxy_pass with variables is not translated`);
      return undefined;
    }
    const m = /^(https?):\/\/([^/?#]+)([^?#]*)$/i.exec(target);
    if (!m) {
      this.#find(pp, `"${target}" is not an http(s) URL mpgate can proxy to (unix sockets and queries are not supported); not translated`);
      return undefined;
    }
    const scheme = m[1]!.toLowerCase();
    const authority = m[2]!;
    if (authority.toLowerCase().startsWith('unix:')) {
      this.#find(pp, `"${target}": unix-socket upstreams are not in mpgate; not translated`);
      return undefined;
    }
    const uri = m[3] === '' ? undefined : m[3]!;
    const fromBlock = this.#upstreams.has(authority);
    const servers = this.#upstreamServers(authority, pp);
    if (servers === undefined) return undefined;
    const origins: string[] = [];
    for (const s of servers) {
      // Upstream-block servers without a port use 80 even for https (nginx's default).
      const url = `${scheme}://${s}${fromBlock && scheme === 'https' && !/:\d+$/.test(s) ? ':80' : ''}`;
      if (!upstreamUrl.safeParse(url).success) {
        this.#find(pp, `"${url}" is not an upstream URL mpgate accepts; not translated`);
        return undefined;
      }
      origins.push(new URL(url).origin);
    }

    let stripPrefix = false;
    let base = '';
    const rw = rewrite ? stripRewrite(rewrite, path) : undefined;
    if (uri !== undefined && rw !== undefined) this.#find(rewrite!, 'a rewrite next to a proxy_pass with a URI is not translated');
    if (uri === undefined && rw !== undefined) {
      stripPrefix = true;
      base = rw;
    } else if (uri === undefined || uri === path) {
      // Without a URI nginx passes the request path unchanged.
    } else if (exact) {
      // For an exact location nginx sends the URI instead of the one path; as a prefix route that
      // is stripPrefix onto the URI (compared again in #routes, where it usually disappears).
      stripPrefix = true;
      base = uri;
    } else if (uri.endsWith(path)) {
      // /api/ → http://h/v1/api/ replaces "/api/" with "/v1/api/": a base path in front of the whole path.
      base = uri.slice(0, uri.length - path.length);
    } else {
      stripPrefix = true;
      base = uri;
      if (path.endsWith('/') !== uri.endsWith('/')) {
        const sample = `${path}${path.endsWith('/') ? '' : '/'}x`;
        this.#find(pp, `approximated: nginx replaces "${path}" with "${uri}" literally (${sample} → ${uri}${sample.slice(path.length)}); mpgate strips "${path}" and joins with one slash (→ ${uri.replace(/\/+$/, '')}/x)`);
      }
    }
    // "proxy_pass http://h/" with stripPrefix: the lone "/" adds nothing in mpgate.
    const upstreams = origins.map((o) => `${o}${base === '/' ? '' : base}`);
    let preserveHost = false;
    const setHeaders: Record<string, string> = {};
    for (const rule of headers ?? []) {
      if (rule.kind === 'host') preserveHost = rule.preserve;
      else if (rule.kind === 'set') {
        // Case-insensitively, the last one wins (mpgate sends one field per name).
        for (const k of Object.keys(setHeaders)) if (k.toLowerCase() === rule.name.toLowerCase()) delete setHeaders[k];
        setHeaders[rule.name] = rule.value;
      }
    }
    const route: RouteInput = { path, upstream: upstreams.length === 1 ? upstreams[0]! : upstreams };
    if (stripPrefix) route.stripPrefix = true;
    if (!preserveHost) route.preserveHost = false;
    if (Object.keys(setHeaders).length) route.setHeaders = setHeaders;
    // What nginx sends for exactly `path` (used for `location =`).
    let nginxPath = uri ?? path;
    if (uri === undefined && rw !== undefined) nginxPath = `${rw}/${path.slice(path.replace(/\/$/, '').length).replace(/^\//, '')}`;
    const effect: Effect = { urls: origins.map((o) => `${o}${nginxPath}`), preserveHost, setHeaders: headerKey(setHeaders) };
    return { kind: 'proxy', route, effect };
  }

  /** host:port for proxy_pass's authority: an upstream block's servers, or the authority itself. */
  #upstreamServers(authority: string, pp: NginxDirective): string[] | undefined {
    const block = this.#upstreams.get(authority);
    if (!block) return [authority];
    block.used = true;
    if (block.servers === undefined) {
      block.servers = [];
      for (const x of block.d.block!) {
        if (x.name === 'server') {
          const [addr = '', ...params] = x.args;
          if (addr.startsWith('unix:')) {
            this.#find(x, 'unix-socket upstreams are not in mpgate; not translated');
            continue;
          }
          let skip = false;
          for (const p of params) {
            const [k, v = ''] = p.split('=');
            if (k === 'down' || k === 'backup') {
              skip = true;
              this.#find(x, k === 'down' ? 'marked down: left out' : 'backup servers are not in mpgate (every upstream in the list is used round-robin, with failover): left out; add it to the list to use it');
            } else if (k === 'max_fails' && /^\d+$/.test(v)) {
              if (v === '0') this.#find(x, 'max_fails=0 (never mark down) is not in mpgate; not translated');
              else this.#settings.push({ key: 'upstream.maxFails', value: Number(v), text: v, d: x, level: 'upstream' });
            } else if (k === 'fail_timeout' && parseNginxTime(v) !== undefined) {
              this.#settings.push({ key: 'upstream.failTimeout', value: parseNginxTime(v)!, text: v, d: x, level: 'upstream' });
            } else if (k === 'weight') {
              this.#find(x, `${p}: mpgate balances round-robin without weights; not translated`);
            } else {
              this.#find(x, `server parameter "${p}" not translated`);
            }
          }
          if (!skip) block.servers.push(addr);
          if (!skip) this.#upstreamServerCount++;
        } else if (x.name === 'keepalive' || x.name === 'keepalive_timeout' || x.name === 'keepalive_requests' || x.name === 'keepalive_time') {
          // mpgate pools and reuses upstream connections itself.
        } else if (['least_conn', 'ip_hash', 'hash', 'random', 'least_time'].includes(x.name)) {
          this.#find(x, 'mpgate balances round-robin (with failover); not translated');
        } else {
          this.#untranslated(x, 'an upstream block');
        }
      }
      if (block.servers.length === 0) this.#find(block.d, `upstream "${authority}" has no server mpgate can use; the locations using it are not translated`);
    }
    return block.servers.length ? block.servers : undefined;
  }

  /**
   * A server's locations → its routes. Exact locations and `return 404` locations are kept only when
   * mpgate would not already do the same for those paths.
   */
  #routes(locations: LocationDraft[]): RouteInput[] {
    const routes: RouteDraft[] = [];
    for (const loc of locations) {
      if (loc.exact || loc.result.kind !== 'proxy') continue;
      const dup = routes.find((r) => r.path === loc.path);
      if (dup) {
        this.#find(loc.d, `location ${loc.path} is already a route (line ${dup.d.line}); not translated`);
        continue;
      }
      routes.push({ d: loc.d, path: loc.path, route: loc.result.route });
    }
    const prefixRoutes = routes.map((r) => r.route);
    for (const loc of locations) {
      if (loc.result.kind === '404') {
        const effect = loc.exact ? mpgateEffect(prefixRoutes, loc.path) : coveredBy(prefixRoutes, loc.path);
        if (effect === undefined || ('status' in effect)) continue;
        const shorter = matchRoute(prefixRoutes, loc.path);
        this.#find(loc.d, `"return 404" for ${loc.path} is not translated: mpgate sends ${loc.exact ? 'this path' : 'these paths'} to the route ${shorter?.path ?? '/'}`);
        continue;
      }
      if (!loc.exact || loc.result.kind !== 'proxy') continue;
      if (sameEffect(loc.result.effect, mpgateEffect(prefixRoutes, loc.path))) continue;
      const dup = routes.find((r) => r.path === loc.path);
      if (dup) {
        this.#find(loc.d, `"location = ${loc.path}" differs from the route for ${loc.path} (line ${dup.d.line}) and mpgate has prefix routes only; not translated`);
        continue;
      }
      this.#find(loc.d, `"location = ${loc.path}" matches only ${loc.path} in nginx; mpgate has prefix routes only, so ${loc.path}/… and ${loc.path}x… go there too`);
      routes.push({ d: loc.d, path: loc.path, route: loc.result.route });
    }
    return routes.map((r) => r.route);
  }

  // ---- the config --------------------------------------------------------------------------------

  #assemble(): ImportResult {
    const servers = this.#servers;
    const sites: { draft: ServerDraft; site: SiteInput }[] = [];
    const hostKey = (h: string) => (h.startsWith('~') ? h : h.toLowerCase().replace(/^\*\./, '.'));
    const isTls = (s: ServerDraft) => s.httpsListens.length > 0;

    // A plain-HTTP server proxying names an HTTPS server also serves: in mpgate one site serving both.
    for (const p of servers) {
      if (!p.translated || isTls(p)) continue;
      const keys = new Set(p.hosts.map(hostKey));
      const t = servers.find((x) => x.translated && isTls(x) && x.mergedInto === undefined && [...keys].every((k) => x.hosts.some((h) => hostKey(h) === k)));
      if (!t) continue;
      p.mergedInto = t;
      t.twins.push(p);
      const shape = (s: ServerDraft) => JSON.stringify([s.routes, s.maxBodySize, s.disabled !== undefined]);
      if (shape(p) !== shape(t)) {
        this.#find(p.d, `this plain-HTTP server routes differently from the HTTPS server for the same names at ${where(t.d)}: mpgate has one site per name, served with the HTTPS server's routes on both (redirectHttp: false); not translated`);
      } else if (keys.size < new Set(t.hosts.map(hostKey)).size) {
        this.#find(p.d, `only some names of the HTTPS server at ${where(t.d)} are served over plain HTTP here; mpgate serves all of them on both (redirectHttp: false)`);
      }
    }

    // nginx keeps the first server for a name ("conflicting server name ... ignored"); the schema
    // refuses duplicates, keyed the same way.
    const taken = new Map<string, ServerDraft>();
    for (const draft of servers) {
      if (!draft.translated || draft.mergedInto) continue;
      const hosts: string[] = [];
      for (const h of draft.hosts) {
        const key = hostKey(h);
        const owner = taken.get(key);
        if (owner === draft) {
          // ".a.com" after "*.a.com" in the same server_name: the broader form (a.com too) wins.
          if (h.startsWith('.')) {
            const i = hosts.findIndex((x) => x.toLowerCase() === `*${h.toLowerCase()}`);
            if (i !== -1) hosts[i] = h;
          }
          continue;
        }
        if (owner) {
          const at = draft.d.block!.find((x) => x.name === 'server_name') ?? draft.d;
          if (isTls(owner) === isTls(draft)) this.#find(at, `"${h}" is already served by the server block at ${where(owner.d)} (nginx ignores it here too); left out`);
          else this.#find(at, `"${h}" is also served by the ${isTls(owner) ? 'HTTPS' : 'plain-HTTP'} server block at ${where(owner.d)}: mpgate has one site per name (that one); left out here`);
          // ".a.com" is also the exact a.com, which may still be free.
          const exact = h.startsWith('.') ? h.slice(1).toLowerCase() : undefined;
          if (exact !== undefined && !taken.has(exact)) {
            taken.set(exact, draft);
            hosts.push(h.slice(1));
          }
          continue;
        }
        taken.set(key, draft);
        hosts.push(h);
      }
      if (hosts.length === 0) {
        this.#find(draft.d, 'server block not translated: all of its names belong to earlier server blocks');
        draft.translated = false;
        continue;
      }
      const site: SiteInput = { hosts } as SiteInput;
      if (draft.maxBodySize !== undefined) site.maxBodySize = formatSize(draft.maxBodySize);
      const only = draft.routes[0]!;
      if (draft.routes.length === 1 && only.path === '/' && !only.stripPrefix && only.preserveHost !== false && !only.setHeaders) site.upstream = only.upstream;
      else site.routes = draft.routes;
      if (draft.disabled) {
        site.disabled = true;
        draft.comments.push(`return 503 (${where(draft.disabled)}): the site is disabled (mpgate answers 503 MPG_SITE_DISABLED); set disabled: false to serve it`);
      }
      if (draft.tls) {
        site.tls = { ...draft.tls };
        // Plain HTTP served too: the server listens on both, or a plain twin proxies the same names.
        if ((draft.listens.length > 0 && !draft.schemeRedirect) || draft.twins.length > 0) site.redirectHttp = false;
        if (draft.hsts !== undefined) site.hsts = draft.hsts;
        for (const t of draft.twins) draft.comments.push(`plain-HTTP server block at ${where(t.d)} for the same names: served on both (redirectHttp: false)`);
        const le = /^\/etc\/letsencrypt\/live\/([^/]+)\//.exec(draft.tls.cert);
        if (le) {
          draft.comments.push(
            `certbot's certificate for ${le[1]}: mpgate re-reads the files when certbot renews them. certbot renews through nginx or`,
            'port 80, both mpgate\'s now: "tls: auto" has mpgate get and renew it itself instead (then stop certbot\'s renewal).',
          );
        }
      } else if (draft.hsts !== undefined) {
        this.#find(draft.addHeaders.find(isHstsHeader) ?? draft.d, 'Strict-Transport-Security on a site imported without tls: not translated');
      }
      sites.push({ draft, site });
    }
    const siteOf = (d: ServerDraft | undefined) => (d ? sites.find((s) => s.draft === (d.mergedInto ?? d)) : undefined);

    // Redirect servers for names an HTTPS site serves: that site's redirectHttp, nothing of their own.
    const anyTls = sites.some((x) => x.site.tls !== undefined);
    for (const r of servers) {
      if (!r.redirect) continue;
      if (r.defaultPlain && r.redirect.names.every((n) => n === '_') && anyTls) {
        r.catchAllRedirect = true;
        continue;
      }
      const covered: string[] = [];
      const uncovered: string[] = [];
      let owner: ServerDraft | undefined;
      for (const n of r.redirect.names) {
        const o = taken.get(hostKey(n));
        if (o && siteOf(o)?.site.tls !== undefined) {
          covered.push(n);
          owner ??= o;
        } else {
          uncovered.push(n);
        }
      }
      const d = r.redirect.d;
      if (!owner) {
        this.#find(d, `redirect to https (return ${(d.name === 'if' ? d.block![0]! : d).args.join(' ')}) for ${r.redirect.names.join(' ')}, which no HTTPS server here serves: not translated (mpgate redirects the sites it serves with tls)`);
        continue;
      }
      if (uncovered.length) this.#find(d, `${uncovered.join(' ')}: no HTTPS server here serves ${uncovered.length === 1 ? 'it' : 'them'}, so this redirect is not translated for ${uncovered.length === 1 ? 'it' : 'them'}`);
      r.mergedInto = owner;
      owner.comments.push(`redirect server block at ${where(r.d)} (plain HTTP → https): mpgate redirects itself (redirectHttp, the default)`);
    }

    // listen: every plain-HTTP address of every translated (or catch-all or redirect) server, once.
    const listenFrom = servers.filter((s) => s.translated || s.only404 || s.mergedInto || s.catchAllRedirect);
    const listen = mergeListen(listenFrom.flatMap((s) => s.listens));
    this.#everyAddress(sites.map(({ draft }) => [draft, [draft, ...servers.filter((s) => s.mergedInto === draft)].flatMap((s) => s.listens)]), listenFrom.flatMap((s) => s.listens), '');

    // https: the HTTPS addresses of the sites with tls and of a catch-all, once; one TLS setup for all.
    const tlsSites = sites.filter((s) => s.site.tls !== undefined);
    const catchAlls = servers.filter((s) => s.only404 && isTls(s));
    const https: NonNullable<ConfigInput['https']> = {};
    this.#http2Off = false;
    if (tlsSites.length > 0) {
      const httpsFrom = [...tlsSites.map((s) => s.draft), ...catchAlls];
      https.listen = mergeListen(httpsFrom.flatMap((s) => s.httpsListens));
      this.#everyAddress(tlsSites.map(({ draft }) => [draft, draft.httpsListens]), httpsFrom.flatMap((s) => s.httpsListens), 'HTTPS ');
      Object.assign(https, this.#tlsOptions());
      if (!httpsFrom.some((s) => s.http2)) {
        https.http2 = false;
        this.#http2Off = true;
      }
      // Unknown names over TLS: nginx's default server on the HTTPS port (default_server, else the first).
      const catchAll = catchAlls.find((s) => s.defaultTls) ?? (servers.find(isTls)?.only404 ? servers.find(isTls) : undefined);
      if (catchAll?.rejectHandshake) https.unknownSni = 'reject';
      else if (catchAll?.tls && (catchAll.tls.cert !== (tlsSites[0]!.site.tls as { cert: string }).cert || catchAll.tls.key !== (tlsSites[0]!.site.tls as { key: string }).key)) https.defaultCert = { ...catchAll.tls };
      for (const s of servers) if (s.rejectHandshake && s !== catchAll) this.#find(s.rejectHandshake, 'only a catch-all default server\'s is translated (https.unknownSni: reject); not translated');
      // A redirect to an explicit port other than mpgate's HTTPS port.
      const port = splitPort(https.listen[0]!);
      for (const r of servers) {
        if (r.redirect?.port !== undefined && r.mergedInto && r.redirect.port !== port) this.#find(r.redirect.d, `nginx redirects to port ${r.redirect.port}; mpgate redirects to its first HTTPS listen port (${port})`);
      }
    } else {
      const unused = [...this.#tlsSettings.protocols, ...this.#tlsSettings.ciphers, ...this.#tlsSettings.suites];
      for (const t of unused) this.#find(t.d, 'no HTTPS server here is translated, so it applies to nothing; not translated');
    }
    if (!this.#httpCertsUsed || tlsSites.length === 0) {
      for (const d of [...this.#httpCerts, ...this.#httpKeys]) this.#find(d, 'no translated HTTPS server uses it; not translated');
    }
    const httpHsts = this.#httpAddHeaders.filter(isHstsHeader).pop();
    if (httpHsts && !this.#httpHstsUsed) this.#find(httpHsts, 'no translated HTTPS server uses it; not translated');

    // Unknown hosts: nginx's default server is the one marked default_server, else the first.
    let defaultSite: string | undefined;
    const plainMarked = servers.filter((s) => s.defaultPlain);
    const marked = plainMarked.length ? plainMarked : servers.filter((s) => s.defaultTls && !s.only404);
    for (const extra of marked.slice(1)) {
      if (siteOf(extra) !== undefined && siteOf(extra) === siteOf(marked[0])) continue;
      this.#find(extra.defaultServer!, `mpgate has one defaultSite; the default_server at ${where(marked[0]!.defaultServer!)} is used`);
    }
    const nginxDefault = marked[0] ?? servers.find((s) => s.listens.length > 0) ?? servers[0];
    const defaultEntry = siteOf(nginxDefault);
    if (defaultEntry && nginxDefault?.defaultServer) defaultSite = defaultEntry.site.hosts[0]!;
    else if (defaultEntry) this.#report(nginxDefault!.d.file, nginxDefault!.d.line, 'server', `nginx answers unknown hosts with its first server block (${defaultEntry.site.hosts[0]}); mpgate answers them 404 unless defaultSite is set (add "defaultSite: ${defaultEntry.site.hosts[0]}" to keep nginx's behaviour)`);

    const config: ConfigInput = {};
    if (listen.length) config.listen = listen;
    if (Object.keys(https).length) config.https = https;
    const trusted = [...new Set(this.#trusted.map((t) => t.addr))];
    if (trusted.length) config.trustedProxies = trusted;
    // In a server block it trusts that peer for that server only; mpgate trusts it for every site.
    const translatedIndexes = sites.map((s) => s.draft.index);
    for (const t of this.#trusted) {
      if (t.server === undefined) continue;
      const everywhere = translatedIndexes.every((i) => this.#trusted.some((o) => o.addr === t.addr && (o.server === undefined || o.server === i)));
      if (!everywhere) this.#find(t.d, 'set for this server only in nginx; mpgate trusts it for every site (trustedProxies)');
    }
    if (defaultSite !== undefined) config.defaultSite = defaultSite;
    const limits: Record<string, string> = {};
    const upstream: Record<string, string | number> = {};
    if (this.#httpBodySize !== undefined) limits.maxBodySize = formatSize(this.#httpBodySize);
    for (const [key, value] of this.#globals(sites.length)) {
      const [group, name] = key.split('.') as [string, string];
      (group === 'limits' ? limits : upstream)[name] = name === 'maxFails' ? value : formatDuration(value);
    }
    if (Object.keys(limits).length) config.limits = limits as ConfigInput['limits'];
    if (Object.keys(upstream).length) config.upstream = upstream as ConfigInput['upstream'];
    config.sites = sites.map((s) => s.site);

    // A bug here must not print a config that `serve` would refuse.
    configFromObject(config, this.opts.source ?? '<nginx import>');

    const findings = this.#sortedFindings();
    return { config, findings, yaml: this.#yaml(config, sites.map((s) => s.draft), findings) };
  }

  /** "mpgate serves every site on every (HTTPS) listen address": a finding for each site that listens on fewer. */
  #everyAddress(own: [ServerDraft, Listen[]][], all: Listen[], kind: string): void {
    const union = new Set(all.map((l) => l.addr));
    if (union.size < 2) return;
    for (const [, listens] of own) {
      const mine = new Set(listens.map((l) => l.addr));
      if (mine.size > 0 && mine.size < union.size) {
        this.#find(listens[0]!.d, `mpgate serves every site on every ${kind}listen address: this site also answers on ${[...union].filter((a) => !mine.has(a)).join(', ')}`);
      }
    }
  }

  /** https.minVersion and https.ciphers from ssl_protocols / ssl_ciphers / ssl_conf_command Ciphersuites. */
  #tlsOptions(): { minVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string } {
    const out: { minVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string } = {};
    const protocols = this.#chosen(this.#tlsSettings.protocols);
    if (protocols) {
      const d = protocols.d;
      const known = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
      const unknown = d.args.filter((a) => !known.includes(a));
      const below = d.args.filter((a) => known.indexOf(a) >= 0 && known.indexOf(a) < 4);
      if (unknown.length) this.#find(d, `"${unknown.join(' ')}" is not a protocol nginx knows; ignored`);
      if (d.args.includes('TLSv1.2')) out.minVersion = 'TLSv1.2';
      else if (d.args.includes('TLSv1.3')) out.minVersion = 'TLSv1.3';
      if (below.length) this.#find(d, `${below.join(' ')} not translated: mpgate never goes below TLS 1.2 (WeChat requires 1.2 or newer)${out.minVersion ? '' : '; minVersion stays TLSv1.2'}`);
      if (out.minVersion === 'TLSv1.2' && !d.args.includes('TLSv1.3')) this.#find(d, 'mpgate always offers TLS 1.3 as well (TLS 1.3 cannot be turned off)');
    }
    const ciphers = this.#chosen(this.#tlsSettings.ciphers);
    const suites = this.#chosen(this.#tlsSettings.suites);
    const tls12 = ciphers?.d.args.length === 1 ? ciphers.d.args[0]! : undefined;
    const tls13 = suites?.d.args[1];
    if (ciphers && (tls12 === undefined || !safeCiphers(tls12, false))) {
      this.#find(ciphers.d, `"${ciphers.d.args.join(' ')}" not translated: mpgate's list applies (${TLS_DEFAULTS}: ECDHE with AES-GCM or ChaCha20 only); https.ciphers takes a list of such suites (names such as ECDHE-RSA-AES128-GCM-SHA256)`);
    }
    if (suites && (tls13 === undefined || !safeCiphers(tls13, true))) {
      this.#find(suites.d, `"${suites.d.args.join(' ')}" not translated: mpgate's TLS 1.3 suites apply (${TLS13_SUITES})`);
    }
    const okTls12 = tls12 !== undefined && safeCiphers(tls12, false) ? tls12 : undefined;
    const okTls13 = tls13 !== undefined && safeCiphers(tls13, true) ? tls13 : undefined;
    if (okTls13 !== undefined && okTls13 !== TLS13_SUITES) out.ciphers = `${okTls13}:${okTls12 ?? DEFAULT_TLS12_CIPHERS}`;
    else if (okTls12 !== undefined && okTls12 !== DEFAULT_TLS12_CIPHERS) out.ciphers = okTls12;
    return out;
  }

  /** The value mpgate takes (the last at http level, else the first in a server), and a finding for each that differs. */
  #chosen(list: TlsSetting[]): TlsSetting | undefined {
    const http = list.filter((s) => s.level === 'http');
    const chosen = http[http.length - 1] ?? list[0];
    if (!chosen) return undefined;
    for (const s of list) {
      if (s !== chosen && s.d.args.join(' ') !== chosen.d.args.join(' ')) this.#find(s.d, `mpgate has one value for all sites: "${chosen.d.args.join(' ')}" from ${where(chosen.d)} applies; not translated`);
    }
    return chosen;
  }

  /** The value of each global setting, and a finding for every server that disagrees. */
  #globals(siteCount: number): Map<GlobalKey, number> {
    const out = new Map<GlobalKey, number>();
    const keys = [...new Set(this.#settings.map((s) => s.key))];
    for (const key of keys) {
      const all = this.#settings.filter((s) => s.key === key);
      const http = all.filter((s) => s.level === 'http');
      const chosen = http[http.length - 1] ?? all[0]!;
      out.set(key, chosen.value);
      for (const s of all) {
        if (s !== chosen && s.value !== chosen.value) {
          this.#find(s.d, `mpgate has one value for all sites: ${chosen.d.name === s.d.name ? '' : `${chosen.d.name} `}${chosen.text} from ${where(chosen.d)} applies; not translated`);
        }
      }
      if (chosen.level === 'server') {
        const servers = new Set(all.filter((s) => s.level === 'server').map((s) => s.server));
        if (servers.size < siteCount) this.#find(chosen.d, 'set for this server only in nginx; mpgate applies it to every site');
      } else if (chosen.level === 'upstream' && all.length < this.#upstreamServerCount) {
        this.#find(chosen.d, `set for this upstream server only in nginx; mpgate applies ${key} to every upstream`);
      }
    }
    return out;
  }

  #sortedFindings(): NginxFinding[] {
    const files = [...new Set(this.#findings.map((f) => f.file))];
    return [...this.#findings].sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line);
  }

  #yaml(config: ConfigInput, drafts: ServerDraft[], findings: NginxFinding[]): string {
    const doc = new Document(config);
    const source = this.opts.source ?? 'an nginx file';
    doc.commentBefore = [
      ` Imported from ${source} by "mpgate nginx import". Check it with: mpgate check --config FILE`,
      findings.length ? ` ${findings.length} finding${findings.length === 1 ? '' : 's'} (what was not translated, or differs from nginx): listed at the end.` : ' Every directive was translated.',
    ].join('\n');
    for (const key of ['listen', 'trustedProxies']) {
      const node = doc.get(key, true);
      if (isSeq(node)) node.flow = true;
    }
    const https = doc.get('https', true);
    if (isMap(https)) {
      const listen = https.get('listen', true);
      if (isSeq(listen)) listen.flow = true;
      const http2 = https.get('http2', true);
      if (this.#http2Off && http2 && typeof http2 === 'object') {
        (http2 as { comment?: string }).comment = ' no listen … http2 in nginx: HTTP/1.1 only, as there (delete this line to offer HTTP/2, which wx.request enableHttp2 uses)';
      }
    }
    const sitesNode = doc.get('sites', true) as YAMLSeq | undefined;
    sitesNode?.items.forEach((item, i) => {
      if (!isMap(item)) return;
      const draft = drafts[i]!;
      const names = draft.names.length ? ` (server_name ${draft.names.join(' ')})` : '';
      (item as YAMLMap).commentBefore = [` server block at ${where(draft.d)}${names}`, ...draft.comments.map((c) => ` ${c}`)].join('\n');
      if (i > 0) (item as YAMLMap).spaceBefore = true;
      const hosts = item.get('hosts', true);
      if (isSeq(hosts)) hosts.flow = true;
      const up = item.get('upstream', true);
      if (isSeq(up)) up.flow = true;
      const routes = item.get('routes', true);
      if (isSeq(routes)) {
        for (const r of routes.items) {
          const u = isMap(r) ? r.get('upstream', true) : undefined;
          if (isSeq(u)) u.flow = true;
        }
      }
    });
    if (findings.length) doc.comment = [' Not translated:', ...findings.map((f) => ` ${formatFinding(f)}`)].join('\n');
    return doc.toString({ lineWidth: 0 });
  }
}

// ---- helpers -------------------------------------------------------------------------------------

/** `FILE:LINE directive: message`, the CLI's format. */
export function formatFinding(f: NginxFinding): string {
  return `${f.file}:${f.line} ${f.directive}: ${f.message}`;
}

function where(d: NginxDirective): string {
  return `${d.file}:${d.line}`;
}

function returnMessage(d: NginxDirective): string {
  const code = d.args[0] ?? '';
  if (/^30[12378]$/.test(code) || /^https?:/.test(code)) return `redirect (return ${d.args.join(' ')}) not translated: mpgate has no redirect routes (it only redirects plain HTTP to https for sites with tls)`;
  return `fixed answer (return ${d.args.join(' ')}) not translated: mpgate only proxies`;
}

/** mpgate's TLS 1.2 suites (https.ciphers unset), as the export writes them for ssl_ciphers. */
export const DEFAULT_TLS12_CIPHERS = DEFAULT_CIPHERS.slice(TLS13_SUITES.length + 1);

/**
 * A cipher list mpgate takes as https.ciphers: explicit names only, each forward secret (ECDHE, or
 * TLS 1.3) with an AEAD cipher (AES-GCM, ChaCha20-Poly1305). Keywords (HIGH, !aNULL, …), CBC, RSA key
 * exchange or DHE would weaken or break mpgate's defaults and stay findings.
 */
export function safeCiphers(list: string, tls13: boolean): boolean {
  const re = tls13
    ? /^TLS_(?:AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/
    : /^ECDHE-(?:ECDSA|RSA)-(?:AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$/;
  const names = list.split(':');
  return names.length > 0 && names.every((n) => re.test(n));
}

function splitPort(addr: string): number {
  return Number(/^\d+$/.test(addr) ? addr : addr.slice(addr.lastIndexOf(':') + 1));
}

/** `add_header Strict-Transport-Security …`. */
function isHstsHeader(d: NginxDirective): boolean {
  return d.name === 'add_header' && d.args[0]?.toLowerCase() === 'strict-transport-security';
}

/** "max-age=N; includeSubDomains; preload" → hsts, or why it is not translated. */
export function parseHsts(value: string): HstsInput | string {
  let maxAge: number | undefined;
  let includeSubDomains = false;
  let preload = false;
  for (const part of value.split(';').map((p) => p.trim()).filter(Boolean)) {
    const m = /^max-age\s*=\s*"?(\d+)"?$/i.exec(part);
    if (m) maxAge = Number(m[1]);
    else if (part.toLowerCase() === 'includesubdomains') includeSubDomains = true;
    else if (part.toLowerCase() === 'preload') preload = true;
    else return `"${value}": "${part}" is not a Strict-Transport-Security directive mpgate knows`;
  }
  if (maxAge === undefined) return `"${value}" has no max-age`;
  if (maxAge === 31_536_000 && !includeSubDomains && !preload) return true;
  const hsts: Exclude<HstsInput, boolean> = { maxAge: maxAge % 86_400 === 0 && maxAge > 0 ? `${maxAge / 86_400}d` : `${maxAge}s` };
  if (includeSubDomains) hsts.includeSubDomains = true;
  if (preload) hsts.preload = true;
  return hsts;
}

/** `if ($var OP value)` as nginx splits it into words: the variable, the operator and the value. */
function ifCondition(d: NginxDirective): { variable: string; op: string; value: string } | undefined {
  const m = /^\(\s*(\$\w+)\s+(=|!=|~\*?|!~\*?)\s+(.*?)\s*\)$/.exec(d.args.join(' '));
  return m ? { variable: m[1]!, op: m[2]!, value: m[3]! } : undefined;
}

/**
 * `return [301|302|303|307|308] https://HOST[:PORT]$request_uri` with HOST $host, $server_name,
 * $http_host or a literal name (`return URL` alone is nginx's 302). `$uri$is_args$args` is taken too.
 */
function parseHttpsRedirect(d: NginxDirective): { code: number; host: string; port?: number } | undefined {
  const [code, url] = d.args.length === 1 ? ['302', d.args[0]!] : d.args.length === 2 ? [d.args[0]!, d.args[1]!] : [];
  if (code === undefined || url === undefined || !/^30[12378]$/.test(code)) return undefined;
  const m = /^https:\/\/(\$host|\$server_name|\$http_host|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:\$request_uri|\$uri\$is_args\$args)$/.exec(url);
  if (!m) return undefined;
  return { code: Number(code), host: m[1]!, ...(m[2] === undefined ? {} : { port: Number(m[2]) }) };
}

/** nginx times: "30", "30s", "500ms", "1m30s"; units ms s m h d w M y, none = seconds. */
export function parseNginxTime(text: string): number | undefined {
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000, y: 31_536_000_000 };
  if (!/^(?:\d+(?:ms|s|m|h|d|w|M|y)?)+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|M|y)?/g)) total += Number(m[1]) * unit[m[2] ?? 's']!;
  return total;
}

/** nginx sizes: "1024", "10k", "10m", "1g" (binary). */
export function parseNginxSize(text: string): number | undefined {
  const m = /^(\d+)([kKmMgG])?$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]?.toLowerCase() ?? ''] ?? 1);
}

/** listen's address → mpgate's form: "80" and "*:80" → "0.0.0.0:80", "[::]" → "[::]:80". */
export function normalizeListen(addr: string): string | undefined {
  if (/^\d+$/.test(addr)) return `0.0.0.0:${addr}`;
  let m = /^\*:(\d+)$/.exec(addr);
  if (m) return `0.0.0.0:${m[1]}`;
  m = /^(\[[^\]]+\])(?::(\d+))?$/.exec(addr);
  if (m) return `${m[1]}:${m[2] ?? '80'}`;
  if (addr.startsWith('unix:')) return undefined;
  m = /^([^:[\]]+)(?::(\d+))?$/.exec(addr);
  if (m) return `${m[1] === '*' ? '0.0.0.0' : m[1]}:${m[2] ?? '80'}`;
  return undefined;
}

/**
 * Deduplicates listen addresses. nginx binds "80" (IPv4) and "[::]:80" (IPv6 only) as two sockets;
 * node binds "[::]" dual-stack, so the pair becomes the bare port (all interfaces, both families),
 * and addresses a wildcard on the same port already covers are dropped (binding them too would fail).
 */
function mergeListen(listens: readonly { addr: string; dual: boolean }[]): string[] {
  const out: string[] = [];
  const port = (a: string) => a.slice(a.lastIndexOf(':') + 1);
  const v4Any = new Set(listens.filter((l) => l.addr.startsWith('0.0.0.0:')).map((l) => port(l.addr)));
  const v6Any = new Set(listens.filter((l) => l.addr.startsWith('[::]:')).map((l) => port(l.addr)));
  const v6Dual = new Set(listens.filter((l) => l.addr.startsWith('[::]:') && l.dual).map((l) => port(l.addr)));
  for (const { addr } of listens) {
    const p = port(addr);
    const both = v4Any.has(p) && v6Any.has(p);
    let value = addr;
    if (both && (addr.startsWith('0.0.0.0:') || addr.startsWith('[::]:'))) value = p;
    else if (both || v6Dual.has(p)) {
      if (addr !== `[::]:${p}`) continue;
    } else if (v4Any.has(p) && !addr.startsWith('[') && addr !== `0.0.0.0:${p}`) continue;
    else if (v6Any.has(p) && addr.startsWith('[') && addr !== `[::]:${p}`) continue;
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

/** `rewrite ^/p/?(.*)$ /base/$1 break;` for location /p: the base it strips onto, else undefined. */
function stripRewrite(d: NginxDirective, path: string): string | undefined {
  if (d.args.length !== 3 || d.args[2] !== 'break') return undefined;
  const [regex, replacement] = d.args as [string, string];
  const prefix = path.replace(/\/$/, '');
  if (regex !== `^${escapeRegex(prefix)}/?(.*)$` && regex !== `^${escapeRegex(path)}/?(.*)$`) return undefined;
  const m = /^((?:\/[^$?]*)?)\/\$1$/.exec(replacement);
  if (!m || (path.endsWith('/') && regex !== `^${escapeRegex(path)}/?(.*)$`)) return undefined;
  return m[1]!;
}

export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function headerKey(h: Record<string, string>): string {
  return JSON.stringify(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]).sort());
}

/** Longest matching prefix route, as RoutingTable.matchRoute. */
function matchRoute(routes: readonly RouteInput[], path: string): RouteInput | undefined {
  let best: RouteInput | undefined;
  for (const r of routes) if (path.startsWith(r.path ?? '/') && (best === undefined || (r.path ?? '/').length > (best.path ?? '/').length)) best = r;
  return best;
}

/** What mpgate does with one path, as resolve() + the upstream's base path. */
export function mpgateEffect(routes: readonly RouteInput[], path: string): Effect {
  const r = matchRoute(routes, path);
  if (!r) return { status: 404 };
  const rp = r.path ?? '/';
  let target = path;
  if (r.stripPrefix) {
    const rest = path.slice(rp.length);
    target = rest.startsWith('/') ? rest : `/${rest}`;
  }
  const list = Array.isArray(r.upstream) ? r.upstream : [r.upstream!];
  const urls = list.map((u) => {
    const url = new URL(u);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}${target}`;
  });
  return { urls, preserveHost: r.preserveHost ?? true, setHeaders: headerKey(r.setHeaders ?? {}) };
}

/** For a prefix `return 404`: undefined when no shorter route covers it (mpgate answers 404 too). */
function coveredBy(routes: readonly RouteInput[], path: string): Effect {
  return matchRoute(routes.filter((r) => r.path !== path), path) ? mpgateEffect(routes, path) : undefined;
}

function sameEffect(a: Effect, b: Effect): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
