/**
 * `mpgate site test HOST` and `POST /api/v1/sites/:name/test`: the seed's "visit http://x.a.com in
 * a browser" check, taken apart hop by hop so the failing one is named with its fix:
 *
 *   dns       does the name resolve, and to this machine? (noted, not failed: a test run on the
 *             server itself often cannot see the public record, and cloud servers do not hold their
 *             public address on an interface)
 *   host      which site the config gives this Host (nginx server_name precedence), and is it enabled
 *   upstream  does each upstream of that site accept a TCP connection
 *   request   a GET through the running gateway with that Host: status, the gateway's error code
 *             (x-mpgate-error) when it answered itself, time
 */
import { lookup } from 'node:dns/promises';
import { stat } from 'node:fs/promises';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { siteName, type Config, type SiteConfig } from '../config/schema.js';
import { HostRouter, normalizeHost } from '../core/host-router.js';
import { readCertificates, shortDn, summarize } from '../tls/cert-info.js';
import { siteDirName } from '../tls/acme/store.js';
import { siteUpstreams } from './auth.js';

export interface Hop {
  name: 'dns' | 'host' | 'upstream' | 'request';
  ok: boolean;
  detail: string;
  /** What to do about it, when not ok (or worth a note). */
  fix?: string;
  /** Passed, but with something to look at (a name that does not resolve from here). */
  warn?: boolean;
}

export interface SiteTestOptions {
  /** Where the gateway listens, e.g. "http://127.0.0.1:8080". */
  gatewayUrl: string;
  host: string;
  path?: string | undefined;
  /** The config the gateway runs with (for the Host match and the upstreams). */
  config: Config;
  /** Per network step (default 3 s). */
  timeoutMs?: number | undefined;
}

/** Runs every hop (a failed hop does not stop the later ones: each tells something). */
export async function siteTest(opts: SiteTestOptions): Promise<Hop[]> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const hops: Hop[] = [await dnsHop(opts.host, timeoutMs)];
  const site = matchSite(opts.config, opts.host);
  hops.push(hostHop(opts.host, site));
  if (site) {
    const origins = [...new Set(siteUpstreams(site).map((u) => new URL(u).origin))];
    const probes = await Promise.all(origins.map((o) => tcpProbe(o, timeoutMs)));
    origins.forEach((origin, i) => {
      const p = probes[i]!;
      const where = new URL(origin).host;
      hops.push(p.ok
        ? { name: 'upstream', ok: true, detail: `${origin} accepts connections (${p.ms} ms)` }
        : { name: 'upstream', ok: false, detail: `${origin}: ${p.error}`, fix: `start the service so that it listens on ${where}` });
    });
  }
  hops.push(await requestHop(opts, timeoutMs));
  return hops;
}

/** The site the config gives `host` (defaultSite included), as the gateway's HostRouter decides. */
export function matchSite(config: Config, host: string): SiteConfig | undefined {
  const router = new HostRouter<SiteConfig>();
  for (const s of config.sites) for (const h of s.hosts) router.add(h, s);
  if (config.defaultSite !== undefined) router.setFallback(config.sites.find((s) => siteName(s) === config.defaultSite));
  return router.match(host);
}

async function dnsHop(host: string, timeoutMs: number): Promise<Hop> {
  const name = normalizeHost(host) ?? host;
  if (net.isIP(name.replace(/^\[|\]$/g, ''))) return { name: 'dns', ok: true, detail: `${name} is an address, nothing to resolve` };
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      lookup(name, { all: true }),
      new Promise<never>((_, fail) => (timer = setTimeout(() => fail(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), timeoutMs))),
    ]);
    const own = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address)));
    const addrs = found.map((a) => a.address);
    const local = addrs.some((a) => own.has(a));
    return {
      name: 'dns', ok: true, detail: `${name} resolves to ${addrs.join(', ')}${local ? ' (this machine)' : ''}`,
      ...(local ? {} : { warn: true, fix: 'not an address of this machine: fine behind NAT or a cloud public IP; otherwise point the DNS record at this server' }),
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { name: 'dns', ok: true, warn: true, detail: `${name} does not resolve from here (${code})`, fix: `add a DNS A record for ${name} pointing at this server's public address (the test goes on with the Host header)` };
  } finally {
    clearTimeout(timer);
  }
}

function hostHop(host: string, site: SiteConfig | undefined): Hop {
  if (site === undefined) return { name: 'host', ok: false, detail: `no site serves "${host}" (the gateway answers 404 MPG_NO_SITE)`, fix: `mpgate site add ${host} --owner USER` };
  const name = siteName(site);
  const how = site.hosts.some((h) => normalizeHost(h) === normalizeHost(host)) ? ''
    : matchesOwnHosts(site, host) ? ` (by ${site.hosts.join(', ')})`
    : ' (as defaultSite)';
  if (site.disabled) return { name: 'host', ok: false, detail: `"${host}" is site "${name}"${how}, which is disabled (503 MPG_SITE_DISABLED)`, fix: `mpgate site enable ${name}` };
  return { name: 'host', ok: true, detail: `"${host}" is site "${name}"${how}${site.owner ? `, owner ${site.owner}` : ''}` };
}

function matchesOwnHosts(site: SiteConfig, host: string): boolean {
  const r = new HostRouter<true>();
  for (const h of site.hosts) r.add(h, true);
  return r.match(host) === true;
}

async function requestHop(opts: SiteTestOptions, timeoutMs: number): Promise<Hop> {
  const path = opts.path ?? '/';
  const url = new URL(path, opts.gatewayUrl).toString();
  const agent = new Agent({ connectTimeout: timeoutMs, headersTimeout: timeoutMs * 3, bodyTimeout: timeoutMs * 3 });
  const started = performance.now();
  try {
    const res = await request(url, { dispatcher: agent, method: 'GET', headers: { host: opts.host, 'user-agent': 'mpgate-site-test' } });
    await res.body.dump();
    const ms = Math.round(performance.now() - started);
    const codeHeader = res.headers['x-mpgate-error'];
    const code = Array.isArray(codeHeader) ? codeHeader[0] : codeHeader;
    const what = `GET ${path} with Host ${opts.host} through ${new URL(opts.gatewayUrl).host}: ${res.statusCode}`;
    if (code) return { name: 'request', ok: false, detail: `${what} ${code} (${ms} ms)`, fix: fixFor(code, opts.host) };
    return { name: 'request', ok: true, detail: `${what} from the upstream (${ms} ms)` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { name: 'request', ok: false, detail: `the gateway at ${opts.gatewayUrl} did not answer (${code})`, fix: 'is "mpgate serve" running there? (give its address with --gateway URL)' };
  } finally {
    await agent.close();
  }
}

function fixFor(code: string, host: string): string {
  if (code === 'MPG_NO_SITE') return `the running gateway has no site for ${host}: add one (mpgate site add ${host}) or reload it (SIGHUP)`;
  if (code === 'MPG_SITE_DISABLED') return 'enable the site (mpgate site enable NAME)';
  if (code.startsWith('MPG_UPSTREAM_')) return 'the upstream failed: start the service, check its port and that it answers HTTP';
  return 'see docs/errors.md for this code';
}

/** TCP connect to an origin's host:port, closed at once. */
export function tcpProbe(origin: string, timeoutMs = 2000): Promise<{ ok: boolean; ms: number; error?: string }> {
  const u = new URL(origin);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const started = performance.now();
  return new Promise((done) => {
    const socket = net.connect({ host, port });
    const finish = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      done({ ok: error === undefined, ms: Math.round(performance.now() - started), ...(error !== undefined ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(`no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => finish());
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'connection refused (nothing listens there)' : (err.code ?? err.message)));
  });
}

export type CertExpiry = { notAfter: string; daysLeft: number; issuer: string; file: string } | { error: string; file?: string };

const certCache = new Map<string, { mtimeMs: number; leaf: { notAfter: Date; issuer: string } }>();

/**
 * When the site's certificate expires: its tls files, or what ACME stored under
 * `acme.storage/<site>/cert.pem` (relative paths: from where mpgate runs, then next to the config
 * file); null for a site without tls. A file is parsed again only when its mtime changes.
 */
export async function certExpiry(site: SiteConfig, config: Config, configFile: string, now = new Date()): Promise<CertExpiry | null> {
  if (site.tls === undefined) return null;
  // Relative paths mean "next to the config file", as for `mpgate serve` (config/load.ts).
  const base = dirname(resolve(configFile));
  let file: string;
  if (site.tls === 'auto') {
    // The ACME store's layout (tls/acme/store.ts): <storage>/sites/<site>/cert.pem.
    file = resolve(base, config.acme.storage, 'sites', siteDirName(siteName(site)), 'cert.pem');
    if (!(await stat(file).then(() => true, () => false))) return { error: 'not issued yet' };
  } else {
    file = resolve(base, site.tls.cert);
  }
  try {
    const st = await stat(file);
    let cached = certCache.get(file);
    if (cached?.mtimeMs !== st.mtimeMs) {
      const [leaf] = await readCertificates(file);
      const sum = summarize(leaf!);
      cached = { mtimeMs: st.mtimeMs, leaf: { notAfter: sum.notAfter, issuer: shortDn(leaf!.issuer) } };
      certCache.set(file, cached);
    }
    const daysLeft = Math.ceil((cached.leaf.notAfter.getTime() - now.getTime()) / 86_400_000);
    return { notAfter: cached.leaf.notAfter.toISOString(), daysLeft, issuer: cached.leaf.issuer, file };
  } catch {
    return { error: 'unreadable', file };
  }
}
