/**
 * The gateway: HTTP listeners, the request pipeline, live reload and graceful shutdown.
 *
 * Request pipeline, in this fixed order:
 *   1. resolve      — header rewrite, Host check, site, path, route        (server/resolve.ts)
 *   2. body limit   — Content-Length over the limit is refused before a byte is read
 *   3. forward      — upstream pick, stream both ways, failover            (proxy/http-exchange.ts)
 *   4. log          — one access-log line when the client response closes
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import { HttpExchange, type ExchangeHooks } from '../proxy/http-exchange.js';
import { BodyLimit } from '../proxy/body-limit.js';
import { UpstreamPools } from '../proxy/upstream-pool.js';
import { proxyWebSocket, type TunnelHooks } from '../proxy/websocket.js';
import { elapsedMs } from './access-log.js';
import type { AccessEntry } from './logging.js';
import { ConnectionState } from './connection.js';
import { enginesNeeded, provideEngines } from '../ocr/ocr-engines.js';
import { ocrRequest } from '../ocr/ocr-request.js';
import { OcrService } from '../ocr/ocr-service.js';
import { relayRequest } from '../relay/relay-request.js';
import { resolve } from './resolve.js';
import { sendError, sendRawError } from './respond.js';
import { RoutingTable, type Upstream } from './routing-table.js';

export interface GatewayOptions {
  log: Logger;
  access?: ((entry: AccessEntry) => void) | undefined;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ReloadResult {
  /** Settings that changed but only take effect after a restart. */
  needsRestart: string[];
}

export class Gateway {
  #table: RoutingTable;
  readonly #pools = new UpstreamPools();
  readonly #ocr = new OcrService();
  readonly #servers: http.Server[] = [];
  readonly #tunnels = new Map<Duplex, Socket>();
  readonly #log: Logger;
  readonly #access: ((entry: AccessEntry) => void) | undefined;
  #inFlight = 0;
  #connections = 0;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  readonly #exchangeHooks: ExchangeHooks;
  readonly #tunnelHooks: TunnelHooks;

  private constructor(config: Config, opts: GatewayOptions) {
    this.#log = opts.log;
    this.#access = opts.access;
    this.#table = new RoutingTable(config, this.#pools);
    const onUpstreamDown = (u: Upstream, err: GatewayError) => this.#upstreamFailed(u, err);
    this.#exchangeHooks = {
      access: this.#access,
      done: () => this.#requestDone(),
      onUpstreamDown,
    };
    this.#tunnelHooks = {
      access: this.#access,
      onUpstreamDown,
      connectTimeout: config.upstream.connectTimeout,
      idleTimeout: config.limits.websocketIdleTimeout,
      track: (client, upstream) => {
        this.#tunnels.set(client, upstream);
        return () => {
          this.#tunnels.delete(client);
          this.#maybeDrained();
        };
      },
    };
  }

  /** Starts listening on every `config.listen` address (port 0 picks a free port). */
  static async start(config: Config, opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(config, opts);
    try {
      // OCR models load before the first request can arrive (and a load failure stops the start).
      provideEngines(gw.#ocr, config, opts.log);
      for (const name of enginesNeeded(config)) await gw.#ocr.ready(name);
      for (const addr of config.listen) await gw.#listen(addr);
    } catch (err) {
      await gw.close(0);
      throw err;
    }
    return gw;
  }

  get config(): Config {
    return this.#table.config;
  }

  /** Bound addresses, in `listen` order (ports resolved). */
  addresses(): ListenAddress[] {
    return this.#servers.map((s) => {
      const a = s.address();
      return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: '', port: 0 };
    });
  }

  /** Number of open WebSocket tunnels. */
  get tunnels(): number {
    return this.#tunnels.size;
  }

  /** Number of open client connections (HTTP and HTTPS, WebSockets included). */
  get connections(): number {
    return this.#connections;
  }

  /** Every upstream of every site with its passive health, for `site list` and the dashboard. */
  upstreamStatus(now = Date.now()): { site: string; route: string; origin: string; up: boolean; fails: number }[] {
    const out: { site: string; route: string; origin: string; up: boolean; fails: number }[] = [];
    for (const site of this.#table.sites) {
      for (const route of site.routes) {
        for (const u of route.upstreams.items) out.push({ site: site.name, route: route.path, origin: u.origin, up: u.health.isUp(now), fails: u.health.fails });
      }
    }
    return out;
  }

  /**
   * Swaps in a new routing table. Requests and WebSockets already running keep the table (and
   * upstream pools) they started with; pools the new table no longer uses close once idle.
   */
  reload(config: Config): ReloadResult {
    const old = this.#table.config;
    const next = new RoutingTable(config, this.#pools);
    provideEngines(this.#ocr, config, this.#log);
    this.#table = next;
    this.#pools.retainOnly(next.poolKeys, Math.max(config.shutdownGrace, config.upstream.responseTimeout));
    this.#applyLiveLimits(config);
    this.#tunnelHooks.connectTimeout = config.upstream.connectTimeout;
    this.#tunnelHooks.idleTimeout = config.limits.websocketIdleTimeout;
    const needsRestart: string[] = [];
    if (JSON.stringify(old.listen) !== JSON.stringify(config.listen)) needsRestart.push('listen');
    if (old.limits.maxHeaderSize !== config.limits.maxHeaderSize) needsRestart.push('limits.maxHeaderSize');
    return { needsRestart };
  }

  /**
   * Graceful stop: no new connections, idle keep-alive connections closed, in-flight requests and
   * WebSockets get `graceMs` to finish, then everything left is cut. Idempotent; every call
   * returns the same promise.
   */
  close(graceMs = this.#table.config.shutdownGrace): Promise<void> {
    this.#closing ??= this.#shutdown(graceMs);
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<void> {
    const closed = this.#servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of this.#servers) s.closeIdleConnections();
    const drained = new Promise<void>((r) => {
      this.#drained = r;
      this.#maybeDrained();
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), graceMs);
    });
    const late = await Promise.race([drained.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) this.#log.warn({ inFlight: this.#inFlight, websockets: this.#tunnels.size, graceMs }, 'shutdown grace over, closing what is left');
    for (const s of this.#servers) s.closeAllConnections();
    for (const [client, upstream] of this.#tunnels) {
      client.destroy();
      upstream.destroy();
    }
    this.#tunnels.clear();
    await Promise.all(closed);
    if (late) await this.#pools.destroy();
    else await this.#pools.close();
    await this.#ocr.close();
  }

  #maybeDrained(): void {
    if (this.#drained !== undefined && this.#inFlight === 0 && this.#tunnels.size === 0) this.#drained();
  }

  #requestDone(): void {
    this.#inFlight--;
    if (this.#closing !== undefined) this.#maybeDrained();
  }

  #upstreamFailed(upstream: Upstream, err: GatewayError): void {
    const cfg = this.#table.config.upstream;
    if (upstream.health.fail(Date.now(), cfg.maxFails, cfg.failTimeout)) {
      this.#log.warn({ upstream: upstream.origin, code: err.code, skipForMs: cfg.failTimeout }, 'upstream marked down');
    }
  }

  // ---- listeners -------------------------------------------------------------------------------

  async #listen(addr: string): Promise<void> {
    const limits = this.#table.config.limits;
    const server = http.createServer({
      maxHeaderSize: limits.maxHeaderSize,
      requestTimeout: limits.requestTimeout,
      headersTimeout: limits.headersTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // node checks header/request deadlines on this interval (default 30 s, too coarse for 10 s).
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(limits.headersTimeout / 4))),
      noDelay: true,
      // resolve() answers a missing Host itself, with a code and an access-log line.
      requireHostHeader: false,
    });
    this.#applyServerLimits(server, this.#table.config);
    server.on('connection', (socket: Socket) => {
      this.#connections++;
      socket.once('close', () => this.#connections--);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, true));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
    const { host, port } = parseListen(addr);
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen({ host, port }, () => {
        server.off('error', fail);
        ok();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'listener error'));
    this.#servers.push(server);
  }

  #applyServerLimits(server: http.Server, config: Config): void {
    // One more than allowed so an overflow is visible (node silently drops fields past the limit).
    server.maxHeadersCount = config.limits.maxHeaderCount + 1;
    server.timeout = config.limits.idleTimeout;
    server.headersTimeout = config.limits.headersTimeout;
    server.requestTimeout = config.limits.requestTimeout;
    server.keepAliveTimeout = config.limits.keepAliveTimeout;
  }

  #applyLiveLimits(config: Config): void {
    for (const s of this.#servers) this.#applyServerLimits(s, config);
  }

  // ---- request pipeline ------------------------------------------------------------------------

  #onRequest(req: IncomingMessage, res: ServerResponse, expectContinue = false): void {
    const started = performance.now();
    const table = this.#table;
    const conn = ConnectionState.of(req.socket);
    const peer = conn.peer;
    this.#inFlight++;
    if (this.#closing !== undefined) res.shouldKeepAlive = false;

    const r = resolve(table, { url: req.url!, rawHeaders: req.rawHeaders, peer, proto: 'http', httpVersion: req.httpVersion });
    if ('error' in r) {
      this.#reject(req, res, r.error, r.site?.name, r.head.host, r.head.clientIp, started);
      return;
    }
    const { route, head } = r;

    // OCR routes read the upload themselves: their limits answer in WeChat's format (HTTP 200 +
    // errcode), which the seed's page can show, where a 413 would leave it waiting.
    if (route.ocr !== undefined) {
      ocrRequest({
        req, res, options: route.ocr, service: this.#ocr,
        done: (status, code, bytes) => {
          this.#requestDone();
          this.#access?.({
            host: head.host, method: req.method!, path: req.url!, status, bytes, upstream: '',
            ms: elapsedMs(started), site: route.site.name, ip: head.clientIp, code,
          });
        },
      });
      return;
    }

    // Body limit: refuse an announced oversize body before reading any of it (and before
    // "100 Continue" goes out); count a chunked one as it streams.
    const limit = route.site.maxBodySize;
    const cl = head.contentLength;
    let body: Readable | null = null;
    if (cl !== undefined) {
      if (Number(cl) > limit) {
        this.#reject(req, res, new GatewayError('MPG_BODY_TOO_LARGE', `body of ${cl} bytes over the ${limit}-byte limit`), route.site.name, head.host, head.clientIp, started);
        return;
      }
      if (cl !== '0') body = req;
    } else if (head.chunked) {
      body = req.pipe(new BodyLimit(limit));
    }
    if (expectContinue) res.writeContinue();

    if (route.relay !== undefined) {
      relayRequest({
        hooks: this.#exchangeHooks, log: this.#log, conn, req, res, route, head, body, started,
        reject: (err) => this.#reject(req, res, err, route.site.name, head.host, head.clientIp, started, true),
      });
      return;
    }
    new HttpExchange(this.#exchangeHooks, conn, req, res, route, head.host, head.clientIp, r.path, head.headers, body, started).start();
  }

  #reject(req: IncomingMessage, res: ServerResponse, err: GatewayError, site: string | undefined, host: string, ip: string, started: number, json?: boolean): void {
    // Drop the connection when a request body may be left unread (it must not be parsed as the
    // next request) and after a protocol violation (how this client frames requests is suspect).
    const close = err.code === 'MPG_BODY_TOO_LARGE' || err.code === 'MPG_BAD_REQUEST' || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    sendError(req, res, err, site, close, json);
    this.#requestDone();
    this.#access?.({
      host, method: req.method!, path: req.url!, status: err.status, bytes: 0, upstream: '',
      ms: elapsedMs(started), site: site ?? '', ip, code: err.code,
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const peer = req.socket.remoteAddress ?? '';
    socket.on('error', () => socket.destroy());
    const refuse = (err: GatewayError, site?: string, host = req.headers.host ?? '') => {
      sendRawError(socket, err, site);
      this.#access?.({ host, method: req.method!, path: req.url!, status: err.status, bytes: 0, upstream: '', ms: 0, site: site ?? '', ip: peer, code: err.code });
    };
    if (this.#closing !== undefined) return refuse(new GatewayError('MPG_SHUTTING_DOWN'));
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(new GatewayError('MPG_UPGRADE_UNSUPPORTED'));
    const r = resolve(this.#table, { url: req.url!, rawHeaders: req.rawHeaders, peer, proto: 'http', upgrade: true, httpVersion: req.httpVersion });
    if ('error' in r) return refuse(r.error, r.site?.name, r.head.host);
    proxyWebSocket(this.#tunnelHooks, req, socket, head, r.route, r.head.headers, r.path, r.head.host, r.head.clientIp, started);
  }

  /**
   * Requests node:http refuses before they reach us: malformed framing, oversize heads, slow
   * clients. Each gets a short answer with a stable code and one log line (probes show up there).
   */
  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const gerr =
      code === 'HPE_HEADER_OVERFLOW' ? new GatewayError('MPG_HEADERS_TOO_LARGE')
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT' ? new GatewayError('MPG_CLIENT_TIMEOUT')
      : new GatewayError('MPG_BAD_REQUEST', undefined, { cause: err });
    // A response may already be on its way on this socket (pipelining); then just close.
    if ((socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
      socket.destroy();
    } else {
      sendRawError(socket, gerr);
    }
    const peer = (socket as Socket).remoteAddress ?? '';
    // A request already being proxied on this connection (bad chunk, body too slow) is stopped
    // before more of it goes upstream, and logs this outcome itself.
    const running = ConnectionState.of(socket as Socket).refuse(gerr);
    if (!running) this.#access?.({ host: '', method: '', path: '', status: gerr.status, bytes: 0, upstream: '', ms: 0, site: '', ip: peer, code: gerr.code });
    this.#log.debug({ peer, code: gerr.code, parser: code, reason: err.message }, 'client error');
  }
}

/** "127.0.0.1:8080" / "[::1]:80" / "8080" → host and port. */
export function parseListen(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(addr);
  if (m) return { host: m[1] ?? m[2], port: Number(m[3]) };
  return { host: undefined, port: Number(addr) };
}
