/**
 * The one source of truth for mpgate's configuration: the zod schema below validates the YAML file,
 * produces the frozen typed `Config` object, and generates the JSON Schema editors use
 * (`mpgate schema`). Every field carries its default and a description here, where it is declared.
 *
 * Split the way Traefik splits it: `listen` and `limits.maxHeaderSize` shape the sockets and need a
 * restart; `sites` and the rest of `limits`/`upstream` are swapped live on reload.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './units.js';

const duration = (description: string) =>
  z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as "250ms", "10s", "5m" or "365d"'),
    ])
    .transform((v) => (typeof v === 'number' ? v : parseDuration(v)!))
    .describe(`${description} Milliseconds, or a string such as "10s".`);

const size = (description: string) =>
  z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(new RegExp(SIZE_PATTERN), 'expected a size such as "512KiB" or "10MiB"'),
    ])
    .transform((v) => (typeof v === 'number' ? v : parseSize(v)!))
    .describe(`${description} Bytes, or a string such as "10MiB".`);

/** host:port, [v6]:port or a bare port. */
const listenAddress = z
  .string()
  .regex(/^(?:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$/, 'expected "host:port" such as "0.0.0.0:80" or "127.0.0.1:8080"')
  .describe('Address to listen on: "host:port", "[::]:80" or a bare port (all interfaces).');

/** http(s)://host[:port][/base] — no query, no fragment, no credentials. */
export const upstreamUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'expected an upstream URL such as "http://127.0.0.1:8000" (http or https, no query or credentials)')
  .describe('Upstream base URL, e.g. "http://127.0.0.1:8000".');

/**
 * Server names as nginx writes them: "a.com", "*.a.com", "www.a.*", ".a.com" (a.com and all its
 * subdomains) and "~regex". Checked once here so routing never meets a malformed name.
 */
export const hostPattern = z
  .string()
  .min(1)
  .refine((s) => {
    if (s.startsWith('~')) {
      try {
        new RegExp(s.slice(1), 'i');
        return true;
      } catch {
        return false;
      }
    }
    const name = s.startsWith('.') ? `*${s}` : s;
    return /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?$/i.test(name) && !(name.startsWith('*.') && name.endsWith('.*'));
  }, 'expected a host name ("x.a.com"), a wildcard ("*.a.com", "www.a.*", ".a.com") or a regex ("~^api\\d+\\.a\\.com$")')
  .describe('Host name, wildcard ("*.a.com", "www.a.*", ".a.com") or regex ("~^x\\d+\\.a\\.com$").');

const proxyFields = {
  upstream: z
    .union([upstreamUrl, z.array(upstreamUrl).min(1)])
    .optional()
    .describe('Where to proxy: one URL, or a list used round-robin with passive failover.'),
  stripPrefix: z
    .boolean()
    .default(false)
    .describe('Remove the route path from the request path before proxying ("/api/x" → "/x").'),
  preserveHost: z
    .boolean()
    .default(true)
    .describe('Send the client\'s Host header upstream (nginx: proxy_set_header Host $host). If false, the upstream\'s own host:port is sent.'),
  setHeaders: z
    .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name'), z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'header values may hold tab, visible ASCII and latin1 only (no CR, LF, NUL or other control characters)'))
    .default({})
    .describe('Extra request headers sent upstream (nginx: proxy_set_header NAME VALUE).'),
};

/**
 * The relay (second seed): a filed domain forwards `?method=path` requests to a backend that has
 * no filing. Only ever to this one upstream, only under the allowed prefixes.
 */
export const relaySchema = z
  .strictObject({
    upstream: upstreamUrl.describe('The backend base URL, e.g. "https://api.example.com/v1". https is verified against the system CAs (plus `ca`).'),
    param: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a query parameter name').default('method').describe('Query/JSON parameter carrying the backend path (the seed uses "method").'),
    allow: z
      .array(z.string().startsWith('/', 'an allowed prefix starts with "/"'))
      .optional()
      .describe('Backend path prefixes that may be reached (whole segments: "/api" allows /api and /api/x, not /apix). Default: everything under the upstream\'s path.'),
    ca: z.string().min(1).optional().describe('PEM file with extra CA certificates trusted for the backend (a private CA). Certificates are always verified.'),
    headers: proxyFields.setHeaders.describe('Fixed headers sent to the backend, e.g. a shared secret.'),
    phpCompat: z.boolean().default(false).describe('Also answer the seed\'s URLs at the site root: /get.php, /post.php, /put.php, /getImg.php, /getDownImg.php (the last adds Content-Disposition: attachment).'),
    maxJsonBody: size('Largest JSON body read for the JSON-body form ({"method": "path", ...}); larger gets 413.').default(1024 * 1024),
  })
  .describe('Relay to an un-filed backend: /relay?method=api/x, /relay/api/x, or {"method":"api/x"} in a JSON body.');

const engineName = z.enum(['local', 'wechat']);

/** The first seed's `/wxocr`: photo in, WeChat's printed-text OCR answer out. */
export const ocrRouteSchema = z
  .strictObject({
    engine: engineName.default('local').describe('"local": offline PP-OCR on this server\'s CPU; "wechat": WeChat\'s cloud cv/ocr/comm (needs ocr.wechat).'),
    fallback: engineName.optional().describe('Engine tried when the first fails for a reason that is not the image (busy, timeout, quota, outage).'),
    fields: z.array(z.string().min(1)).min(1).default(['image', 'img']).describe('Multipart field names read for the image (the seed uses "image", WeChat\'s API "img").'),
    maxFileSize: size('Largest image file accepted; larger gets errcode 101002.').default(10 * 1024 * 1024),
    score: z.boolean().default(false).describe('Add each line\'s confidence (0–1) as "score".'),
  })
  .describe('OCR service in WeChat\'s format: POST a photo (multipart field "image", or a raw image/* body).');

export const routeSchema = z
  .strictObject({
    path: z
      .string()
      .startsWith('/', 'a route path starts with "/"')
      .default('/')
      .describe('Path prefix this route serves; the longest matching prefix wins.'),
    ...proxyFields,
    relay: relaySchema.optional(),
    ocr: ocrRouteSchema.optional(),
  })
  .superRefine((route, ctx) => {
    const kinds = [route.upstream !== undefined && 'upstream', route.relay !== undefined && 'relay', route.ocr !== undefined && 'ocr'].filter(Boolean);
    if (kinds.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'a route needs an upstream (e.g. upstream: http://127.0.0.1:8000), a relay or an ocr service' });
    } else if (kinds.length > 1) {
      ctx.addIssue({ code: 'custom', path: [kinds[1] as string], message: `a route is either ${kinds.join(' or ')}, not both` });
    }
  });

/** A certificate from files: PEM chain (leaf first) and its private key. Read and matched at load. */
export const certFilesSchema = z
  .strictObject({
    cert: z.string().min(1).describe('PEM file: the certificate followed by its intermediates (fullchain.pem).'),
    key: z.string().min(1).describe('PEM file: the private key of that certificate.'),
  })
  .describe('Certificate and key files, re-read when they change.');

const siteTlsSchema = z
  .union([z.literal('auto'), certFilesSchema])
  .describe('HTTPS for this site: "auto" (issued and renewed by ACME, see acme) or {cert, key} files.');

const hstsSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      maxAge: duration('How long browsers remember to use HTTPS only.').default(31_536_000_000),
      includeSubDomains: z.boolean().default(false).describe('Also for every subdomain (only if all of them serve HTTPS).'),
      preload: z.boolean().default(false).describe('Ask to be preloaded into browsers (hstspreload.org requirements apply).'),
    }),
  ])
  .describe('Strict-Transport-Security on this site\'s HTTPS answers: false (default), true (max-age one year) or {maxAge, includeSubDomains, preload}.');

export const siteSchema = z
  .strictObject({
    name: z.string().min(1).optional().describe('Name used in logs and error answers; defaults to the first host.'),
    hosts: z.array(hostPattern).min(1).describe('Host names this site answers (nginx: server_name).'),
    upstream: proxyFields.upstream.describe('Shorthand for a single route "/" to this upstream.'),
    routes: z.array(routeSchema).optional().describe('Path routes; the longest matching prefix wins.'),
    maxBodySize: size('Request body limit for this site (overrides limits.maxBodySize; nginx: client_max_body_size).').optional(),
    owner: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a user name (letters, digits, "_", ".", "-")').optional().describe('User who owns this site; a user token of the admin API sees and changes only its own sites.'),
    disabled: z.boolean().default(false).describe('A disabled site keeps its config but answers 503 MPG_SITE_DISABLED.'),
    tls: siteTlsSchema.optional(),
    redirectHttp: z.boolean().default(true).describe('With tls set: plain-HTTP requests are redirected to https:// (301 for GET/HEAD, 308 otherwise). false serves the site over HTTP too.'),
    hsts: hstsSchema.default(false),
  })
  .superRefine((site, ctx) => {
    if (site.upstream !== undefined && site.routes !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'use either "upstream" (one route "/") or "routes", not both' });
    }
    if (site.upstream === undefined && site.routes === undefined) {
      ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'a site needs "upstream: URL" or a "routes:" list' });
    }
    const seen = new Set<string>();
    site.routes?.forEach((r, i) => {
      if (seen.has(r.path)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: `route path "${r.path}" is listed twice in this site` });
      seen.add(r.path);
    });
  });

const limitsSchema = z
  .strictObject({
    maxBodySize: size('Largest request body accepted; larger ones get 413 without the rest being read.').default(10 * 1024 * 1024),
    maxHeaderSize: size('Largest request head (request line + headers); larger ones get 431. Needs a restart to change.').default(16 * 1024),
    maxHeaderCount: z.number().int().min(1).max(1000).default(100).describe('Most request header fields accepted; more get 431.'),
    headersTimeout: duration('Time a client has to send the complete request head; slower clients get 408 (slowloris).').default(10_000),
    requestTimeout: duration('Time a client has to send the whole request including the body; slower clients get 408.').default(300_000),
    idleTimeout: duration('A connection on which nothing moves in either direction for this long while a request is in progress is closed; keep it above upstream.responseTimeout.').default(90_000),
    keepAliveTimeout: duration('An idle keep-alive connection between requests is closed after this.').default(5_000),
    websocketIdleTimeout: duration('A WebSocket on which nothing moves for this long is closed; 0 keeps it open (nginx closes after 60s).').default(600_000),
  })
  .describe('Limits on what clients may send.');

const upstreamDefaultsSchema = z
  .strictObject({
    connectTimeout: duration('Time to establish an upstream connection; then 504.').default(5_000),
    responseTimeout: duration('Time the upstream has to send its response head; then 504.').default(60_000),
    bodyIdleTimeout: duration('Longest pause inside an upstream response body; then the response is cut.').default(60_000),
    keepAliveTimeout: duration('Idle upstream connections are kept this long for reuse.').default(30_000),
    connections: z.number().int().min(1).max(4096).default(256).describe('Most connections to one upstream.'),
    maxFails: z.number().int().min(1).default(1).describe('Consecutive connection failures after which an upstream is skipped.'),
    failTimeout: duration('How long a failing upstream is skipped before it is tried again (nginx: fail_timeout).').default(10_000),
  })
  .describe('How mpgate talks to upstreams.');

const ocrEngineSchema = z
  .strictObject({
    workers: z.number().int().min(1).max(64).optional().describe('OCR worker threads (default: one per CPU core). Each holds its own models (~350 MiB). Restart to change.'),
    queue: z.number().int().min(0).max(10_000).default(16).describe('Requests waiting for a worker; beyond this the answer is errcode -1 "busy".'),
    timeout: duration('Longest one recognition may take; then errcode 101901.').default(30_000),
    maxPixels: z.number().int().min(1).default(40_000_000).describe('Images with more pixels are refused before decoding (decompression bombs); errcode 101002.'),
    detMaxSide: z.number().int().min(320).max(4096).default(736).describe('Detection input: the longer side is scaled down to this. 736 reads a 1280×960 photo in ~210 ms; 960 catches smaller text (12 px on a 1280 px page) at ~300 ms.'),
    wechat: z
      .strictObject({
        appid: z.string().min(1).describe('Mini-program AppID.'),
        secret: z.string().min(1).optional().describe('AppSecret. Prefer secretEnv so it stays out of the file.'),
        secretEnv: z.string().min(1).optional().describe('Name of the environment variable holding the AppSecret.'),
        baseUrl: upstreamUrl.default('https://api.weixin.qq.com').describe('WeChat API base URL (tests point it at a local server).'),
      })
      .optional()
      .describe('WeChat cloud OCR (engine: wechat): access_token is fetched with stable_token, cached and refreshed by mpgate.'),
  })
  .describe('The OCR engines shared by every ocr route.');

const httpsSchema = z
  .strictObject({
    listen: z.array(listenAddress).min(1).default(['0.0.0.0:443']).describe('HTTPS listeners (HTTP/2 and HTTP/1.1 by ALPN). They start when a site has tls. Changing them needs a restart.'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted (WeChat requires 1.2 or newer; never lower).'),
    ciphers: z.string().min(1).optional().describe('OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed). Default: ECDHE with AES-GCM or ChaCha20 only.'),
    http2: z.boolean().default(true).describe('Offer HTTP/2 by ALPN (wx.request enableHttp2). Requests are proxied to HTTP/1.1 upstreams.'),
    unknownSni: z.enum(['default', 'reject']).default('default').describe('A TLS client naming no configured site: "default" answers with the default certificate, "reject" ends the handshake with an alert.'),
    defaultCert: certFilesSchema.optional().describe('Certificate for clients without SNI or with an unknown name (default: the first site\'s certificate).'),
  })
  .describe('The HTTPS side: listeners, TLS versions, HTTP/2.');

const acmeSchema = z
  .strictObject({
    directory: z
      .string()
      .default('letsencrypt')
      .refine((s) => s === 'letsencrypt' || s === 'letsencrypt-staging' || /^https:\/\/\S+$/.test(s), 'expected "letsencrypt", "letsencrypt-staging" or an https:// ACME directory URL')
      .describe('ACME directory: "letsencrypt", "letsencrypt-staging" or the directory URL of any CA.'),
    email: z.string().email().optional().describe('Contact address for the ACME account (expiry notices).'),
    storage: z.string().min(1).default('./mpgate-certs').describe('Directory for the account key, certificates and keys (keys are written mode 0600); relative to the config file.'),
    challenges: z.array(z.enum(['http-01', 'tls-alpn-01'])).min(1).default(['http-01', 'tls-alpn-01']).describe('Challenge types offered, in order of preference. http-01 needs port 80, tls-alpn-01 port 443.'),
    ca: z.string().min(1).optional().describe('PEM file with the CA that signs the ACME server\'s own HTTPS certificate (a private or test CA such as pebble\'s).'),
    renewBefore: z.number().gt(0).lt(1).default(1 / 3).describe('Renew when this fraction of the certificate\'s lifetime is left (1/3: day 60 of a 90-day certificate).'),
    retryMin: duration('First retry delay after a failed issuance; doubles up to retryMax.').default(60_000),
    retryMax: duration('Longest retry delay after repeated failures.').default(3_600_000),
  })
  .describe('Automatic certificates (sites with tls: auto).');

const adminSchema = z
  .strictObject({
    listen: listenAddress.default('127.0.0.1:9090').describe('Admin API, dashboard and /metrics. A non-loopback address needs tls and at least one token.'),
    tokens: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a token name (letters, digits, "_", ".", "-")').describe('Who this token is; appears in the audit log.'),
          role: z.enum(['admin', 'user']).default('user').describe('"admin" sees and changes every site; "user" only the sites it owns.'),
          user: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional().describe('Site owner this token acts as (default: name).'),
          hash: z.string().regex(/^scrypt\$/, 'a hash made by "mpgate admin token add" (scrypt$...)').describe('scrypt hash of the token; the token itself is never stored.'),
        }),
      )
      .default([])
      .describe('API tokens, hashed. Create with "mpgate admin token add NAME [--role admin]".'),
    tls: certFilesSchema.optional().describe('Serve the admin listener over HTTPS with these files.'),
    audit: z.string().min(1).optional().describe('Audit log file (one JSON line per change: who, what, when). Default: mpgate-audit.log next to the config file.'),
    ports: z
      .strictObject({
        from: z.number().int().min(1).max(65535).default(8000),
        to: z.number().int().min(1).max(65535).default(8999),
      })
      .prefault({})
      .describe('Local port range "site add" picks the next free upstream port from (the seed gives users 8000, 8001, ...).'),
  })
  .describe('The admin listener: per-user site administration, dashboard, Prometheus metrics.');

const accessLogSchema = z
  .union([
    z.boolean(),
    z.strictObject({ path: z.string().min(1).describe('"-" for stdout, or a file path (appended to).') }),
  ])
  .default(true)
  .describe('Structured access log (one JSON line per request): true (stdout), false, or {path}.');

/** A site's name: its `name`, or its first host (what logs, error answers and the admin API call it). */
export function siteName(site: Pick<SiteConfig, 'name' | 'hosts'>): string {
  return site.name ?? site.hosts[0]!;
}

/** "host:port" / "[v6]:port" / "port" → host ("" for all interfaces) and port. */
export function splitListen(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(addr);
  if (m) return { host: m[1] ?? m[2]!, port: Number(m[3]) };
  return { host: '', port: Number(addr) };
}

/** 127.0.0.0/8, ::1 and "localhost" never leave the machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** What ProxyTrust (node's BlockList) accepts: a valid address, and a prefix within its family's length. */
function isAddressOrCidr(s: string): boolean {
  const [addr = '', bits] = s.split('/');
  const family = isIP(addr);
  return family !== 0 && (bits === undefined || Number(bits) <= (family === 4 ? 32 : 128));
}

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Path or URL of the JSON Schema, for editors.'),
    listen: z
      .array(listenAddress)
      .min(1)
      .default(['0.0.0.0:80'])
      .describe('HTTP listeners. Changing them needs a restart.'),
    trustedProxies: z
      .array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, { message: 'expected an IP address or CIDR such as "10.0.0.0/8"', abort: true }).refine(isAddressOrCidr, 'expected an IP address or CIDR such as "10.0.0.0/8" (prefix at most 32 for IPv4, 128 for IPv6)'))
      .default([])
      .describe('Peers (IP or CIDR) whose X-Forwarded-For/-Proto/-Host and X-Real-IP are trusted; from anyone else they are replaced.'),
    defaultSite: z.string().optional().describe('Site (by name or first host) that answers unknown hosts. Without it they get 404.'),
    limits: limitsSchema.prefault({}),
    upstream: upstreamDefaultsSchema.prefault({}),
    shutdownGrace: duration('On SIGTERM, in-flight requests get this long to finish.').default(10_000),
    accessLog: accessLogSchema,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('Level of the operational log.'),
    watch: z.boolean().default(true).describe('Reload when the config file changes (SIGHUP always reloads).'),
    sites: z.array(siteSchema).default([]).describe('The sites, matched by Host like nginx server_name.'),
    ocr: ocrEngineSchema.prefault({}),
    https: httpsSchema.prefault({}),
    acme: acmeSchema.prefault({}),
    admin: adminSchema.optional(),
  })
  .superRefine((cfg, ctx) => {
    const names = new Map<string, number>();
    const hosts = new Map<string, number>();
    cfg.sites.forEach((site, i) => {
      const name = siteName(site);
      if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['sites', i, 'name'], message: `site name "${name}" is already used by sites[${names.get(name)}]; give one a distinct "name"` });
      names.set(name, i);
      site.hosts.forEach((h, j) => {
        // "*.a.com" and ".a.com" are the same wildcard to HostRouter: in two sites the later would win silently.
        const key = h.startsWith('~') ? h : h.toLowerCase().replace(/^\*\./, '.');
        if (hosts.has(key)) ctx.addIssue({ code: 'custom', path: ['sites', i, 'hosts', j], message: `host "${h}" is already served by sites[${hosts.get(key)}]` });
        hosts.set(key, i);
      });
    });
    cfg.sites.forEach((site, i) => {
      if (site.tls !== 'auto') return;
      site.hosts.forEach((h, j) => {
        if (h.startsWith('~') || h.includes('*') || h.startsWith('.')) {
          ctx.addIssue({ code: 'custom', path: ['sites', i, 'hosts', j], message: `tls: auto issues certificates for plain names only; "${h}" is a wildcard or regex (give tls: {cert, key} files for it)` });
        }
      });
    });
    cfg.sites.forEach((site, i) => site.routes?.forEach((r, j) => {
      for (const key of ['engine', 'fallback'] as const) {
        if (r.ocr?.[key] === 'wechat' && cfg.ocr.wechat === undefined) {
          ctx.addIssue({ code: 'custom', path: ['sites', i, 'routes', j, 'ocr', key], message: 'the wechat engine needs ocr.wechat (appid and secret or secretEnv) at the top level' });
        }
      }
    }));
    if (cfg.ocr.wechat && cfg.ocr.wechat.secret === undefined && cfg.ocr.wechat.secretEnv === undefined) {
      ctx.addIssue({ code: 'custom', path: ['ocr', 'wechat'], message: 'give the AppSecret as secretEnv (an environment variable name) or secret' });
    }
    if (cfg.admin !== undefined) {
      const { host } = splitListen(cfg.admin.listen);
      if (!isLoopback(host) && (cfg.admin.tls === undefined || cfg.admin.tokens.length === 0)) {
        ctx.addIssue({ code: 'custom', path: ['admin', 'listen'], message: `the admin listener binds to a non-loopback address (${cfg.admin.listen}); that needs admin.tls and at least one token` });
      }
      if (cfg.admin.ports.from > cfg.admin.ports.to) ctx.addIssue({ code: 'custom', path: ['admin', 'ports'], message: 'ports.from is above ports.to' });
      const tokenNames = new Set<string>();
      cfg.admin.tokens.forEach((t, i) => {
        if (tokenNames.has(t.name)) ctx.addIssue({ code: 'custom', path: ['admin', 'tokens', i, 'name'], message: `token name "${t.name}" is listed twice` });
        tokenNames.add(t.name);
      });
    }
    if (cfg.defaultSite !== undefined && !names.has(cfg.defaultSite)) {
      ctx.addIssue({ code: 'custom', path: ['defaultSite'], message: `no site is named "${cfg.defaultSite}"; known: ${[...names.keys()].join(', ') || '(none)'}` });
    }
  });

/** What the file may contain (before defaults and unit parsing). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated, defaulted configuration. Produced only by `loadConfig`/`parseConfig`, always deep-frozen. */
export type Config = z.output<typeof configSchema>;
export type SiteConfig = Config['sites'][number];
export type RouteConfig = NonNullable<SiteConfig['routes']>[number];
export type Limits = Config['limits'];
export type RelayConfig = NonNullable<RouteConfig['relay']>;
export type OcrRouteConfig = NonNullable<RouteConfig['ocr']>;
export type OcrEngineConfig = Config['ocr'];
export type UpstreamDefaults = Config['upstream'];
export type HttpsConfig = Config['https'];
export type AcmeConfig = Config['acme'];
export type AdminConfig = NonNullable<Config['admin']>;
export type CertFiles = z.output<typeof certFilesSchema>;
export type SiteTls = NonNullable<SiteConfig['tls']>;

/** JSON Schema (draft 2020-12) of the file, generated from the schema above. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    // zod leaves out defaults that sit on a transform (durations, sizes); editors should show them.
    override: (ctx) => {
      const def = (ctx.zodSchema as unknown as { _zod: { def: { type: string; defaultValue?: unknown } } })._zod.def;
      if (def.type === 'default' && ctx.jsonSchema.default === undefined) {
        const value = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
        if (value !== undefined && typeof value !== 'object') ctx.jsonSchema.default = value;
      }
    },
  }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://mpgate.dev/schema/mpgate.schema.json',
    title: 'mpgate configuration',
  };
}
