/**
 * Compiles a validated Config into the immutable table one request is routed with. A reload builds
 * a new table and swaps one reference; each request keeps the table it started with.
 */
import type { Pool } from 'undici';
import type { Config, Limits, RouteConfig, SiteConfig, UpstreamDefaults } from '../config/schema.js';
import { RoundRobin, type UpstreamHealth } from '../core/balancer.js';
import { HostRouter } from '../core/host-router.js';
import { ProxyTrust } from '../core/trust.js';
import { poolKey, type UpstreamPools } from '../proxy/upstream-pool.js';

export interface Upstream {
  readonly origin: string;
  /** Path prefix of the upstream URL without the trailing slash ("" for none). */
  readonly basePath: string;
  /** host[:port] of the upstream, sent as Host when preserveHost is false. */
  readonly authority: string;
  readonly health: UpstreamHealth;
  readonly dispatcher: Pool;
}

export interface Route {
  readonly site: Site;
  readonly path: string;
  readonly stripPrefix: boolean;
  readonly preserveHost: boolean;
  /** setHeaders as a flat list. */
  readonly extraHeaders: readonly string[] | undefined;
  readonly upstreams: RoundRobin<Upstream>;
}

export interface Site {
  readonly name: string;
  readonly maxBodySize: number;
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

function compileSite(sc: SiteConfig, config: Config, pools: UpstreamPools, keys: Set<string>): Site {
  const routeConfigs: RouteConfig[] = sc.routes
    ? [...sc.routes]
    : [{ path: '/', upstream: sc.upstream!, stripPrefix: false, preserveHost: true, setHeaders: {} }];
  const site: { name: string; maxBodySize: number; routes: Route[] } = {
    name: sc.name ?? sc.hosts[0]!,
    maxBodySize: sc.maxBodySize ?? config.limits.maxBodySize,
    routes: [],
  };
  for (const rc of routeConfigs.sort((a, b) => b.path.length - a.path.length)) {
    const urls = Array.isArray(rc.upstream) ? rc.upstream : [rc.upstream!];
    const upstreams = urls.map((u): Upstream => {
      const url = new URL(u);
      keys.add(poolKey(url.origin, config.upstream));
      return {
        origin: url.origin,
        basePath: url.pathname.replace(/\/+$/, ''),
        authority: url.host,
        health: pools.health(url.origin),
        dispatcher: pools.pool(url.origin, config.upstream),
      };
    });
    const extra = Object.entries(rc.setHeaders).flat();
    site.routes.push(Object.freeze({
      site,
      path: rc.path,
      stripPrefix: rc.stripPrefix,
      preserveHost: rc.preserveHost,
      extraHeaders: extra.length ? extra : undefined,
      upstreams: new RoundRobin(upstreams),
    }));
  }
  Object.freeze(site.routes);
  return Object.freeze(site);
}
