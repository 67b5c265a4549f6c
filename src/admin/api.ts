/**
 * The admin HTTP API (JSON, `Authorization: Bearer <token>`), the dashboard page and /metrics.
 *
 *   GET    /api/v1/me                      → {name, role, user}
 *   GET    /api/v1/sites                   → {sites: [...]}   (a user token: its own sites only)
 *   POST   /api/v1/sites                   {host, owner?, port?, upstream?, name?} → 201 {site}
 *   GET    /api/v1/sites/:name             → {site}
 *   PATCH  /api/v1/sites/:name             {upstream?, hosts?, disabled?, maxBodySize?, owner? (admin)} → {site}
 *   DELETE /api/v1/sites/:name             → {removed: {site}}
 *   POST   /api/v1/sites/:name/disable     → {site}            (…/enable likewise)
 *   POST   /api/v1/sites/:name/test        {host?, path?} → {site, host, ok, hops: [...]}
 *   GET    /api/v1/errors?site=&limit=     → {errors: [...]}   recent failed requests
 *   GET    /metrics                        Prometheus text (no token on a loopback listener, else an admin token)
 *   GET    /                               the dashboard page (it asks for a token itself)
 *
 * Errors are `{"error": {status, code, message, problems?}}` with the codes of ADMIN_ERRORS.
 * Reads show the running config (what is served); changes go through SiteStore (locked, validated
 * like the file, atomic), then the gateway is reloaded before the answer, so a 2xx means the change
 * is live. Every change — done or refused — and every 403 is one line of the audit log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ConfigProblem } from '../config/load.js';
import { siteName, type Config, type SiteConfig } from '../config/schema.js';
import { HostRouter } from '../core/host-router.js';
import type { AccessEntry } from '../server/access-log.js';
import type { AuditEntry, AuditLog } from './audit.js';
import { Authenticator, canSee, siteChangeProblem, type Principal } from './auth.js';
import { AdminError, SiteStore, siteView, type Guard } from './site-store.js';
import { siteTest, tcpProbe } from './site-test.js';

const PROBE_TTL_MS = 2000;

/** What the API reads from the running gateway (server/gateway.ts's Gateway fits). */
export interface GatewayView {
  readonly config: Config;
  addresses(): { host: string; port: number }[];
  upstreamStatus(): { site: string; route: string; origin: string; up: boolean; fails: number }[];
  /** Certificates being served (files and ACME), with the last error and ACME state. */
  certificates(): { site: string; notAfter?: string; daysLeft?: number; issuer?: string; error?: string; state?: string }[];
}

/** Per-site traffic numbers (admin/stats.ts's SiteStats fits). */
export interface StatsView {
  snapshot(site: string): { rps: number; errorRate: number; p95Ms: number; requests: number; errors: number };
  /** Newest first; of one site, of several, or of all. */
  recentErrors(site?: string | readonly string[], limit?: number): AccessEntry[];
}

/** Prometheus exposition (admin/metrics.ts's Metrics fits). */
export interface MetricsView {
  render(): Promise<{ contentType: string; body: string }>;
}

export interface AdminApiOptions {
  configFile: string;
  gateway: GatewayView;
  log: Logger;
  audit: AuditLog;
  /** Loads the file into the running gateway; resolves once the new config is active. */
  reload?: (() => Promise<void>) | undefined;
  stats?: StatsView | undefined;
  metrics?: MetricsView | undefined;
  dashboardHtml?: (() => string) | undefined;
  /** Content-Security-Policy sent with the dashboard page. */
  dashboardCsp?: string | undefined;
  /** The listener is on loopback: /metrics answers without a token there. */
  loopback: boolean;
  /** Ports the admin listener is bound to (user sites may not proxy to them). */
  ownPorts?: (() => number[]) | undefined;
}

/** Request bodies are small JSON objects. */
export const MAX_BODY = 64 * 1024;
/** Failed authentications per client address and minute before 429 (each costs scrypt runs). */
const MAX_AUTH_FAILURES = 30;

const userName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a user name (letters, digits, "_", ".", "-")');
const addBody = z.strictObject({
  host: z.string().min(1).max(253),
  owner: userName.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  upstream: z.string().min(1).optional(),
  name: z.string().min(1).max(253).optional(),
  // Certificate files are server paths: set by an administrator in the file, not over the API.
  tls: z.literal('auto').optional(),
});
const patchBody = z
  .strictObject({
    upstream: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    hosts: z.array(z.string().min(1)).min(1).optional(),
    disabled: z.boolean().optional(),
    owner: userName.optional(),
    maxBodySize: z.union([z.number().int().nonnegative(), z.string().min(1)]).optional(),
    tls: z.union([z.literal('auto'), z.null()]).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'nothing to change: give upstream, hosts, disabled, maxBodySize, owner or tls');
const testBody = z.strictObject({ host: z.string().min(1).max(253).optional(), path: z.string().startsWith('/').optional() });

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  ip: string | null;
  principal: Principal;
}

export function createAdminApi(opts: AdminApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const store = new SiteStore(opts.configFile);
  const auth = new Authenticator(() => opts.gateway.config.admin?.tokens ?? []);
  const failures = new Map<string, { count: number; until: number }>();

  const audit = (e: Omit<AuditEntry, 'time'>): void => {
    opts.audit.record(e).catch((err: unknown) => opts.log.error({ err, audit: opts.audit.file }, 'cannot write the audit log'));
  };

  const authenticate = async (req: IncomingMessage, ip: string | null): Promise<Principal> => {
    const key = ip ?? '';
    const now = Date.now();
    const f = failures.get(key);
    if (f && f.until > now && f.count >= MAX_AUTH_FAILURES) throw new AdminError('MPGA_TOO_MANY_FAILURES', 'too many failed authentications from this address; wait a minute');
    const principal = await auth.authenticate(req.headers.authorization);
    if (principal) return principal;
    if (!f || f.until <= now) {
      if (failures.size > 10_000) failures.clear();
      failures.set(key, { count: 1, until: now + 60_000 });
    } else f.count++;
    throw new AdminError('MPGA_UNAUTHORIZED', req.headers.authorization ? 'the token is not valid' : 'send "Authorization: Bearer <token>" (create one with: mpgate admin token add NAME)');
  };

  const reload = async (): Promise<void> => {
    if (!opts.reload) return;
    try {
      await opts.reload();
    } catch (err) {
      opts.log.error({ err }, 'admin: the change is in the file but the reload failed');
    }
  };

  const guardFor = (p: Principal): Guard => (config, before, next) => {
    const reserved = new Set([...opts.gateway.addresses().map((a) => a.port), ...(opts.ownPorts?.() ?? [])]);
    const problem = siteChangeProblem(p, config, before, next, reserved);
    if (problem !== undefined) throw new AdminError('MPGA_FORBIDDEN', problem);
  };

  /**
   * Runs one change — read the body, edit through the store, reload, answer — and audits it
   * whatever happens (a body that does not parse is a refused change too). `run` fills in
   * `what.site` and `what.detail` as soon as it knows them.
   */
  const change = async (ctx: Ctx, action: string, site: string | null, okStatus: number, run: (guard: Guard, by: string, what: { site: string | null; detail?: unknown }) => Promise<unknown>): Promise<void> => {
    const what: { site: string | null; detail?: unknown } = { site };
    const base = () => ({ who: ctx.principal.name, role: ctx.principal.role, action, site: what.site, ip: ctx.ip, ...(what.detail !== undefined ? { detail: what.detail } : {}) });
    try {
      const body = await run(guardFor(ctx.principal), ctx.principal.name, what);
      await reload();
      audit({ ...base(), ok: true, status: okStatus });
      // The answer leaves once its audit line is on disk: what a client was told happened is recorded.
      await opts.audit.settled();
      sendJson(ctx.res, okStatus, body);
    } catch (err) {
      const e = asAdminError(err, opts.log);
      if (e.status >= 500 && err instanceof AdminError) opts.log.error({ err, action, site: what.site }, 'admin change failed');
      audit({ ...base(), ok: false, status: e.status, errors: { code: e.code, message: e.message, ...(e.problems ? { problems: e.problems } : {}) } });
      await opts.audit.settled();
      if (e.code === 'MPGA_TOO_LARGE') ctx.res.setHeader('connection', 'close');
      sendError(ctx.res, e);
    }
  };

  const liveSite = (ctx: Ctx, name: string, action: string): SiteConfig => {
    const site = opts.gateway.config.sites.find((s) => siteName(s) === name);
    if (site === undefined) throw new AdminError('MPGA_NO_SUCH_SITE', `no site is named "${name}"`);
    if (!canSee(ctx.principal, site)) {
      audit({ who: ctx.principal.name, role: ctx.principal.role, action, site: name, ip: ctx.ip, ok: false, status: 403, errors: { code: 'MPGA_FORBIDDEN', message: 'this site belongs to another user' } });
      throw new AdminError('MPGA_FORBIDDEN', 'this site belongs to another user');
    }
    return site;
  };

  // Passive health only knows about upstreams that traffic has tried; a site nobody visited yet
  // would show "up" with nothing listening. So each origin is also probed (TCP connect), at most
  // once per PROBE_TTL_MS however often the dashboard polls.
  const probes = new Map<string, { at: number; up: Promise<boolean> }>();
  const probe = (origin: string): Promise<boolean> => {
    const now = Date.now();
    let p = probes.get(origin);
    if (p === undefined || now - p.at > PROBE_TTL_MS) {
      p = { at: now, up: tcpProbe(origin, 500).then((r) => r.ok) };
      probes.set(origin, p);
    }
    return p.up;
  };

  const view = async (s: SiteConfig, status: ReturnType<GatewayView['upstreamStatus']>) => {
    const name = siteName(s);
    // One origin may serve several routes: it is up when every route's view of it is.
    const seen = new Map<string, boolean>();
    for (const u of status) if (u.site === name) seen.set(u.origin, (seen.get(u.origin) ?? true) && u.up);
    for (const [origin, up] of seen) if (up) seen.set(origin, await probe(origin));
    // What the listener serves right now, not what the files say: a broken rewrite or a failed
    // ACME order shows as an error next to the certificate still in use.
    const c = opts.gateway.certificates().find((x) => x.site === name);
    return {
      ...siteView(s),
      upstreams: [...seen].map(([origin, up]) => ({ origin, up })),
      cert: c?.notAfter !== undefined ? { notAfter: c.notAfter, daysLeft: c.daysLeft, issuer: c.issuer, ...(c.error ? { error: c.error } : {}), ...(c.state ? { state: c.state } : {}) } : null,
      ...(c?.notAfter === undefined && c?.error ? { certError: c.error } : {}),
      stats: opts.stats ? opts.stats.snapshot(name) : null,
    };
  };

  // ---- routes ----------------------------------------------------------------------------------

  const siteRoute = async (ctx: Ctx, name: string, action: string | undefined): Promise<void> => {
    const { req, res } = ctx;
    const method = req.method ?? 'GET';
    if (action === undefined) {
      if (method === 'GET') {
        const site = liveSite(ctx, name, 'site.read');
        return sendJson(res, 200, { site: await view(site, opts.gateway.upstreamStatus()) });
      }
      if (method === 'PATCH') {
        return change(ctx, 'site.update', name, 200, async (guard, by, what) => {
          const patch = parseBody(patchBody, await readJson(req));
          what.detail = patch;
          return { site: (await store.update(name, patch, { guard, by })).site };
        });
      }
      if (method === 'DELETE') {
        return change(ctx, 'site.remove', name, 200, async (guard, by) => ({ removed: (await store.remove(name, { guard, by })).site }));
      }
      throw methodNotAllowed('GET, PATCH, DELETE');
    }
    if (method !== 'POST') throw methodNotAllowed('POST');
    if (action === 'disable' || action === 'enable') {
      return change(ctx, `site.${action}`, name, 200, async (guard, by) => {
        await readJson(req, true);
        return { site: (await store.setDisabled(name, action === 'disable', { guard, by })).site };
      });
    }
    if (action === 'test') {
      const body = parseBody(testBody, (await readJson(req, true)) ?? {});
      const site = liveSite(ctx, name, 'site.test');
      const host = body.host ?? testHost(site);
      if (host === undefined) throw new AdminError('MPGA_INVALID', `site "${name}" has only regex hosts; give {"host": "..."} to test`);
      if (!servesHost(site, host)) throw new AdminError('MPGA_INVALID', `"${host}" is not a host of site "${name}"`);
      const hops = await siteTest({ gatewayUrl: gatewayUrl(opts.gateway), host, path: body.path, config: opts.gateway.config });
      return sendJson(res, 200, { site: name, host, ok: hops.every((h) => h.ok), hops });
    }
    throw new AdminError('MPGA_NOT_FOUND', `no such action "${action}" (disable, enable, test)`);
  };

  const api = async (ctx: Ctx): Promise<void> => {
    const { req, res, url, principal } = ctx;
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/api/v1/me') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      return sendJson(res, 200, { name: principal.name, role: principal.role, user: principal.user });
    }
    if (path === '/api/v1/sites') {
      if (method === 'GET') {
        const status = opts.gateway.upstreamStatus();
        const sites = await Promise.all(opts.gateway.config.sites.filter((s) => canSee(principal, s)).map((s) => view(s, status)));
        return sendJson(res, 200, { sites });
      }
      if (method === 'POST') {
        return change(ctx, 'site.add', null, 201, async (guard, by, what) => {
          const body = parseBody(addBody, await readJson(req));
          // A user token's sites are its own; an admin's have no owner unless one is given.
          const add = { ...body, owner: body.owner ?? (principal.role === 'user' ? principal.user : undefined) };
          what.site = add.name ?? add.host;
          what.detail = add;
          return { site: (await store.add(add, { guard, by })).site };
        });
      }
      throw methodNotAllowed('GET, POST');
    }
    const m = /^\/api\/v1\/sites\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) {
      let name: string;
      try {
        name = decodeURIComponent(m[1]!);
      } catch {
        throw new AdminError('MPGA_NOT_FOUND', 'malformed site name in the path');
      }
      return siteRoute(ctx, name, m[2]);
    }
    if (path === '/api/v1/errors') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 50) || 50, 1), 1000);
      const site = url.searchParams.get('site');
      if (!opts.stats) return sendJson(res, 200, { errors: [] });
      if (site) {
        liveSite(ctx, site, 'errors.read');
        return sendJson(res, 200, { errors: opts.stats.recentErrors(site, limit) });
      }
      if (principal.role === 'admin') return sendJson(res, 200, { errors: opts.stats.recentErrors(undefined, limit) });
      const own = opts.gateway.config.sites.filter((s) => canSee(principal, s)).map(siteName);
      return sendJson(res, 200, { errors: own.length > 0 ? opts.stats.recentErrors(own, limit) : [] });
    }
    throw new AdminError('MPGA_NOT_FOUND', `no such endpoint: ${method} ${path}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const ip = req.socket.remoteAddress ?? null;
    const method = req.method ?? 'GET';
    try {
      if (url.pathname === '/') {
        if (!opts.dashboardHtml) throw new AdminError('MPGA_NOT_FOUND', 'no dashboard in this build; the API is under /api/v1/');
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
        return sendHtml(res, opts.dashboardHtml(), opts.dashboardCsp, method === 'HEAD');
      }
      if (url.pathname === '/metrics') {
        if (!opts.metrics) throw new AdminError('MPGA_NOT_FOUND', 'metrics are not collected');
        if (method !== 'GET') throw methodNotAllowed('GET');
        if (!opts.loopback) {
          const p = await authenticate(req, ip);
          if (p.role !== 'admin') throw new AdminError('MPGA_FORBIDDEN', '/metrics needs an admin token');
        }
        const m = await opts.metrics.render();
        res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.body), 'cache-control': 'no-store' });
        res.end(m.body);
        return;
      }
      if (!url.pathname.startsWith('/api/v1/')) throw new AdminError('MPGA_NOT_FOUND', `no such endpoint: ${method} ${url.pathname}`);
      let principal: Principal;
      try {
        principal = await authenticate(req, ip);
      } catch (err) {
        if (method !== 'GET' && method !== 'HEAD' && err instanceof AdminError) {
          audit({ who: '(no valid token)', role: null, action: `${method} ${url.pathname}`, site: null, ip, ok: false, status: err.status, errors: { code: err.code, message: err.message } });
        }
        throw err;
      }
      await api({ req, res, url, ip, principal });
    } catch (err) {
      const e = asAdminError(err, opts.log);
      // A refusal that was audited (403, bad token on a change) is answered after its line is written.
      await opts.audit.settled();
      if (e.code === 'MPGA_TOO_LARGE') res.setHeader('connection', 'close');
      sendError(res, e);
    }
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error({ err }, 'admin request failed');
      if (!res.headersSent) sendError(res, new AdminError('MPGA_INTERNAL', 'internal error'));
      else res.destroy();
    });
  };
}

// ---- helpers -------------------------------------------------------------------------------------

function asAdminError(err: unknown, log: Logger): AdminError {
  if (err instanceof AdminError) return err;
  log.error({ err }, 'admin request failed');
  return new AdminError('MPGA_INTERNAL', 'internal error (see the gateway log)', undefined, { cause: err });
}

function methodNotAllowed(allow: string): AdminError {
  return new AdminError('MPGA_METHOD_NOT_ALLOWED', `allowed: ${allow}`, undefined, { allow });
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendHtml(res: ServerResponse, html: string, csp: string | undefined, head: boolean): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    ...(csp ? { 'content-security-policy': csp } : {}),
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  });
  res.end(head ? undefined : html);
}

function sendError(res: ServerResponse, e: AdminError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e.status === 401) res.setHeader('www-authenticate', 'Bearer realm="mpgate-admin"');
  if (e.allow) res.setHeader('allow', e.allow);
  sendJson(res, e.status, { error: { status: e.status, code: e.code, message: e.message, ...(e.problems ? { problems: e.problems } : {}) } });
}

/** The request body as JSON (at most MAX_BODY bytes). `optional`: an empty body is undefined. */
async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) throw new AdminError('MPGA_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new AdminError('MPGA_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw new AdminError('MPGA_BAD_JSON', 'send a JSON object');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AdminError('MPGA_BAD_JSON', `the body is not JSON (${(err as Error).message})`);
  }
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const problems: ConfigProblem[] = r.error.issues.map((i) => ({ file: '<request>', line: 0, column: 0, key: i.path.join('.') || '(body)', message: i.message }));
  throw new AdminError('MPGA_INVALID', problems.map((p) => `${p.key}: ${p.message}`).join('; '), problems);
}

/** A concrete name to test a site with: its first plain host, or one its wildcard matches. */
export function testHost(site: SiteConfig): string | undefined {
  for (const h of site.hosts) if (!h.startsWith('~') && !h.includes('*') && !h.startsWith('.')) return h;
  for (const h of site.hosts) {
    if (h.startsWith('*.')) return `mpgate-test${h.slice(1)}`;
    if (h.startsWith('.')) return h.slice(1);
    if (h.endsWith('.*')) return `${h.slice(0, -2)}.com`;
  }
  return undefined;
}

function servesHost(site: SiteConfig, host: string): boolean {
  const r = new HostRouter<true>();
  for (const h of site.hosts) r.add(h, true);
  return r.match(host) === true;
}

/** The gateway's first HTTP listener as a URL this machine can reach. */
function gatewayUrl(gw: GatewayView): string {
  const a = gw.addresses()[0];
  if (!a) throw new AdminError('MPGA_INTERNAL', 'the gateway has no listener');
  const host = a.host === '' || a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
}
