/**
 * WebSocket upgrades (wx.connectSocket) relayed as bytes: the handshake goes to the upstream with
 * the same routing and header rewrite as any request (Upgrade/Connection kept, RFC 6455 §4.1), and
 * whatever the upstream answers — 101 or a refusal — flows back unchanged, then both sockets are
 * piped until either side closes.
 */
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { classifyError, GatewayError, isConnectFailure } from '../core/errors.js';
import { applyUpstreamHost } from '../core/headers.js';
import { elapsedMs } from '../server/access-log.js';
import type { AccessEntry } from '../server/logging.js';
import { sendRawError } from '../server/respond.js';
import type { Route, Upstream } from '../server/routing-table.js';

export interface TunnelHooks {
  access: ((entry: AccessEntry) => void) | undefined;
  onUpstreamDown(upstream: Upstream, err: GatewayError): void;
  connectTimeout: number;
  idleTimeout: number;
  /** Registers the pair for shutdown; returns the function to call once it is closed. */
  track(client: Duplex, upstream: Socket): () => void;
}

export function proxyWebSocket(
  hooks: TunnelHooks,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  route: Route,
  headers: string[],
  path: string,
  host: string,
  clientIp: string,
  started: number,
  tried?: Set<Upstream>,
): void {
  const upstream = route.upstreams.pick(Date.now(), tried);
  const log = (status: number, code?: string, bytes = 0) =>
    hooks.access?.({
      host, method: req.method!, path: req.url!, status, bytes, upstream: upstream?.origin ?? '',
      ms: elapsedMs(started), site: route.site.name, ip: clientIp,
      ...(code ? { code } : {}),
    });
  if (upstream === undefined) {
    sendRawError(client, new GatewayError('MPG_UPSTREAM_REFUSED'), route.site.name);
    log(502, 'MPG_UPSTREAM_REFUSED');
    return;
  }
  if (!route.preserveHost) applyUpstreamHost(headers, upstream.authority);

  const url = new URL(upstream.origin);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const socket: Socket = url.protocol === 'https:'
    ? tls.connect({ host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname, ALPNProtocols: ['http/1.1'] })
    : net.connect({ host: hostname, port });
  socket.setNoDelay(true);
  const connectTimer = setTimeout(() => socket.destroy(new GatewayError('MPG_UPSTREAM_CONNECT_TIMEOUT')), hooks.connectTimeout);
  let connected = false;

  const onEarlyClientClose = () => socket.destroy();
  client.once('close', onEarlyClientClose);

  socket.once('error', (err) => {
    clearTimeout(connectTimer);
    if (connected) return; // handled by the pipe teardown below
    client.off('close', onEarlyClientClose);
    const gerr = classifyError(err);
    if (isConnectFailure(gerr)) {
      hooks.onUpstreamDown(upstream, gerr);
      const next = tried ?? new Set<Upstream>();
      next.add(upstream);
      if (!client.destroyed && next.size < route.upstreams.items.length) {
        proxyWebSocket(hooks, req, client, head, route, headers, path, host, clientIp, started, next);
        return;
      }
    }
    sendRawError(client, gerr, route.site.name);
    log(gerr.status, gerr.code);
  });

  socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    client.off('close', onEarlyClientClose);
    if (upstream.health.fails !== 0) upstream.health.succeed();
    let lines = `${req.method} ${upstream.basePath}${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
    socket.write(`${lines}\r\n`);
    if (head.length > 0) socket.write(head);

    const untrack = hooks.track(client, socket);
    let status = 0;
    let bytes = 0;
    socket.once('data', (chunk: Buffer) => {
      // "HTTP/1.1 101 ..." — the status is only read for the access log.
      status = Number(chunk.subarray(9, 12).toString('latin1')) || 0;
    });
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    // The client socket still carries node:http's request timeout; a tunnel has its own.
    const idle = hooks.idleTimeout;
    const clientSocket = client as Socket;
    clientSocket.setTimeout(idle, idle > 0 ? () => client.destroy() : undefined);
    if (idle > 0) socket.setTimeout(idle, () => socket.destroy());
    let closed = false;
    const teardown = () => {
      if (closed) return;
      closed = true;
      socket.destroy();
      client.destroy();
      untrack();
      log(status, status === 0 ? 'MPG_UPSTREAM_RESET' : undefined, bytes);
    };
    socket.on('error', teardown).on('close', teardown);
    client.on('error', teardown).on('close', teardown);
    socket.pipe(client);
    client.pipe(socket);
  });
}
