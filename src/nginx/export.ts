/**
 * mpgate Config → the nginx configuration that routes the same way, for people who want nginx in
 * front. By default an http-level snippet (for /etc/nginx/conf.d/, inside `http { }`); `full` wraps
 * it into a whole nginx.conf. Every server block carries its own limits and timeouts and every
 * location its own proxy settings, so nothing clashes with what the including nginx.conf sets and
 * nginx's all-or-nothing inheritance of proxy_set_header cannot bite.
 *
 * What mpgate does implicitly is written out:
 * - Host: the client's, byte for byte ($http_host; $host would drop the port), or the upstream's own
 *   ($proxy_host) for preserveHost: false.
 * - X-Real-IP, X-Forwarded-For/-Proto/-Host: what clients send is replaced ($remote_addr, $scheme,
 *   $http_host), unless the peer is in trustedProxies: then the realip module finds the client
 *   (set_real_ip_from, recursive, like ProxyTrust) and maps keep the trusted claims.
 * - WebSocket upgrades (map $http_upgrade), HTTP/1.1 upstream, streaming both ways (no buffering),
 *   no Location rewriting (proxy_redirect off), https upstreams verified against the system CAs.
 * - Unknown hosts: 404 from a catch-all default server, or the defaultSite's server as default_server.
 * - No route for a path: `location / { return 404; }` when the site has no "/" route.
 * - nginx answers "/api" with a redirect to "/api/" when a proxy location "/api/" exists and
 *   "/api" is not a location; mpgate does not, so such paths get an exact location doing what mpgate does.
 * - stripPrefix: `proxy_pass …/base/` (nginx's own prefix replacement) when the route path ends in
 *   "/"; otherwise a `rewrite ^/p/?(.*)$ /base/$1 break`, which matches mpgate for /p, /p/x and /px.
 *
 * - HTTPS (a site with tls: {cert, key}): a server on every https.listen address (`listen … ssl http2`,
 *   nginx 1.22's form, which newer nginx still takes; no http2 with https.http2: false) with
 *   ssl_certificate/_key, ssl_protocols from https.minVersion, ssl_ciphers (+ ssl_conf_command
 *   Ciphersuites for TLS 1.3 names) and ssl_prefer_server_ciphers on, as mpgate serves them; hsts →
 *   `add_header Strict-Transport-Security "…" always`. redirectHttp → a plain-HTTP server for the same
 *   names doing `return 301` (GET/HEAD) or `return 308` (other methods, via `if ($request_method …)`:
 *   return needs a literal status, so a map cannot pick it) to https://$host[:port]$request_uri;
 *   redirectHttp: false → one server listening on both. Unknown names over HTTPS: the catch-all also
 *   listens there, with https.defaultCert or the first site's certificate, or ssl_reject_handshake
 *   (https.unknownSni: reject).
 * - tls: auto: nginx cannot use mpgate's ACME certificates, and a path to a file that does not exist yet
 *   would make `nginx -t` fail: the site is written on plain HTTP with comments (and a note) saying
 *   how to get nginx its own (certbot --nginx --redirect -d NAME adds the HTTPS lines to that block).
 * - owner: a comment; disabled: `return 503` in front of the locations (mpgate answers 503 too).
 * Not expressed for HTTPS: mpgate serves plain-HTTP WebSocket upgrades and requests a trusted proxy
 * marks X-Forwarded-Proto: https without redirecting them (nginx's redirect server redirects them),
 * and adds HSTS to proxied answers only (nginx `always`: to its own error pages too).
 *
 * Relay and OCR routes are mpgate's own services and cannot be written in nginx: their locations
 * pass the request to mpgate itself (`mpgate` option, default http://127.0.0.1:8080), which then
 * runs behind nginx with the same config (listen on that address, trustedProxies: [127.0.0.1]).
 * Each is also returned as a note.
 */
import { isAbsolute } from 'node:path';
import { siteName, splitListen, type CertFiles, type Config, type RouteConfig, type SiteConfig } from '../config/schema.js';
import { DEFAULT_TLS12_CIPHERS, MPGATE_VARIABLES as V, escapeRegex } from './import.js';
import { hstsValue } from '../core/headers.js';
import { quoteWord } from './parse.js';

export interface ExportOptions {
  /** A whole nginx.conf (events, http) instead of an http-level snippet. */
  full?: boolean;
  /** Where mpgate itself listens behind nginx, for relay and OCR routes. */
  mpgate?: string;
  /** Config file name, for the header comment. */
  source?: string;
}

export interface ExportResult {
  text: string;
  /** What could not be expressed exactly, one line each (`sites[i] …: message`). */
  notes: string[];
}

export const DEFAULT_MPGATE_URL = 'http://127.0.0.1:8080';
const CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

type Line = string | Line[];

export function exportNginx(config: Config, opts: ExportOptions = {}): ExportResult {
  return new Exporter(config, opts).run();
}

class Exporter {
  readonly notes: string[] = [];
  readonly upstreamBlocks: Line[] = [];
  readonly #blockNames = new Set<string>();
  /** Listen addresses whose options (ipv6only) were written already: nginx allows them once. */
  readonly #listenOptions = new Set<string>();
  readonly mpgateUrl: string;
  needDollar = false;
  usesMpgate = false;

  constructor(readonly config: Config, readonly opts: ExportOptions) {
    this.mpgateUrl = (opts.mpgate ?? DEFAULT_MPGATE_URL).replace(/\/+$/, '');
  }

  get trusted(): boolean {
    return this.config.trustedProxies.length > 0;
  }

  run(): ExportResult {
    const c = this.config;
    const servers: Line[] = [];
    // The certificate nginx answers unknown names with, as mpgate: https.defaultCert, else the first site's.
    const firstFiles = c.sites.map((s) => s.tls).find((t): t is CertFiles => t !== undefined && t !== 'auto');
    const unknownCert: CertFiles | 'reject' | undefined = firstFiles === undefined ? undefined : c.https.unknownSni === 'reject' ? 'reject' : c.https.defaultCert ?? firstFiles;
    const defaultIndex = c.defaultSite === undefined ? -1 : c.sites.findIndex((s) => siteName(s) === c.defaultSite);
    const defaultHasFiles = defaultIndex !== -1 && isFiles(c.sites[defaultIndex]!.tls);
    if (c.defaultSite === undefined) {
      servers.push(
        '# Hosts no site serves: 404, as mpgate answers them (a config with defaultSite marks that site\'s server instead).',
        '# On Debian, disable sites-enabled/default: it claims default_server on port 80 too.',
        'server {', [
          ...this.#listens('http', 'default_server'),
          ...(unknownCert ? this.#listens('https', 'default_server') : []),
          'server_name _;',
          ...(unknownCert ? this.#tlsLines(unknownCert) : []),
          'return 404;',
        ], '}', '',
      );
    } else if (unknownCert && !defaultHasFiles) {
      // defaultSite serves plain HTTP only in nginx; names nobody serves still need an HTTPS default.
      this.notes.push(`defaultSite "${c.defaultSite}" has no certificate files: over HTTPS, nginx answers unknown names 404 (mpgate: that site, with the default certificate)`);
      servers.push(
        '# Unknown names over HTTPS: 404 (mpgate would let defaultSite answer them, with the default certificate).',
        'server {', [...this.#listens('https', 'default_server'), 'server_name _;', ...this.#tlsLines(unknownCert), 'return 404;'], '}', '',
      );
    }
    if (c.https.unknownSni === 'reject' && defaultHasFiles) {
      this.notes.push(`https.unknownSni: reject with defaultSite "${c.defaultSite}": nginx answers unknown names with that site's certificate instead of refusing the handshake`);
    }
    c.sites.forEach((site, i) => servers.push(...this.#server(site, i), ''));

    const http: Line[] = [
      `# nginx configuration generated by "mpgate nginx export" from ${this.opts.source ?? 'an mpgate config'}.`,
      this.opts.full ? '# A whole nginx.conf.' : '# An http-level snippet: put it in /etc/nginx/conf.d/mpgate.conf (it is read inside http { }).',
      '# Written out per server/location: Host as the client sent it, X-Real-IP and X-Forwarded-* (clients\'',
      '# own values replaced unless they come from trustedProxies), WebSocket upgrades, HTTP/1.1 upstream',
      '# connections, streaming in both directions, the body limit and timeouts.',
      '# Not expressed: limits.maxHeaderSize, maxHeaderCount, requestTimeout, idleTimeout, websocketIdleTimeout',
      `#   (nginx closes an idle WebSocket after proxy_read_timeout), upstream.connections and keepAliveTimeout, accessLog, logLevel.`,
      ...(c.sites.some((s) => isFiles(s.tls) && s.redirectHttp) ? [
        '#   HTTPS sites: mpgate does not redirect plain-HTTP WebSocket upgrades, nor requests a trusted proxy marks',
        '#   X-Forwarded-Proto: https; the redirect servers here do. HSTS is also on nginx\'s own error answers.',
      ] : []),
      ...(this.usesMpgate ? [
        `# Relay and OCR routes are mpgate's own services: nginx passes them to mpgate at ${this.mpgateUrl}.`,
        `#   Run mpgate there with this same config, listen: ["${hostPort(this.mpgateUrl)}"] and trustedProxies: ["127.0.0.1"]`,
        '#   (so it believes nginx\'s X-Forwarded-For).',
      ] : []),
      '',
      '# WebSocket: "Connection: upgrade" upstream only when the client asked for an upgrade.',
      `map $http_upgrade $${V.connectionUpgrade} {`, ['default upgrade;', "'' close;"], '}', '',
    ];
    if (this.trusted) http.push(...this.#trustMaps(), '');
    if (this.needDollar) http.push('# A literal "$" in header values (nginx has no escape for it).', `geo $${V.dollar} {`, ['default $;'], '}', '');
    if (this.upstreamBlocks.length) http.push(...this.upstreamBlocks);
    http.push(...servers);
    while (http[http.length - 1] === '') http.pop();

    const lines: Line[] = this.opts.full
      ? [
          `# nginx.conf generated by "mpgate nginx export --full" from ${this.opts.source ?? 'an mpgate config'}.`,
          'worker_processes auto;',
          '',
          'events {', ['worker_connections 1024;'], '}',
          '',
          'http {', http, '}',
        ]
      : http;
    return { text: `${render(lines, 0)}\n`, notes: this.notes };
  }

  /** `listen` lines for every plain-HTTP (or HTTPS) address of mpgate, with `extra` parameters (default_server). */
  #listens(kind: 'http' | 'https', extra?: string): string[] {
    const out: string[] = [];
    const https = kind === 'https';
    // nginx 1.22 (Debian 12) takes http2 as a listen parameter; nginx 1.25.1+ still does (with a warning).
    const tls = https ? ['ssl', ...(this.config.https.http2 ? ['http2'] : [])] : [];
    for (const addr of https ? this.config.https.listen : this.config.listen) {
      const forms: string[][] = [];
      if (/^\d+$/.test(addr)) forms.push([addr], [`[::]:${addr}`]);
      else if (addr.startsWith('0.0.0.0:')) forms.push([addr.slice('0.0.0.0:'.length)]);
      else if (addr.startsWith('[::]:')) {
        // node binds [::] dual-stack; nginx's default for [::] is IPv6 only.
        forms.push(this.#listenOptions.has(addr) ? [addr] : [addr, 'ipv6only=off']);
        this.#listenOptions.add(addr);
      } else forms.push([addr]);
      for (const [a, ...opts] of forms) out.push(`listen ${[a!, ...tls, ...opts, ...(extra ? [extra] : [])].map(quoteWord).join(' ')};`);
    }
    return out;
  }

  /** The TLS lines of an HTTPS server: certificate (or refusal), protocols and ciphers as mpgate serves them. */
  #tlsLines(files: CertFiles | 'reject'): string[] {
    const h = this.config.https;
    const out = files === 'reject'
      ? ['ssl_reject_handshake on;']
      : [`ssl_certificate ${quoteWord(files.cert)};`, `ssl_certificate_key ${quoteWord(files.key)};`];
    const list = (h.ciphers ?? DEFAULT_TLS12_CIPHERS).split(':');
    // mpgate takes TLS 1.3 suite names in the same list; nginx sets them apart (ssl_conf_command, nginx 1.19.4+).
    const tls13 = h.ciphers !== undefined && h.ciphers.includes('TLS_') ? list.filter((c) => c.startsWith('TLS_')) : [];
    const tls12 = list.filter((c) => !c.startsWith('TLS_'));
    out.push(`ssl_protocols ${h.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2 TLSv1.3'};`);
    if (tls12.length) out.push(`ssl_ciphers ${quoteWord(tls12.join(':'))};`);
    if (tls13.length) out.push(`ssl_conf_command Ciphersuites ${quoteWord(tls13.join(':'))};`);
    out.push('ssl_prefer_server_ciphers on;');
    return out;
  }

  #trustMaps(): Line[] {
    const t = V.trusted;
    return [
      '# trustedProxies: only these peers may say who the client is. The realip module (set_real_ip_from in',
      '# each server) turns $remote_addr into the client, as mpgate does; these maps keep the trusted claims.',
      `geo $realip_remote_addr $${t} {`, ['default 0;', ...this.config.trustedProxies.map((p) => `${p} 1;`)], '}',
      `map ${quoteWord(`$${t}:$http_x_forwarded_for`)} $${V.forwardedFor} {`,
      [`${quoteWord('~^1:.')} ${quoteWord('$http_x_forwarded_for, $realip_remote_addr')};`, 'default $realip_remote_addr;'], '}',
      `map ${quoteWord(`$${t}:$http_x_forwarded_proto`)} $${V.forwardedProto} {`,
      [`${quoteWord('~^1:(?<mpgate_fp>.+)$')} $mpgate_fp;`, 'default $scheme;'], '}',
      `map ${quoteWord(`$${t}:$http_x_forwarded_host`)} $${V.forwardedHost} {`,
      [`${quoteWord('~^1:(?<mpgate_fh>.+)$')} $mpgate_fh;`, 'default $http_host;'], '}',
    ];
  }

  #server(site: SiteConfig, index: number): Line[] {
    const c = this.config;
    const name = siteName(site);
    const key = `sites[${index}]`;
    const routes = siteRoutes(site);
    const isDefault = c.defaultSite === name ? 'default_server' : undefined;
    const files = isFiles(site.tls) ? site.tls : undefined;
    const redirect = files !== undefined && site.redirectHttp;
    const serverName = `server_name ${site.hosts.map(quoteWord).join(' ')};`;
    const title = `# site "${name}" (${key})${site.owner === undefined ? '' : `, owner ${site.owner}`}`;
    const out: Line[] = [];
    const hsts = hstsValue(site.hsts);
    if (redirect) {
      // mpgate's redirect: to the first HTTPS listen's port, 301 for GET/HEAD, 308 (method and body kept) otherwise.
      const port = splitListen(c.https.listen[0]!).port;
      const target = `https://$host${port === 443 ? '' : `:${port}`}$request_uri`;
      out.push(
        `${title}: plain HTTP → https (redirectHttp), 301 for GET/HEAD and 308 for other methods, as mpgate.`,
        'server {', [
          ...this.#listens('http', isDefault),
          serverName,
          // return takes a literal status, so a map cannot pick it: an if with return, the use nginx documents as safe.
          'if ($request_method !~ ^(GET|HEAD)$) {', [`return 308 ${target};`], '}',
          `return 301 ${target};`,
        ], '}', '',
      );
    }
    const head: Line[] = [
      ...(files && !redirect ? this.#listens('http', isDefault) : []),
      ...(files ? this.#listens('https', isDefault) : this.#listens('http', isDefault)),
      serverName,
    ];
    if (files) {
      head.push(...this.#tlsLines(files));
      if (hsts !== undefined) head.push(`add_header Strict-Transport-Security ${quoteWord(hsts)} always;`);
      for (const f of [files.cert, files.key]) {
        if (!isAbsolute(f)) this.notes.push(`${key}: relative certificate path "${f}": nginx reads it from its configuration directory (/etc/nginx on Debian)`);
      }
    } else if (site.tls === 'auto') {
      const names = site.hosts.map((h) => `-d ${h}`).join(' ');
      this.notes.push(`${key}: tls: auto: nginx needs its own certificate (e.g. certbot --nginx --redirect ${names}); exported on plain HTTP until then`);
      head.push(
        '# tls: auto: mpgate gets this certificate itself (ACME); nginx needs its own, so this block serves plain',
        `# HTTP until it has one. With certbot: certbot --nginx --redirect ${names}`,
        '# (it adds listen 443 ssl, ssl_certificate and the redirect to this block).',
        ...(hsts === undefined ? [] : [`# Then also: add_header Strict-Transport-Security ${quoteWord(hsts)} always;`]),
      );
    }
    if (site.disabled) head.push('# disabled: mpgate answers 503 (MPG_SITE_DISABLED) for this site; delete this return to serve it.', 'return 503;');
    const body: Line[] = [
      ...head,
      '',
      `client_max_body_size ${nginxSize(site.maxBodySize ?? c.limits.maxBodySize)};`,
      `proxy_connect_timeout ${nginxTime(c.upstream.connectTimeout)};`,
      `proxy_read_timeout ${nginxTime(Math.max(c.upstream.responseTimeout, c.upstream.bodyIdleTimeout))};`,
      `client_header_timeout ${nginxTime(c.limits.headersTimeout)};`,
      `keepalive_timeout ${nginxTime(c.limits.keepAliveTimeout)};`,
    ];
    if ((site.maxBodySize ?? c.limits.maxBodySize) === 0) this.notes.push(`${key}: a body limit of 0 means "no limit" in nginx; mpgate refuses every body`);
    if (c.upstream.responseTimeout !== c.upstream.bodyIdleTimeout && index === 0) {
      this.notes.push(`upstream: nginx has one proxy_read_timeout for responseTimeout (${c.upstream.responseTimeout} ms) and bodyIdleTimeout (${c.upstream.bodyIdleTimeout} ms): the larger is used`);
    }
    if (this.trusted) {
      body.push(...c.trustedProxies.map((p) => `set_real_ip_from ${p};`), 'real_ip_header X-Forwarded-For;', 'real_ip_recursive on;');
    }
    // Inherited by every location below; a location with any proxy_set_header of its own lists them all.
    body.push('', 'proxy_http_version 1.1;', 'proxy_buffering off;', 'proxy_request_buffering off;', 'proxy_redirect off;', ...headerLines(this.#headers(true, {})));
    routes.forEach((route, j) => {
      const rkey = site.routes ? `${key}.routes[${j}]` : `${key}.upstream`;
      body.push('', `location ${quoteWord(route.path)} {`, this.#locationBody(site, route, rkey, { kind: 'prefix' }), '}');
    });
    // nginx redirects "/api" to "/api/" for a proxy location "/api/"; mpgate routes "/api" as usual.
    for (const route of routes) {
      const p = route.path;
      if (p === '/' || !p.endsWith('/') || routes.some((r) => r.path === p.slice(0, -1))) continue;
      const exact = p.slice(0, -1);
      const target = matchRoute(routes, exact);
      body.push('', `# "${exact}" alone: what mpgate does (nginx would redirect it to "${p}").`, `location = ${quoteWord(exact)} {`,
        target ? this.#locationBody(site, target, `${key} ${exact}`, { kind: 'exact', path: exact }) : ['return 404;'], '}');
    }
    if (!routes.some((r) => r.path === '/')) body.push('', '# Paths no route serves: 404, as mpgate.', 'location / {', ['return 404;'], '}');
    out.push(files ? `${title}${redirect ? ': HTTPS' : ': HTTPS and plain HTTP (redirectHttp: false)'}` : title, 'server {', body, '}');
    return out;
  }

  #locationBody(site: SiteConfig, route: RouteConfig, key: string, mode: { kind: 'prefix' } | { kind: 'exact'; path: string }): Line[] {
    const out: Line[] = [];
    let preserveHost = route.preserveHost;
    let setHeaders: Record<string, string> = route.setHeaders;
    if (route.relay || route.ocr) {
      // mpgate answers these itself; nginx hands the request over unchanged.
      this.usesMpgate = true;
      const kind = route.relay ? 'relay' : 'OCR';
      if (mode.kind === 'prefix') this.notes.push(`${key}: ${kind} route ${route.path}: nginx passes it to mpgate at ${this.mpgateUrl} (run mpgate there behind nginx)`);
      out.push(`# ${kind}: mpgate's own service, answered by mpgate behind nginx.`, `proxy_pass ${quoteWord(this.mpgateUrl)};`);
      preserveHost = true;
      setHeaders = {};
    } else {
      const urls = (Array.isArray(route.upstream) ? route.upstream : [route.upstream!]).map((u) => new URL(u));
      const first = urls[0]!;
      const scheme = first.protocol.slice(0, -1);
      const base = first.pathname.replace(/\/+$/, '');
      if (urls.some((u) => u.protocol !== first.protocol)) this.notes.push(`${key}: nginx uses one scheme per upstream group; all get ${scheme}`);
      if (urls.some((u) => u.pathname.replace(/\/+$/, '') !== base)) this.notes.push(`${key}: nginx uses one path per upstream group; all get "${base || '/'}"`);
      let dest: string;
      if (urls.length > 1) {
        const block = this.#upstreamBlock(site, route, urls);
        dest = `${scheme}://${block}`;
        if (!preserveHost) this.notes.push(`${key}: preserveHost: false with several upstreams: nginx sends the group name "${block}" as Host, mpgate each upstream's own host:port`);
      } else {
        dest = `${scheme}://${first.host}`;
      }
      const p = route.path;
      if (mode.kind === 'exact') {
        const target = routeTarget(route, mode.path);
        out.push(`proxy_pass ${pp(!route.stripPrefix && base === '' ? dest : `${dest}${base}${target}`)};`);
      } else if (!route.stripPrefix) {
        out.push(`proxy_pass ${pp(base === '' ? dest : `${dest}${base}${p}`)};`);
      } else if (p.endsWith('/')) {
        out.push(`proxy_pass ${pp(`${dest}${base}/`)};`);
      } else {
        // "location /api" with "proxy_pass …/" would send /api/x as //x and /apix as /x, but mpgate sends /x for both.
        out.push(`rewrite ${quoteWord(`^${escapeRegex(p)}/?(.*)$`)} ${quoteWord(`${base}/$1`)} break;`, `proxy_pass ${pp(dest)};`);
      }
      if (scheme === 'https') {
        out.push('proxy_ssl_server_name on;', 'proxy_ssl_verify on;', `proxy_ssl_trusted_certificate ${CA_FILE};`);
        if (urls.length > 1) {
          out.push(`proxy_ssl_name ${quoteWord(first.hostname)};`);
          if (urls.some((u) => u.hostname !== first.hostname)) this.notes.push(`${key}: nginx checks one certificate name per upstream group: ${first.hostname}`);
        }
      }
    }
    if (!preserveHost || Object.keys(setHeaders).length > 0) out.push(...headerLines(this.#headers(preserveHost, setHeaders)));
    return out;

    function pp(url: string): string {
      return quoteWord(url);
    }
  }

  /** The request headers mpgate sets, then setHeaders (replacing by name, case-insensitively). */
  #headers(preserveHost: boolean, setHeaders: Record<string, string>): Map<string, [string, string]> {
    const headers = new Map<string, [string, string]>();
    const put = (n: string, v: string) => headers.set(n.toLowerCase(), [n, v]);
    put('Host', preserveHost ? '$http_host' : '$proxy_host');
    put('X-Real-IP', '$remote_addr');
    put('X-Forwarded-For', this.trusted ? `$${V.forwardedFor}` : '$remote_addr');
    put('X-Forwarded-Proto', this.trusted ? `$${V.forwardedProto}` : '$scheme');
    put('X-Forwarded-Host', this.trusted ? `$${V.forwardedHost}` : '$http_host');
    put('Upgrade', '$http_upgrade');
    put('Connection', `$${V.connectionUpgrade}`);
    for (const [n, v] of Object.entries(setHeaders)) {
      if (v.includes('$')) this.needDollar = true;
      put(n, v.replaceAll('$', `\${${V.dollar}}`));
    }
    return headers;
  }

  #upstreamBlock(site: SiteConfig, route: RouteConfig, urls: URL[]): string {
    const stem = `mpgate_${slug(siteName(site))}${route.path === '/' ? '' : `_${slug(route.path)}`}`;
    let name = stem;
    for (let n = 2; this.#blockNames.has(name); n++) name = `${stem}_${n}`;
    this.#blockNames.add(name);
    const u = this.config.upstream;
    const params = [
      ...(u.maxFails !== 1 ? [`max_fails=${u.maxFails}`] : []),
      ...(u.failTimeout !== 10_000 ? [`fail_timeout=${nginxTime(u.failTimeout)}`] : []),
    ];
    this.upstreamBlocks.push(
      `# ${route.path} of site "${siteName(site)}": round-robin, an upstream that fails is skipped for a while.`,
      `upstream ${name} {`,
      // An upstream-block server without a port is port 80 even for https: always write it.
      urls.map((url) => `server ${[`${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`, ...params].join(' ')};`),
      '}', '',
    );
    return name;
  }
}

function isFiles(tls: SiteConfig['tls']): tls is CertFiles {
  return tls !== undefined && tls !== 'auto';
}

/** A site's routes as RoutingTable compiles them: the upstream shorthand, plus phpCompat's mounts. */
function siteRoutes(site: SiteConfig): RouteConfig[] {
  const routes: RouteConfig[] = site.routes ? [...site.routes] : [{ path: '/', upstream: site.upstream!, stripPrefix: false, preserveHost: true, setHeaders: {} }];
  for (const r of site.routes ?? []) {
    if (!r.relay?.phpCompat) continue;
    for (const mount of ['/get.php', '/post.php', '/put.php', '/getImg.php', '/getDownImg.php']) {
      if (!routes.some((x) => x.path === mount)) routes.push({ ...r, path: mount });
    }
  }
  return routes;
}

function matchRoute(routes: readonly RouteConfig[], path: string): RouteConfig | undefined {
  let best: RouteConfig | undefined;
  for (const r of routes) if (path.startsWith(r.path) && (!best || r.path.length > best.path.length)) best = r;
  return best;
}

/** The path mpgate sends upstream for `path` on `route` (before the base path), as resolve(). */
function routeTarget(route: RouteConfig, path: string): string {
  if (!route.stripPrefix) return path;
  const rest = path.slice(route.path.length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

function headerLines(headers: Map<string, [string, string]>): string[] {
  return [...headers.values()].map(([n, v]) => `proxy_set_header ${quoteWord(n)} ${quoteWord(v)};`);
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'root';
}

function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

/** Bytes in nginx's units (k/m are binary, as in mpgate). */
export function nginxSize(bytes: number): string {
  if (bytes > 0 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}m`;
  if (bytes > 0 && bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}

/** Milliseconds in nginx's units. */
export function nginxTime(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function render(lines: Line[], depth: number): string {
  const pad = '    '.repeat(depth);
  return lines.map((l) => (Array.isArray(l) ? render(l, depth + 1) : l === '' ? '' : `${pad}${l}`)).join('\n');
}
