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
import http2, { type Http2ServerRequest, type Http2Session } from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import { siteName, splitListen, type Config } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import { h2ToH1Headers } from '../core/headers.js';
import { normalizeHost } from '../core/host-router.js';
import type { AcmeManager } from '../tls/acme/acme-manager.js';
import { Certificates, type CertStatus } from '../tls/certificates.js';
import { HttpExchange, type ExchangeHooks } from '../proxy/http-exchange.js';
import { BodyLimit } from '../proxy/body-limit.js';
import { UpstreamPools, type OriginPoolStats } from '../proxy/upstream-pool.js';
import { proxyWebSocket, type TunnelHooks } from '../proxy/websocket.js';
import { elapsedMs } from './access-log.js';
import type { AccessEntry } from './logging.js';
import { ConnectionState } from './connection.js';
import { H1Front, type FastRequest, type FastResponse } from './h1-front.js';
import { enginesNeeded, provideEngines } from '../ocr/ocr-engines.js';
import { ocrRequest } from '../ocr/ocr-request.js';
import { OcrService } from '../ocr/ocr-service.js';
import { relayRequest } from '../relay/relay-request.js';
import { resolve, type Resolved } from './resolve.js';
import { sendError, sendRawError, type RequestView, type ResponseView } from './respond.js';
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
  /** Work the reload started (HTTPS listeners, the ACME manager); settles when done, never rejects. */
  pending?: Promise<void>;
}

export class Gateway {
  #table: RoutingTable;
  readonly #pools = new UpstreamPools();
  readonly #ocr = new OcrService();
  readonly #servers: http.Server[] = [];
  /** The HTTP/1.1 fast path in front of each plain and HTTPS listener. */
  readonly #fronts: H1Front[] = [];
  readonly #httpsServers: https.Server[] = [];
  readonly #h2 = new Set<Http2Session>();
  #h2server: http2.Http2Server | undefined;
  readonly #certs: Certificates;
  #acme: AcmeManager | undefined;
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
    this.#certs = new Certificates(opts.log);
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
      responseTimeout: config.upstream.responseTimeout,
      maxHeadSize: config.limits.maxHeaderSize,
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
      // Certificate files are checked before anything listens: a bad one is a config error.
      gw.#certs.configure(config);
      await gw.#startAcme(config);
      for (const addr of config.listen) await gw.#listen(addr);
      if (Certificates.needed(config)) for (const addr of config.https.listen) await gw.#listenHttps(addr);
    } catch (err) {
      await gw.close(0);
      throw err;
    }
    return gw;
  }

  get config(): Config {
    return this.#table.config;
  }

  /** Bound HTTP addresses, in `listen` order (ports resolved). */
  addresses(): ListenAddress[] {
    return this.#servers.map(boundAddress);
  }

  /** Bound HTTPS addresses, in `https.listen` order (empty when no site has tls). */
  httpsAddresses(): ListenAddress[] {
    return this.#httpsServers.map(boundAddress);
  }

  /** Certificates served, per site: expiry, issuer, and the last error if a reload failed. */
  certificates(): (CertStatus & { state?: string; nextAttempt?: string })[] {
    const acme = new Map((this.#acme?.status() ?? []).map((a) => [a.site, a]));
    return this.#certs.status().map((c) => {
      const a = c.source === 'auto' ? acme.get(c.site) : undefined;
      if (a === undefined) return c;
      return { ...c, state: a.state, ...(a.lastError ? { error: a.lastError } : {}), ...(a.nextAttempt ? { nextAttempt: a.nextAttempt } : {}) };
    });
  }

  /**
   * `tls: auto` sites get an ACME manager (loaded only then): stored certificates are served at
   * once, missing or due ones are ordered in the background while the gateway serves.
   */
  async #startAcme(config: Config): Promise<void> {
    const sites = acmeSites(config);
    if (sites.length === 0 && this.#acme === undefined) return;
    if (this.#acme === undefined) {
      // A public CA validates http-01 on port 80 and tls-alpn-01 on 443, nowhere else.
      const ports = (addrs: readonly string[]) => addrs.map((a) => splitListen(a).port);
      const reachable = (config.acme.challenges.includes('http-01') && ports(config.listen).includes(80))
        || (config.acme.challenges.includes('tls-alpn-01') && ports(config.https.listen).includes(443));
      if (!reachable && sites.length > 0) {
        this.#log.warn({ listen: config.listen, https: config.https.listen, challenges: config.acme.challenges }, 'tls: auto needs port 80 (http-01) or 443 (tls-alpn-01) reachable from the CA; with neither, only a test CA (pebble) can validate');
      }
      const { AcmeManager } = await import('../tls/acme/acme-manager.js');
      const acme = new AcmeManager({
        config: config.acme,
        log: this.#log.child({ component: 'acme' }),
        onCertificate: (site, cert) => this.#certs.setIssued(site, cert.cert, cert.key),
      });
      this.#acme = acme;
      this.#certs.attachAcme(acme);
    }
    this.#feedAcme(sites);
  }

  #feedAcme(sites: { site: string; names: string[] }[]): void {
    const acme = this.#acme!;
    for (const s of sites) {
      const stored = acme.stored(s);
      if (stored !== undefined) this.#certs.setIssued(s.site, stored.cert, stored.key);
    }
    acme.update(sites);
  }

  /** Number of open WebSocket tunnels. */
  get tunnels(): number {
    return this.#tunnels.size;
  }

  /** Number of open client connections (HTTP and HTTPS, WebSockets included). */
  get connections(): number {
    return this.#connections;
  }

  /** Upstream connection pools per origin: open, idle, and requests waiting (for /metrics). */
  upstreamPools(): OriginPoolStats[] {
    return this.#pools.stats();
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
    // Throws ConfigError (nothing swapped) when a certificate file is bad.
    this.#certs.configure(config);
    const autoSites = acmeSites(config);
    provideEngines(this.#ocr, config, this.#log);
    this.#table = next;
    this.#pools.retainOnly(next.poolKeys, Math.max(config.shutdownGrace, config.upstream.responseTimeout));
    this.#applyLiveLimits(config);
    this.#tunnelHooks.connectTimeout = config.upstream.connectTimeout;
    this.#tunnelHooks.idleTimeout = config.limits.websocketIdleTimeout;
    const needsRestart: string[] = [];
    if (JSON.stringify(old.listen) !== JSON.stringify(config.listen)) needsRestart.push('listen');
    if (old.limits.maxHeaderSize !== config.limits.maxHeaderSize) needsRestart.push('limits.maxHeaderSize');
    const httpsRunning = this.#httpsServers.length > 0;
    let pending: Promise<void> | undefined;
    if (!httpsRunning && Certificates.needed(config) && this.#closing === undefined) {
      // The first site with tls (e.g. "mpgate site add --tls auto") opens the HTTPS listeners now.
      pending = this.#startHttps(config.https.listen);
    } else if (httpsRunning && JSON.stringify(old.https.listen) !== JSON.stringify(config.https.listen)) {
      needsRestart.push('https.listen');
    }
    if (old.https.http2 !== config.https.http2 && httpsRunning) needsRestart.push('https.http2');
    if (this.#acme !== undefined) {
      this.#feedAcme(autoSites);
      if (JSON.stringify(old.acme) !== JSON.stringify(config.acme)) needsRestart.push('acme');
    } else if (autoSites.length > 0) {
      const acme = this.#startAcme(config).catch((err: unknown) => this.#log.error({ err }, 'cannot start automatic certificates'));
      pending = pending ? Promise.all([pending, acme]).then(() => {}) : acme;
    }
    return { needsRestart, ...(pending ? { pending } : {}) };
  }

  /** HTTPS listeners opened by a reload; a failure (port taken) is logged, the rest keeps running. */
  async #startHttps(addrs: readonly string[]): Promise<void> {
    try {
      for (const addr of addrs) await this.#listenHttps(addr);
      this.#log.info({ https: this.httpsAddresses().map((a) => `${a.host}:${a.port}`) }, 'HTTPS listeners started');
    } catch (err) {
      this.#log.error({ err, https: addrs }, 'cannot open the HTTPS listeners; fix https.listen and reload or restart');
    }
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
    this.#certs.close();
    const acmeClosed = this.#acme?.close();
    const servers = [...this.#servers, ...this.#httpsServers];
    const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of servers) s.closeIdleConnections();
    for (const f of this.#fronts) f.closeIdle();
    // GOAWAY: HTTP/2 clients finish their open streams and open no new ones.
    for (const session of this.#h2) session.close();
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
    for (const s of servers) s.closeAllConnections();
    for (const f of this.#fronts) f.closeAll();
    for (const session of this.#h2) session.destroy();
    for (const [client, upstream] of this.#tunnels) {
      client.destroy();
      upstream.destroy();
    }
    this.#tunnels.clear();
    await Promise.all(closed);
    if (late) await this.#pools.destroy();
    else await this.#pools.close();
    await this.#ocr.close();
    await acmeClosed;
  }

  #maybeDrained(): void {
    if (this.#drained !== undefined && this.#inFlight === 0 && this.#tunnels.size === 0 && this.#h2.size === 0) this.#drained();
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

  /** Options shared by the plain and the TLS HTTP/1.1 servers. */
  #http1Options(): http.ServerOptions {
    const limits = this.#table.config.limits;
    return {
      maxHeaderSize: limits.maxHeaderSize,
      requestTimeout: limits.requestTimeout,
      headersTimeout: limits.headersTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // node checks header/request deadlines on this interval (default 30 s, too coarse for 10 s).
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(limits.headersTimeout / 4))),
      noDelay: true,
      // resolve() answers a missing Host itself, with a code and an access-log line.
      requireHostHeader: false,
    };
  }

  /** The HTTP/1.1 events, the same on plain and TLS servers. */
  #serveHttp1(server: http.Server): void {
    this.#applyServerLimits(server, this.#table.config);
    server.on('connection', (socket: Socket) => this.#countConnection(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#guard(req, res, () => this.#onRequest(req, res, false, false)));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#guard(req, res, () => this.#onRequest(req, res, true, false)));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#guard(req, socket, () => this.#onUpgrade(req, socket, head)));
    // Without a listener node:http drops a CONNECT without a word; it gets an answer and a log line.
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      this.#refuseRaw(req, socket, new GatewayError('MPG_CONNECT_UNSUPPORTED'));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
  }

  #countConnection(socket: Socket): void {
    this.#connections++;
    socket.once('close', () => this.#connections--);
  }

  /** A fast path (server/h1-front.ts) in front of one node:http listener (`toNode`). */
  #front(toNode: (socket: Socket) => void): H1Front {
    const front = new H1Front(
      {
        // #guard inlined: the fast path is the hot one, and its answer (taken or not) comes back.
        serve: (req, res) => {
          const inFlight = this.#inFlight;
          try {
            return this.#onFastRequest(req, res);
          } catch (err) {
            this.#internalError(err, req, res, inFlight);
            return true;
          }
        },
        clientError: (err, socket, responseStarted) => this.#onClientError(err, socket, responseStarted),
      },
      toNode,
      this.#table.config.limits,
    );
    this.#fronts.push(front);
    return front;
  }

  /**
   * Plain HTTP: sockets go to the fast path first (server/h1-front.ts), which serves plain proxied
   * requests itself and hands everything else, with the connection, to node:http's own listener.
   */
  async #listen(addr: string): Promise<void> {
    const server = http.createServer(this.#http1Options());
    const [toNode] = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    this.#serveHttp1(server);
    const front = this.#front((socket) => toNode!.call(server, socket));
    server.on('connection', (socket: Socket) => front.accept(socket));
    await listenOn(server, addr);
    server.on('error', (err) => this.#log.error({ err }, 'listener error'));
    this.#servers.push(server);
  }

  /**
   * HTTPS: node's https.Server (so HTTP/1.1 over TLS has the same limits and timeouts as plain
   * HTTP), with ALPN and SNI decided by the certificate table. Connections that negotiated h2 are
   * handed to an HTTP/2 session instead; both end in the same request pipeline.
   */
  async #listenHttps(addr: string): Promise<void> {
    const certs = this.#certs;
    const server = https.createServer({
      ...this.#http1Options(),
      ...certs.baseOptions(),
      // Node calls both with the TLSSocket as `this`; ALPN runs first (the ACME challenge needs both).
      ALPNCallback(this: TLSSocket | undefined, { servername, protocols }: { servername: string; protocols: string[] }) {
        return certs.alpnCallback(this, servername, protocols);
      },
      SNICallback(this: TLSSocket | undefined, servername: string, cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void) {
        certs.sniCallback(this, servername, cb);
      },
    });
    this.#serveHttp1(server);
    const [http1Listener] = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    // HTTP/1.1 over TLS takes the same fast path as plain HTTP, with node:http's https listener behind it.
    const front = this.#front((socket) => http1Listener!.call(server, socket as TLSSocket));
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') this.#http2().emit('connection', socket);
      else if (socket.alpnProtocol === 'acme-tls/1') socket.end(); // the validator only wanted the handshake
      else front.accept(socket);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.#log.debug({ peer: socket.remoteAddress, reason: err.code ?? err.message }, 'TLS handshake failed');
    });
    certs.onDefaultChange = () => {
      for (const s of this.#httpsServers) s.setSecureContext(certs.baseOptions());
    };
    await listenOn(server, addr);
    server.on('error', (err) => this.#log.error({ err }, 'listener error'));
    this.#httpsServers.push(server);
  }

  /** One HTTP/2 server (never listening itself) for every h2 connection of every HTTPS listener. */
  #http2(): http2.Http2Server {
    if (this.#h2server !== undefined) return this.#h2server;
    const limits = this.#table.config.limits;
    const server = http2.createServer({
      maxHeaderListPairs: limits.maxHeaderCount + 8, // + pseudo-header fields
      maxSessionMemory: 32,
      // Advertised above the limit so a client sends an oversize head and gets the 431, not a local error.
      settings: { maxHeaderListSize: limits.maxHeaderSize * 2, maxConcurrentStreams: 128 },
    });
    server.on('session', (session: Http2Session) => {
      this.#h2.add(session);
      session.setTimeout(this.#table.config.limits.idleTimeout, () => session.close());
      session.once('close', () => {
        this.#h2.delete(session);
        this.#maybeDrained();
      });
      session.on('error', () => session.destroy());
    });
    // The compatibility request/response pair offers what the pipeline uses of node:http's
    // (url, method, rawHeaders, headers, httpVersion, a Readable body; writeHead with a flat
    // header list, write/end/drain, writeContinue, headersSent, statusCode).
    server.on('request', (req: Http2ServerRequest, res: http2.Http2ServerResponse) => {
      this.#guard(req, res as unknown as ServerResponse, () => this.#onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, false, true));
    });
    server.on('checkContinue', (req: Http2ServerRequest, res: http2.Http2ServerResponse) => {
      this.#guard(req, res as unknown as ServerResponse, () => this.#onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, true, true));
    });
    // node's own answer to a CONNECT stream is a bare 405; this one has the code and a log line.
    server.on('connect', (req: Http2ServerRequest, res: http2.Http2ServerResponse) => {
      const err = new GatewayError('MPG_CONNECT_UNSUPPORTED');
      sendError(req, res as unknown as ServerResponse, err, undefined);
      const authority = (req.headers[':authority'] as string | undefined) ?? '';
      this.#access?.({ host: authority, method: 'CONNECT', path: authority, status: err.status, bytes: 0, upstream: '', ms: 0, site: '', ip: req.socket.remoteAddress ?? '', code: err.code });
    });
    this.#h2server = server;
    return server;
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
    for (const f of this.#fronts) f.setLimits(config.limits);
  }

  // ---- request pipeline ------------------------------------------------------------------------

  /**
   * Runs one entry into the pipeline so that a bug costs one request, never the process: an
   * exception thrown on the way in is logged with its stack and answered 500 MPG_INTERNAL (or the
   * connection is closed when an answer has begun). A request counted in flight before the throw
   * is uncounted, so shutdown does not wait for it.
   */
  #guard(req: RequestView, out: ResponseView | Duplex, run: () => void): void {
    const inFlight = this.#inFlight;
    try {
      run();
    } catch (err) {
      this.#internalError(err, req, out, inFlight);
    }
  }

  /** What #guard does with an exception; `inFlight` is the count before the entry ran. */
  #internalError(err: unknown, req: RequestView, out: ResponseView | Duplex, inFlight: number): void {
    if (this.#inFlight > inFlight) this.#requestDone();
    this.#log.error({ err, method: req.method, path: req.url }, 'internal error while handling a request (a bug in mpgate: please report it)');
    const error = new GatewayError('MPG_INTERNAL', undefined, { cause: err });
    try {
      if ('writeHead' in out) sendError(req, out, error, undefined, true);
      else sendRawError(out, error);
    } catch {
      out.destroy();
    }
    const ip = (req as { socket?: { remoteAddress?: string } }).socket?.remoteAddress ?? '';
    this.#access?.({ host: req.headers.host ?? '', method: req.method ?? '', path: req.url ?? '', status: 500, bytes: 0, upstream: '', ms: 0, site: '', ip, code: error.code });
  }

  /**
   * The fast path's requests (plain HTTP/1.1, Content-Length framing): a plain proxied request
   * or relay request is served here; anything else returns false, untouched, and node:http reads it
   * again and sends it through #onRequest (errors, redirects, OCR, ACME, bodies over the limit).
   */
  #onFastRequest(req: FastRequest, res: FastResponse): boolean {
    const conn = ConnectionState.of(req.socket);
    if (this.#acme !== undefined && req.url.startsWith(ACME_CHALLENGE_PREFIX)) return false;
    const r = resolve(this.#table, { url: req.url, rawHeaders: req.rawHeaders, peer: conn.peer, proto: conn.secure ? 'https' : 'http', httpVersion: req.httpVersion });
    if (!('route' in r)) return false;
    const { route } = r;
    if (route.ocr !== undefined || req.contentLength > route.site.maxBodySize) return false;
    this.#inFlight++;
    if (this.#closing !== undefined) res.shouldKeepAlive = false;
    this.#forward(conn, req, res, r, req.body, req.started);
    return true;
  }

  /** `h2`: the request came from the HTTP/2 server (never from a request line's version). */
  #onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean, h2: boolean): void {
    const started = performance.now();
    const table = this.#table;
    const conn = h2 ? ConnectionState.ofStream((req as unknown as Http2ServerRequest).stream) : ConnectionState.of(req.socket);
    const peer = conn.peer;
    this.#inFlight++;
    if (this.#closing !== undefined) res.shouldKeepAlive = false;
    // Past this point httpVersionMajor 2 means an HTTP/2 stream (the error answers and the
    // exchange read it so); an HTTP/1 request line saying "HTTP/2.0" or "HTTP/0.9" ends here.
    if (!h2 && !isHttp1x(req)) {
      res.shouldKeepAlive = false;
      this.#reject(req, res, new GatewayError('MPG_HTTP_VERSION'), undefined, req.headers.host ?? '', peer, started);
      return;
    }
    if (!conn.secure && this.#acme !== undefined && req.url!.startsWith(ACME_CHALLENGE_PREFIX)) {
      this.#answerAcme(req, res, peer, started);
      return;
    }

    // node:http enforces maxHeaderSize while parsing; HTTP/2 heads arrive whole (HPACK), so the
    // same limit is checked here, with the same answer.
    if (h2) {
      const authority = (req.headers[':authority'] as string | undefined) ?? '';
      if (headListSize(req.rawHeaders) > table.limits.maxHeaderSize) {
        this.#reject(req, res, new GatewayError('MPG_HEADERS_TOO_LARGE'), undefined, authority, peer, started);
        return;
      }
      // RFC 9113 §8.3.1: a Host naming another authority than :authority makes the request malformed.
      const host = req.headers.host;
      if (host !== undefined && authority !== '' && host.toLowerCase() !== authority.toLowerCase()) {
        this.#reject(req, res, new GatewayError('MPG_BAD_REQUEST', 'Host differs from :authority'), undefined, authority, peer, started);
        return;
      }
    }
    const r = resolve(table, { url: req.url!, rawHeaders: h2 ? h2ToH1Headers(req.rawHeaders) : req.rawHeaders, peer, proto: conn.secure ? 'https' : 'http', httpVersion: req.httpVersion });
    if ('error' in r) {
      this.#reject(req, res, r.error, r.site?.name, r.head.host, r.head.clientIp, started);
      return;
    }
    if ('redirect' in r) {
      this.#redirect(req, res, r.redirect.name, r.head.host, r.head.clientIp, started);
      return;
    }
    const { route, head } = r;

    // OCR routes read the upload themselves: their limits answer in WeChat's format (HTTP 200 +
    // errcode), which the seed's page can show, where a 413 would leave it waiting.
    if (route.ocr !== undefined) {
      ocrRequest({
        req, res, options: route.ocr, service: this.#ocr,
        done: (status, code, bytes) => this.#answered(req, { host: head.host, site: route.site.name, ip: head.clientIp, status, bytes, started, code }),
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
    } else if (head.chunked || (h2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders)) {
      // HTTP/2 frames bodies itself: without Content-Length one may still follow the head.
      body = req.pipe(new BodyLimit(limit));
    }
    if (expectContinue) res.writeContinue();

    this.#forward(conn, req, res, r, body, started);
  }

  /** The last step of both pipelines: a relay route works out its backend path first, any other is proxied as it came. */
  #forward(conn: ConnectionState, req: RequestView, res: ResponseView, { route, head, path }: Resolved, body: Readable | Buffer | null, started: number): void {
    if (route.relay !== undefined) {
      relayRequest({
        hooks: this.#exchangeHooks, log: this.#log, conn, req, res, route, head, body, started,
        reject: (err) => this.#reject(req, res, err, route.site.name, head.host, head.clientIp, started, true),
      });
      return;
    }
    new HttpExchange(this.#exchangeHooks, conn, req, res, route, head.host, head.clientIp, path, head.headers, body, started).start();
  }

  /**
   * Plain HTTP to a site served over HTTPS: 301 for GET/HEAD, 308 otherwise (RFC 9110 §15.4.9:
   * the method and body are kept, so a POST is not silently turned into a GET).
   */
  #redirect(req: IncomingMessage, res: ServerResponse, site: string, host: string, ip: string, started: number): void {
    const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
    const port = this.#httpsServers.length > 0 ? boundAddress(this.#httpsServers[0]!).port : 443;
    // A Host that routes only through defaultSite (none, or not a host name) cannot name the target.
    const name = normalizeHost(host);
    if (name === undefined) {
      this.#reject(req, res, new GatewayError('MPG_BAD_REQUEST', 'no Host to redirect to https with'), site, host, ip, started);
      return;
    }
    const location = `https://${name}${port === 443 ? '' : `:${port}`}${req.url!}`;
    // An unread body must not be parsed as the next request.
    res.writeHead(status, { location, 'content-length': 0, 'cache-control': 'no-store', ...(hasBody(req) ? { connection: 'close' } : {}) });
    res.end();
    this.#answered(req, { host, site, ip, status, bytes: 0, started });
  }

  /** ACME HTTP-01 (RFC 8555 §8.3): the key authorization for a pending token, on any host. */
  #answerAcme(req: IncomingMessage, res: ServerResponse, peer: string, started: number): void {
    const token = req.url!.slice(ACME_CHALLENGE_PREFIX.length);
    const answer = /^[A-Za-z0-9_-]+$/.test(token) ? this.#acme!.httpChallenge(token) : undefined;
    const status = answer === undefined ? 404 : 200;
    const body = answer ?? 'no such challenge\n';
    res.writeHead(status, { 'content-type': answer === undefined ? 'text/plain; charset=utf-8' : 'application/octet-stream', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    this.#answered(req, { host: req.headers.host ?? '', site: '', ip: peer, status, bytes: Buffer.byteLength(body), started });
  }

  #reject(req: RequestView, res: ResponseView, err: GatewayError, site: string | undefined, host: string, ip: string, started: number, json?: boolean): void {
    // Drop the connection when a request body may be left unread (it must not be parsed as the
    // next request) and after a protocol violation (how this client frames requests is suspect).
    const close = err.code === 'MPG_BODY_TOO_LARGE' || err.code === 'MPG_BAD_REQUEST' || hasBody(req);
    sendError(req, res, err, site, close, json);
    this.#answered(req, { host, site: site ?? '', ip, status: err.status, bytes: 0, started, code: err.code });
  }

  /** The end of every answer the gateway gives itself (no upstream): one access-log line. */
  #answered(req: RequestView, a: { host: string; site: string; ip: string; status: number; bytes: number; started: number; code?: string }): void {
    this.#requestDone();
    this.#access?.({ host: a.host, method: req.method!, path: req.url!, status: a.status, bytes: a.bytes, upstream: '', ms: elapsedMs(a.started), site: a.site, ip: a.ip, code: a.code });
  }

  /** The answer on a raw socket (an upgrade or a CONNECT node:http has handed over), and its log line. */
  #refuseRaw(req: IncomingMessage, socket: Duplex, err: GatewayError, site?: string, host = req.headers.host ?? ''): void {
    sendRawError(socket, err, site);
    this.#access?.({ host, method: req.method!, path: req.url!, status: err.status, bytes: 0, upstream: '', ms: 0, site: site ?? '', ip: req.socket.remoteAddress ?? '', code: err.code });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const peer = req.socket.remoteAddress ?? '';
    const secure = (req.socket as TLSSocket).encrypted === true;
    socket.on('error', () => socket.destroy());
    const refuse = (err: GatewayError, site?: string, host?: string) => this.#refuseRaw(req, socket, err, site, host);
    if (this.#closing !== undefined) return refuse(new GatewayError('MPG_SHUTTING_DOWN'));
    if (!isHttp1x(req)) return refuse(new GatewayError('MPG_HTTP_VERSION'));
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(new GatewayError('MPG_UPGRADE_UNSUPPORTED'));
    const r = resolve(this.#table, { url: req.url!, rawHeaders: req.rawHeaders, peer, proto: secure ? 'https' : 'http', upgrade: true, httpVersion: req.httpVersion });
    if ('error' in r) return refuse(r.error, r.site?.name, r.head.host);
    if ('redirect' in r) return; // resolve() never redirects an upgrade
    // A relay route forwards only paths its checks and allow list passed, and an OCR route has no
    // upstream: a tunnel to either would go around them.
    if (r.route.relay !== undefined || r.route.ocr !== undefined) {
      return refuse(new GatewayError('MPG_UPGRADE_UNSUPPORTED', 'WebSocket upgrades are proxied on upstream routes, not on relay or OCR routes'), r.route.site.name, r.head.host);
    }
    proxyWebSocket(this.#tunnelHooks, req, socket, head, r.route, r.head.headers, r.path, r.head.host, r.head.clientIp, started);
  }

  /**
   * Requests node:http refuses before they reach us: malformed framing, oversize heads, slow
   * clients. Each gets a short answer with a stable code and one log line (probes show up there).
   */
  #onClientError(err: NodeJS.ErrnoException, socket: Duplex, responseStarted?: boolean): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const gerr =
      code === 'HPE_HEADER_OVERFLOW' ? new GatewayError('MPG_HEADERS_TOO_LARGE')
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT' ? new GatewayError('MPG_CLIENT_TIMEOUT')
      : new GatewayError('MPG_BAD_REQUEST', undefined, { cause: err });
    // The answer to an earlier request may be on this socket (pipelining). One part-written must not
    // be cut into: close. One written whole is followed by this answer, unless it closes the
    // connection itself (`_last`: node:http's own flag, set by a `Connection: close` given to
    // writeHead, which getHeader() does not see). node:http reports the error before or after that
    // response's 'finish' depending on how it read the bytes, so `headersSent` alone made the
    // answer depend on timing.
    const current = (socket as Socket & { _httpMessage?: (ServerResponse & { _last?: boolean }) | null })._httpMessage ?? undefined;
    if (responseStarted ?? (current?.headersSent === true && !current.writableEnded)) {
      socket.destroy();
    } else if (current?.writableEnded === true && (current._last === true || !current.shouldKeepAlive)) {
      socket.once('finish', () => socket.destroy());
      socket.end();
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

/** HTTP/1.0 or HTTP/1.1: the versions served over HTTP/1 (see MPG_HTTP_VERSION). */
function isHttp1x(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && (req.httpVersionMinor === 1 || req.httpVersionMinor === 0);
}

/** The `tls: auto` sites, as the ACME manager wants them. */
function acmeSites(config: Config): { site: string; names: string[] }[] {
  return config.sites.filter((s) => s.tls === 'auto').map((s) => ({ site: siteName(s), names: [...s.hosts] }));
}

const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

function boundAddress(s: http.Server | https.Server): ListenAddress {
  const a = s.address();
  return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: '', port: 0 };
}

/** The request announced a body (it may be left unread when the gateway answers itself). */
function hasBody(req: RequestView): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/** Bytes of a head as HTTP/1.1 would carry it ("name: value\r\n" per field). */
function headListSize(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length + 2;
  return n;
}

function listenOn(server: http.Server | https.Server, addr: string): Promise<void> {
  const { host, port } = splitListen(addr);
  return new Promise<void>((ok, fail) => {
    server.once('error', fail);
    // A bare port listens on every interface.
    server.listen({ host: host || undefined, port }, () => {
      server.off('error', fail);
      ok();
    });
  });
}
