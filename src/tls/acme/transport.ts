/**
 * How acme-client reaches the CA. acme-client 5.x sends every request through one module-wide axios
 * instance (`acme.axios`), so "an https.Agent per client" cannot be set on the client itself: instead
 * each order runs inside an AsyncLocalStorage context, and interceptors installed once give each
 * request the agent (trusting `acme.ca`), the abort signal and the timeout of the order it belongs to.
 * Two managers (or two tests) with different CAs therefore never see each other's agent, and
 * `close()` aborts the requests in flight.
 *
 * Two acme-client 5.4 habits are worked around here (src/axios.js):
 * - a request that gets no response (refused, TLS not trusted, aborted) is retried after 5, 10, 15,
 *   20 and 25 s, and when the retries run out the error becomes "Cannot read properties of undefined
 *   (reading 'config')". So each order first reads the directory itself (probeDirectory: a wrong URL,
 *   an unreachable or untrusted CA fail at once, with the reason), and a response-less failure later
 *   in the order is reported with the socket error this module saw.
 * - an aborted request would wait out those pauses too; aborting marks the order's requests as out of
 *   retries (`config.retryAttempt`), so close() is quick.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Duplex } from 'node:stream';
import https from 'node:https';
import tls from 'node:tls';
import { axios, directory, setLogger } from 'acme-client';
import type { Logger } from 'pino';
import { AcmeError, errorText } from './errors.js';

/** "letsencrypt" / "letsencrypt-staging" → Let's Encrypt's directory URLs; anything else is the URL itself. */
export function directoryUrl(configured: string): string {
  if (configured === 'letsencrypt') return directory.letsencrypt.production;
  if (configured === 'letsencrypt-staging') return directory.letsencrypt.staging;
  return configured;
}

/** One ACME request may take this long (axios waits forever by default, and a stuck order blocks the queue). */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface TransportContext {
  agent: https.Agent;
  signal: AbortSignal;
  log: Logger;
}

/** The context plus what the interceptors learn about the order's requests. */
interface OrderTransport extends TransportContext {
  /** Request configs sent so far, marked out of retries when the order aborts. */
  configs: Set<object>;
  /** The latest request, and the socket error it met, for the message of a response-less failure. */
  last?: { url: string; started: number; socketError?: Error };
}

const context = new AsyncLocalStorage<OrderTransport>();
let installed = false;

/** Thrown by the interceptor for a request started after its order was aborted (it has no axios config, so acme-client does not retry it). */
class AbortedRequestError extends Error {
  constructor() {
    super('ACME request aborted: the order was cancelled');
    this.name = 'AbortError';
  }
}

/** OpenSSL verification codes: the CA's own HTTPS certificate is not trusted by this process. */
const UNTRUSTED_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED',
]);

/** A network error as a sentence, with what to change when it is a trust problem. */
export function describeNetworkError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const text = code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  return code && UNTRUSTED_CODES.has(code)
    ? `${text}: the ACME server's HTTPS certificate is not trusted; set acme.ca to the PEM file of the CA that signs it`
    : text;
}

function install(): void {
  if (installed) return;
  installed = true;
  axios.interceptors.request.use((config) => {
    const t = context.getStore();
    if (t === undefined) return config;
    if (t.signal.aborted) throw new AbortedRequestError();
    config.httpsAgent = t.agent;
    config.signal = t.signal;
    config.timeout ||= REQUEST_TIMEOUT_MS;
    t.configs.add(config);
    t.last = { url: config.url ?? '', started: Date.now() };
    return config;
  });
  // Registered after acme-client's own response interceptor, so it sees what that one throws.
  axios.interceptors.response.use(undefined, (err: unknown) => {
    const t = context.getStore();
    if (t?.last && err instanceof TypeError) {
      const { url, started, socketError } = t.last;
      const why = socketError ? describeNetworkError(socketError)
        : Date.now() - started >= REQUEST_TIMEOUT_MS ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
        : 'no answer';
      throw new Error(`${url}: ${why}`, { cause: err });
    }
    throw err;
  });
  // acme-client's own log (every request, every retry) goes to the debug level of the order's logger.
  setLogger((msg) => context.getStore()?.log.debug({ acme: msg }, 'acme-client'));
}

/** An https.Agent that tells the order which socket error a request met (acme-client loses it). */
class AcmeAgent extends https.Agent {
  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    // Called while the request is being sent, so inside the order's async context.
    const t = context.getStore();
    socket?.on('error', (err: Error) => {
      if (t?.last) t.last.socketError = err;
    });
    return socket;
  }
}

/**
 * An agent that trusts the public roots plus `caPem` (a private or test CA that signs the ACME server's
 * own HTTPS certificate). keepAlive: an order is a dozen requests to the same host.
 */
export function acmeAgent(caPem: string | undefined): https.Agent {
  return new AcmeAgent({ keepAlive: true, ...(caPem ? { ca: [...tls.rootCertificates, caPem] } : {}) });
}

/** Runs `fn` with every acme-client request it makes going through `ctx`. */
export function withTransport<T>(ctx: TransportContext, fn: () => Promise<T>): Promise<T> {
  install();
  const t: OrderTransport = { ...ctx, configs: new Set() };
  ctx.signal.addEventListener('abort', () => {
    for (const config of t.configs) Object.assign(config, { retryAttempt: Number.POSITIVE_INFINITY });
  }, { once: true });
  return context.run(t, fn);
}

/**
 * Reads the ACME directory with node:https and the order's agent, once, without retries: a wrong
 * URL, an unreachable CA or one whose certificate is not trusted fails here in milliseconds with
 * the reason (see the module comment for what acme-client would do instead).
 */
export function probeDirectory(url: string, ctx: TransportContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string, cause?: unknown) => reject(new AcmeError('MPG_ACME_DIRECTORY', `ACME directory ${url}: ${why}`, { cause }));
    const req = https.get(url, { agent: ctx.agent, signal: ctx.signal, timeout: REQUEST_TIMEOUT_MS, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 64 * 1024) body += c;
      });
      res.on('error', (err) => fail(errorText(err), err));
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode} (is this the directory URL of an ACME CA?)`);
        let dir: Record<string, unknown>;
        try {
          dir = JSON.parse(body) as Record<string, unknown>;
        } catch (err) {
          return fail('the answer is not JSON (is this the directory URL of an ACME CA?)', err);
        }
        const missing = ['newNonce', 'newAccount', 'newOrder'].filter((k) => typeof dir[k] !== 'string');
        if (missing.length) return fail(`not an ACME directory: no ${missing.join(', ')}`);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => fail(describeNetworkError(err), err));
  });
}
