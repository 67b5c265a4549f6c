/**
 * One certificate order, RFC 8555 §7.4, step by step: order → authorizations → one challenge each, in
 * the configured order of preference → wait for the CA → finalize with a CSR → download.
 *
 * acme-client's `auto()` does the same, but it polls with fixed 5-30 s backoffs that outlive close(),
 * logs nothing we can route per site, and cannot be cancelled. Here every wait is an abortable sleep,
 * every step logs one line, and each failure becomes an AcmeError that names the step and the host.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { crypto as acmeCrypto, type Authorization, type Client, type Order } from 'acme-client';
import type { Logger } from 'pino';
import { AcmeError, errorText, type AcmeErrorCode } from './errors.js';

export type ChallengeType = 'http-01' | 'tls-alpn-01';
type AcmeChallenge = Authorization['challenges'][number];

/** Where the manager publishes challenge answers while the CA validates them. */
export interface ChallengeResponder {
  /** Serve `keyAuthorization` for this challenge (by token for http-01, by name for tls-alpn-01). */
  add(type: ChallengeType, name: string, token: string, keyAuthorization: string): Promise<void>;
  remove(type: ChallengeType, name: string, token: string): void;
}

export interface OrderRequest {
  client: Client;
  names: readonly string[];
  /** Challenge types we can answer, most preferred first (`acme.challenges`). */
  challenges: readonly ChallengeType[];
  responder: ChallengeResponder;
  signal: AbortSignal;
  /** Logger bound to the site. */
  log: Logger;
}

/** How long the CA may keep an order pending (validation) or processing (signing) before we give up. */
export const ORDER_DEADLINE_MS = 180_000;
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 5_000;

/** Where each challenge type is checked from the CA's side: what to look at when it fails. */
const CHALLENGE_HINT: Record<ChallengeType, string> = {
  'http-01': 'the CA fetches http://NAME/.well-known/acme-challenge/TOKEN on port 80; that must reach this gateway',
  'tls-alpn-01': 'the CA connects to NAME on port 443 offering ALPN "acme-tls/1"; that must reach this gateway\'s HTTPS listener',
};

/** A CSR's CN is limited to 64 characters (RFC 5280 ub-common-name); the names are in the SAN anyway. */
const MAX_CN = 64;

/** Orders a certificate for `names`; resolves to the PEM chain and its new private key. */
export async function orderCertificate(req: OrderRequest): Promise<{ cert: string; key: string }> {
  const { client, names, log } = req;
  const run = <T>(code: AcmeErrorCode, what: string, fn: () => Promise<T>) => step(req.signal, code, what, fn);

  const key = await acmeCrypto.createPrivateEcdsaKey('P-256');
  const cn = names.find((n) => n.length <= MAX_CN);
  const [, csr] = await acmeCrypto.createCsr({ ...(cn ? { commonName: cn } : {}), altNames: [...names] }, key);

  let order = await run('MPG_ACME_ORDER', 'creating the order', () => client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) }));
  log.info({ order: order.url, names }, 'acme order placed');
  const authzs = await run('MPG_ACME_ORDER', 'reading the authorizations', () => client.getAuthorizations(order));

  const published: { type: ChallengeType; name: string; token: string }[] = [];
  try {
    const pending: AcmeChallenge[] = [];
    for (const authz of authzs) {
      const name = authz.identifier.value;
      if (authz.status === 'valid') {
        log.info({ name }, 'acme authorization already valid, no challenge needed');
        continue;
      }
      if (authz.status !== 'pending') throw new AcmeError('MPG_ACME_ORDER', `${name}: the CA's authorization is ${authz.status}, not pending`);
      const { challenge, type } = pickChallenge(authz, req.challenges);
      const token = (challenge as { token?: string }).token ?? '';
      const keyAuthorization = await run('MPG_ACME_ORDER', `${name}: computing the key authorization`, () => client.getChallengeKeyAuthorization(challenge));
      await run('MPG_ACME_CHALLENGE', `${name}: preparing the ${type} answer`, () => req.responder.add(type, name, token, keyAuthorization));
      published.push({ type, name, token });
      pending.push(challenge);
      log.info({ name, type }, 'acme challenge ready');
    }
    for (const challenge of pending) {
      await run('MPG_ACME_CHALLENGE', 'telling the CA the challenge is ready', () => client.completeChallenge(challenge));
    }
    // Also when nothing was pending: an order created over reused authorizations may still read
    // "pending" for a moment before the CA marks it ready.
    order = await waitForOrder(req, order, 'pending');
    if (order.status === 'invalid') throw await challengeFailure(req, order);
    if (pending.length) log.info({ names }, 'acme challenges validated');
  } finally {
    for (const p of published) req.responder.remove(p.type, p.name, p.token);
  }

  if (order.status !== 'ready' && order.status !== 'valid') {
    throw new AcmeError('MPG_ACME_ORDER', `the order is ${order.status}, expected ready${problemText(order.error)}`);
  }
  if (order.status === 'ready') {
    order = await run('MPG_ACME_FINALIZE', 'finalizing the order', () => client.finalizeOrder(order, csr));
    order = await waitForOrder(req, order, 'processing');
  }
  if (order.status !== 'valid') throw new AcmeError('MPG_ACME_FINALIZE', `the CA did not issue the certificate: order ${order.status}${problemText(order.error)}`);
  const cert = await run('MPG_ACME_FINALIZE', 'downloading the certificate', () => client.getCertificate(order));
  return { cert, key: key.toString() };
}

/** The first challenge type of `preferred` the CA offers for this authorization. */
function pickChallenge(authz: Authorization, preferred: readonly ChallengeType[]): { challenge: AcmeChallenge; type: ChallengeType } {
  for (const type of preferred) {
    const challenge = authz.challenges.find((c) => (c.type as string) === type);
    if (challenge) return { challenge, type };
  }
  const offered = authz.challenges.map((c) => c.type).join(', ') || 'none';
  throw new AcmeError('MPG_ACME_NO_CHALLENGE', `${authz.identifier.value}: the CA offers ${offered}; acme.challenges allows only ${preferred.join(', ')}`);
}

/** Polls the order while its status is `passing`, with a growing pause, until the deadline. */
async function waitForOrder(req: OrderRequest, order: Order, passing: 'pending' | 'processing'): Promise<Order> {
  const deadline = Date.now() + ORDER_DEADLINE_MS;
  let pause = POLL_FIRST_MS;
  let current = order;
  while (current.status === passing) {
    if (Date.now() > deadline) {
      throw new AcmeError('MPG_ACME_TIMEOUT', `the CA left the order ${passing} for over ${ORDER_DEADLINE_MS / 1000} s`);
    }
    await step(req.signal, 'MPG_ACME_ABORTED', 'waiting for the CA', () => sleep(pause, undefined, { signal: req.signal }));
    pause = Math.min(pause * 2, POLL_MAX_MS);
    current = await step(req.signal, passing === 'pending' ? 'MPG_ACME_CHALLENGE' : 'MPG_ACME_FINALIZE', 'reading the order status', () => req.client.getOrder(current));
  }
  return current;
}

/** Why an order went invalid: the first failed challenge's problem document, with what to check. */
async function challengeFailure(req: OrderRequest, order: Order): Promise<AcmeError> {
  let authzs: Authorization[] = [];
  try {
    authzs = await req.client.getAuthorizations(order);
  } catch {
    // The order's own error below still says something.
  }
  for (const authz of authzs) {
    const failed = authz.challenges.find((c) => c.status === 'invalid');
    if (authz.status !== 'invalid' || !failed) continue;
    const type = failed.type as string;
    const hint = type in CHALLENGE_HINT ? ` (${CHALLENGE_HINT[type as ChallengeType].replace('NAME', authz.identifier.value)})` : '';
    return new AcmeError('MPG_ACME_CHALLENGE', `${authz.identifier.value}: ${type} challenge failed${problemText(failed.error)}${hint}`);
  }
  return new AcmeError('MPG_ACME_CHALLENGE', `the order became invalid${problemText(order.error)}`);
}

/** ": detail" of an RFC 7807 problem document, or "". */
function problemText(problem: object | undefined): string {
  if (problem === undefined || problem === null) return '';
  const p = problem as { detail?: unknown; type?: unknown };
  const text = typeof p.detail === 'string' ? p.detail : typeof p.type === 'string' ? p.type : JSON.stringify(problem);
  return `: ${text}`;
}

/** Runs one protocol step; anything it throws becomes an AcmeError with `code` (or ABORTED after cancel). */
async function step<T>(signal: AbortSignal, code: AcmeErrorCode, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (signal.aborted) throw new AcmeError('MPG_ACME_ABORTED', 'cancelled (the manager closed or the site was removed)', { cause: err });
    if (err instanceof AcmeError) throw err;
    throw new AcmeError(code, `${what}: ${errorText(err)}`, { cause: err });
  }
}
