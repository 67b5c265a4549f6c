/**
 * The admin listener: its own node:http server (node:https with `admin.tls`) on `admin.listen`,
 * apart from the gateway's listeners so that it can stay on 127.0.0.1 while the gateway serves the
 * world. The schema already refuses a non-loopback `admin.listen` without tls and a token.
 * `admin.listen` and `admin.tls` are read once: changing them needs a restart (serve.ts says so).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isLoopback, splitListen, type Config } from '../config/schema.js';
import { createAdminApi, type GatewayView, type MetricsView, type StatsView } from './api.js';
import { AuditLog, auditFile } from './audit.js';

export interface AdminOptions {
  /** The config the gateway started with; `admin` must be set. */
  config: Config;
  /** The file sites are written to. */
  configFile: string;
  gateway: GatewayView;
  log: Logger;
  /** Loads the config file into the running gateway; resolves once it is active. */
  reload?: (() => Promise<void>) | undefined;
  stats?: StatsView | undefined;
  metrics?: MetricsView | undefined;
  dashboardHtml?: (() => string) | undefined;
  /** Content-Security-Policy for the dashboard page. */
  dashboardCsp?: string | undefined;
}

export interface AdminServer {
  /** The bound address (port 0 resolved). */
  address(): { host: string; port: number };
  /** "http://127.0.0.1:9090" (https with admin.tls). */
  readonly url: string;
  /** Stops listening, lets running requests finish (up to 2 s), closes the audit log. Idempotent. */
  close(): Promise<void>;
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const admin = opts.config.admin;
  if (admin === undefined) throw new Error('startAdmin: the config has no "admin" section');
  const { host, port } = splitListen(admin.listen);
  const audit = new AuditLog(auditFile(opts.configFile, admin));
  const handler = createAdminApi({
    configFile: opts.configFile,
    gateway: opts.gateway,
    log: opts.log,
    audit,
    reload: opts.reload,
    stats: opts.stats,
    metrics: opts.metrics,
    dashboardHtml: opts.dashboardHtml,
    dashboardCsp: opts.dashboardCsp,
    loopback: isLoopback(host),
    ownPorts: () => {
      const a = server.address();
      return typeof a === 'object' && a ? [a.port] : [];
    },
  });
  const serverOptions = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 };
  const server = admin.tls
    ? https.createServer({ ...serverOptions, cert: readFileSync(admin.tls.cert), key: readFileSync(admin.tls.key), minVersion: 'TLSv1.2' }, handler)
    : http.createServer(serverOptions, handler);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen({ host: host || undefined, port }, () => {
      server.off('error', fail);
      ok();
    });
  });
  server.on('error', (err) => opts.log.error({ err }, 'admin listener error'));
  const bound = server.address() as AddressInfo;
  const shownHost = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  const url = `${admin.tls ? 'https' : 'http'}://${shownHost}:${bound.port}`;
  opts.log.info({ admin: url, tokens: admin.tokens.length, audit: audit.file }, 'admin API listening');
  if (admin.tokens.length === 0) opts.log.warn('admin API has no tokens: create one with "mpgate admin token add NAME --role admin"');

  let closing: Promise<void> | undefined;
  return {
    url,
    address: () => ({ host: bound.address, port: bound.port }),
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), 2000);
        await closed;
        clearTimeout(timer);
        await audit.close();
      })();
      return closing;
    },
  };
}
