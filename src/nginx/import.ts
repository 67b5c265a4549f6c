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
 *   ssl_certificate(_key), listen … ssl → findings ("noted, not yet applied"), paths kept as comments
 * nginx defaults that are not written in the file are not copied (client_max_body_size 1m, the
 * timeouts); mpgate's own defaults apply. The one exception is Host: nginx sends the upstream's own
 * name unless told otherwise, and that changes what the backend sees, so it becomes preserveHost: false.
 */
import { Document, isMap, isSeq, type YAMLMap, type YAMLSeq } from 'yaml';
import { configFromObject } from '../config/load.js';
import { configSchema, hostPattern, routeSchema, upstreamUrl, type ConfigInput } from '../config/schema.js';
import { formatDuration, formatSize } from '../config/units.js';
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
const NOTED = 'noted, not yet applied: HTTPS is not in mpgate yet';

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
  defaultServer?: NginxDirective;
  /** Plain-HTTP listen addresses (normalised) and the directive of each. */
  listens: { addr: string; dual: boolean; d: NginxDirective }[];
  /** The server answers everything with a plain 404 (a catch-all). */
  only404: boolean;
  translated: boolean;
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
  readonly #httpComments: string[] = [];
  #httpHeaders: HeaderRule[] | undefined;
  #httpBodySize: number | undefined;
  #connectionVars = new Set<string>([MPGATE_VARIABLES.connectionUpgrade, 'connection_upgrade']);
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
    if (d.name.startsWith('ssl_') || d.name === 'ssl') return this.#find(d, NOTED);
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
          this.#find(d, `${NOTED}; ${d.args[0] ?? ''} is kept as a comment in the config`);
          this.#httpComments.push(`${d.name} ${d.args.join(' ')} (${where(d)}): ${NOTED}`);
          break;
        default:
          if (!this.#common(d, 'http')) this.#untranslated(d, 'the http context');
      }
    }
    for (const [name, u] of this.#upstreams) if (!u.used) this.#find(u.d, `upstream "${name}" is not used by any translated proxy_pass; not translated`);
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
    const draft: ServerDraft = { d, index, hosts: [], names: [], routes: [], comments: [], listens: [], only404: false, translated: false };
    const sslOn = body.some((x) => x.name === 'ssl' && x.args[0] === 'on');
    const serverHeaders = body.filter((x) => x.name === 'proxy_set_header');
    const headers = serverHeaders.length ? serverHeaders.map((x) => this.#classifyHeader(x)) : this.#httpHeaders;
    const locations: LocationDraft[] = [];
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
        case 'ssl':
          this.#find(x, `${NOTED} (the listen addresses of this server are treated as HTTPS ones)`);
          break;
        case 'ssl_certificate':
        case 'ssl_certificate_key':
          this.#find(x, `${NOTED}; ${x.args[0] ?? ''} is kept as a comment in the config`);
          draft.comments.push(`${x.name} ${x.args.join(' ')} (${where(x)}): ${NOTED}`);
          break;
        case 'return':
          returns ??= x;
          break;
        case 'proxy_pass':
          this.#find(x, 'proxy_pass belongs in a location; not translated');
          break;
        default:
          if (!this.#common(x, 'server', index)) this.#untranslated(x, 'a server block');
      }
    }
    // nginx's default when a server has no listen: *:80.
    if (!sawListen) draft.listens.push({ addr: '0.0.0.0:80', dual: false, d });
    this.#hosts(draft);

    if (returns) {
      // A server-level return answers before any location is looked at.
      const plain404 = returns.args.length === 1 && returns.args[0] === '404';
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
    }
    return draft;
  }

  #listen(d: NginxDirective, draft: ServerDraft, sslOn: boolean): void {
    const [addr = '', ...params] = d.args;
    let ssl = sslOn;
    let dual = false;
    for (const p of params) {
      if (p === 'default_server' || p === 'default') draft.defaultServer ??= d;
      else if (p === 'ssl') ssl = true;
      else if (p === 'ipv6only=off') dual = true;
      else if (p === 'ipv6only=on') continue;
      else if (p === 'http2' || p === 'quic') this.#find(d, `${p}: ${p === 'http2' ? 'HTTP/2' : 'HTTP/3'} is not in mpgate (HTTP/1.1 only); not translated`);
      else if (p === 'proxy_protocol') this.#find(d, 'proxy_protocol: mpgate does not read the PROXY protocol; not translated');
      else this.#find(d, `listen parameter "${p}" not translated`);
    }
    const normal = normalizeListen(addr);
    if (normal === undefined || !configSchema.shape.listen.safeParse([normal]).success) {
      this.#find(d, `"${addr}" is not an address mpgate can listen on (host:port); not translated`);
      return;
    }
    if (ssl) {
      this.#find(d, `${NOTED}: ${addr} is not added to listen; this server's site is served on mpgate's plain-HTTP addresses`);
      return;
    }
    draft.listens.push({ addr: normal, dual: dual && normal.startsWith('['), d });
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
      // No server_name at all means "" in nginx; a default server still needs a name here.
      draft.hosts.push('_');
      this.#find(d, 'no server_name: the site is named "_" (it answers unknown hosts as defaultSite)');
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
    // nginx keeps the first server for a name ("conflicting server name ... ignored"); the schema
    // refuses duplicates, keyed the same way.
    const taken = new Map<string, ServerDraft>();
    for (const draft of servers) {
      if (!draft.translated) continue;
      const hosts: string[] = [];
      for (const h of draft.hosts) {
        const key = h.startsWith('~') ? h : h.toLowerCase().replace(/^\*\./, '.');
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
          this.#find(at, `"${h}" is already served by the server block at ${where(owner.d)} (nginx ignores it here too); left out`);
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
      sites.push({ draft, site });
    }

    // listen: every plain-HTTP address of every translated (or catch-all) server, once.
    const listenFrom = servers.filter((s) => s.translated || s.only404);
    const listen = mergeListen(listenFrom.flatMap((s) => s.listens));
    const union = new Set(listenFrom.flatMap((s) => s.listens.map((l) => l.addr)));
    if (union.size > 1) {
      for (const s of servers.filter((x) => x.translated)) {
        const own = new Set(s.listens.map((l) => l.addr));
        if (own.size > 0 && own.size < union.size) {
          this.#find(s.listens[0]!.d, `mpgate serves every site on every listen address: this site also answers on ${[...union].filter((a) => !own.has(a)).join(', ')}`);
        }
      }
    }

    // Unknown hosts: nginx's default server is the one marked default_server, else the first.
    let defaultSite: string | undefined;
    const marked = servers.filter((s) => s.defaultServer);
    for (const extra of marked.slice(1)) this.#find(extra.defaultServer!, `mpgate has one defaultSite; the default_server at ${where(marked[0]!.defaultServer!)} is used`);
    const nginxDefault = marked[0] ?? servers[0];
    const defaultEntry = sites.find((s) => s.draft === nginxDefault);
    if (defaultEntry && nginxDefault?.defaultServer) defaultSite = defaultEntry.site.hosts[0]!;
    else if (defaultEntry) this.#report(nginxDefault!.d.file, nginxDefault!.d.line, 'server', `nginx answers unknown hosts with its first server block (${defaultEntry.site.hosts[0]}); mpgate answers them 404 unless defaultSite is set (add "defaultSite: ${defaultEntry.site.hosts[0]}" to keep nginx's behaviour)`);

    const config: ConfigInput = {};
    if (listen.length) config.listen = listen;
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
      ...this.#httpComments.map((c) => ` ${c}`),
    ].join('\n');
    for (const key of ['listen', 'trustedProxies']) {
      const node = doc.get(key, true);
      if (isSeq(node)) node.flow = true;
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
  if (/^30[1278]$/.test(code) || /^https?:/.test(code)) return `redirect (return ${d.args.join(' ')}) not translated: mpgate has no redirect routes`;
  return `fixed answer (return ${d.args.join(' ')}) not translated: mpgate only proxies`;
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
