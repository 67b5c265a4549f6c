/**
 * A request on a relay route (second seed): work out the backend path from the query form
 * (`/relay?method=api/x&y=1`), the path form (`/relay/api/x?y=1`) or the JSON-body form
 * (`{"method":"api/x", ...}`), refuse anything that could leave the configured backend, then
 * stream the exchange like any proxied request — status, headers and body come back unchanged.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import { setField, type UpstreamHead } from '../core/headers.js';
import { readLimited } from '../proxy/body-limit.js';
import { HttpExchange, type ExchangeHooks } from '../proxy/http-exchange.js';
import type { ConnectionState } from '../server/connection.js';
import type { RequestView, ResponseView } from '../server/respond.js';
import type { Route } from '../server/routing-table.js';
import { takeJsonParam } from './json-param.js';
import { checkRelayPath, relayTarget } from './relay-target.js';

export interface RelayContext {
  hooks: ExchangeHooks;
  log: Logger;
  conn: ConnectionState;
  req: RequestView;
  res: ResponseView;
  route: Route;
  head: UpstreamHead;
  /** The request body as the gateway would stream it (already capped), whole when the fast path had it, or null. */
  body: Readable | Buffer | null;
  started: number;
  /** Answers with a gateway error and logs the request. */
  reject(err: GatewayError): void;
}

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;

export function relayRequest(ctx: RelayContext): void {
  const { route, req } = ctx;
  const relay = route.relay!;
  const target = relayTarget(relay.policy, route.path, req.url!);
  if (target.ok) {
    forward(ctx, target.path, ctx.body);
    return;
  }
  if (!target.missing) {
    refuse(ctx, target.reason);
    return;
  }
  // No path in the URL: the seed's POST/PUT put it in the JSON body.
  if (ctx.body === null || !JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    ctx.reject(new GatewayError('MPG_RELAY_NO_PATH', `give the backend path as ?${relay.policy.param}=path, ${route.path}/path or {"${relay.policy.param}": "path"}`));
    return;
  }
  // A body announced larger than the JSON-body form reads is refused before any of it is read.
  if (ctx.head.contentLength !== undefined && Number(ctx.head.contentLength) > relay.maxJsonBody) {
    ctx.reject(new GatewayError('MPG_BODY_TOO_LARGE', `JSON body over ${relay.maxJsonBody} bytes`));
    return;
  }
  // A whole body is within the limit already: its Content-Length was checked above.
  const read = Buffer.isBuffer(ctx.body)
    ? Promise.resolve(ctx.body)
    : readLimited(ctx.body, relay.maxJsonBody, {
      tooLarge: () => new GatewayError('MPG_BODY_TOO_LARGE', `JSON body over ${relay.maxJsonBody} bytes`),
      broken: (cause) => new GatewayError('MPG_CLIENT_GONE', undefined, { cause }),
    });
  read.then(
    (raw) => {
      const taken = takeJsonParam(raw.toString('utf8'), relay.policy.param);
      if (!taken.ok) {
        ctx.reject(new GatewayError('MPG_RELAY_NO_PATH', taken.reason));
        return;
      }
      const checked = checkRelayPath(relay.policy, taken.value);
      if (!checked.ok) {
        refuse(ctx, checked.reason);
        return;
      }
      // The backend gets the body minus the path member, still JSON, every other byte unchanged.
      const body = Buffer.from(taken.rest);
      setField(ctx.head.headers, 'content-length', String(body.length));
      const query = req.url!.indexOf('?');
      forward(ctx, query === -1 ? checked.path : checked.path + req.url!.slice(query), body);
    },
    (err: GatewayError) => ctx.reject(err),
  );
}

function forward(ctx: RelayContext, path: string, body: Readable | Buffer | null): void {
  new HttpExchange(ctx.hooks, ctx.conn, ctx.req, ctx.res, ctx.route, ctx.head.host, ctx.head.clientIp, path, ctx.head.headers, body, ctx.started).start();
}

function refuse(ctx: RelayContext, reason: string): void {
  // Refusals are logged: they are what an escape or SSRF attempt looks like.
  ctx.log.warn({ site: ctx.route.site.name, ip: ctx.head.clientIp, url: ctx.req.url, reason }, 'relay path refused');
  ctx.reject(new GatewayError('MPG_RELAY_BAD_PATH', reason));
}
