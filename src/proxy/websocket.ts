/**
 * WebSocket upgrades (wx.connectSocket) relayed as bytes: the handshake goes to the upstream with
 * the same routing and header rewrite as any request (Upgrade/Connection kept, RFC 6455 §4.1).
 *
 * Nothing the client sends goes upstream before the upstream has answered 101 Switching
 * Protocols. Only then are the two sockets piped, until either side closes. Any other answer (a
 * 403, or a 200 from a backend that does not speak WebSocket at all) is relayed as an ordinary
 * response that closes the connection, and the client's further bytes are dropped. Piping at
 * once would let a client whose upgrade the upstream refused keep talking HTTP straight to it,
 * past routing, path checks and forwarding headers ("WebSocket smuggling").
 */
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { classifyError, GatewayError, isConnectFailure } from '../core/errors.js';
import { ResponseError, ResponseParser } from '../core/h1-response.js';
import { applyUpstreamHost, downstreamHeaders } from '../core/headers.js';
import { elapsedMs } from '../server/access-log.js';
import type { AccessEntry } from '../server/logging.js';
import { sendRawError } from '../server/respond.js';
import type { Route, Upstream } from '../server/routing-table.js';

export interface TunnelHooks {
  access: ((entry: AccessEntry) => void) | undefined;
  onUpstreamDown(upstream: Upstream, err: GatewayError): void;
  connectTimeout: number;
  /** Time the upstream has to answer the handshake; then 504. */
  responseTimeout: number;
  idleTimeout: number;
  /** Longest upstream answer head taken (the gateway's maxHeaderSize); longer is a 502. */
  maxHeadSize: number;
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

    const untrack = hooks.track(client, socket);
    let status = 0;
    let bytes = 0;
    let closed = false;
    const answerTimer = setTimeout(() => fail(new GatewayError('MPG_UPSTREAM_TIMEOUT')), hooks.responseTimeout);
    const teardown = (code?: string) => {
      if (closed) return;
      closed = true;
      clearTimeout(answerTimer);
      socket.destroy();
      client.destroy();
      untrack();
      log(status, code ?? (status === 0 ? 'MPG_UPSTREAM_RESET' : undefined), bytes);
    };
    /** The handshake failed before anything reached the client: a gateway answer, then close. */
    const fail = (err: GatewayError) => {
      if (closed) return;
      status = err.status;
      sendRawError(client, err, route.site.name);
      teardown(err.code);
    };
    // Closed before its answer head: the client still gets one (502), as for any request.
    let answered = false;
    const upstreamGone = () => (answered ? teardown() : fail(new GatewayError('MPG_UPSTREAM_RESET')));
    socket.on('error', upstreamGone).on('close', upstreamGone);
    client.on('error', () => teardown()).on('close', () => teardown());

    // The upstream's answer head, read before anything of the client's goes upstream.
    let answer: Buffer = Buffer.alloc(0);
    const onAnswer = (chunk: Buffer) => {
      answer = answer.length === 0 ? chunk : Buffer.concat([answer, chunk]);
      const end = answer.indexOf('\r\n\r\n');
      if (end === -1) {
        if (answer.length > hooks.maxHeadSize) fail(new GatewayError('MPG_UPSTREAM_BAD_RESPONSE', 'handshake answer head too large'));
        return;
      }
      socket.off('data', onAnswer);
      clearTimeout(answerTimer);
      answered = true;
      const line = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(answer.toString('latin1', 0, Math.min(end + 2, 64)));
      if (line?.[1] === '101') {
        status = 101;
        tunnel(answer);
      } else {
        refusal(answer);
      }
    };
    socket.on('data', onAnswer);

    const tunnel = (answerBytes: Buffer) => {
      bytes += answerBytes.length;
      client.write(answerBytes);
      if (head.length > 0) socket.write(head);
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      // The client socket still carries node:http's request timeout; a tunnel has its own.
      const idle = hooks.idleTimeout;
      (client as Socket).setTimeout(idle, idle > 0 ? () => client.destroy() : undefined);
      if (idle > 0) socket.setTimeout(idle, () => socket.destroy());
      socket.pipe(client);
      client.pipe(socket);
    };

    // Not 101: an ordinary response, relayed with its body and `Connection: close` (the client's
    // connection is no longer node:http's to reuse). A body framed by length keeps its length;
    // chunked or close-delimited bodies are sent close-delimited.
    const refusal = (answerBytes: Buffer) => {
      let started = false;
      const parser = new ResponseParser({
        onHead(code, reason, raw) {
          status = code;
          started = true;
          const fields = downstreamHeaders(raw);
          let text = `HTTP/1.1 ${code} ${reason}\r\n`;
          for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
          client.write(`${text}Connection: close\r\n\r\n`);
        },
        onBody(chunk) {
          bytes += chunk.length;
          client.write(chunk);
        },
        onEnd() {
          closed = true;
          clearTimeout(answerTimer);
          socket.destroy();
          client.end();
          client.once('finish', () => client.destroy());
          untrack();
          log(status, undefined, bytes);
        },
      }, hooks.maxHeadSize);
      parser.expect(req.method === 'HEAD');
      // No tunnel idle timeout applies here: an upstream that stalls inside this body is cut off
      // after upstream.responseTimeout without a byte.
      socket.setTimeout(hooks.responseTimeout, () => teardown('MPG_UPSTREAM_TIMEOUT'));
      // Once the head has gone to the client, a broken answer can only be cut off.
      const broken = (code: 'MPG_UPSTREAM_BAD_RESPONSE' | 'MPG_UPSTREAM_RESET', detail?: string) => (started ? teardown(code) : fail(new GatewayError(code, detail)));
      const feed = (chunk: Buffer) => {
        try {
          parser.execute(chunk);
        } catch (err) {
          if (!(err instanceof ResponseError)) throw err;
          broken('MPG_UPSTREAM_BAD_RESPONSE', err.detail);
        }
      };
      socket.on('data', feed);
      socket.once('end', () => {
        try {
          parser.finish();
        } catch {
          broken('MPG_UPSTREAM_RESET');
        }
      });
      feed(answerBytes);
    };
  });
}
