/**
 * Compiles a validated Config into the immutable table one request is routed with. A reload builds
 * a new table and swaps one reference; each request keeps the table it started with.
 */
import { readFileSync } from 'node:fs';
import { siteName, type Config, type Limits, type OcrRouteConfig, type RelayConfig, type RouteConfig, type SiteConfig, type UpstreamDefaults } from '../config/schema.js';
import type { OcrRouteOptions } from '../ocr/ocr-request.js';
import { ConfigError } from '../core/errors.js';
import type { RelayPolicy } from '../relay/relay-target.js';
import { RoundRobin, type UpstreamHealth } from '../core/balancer.js';
import { HostRouter } from '../core/host-router.js';
import { hstsValue } from '../core/headers.js';
import { ProxyTrust } from '../core/trust.js';
import type { H1Pool } from '../proxy/h1-client.js';
import { poolKey, type UpstreamPools } from '../proxy/upstream-pool.js';

export interface Upstream {
  readonly origin: string;
  /** Path prefix of the upstream URL without the trailing slash ("" for none). */
  readonly basePath: string;
  /** host[:port] of the upstream, sent as Host when preserveHost is false. */
  readonly authority: string;
  readonly health: UpstreamHealth;
  /** Keep-alive connections to this origin (shared by every route naming it). */
  readonly pool: H1Pool;
}

export interface Route {
  readonly site: Site;
  readonly path: string;
  readonly stripPrefix: boolean;
  readonly preserveHost: boolean;
  /** setHeaders as a flat list. */
  readonly extraHeaders: readonly string[] | undefined;
  readonly upstreams: RoundRobin<Upstream>;
  /** Set on relay routes: how the backend path is taken from the request. */
  readonly relay: RelayRuntime | undefined;
  /** Set on OCR routes (`/wxocr`): answered here, no upstream. */
  readonly ocr: OcrRouteOptions | undefined;
}

export interface RelayRuntime {
  readonly policy: RelayPolicy;
  readonly maxJsonBody: number;
  /** getDownImg.php: answer with Content-Disposition: attachment. */
  readonly attachment: boolean;
}

export interface Site {
  readonly name: string;
  readonly maxBodySize: number;
  /** `disabled: true`: every request answers 503 MPG_SITE_DISABLED. */
  readonly disabled: boolean;
  /** Plain-HTTP requests are redirected to https:// (the site has tls and redirectHttp). */
  readonly redirectHttp: boolean;
  /** Strict-Transport-Security value added to HTTPS answers, when configured. */
  readonly hsts: string | undefined;
  /** Longest path first. */
  readonly routes: readonly Route[];
}

export class RoutingTable {
  readonly hosts: HostRouter<Site>;
  readonly trust: ProxyTrust;
  readonly limits: Limits;
  readonly upstream: UpstreamDefaults;
  readonly sites: readonly Site[];
  /** Pool keys this table uses, so the pool registry can retire the rest. */
  readonly poolKeys: ReadonlySet<string>;

  constructor(readonly config: Config, pools: UpstreamPools) {
    this.limits = config.limits;
    this.upstream = config.upstream;
    this.trust = new ProxyTrust(config.trustedProxies);
    this.hosts = new HostRouter<Site>();
    const keys = new Set<string>();
    const byName = new Map<string, Site>();
    const sites: Site[] = [];
    for (const sc of config.sites) {
      const site = compileSite(sc, config, pools, keys);
      sites.push(site);
      byName.set(site.name, site);
      for (const h of sc.hosts) this.hosts.add(h, site);
    }
    if (config.defaultSite !== undefined) this.hosts.setFallback(byName.get(config.defaultSite));
    this.sites = sites;
    this.poolKeys = keys;
  }

  /** Longest route prefix of `path` in `site` (plain prefix, as nginx's prefix locations). */
  static matchRoute(site: Site, path: string): Route | undefined {
    for (const r of site.routes) if (path.startsWith(r.path)) return r;
    return undefined;
  }
}

/** The seed's relay scripts (second seed), mounted at the site root when `phpCompat` is on. */
export const PHP_COMPAT_MOUNTS = ['/get.php', '/post.php', '/put.php', '/getImg.php', '/getDownImg.php'] as const;

function compileSite(sc: SiteConfig, config: Config, pools: UpstreamPools, keys: Set<string>): Site {
  const routeConfigs: RouteConfig[] = sc.routes
    ? [...sc.routes]
    : [{ path: '/', upstream: sc.upstream!, stripPrefix: false, preserveHost: true, setHeaders: {} }];
  // phpCompat adds the seed's five script URLs as relay routes of their own.
  for (const rc of sc.routes ?? []) {
    if (!rc.relay?.phpCompat) continue;
    for (const mount of PHP_COMPAT_MOUNTS) {
      if (!routeConfigs.some((r) => r.path === mount)) routeConfigs.push({ ...rc, path: mount });
    }
  }
  const site: Omit<Site, 'routes'> & { routes: Route[] } = {
    name: siteName(sc),
    maxBodySize: sc.maxBodySize ?? config.limits.maxBodySize,
    disabled: sc.disabled,
    redirectHttp: sc.tls !== undefined && sc.redirectHttp,
    hsts: hstsValue(sc.hsts),
    routes: [],
  };
  for (const rc of routeConfigs.sort((a, b) => b.path.length - a.path.length)) {
    const route = rc.relay ? compileRelayRoute(site, rc, rc.relay, config, pools, keys)
      : rc.ocr ? compileOcrRoute(site, rc, rc.ocr)
      : compileProxyRoute(site, rc, config, pools, keys);
    site.routes.push(Object.freeze(route));
  }
  Object.freeze(site.routes);
  return Object.freeze(site);
}

function compileProxyRoute(site: Site, rc: RouteConfig, config: Config, pools: UpstreamPools, keys: Set<string>): Route {
  const urls = Array.isArray(rc.upstream) ? rc.upstream : [rc.upstream!];
  const upstreams = urls.map((u): Upstream => {
    const url = new URL(u);
    keys.add(poolKey(url.origin, config.upstream));
    return {
      origin: url.origin,
      basePath: url.pathname.replace(/\/+$/, ''),
      authority: url.host,
      health: pools.health(url.origin),
      pool: pools.pool(url.origin, config.upstream),
    };
  });
  const extra = Object.entries(rc.setHeaders).flat();
  return {
    site,
    path: rc.path,
    stripPrefix: rc.stripPrefix,
    preserveHost: rc.preserveHost,
    extraHeaders: extra.length ? extra : undefined,
    upstreams: new RoundRobin(upstreams),
    relay: undefined,
    ocr: undefined,
  };
}

function compileOcrRoute(site: Site, rc: RouteConfig, ocr: OcrRouteConfig): Route {
  return {
    site,
    path: rc.path,
    stripPrefix: false,
    preserveHost: true,
    extraHeaders: undefined,
    upstreams: new RoundRobin([]),
    relay: undefined,
    ocr: Object.freeze({ engine: ocr.engine, fallback: ocr.fallback, fields: ocr.fields, maxFileSize: ocr.maxFileSize, score: ocr.score }),
  };
}

function compileRelayRoute(site: Site, rc: RouteConfig, relay: RelayConfig, config: Config, pools: UpstreamPools, keys: Set<string>): Route {
  const url = new URL(relay.upstream);
  let ca: string | undefined;
  if (relay.ca !== undefined) {
    try {
      ca = readFileSync(relay.ca, 'utf8');
    } catch (err) {
      const problems = [{ file: relay.ca, line: 0, column: 0, key: 'relay.ca', message: `cannot read the CA file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, hint: 'give a readable PEM file' }];
      throw new ConfigError(`${relay.ca} relay.ca: cannot read the CA file`, problems, { cause: err });
    }
  }
  const tls = ca === undefined ? undefined : { ca };
  keys.add(poolKey(url.origin, config.upstream, tls));
  const basePath = url.pathname.replace(/\/+$/, '');
  // The relay builds the whole upstream path itself (base path included), so the Upstream has none.
  const upstream: Upstream = {
    origin: url.origin,
    basePath: '',
    authority: url.host,
    health: pools.health(url.origin),
    pool: pools.pool(url.origin, config.upstream, tls),
  };
  const extra = Object.entries(relay.headers).flat();
  return {
    site,
    path: rc.path,
    stripPrefix: false,
    // The backend is another domain: it gets its own name as Host (X-Forwarded-Host keeps ours).
    preserveHost: false,
    extraHeaders: extra.length ? extra : undefined,
    upstreams: new RoundRobin([upstream]),
    relay: {
      policy: { param: relay.param, basePath, allow: relay.allow ?? [basePath || '/'] },
      maxJsonBody: relay.maxJsonBody,
      attachment: rc.path === '/getDownImg.php',
    },
    ocr: undefined,
  };
}
