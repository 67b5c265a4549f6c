/**
 * One undici Pool per upstream origin and option set, shared by every route that names it and kept
 * across reloads so keep-alive connections survive a config change. Pools a reload no longer uses
 * are closed after a delay: undici's close() lets queued and in-flight requests finish, and the
 * delay covers requests that picked their upstream on the old table a moment before the swap.
 */
import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { UpstreamHealth } from '../core/balancer.js';
import type { UpstreamDefaults } from '../config/schema.js';

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #health = new Map<string, UpstreamHealth>();
  readonly #retiring = new Set<Promise<void>>();
  #closed = false;

  /** The pool for `origin` with these options (created on first use). */
  pool(origin: string, opts: UpstreamDefaults, tls?: UpstreamTls): Pool {
    const key = poolKey(origin, opts, tls);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: opts.connections,
        pipelining: 1,
        keepAliveTimeout: opts.keepAliveTimeout,
        keepAliveMaxTimeout: Math.max(opts.keepAliveTimeout, 600_000),
        headersTimeout: opts.responseTimeout,
        bodyTimeout: opts.bodyIdleTimeout,
        // https upstreams are always verified: against the system CAs, or `tls.ca` when given.
        connect: { timeout: opts.connectTimeout, rejectUnauthorized: true, ...(tls?.ca ? { ca: tls.ca } : {}) },
        // The gateway is a proxy: it forwards whatever size the client was allowed to send.
        maxHeaderSize: 64 * 1024,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Live health for an origin; shared by all pools and routes that use it. */
  health(origin: string): UpstreamHealth {
    let h = this.#health.get(origin);
    if (h === undefined) {
      h = new UpstreamHealth(origin);
      this.#health.set(origin, h);
    }
    return h;
  }

  /** Closes, after `delayMs`, every pool whose key is not in `keep`. */
  retainOnly(keep: ReadonlySet<string>, delayMs: number): void {
    for (const [key, pool] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      const done = new Promise<void>((resolve) => {
        setTimeout(() => {
          pool.close().catch(() => pool.destroy()).finally(resolve);
        }, delayMs).unref();
      });
      this.#retiring.add(done);
      void done.then(() => this.#retiring.delete(done));
    }
  }

  /** Graceful: waits for in-flight requests on every pool, then closes them. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }

  /** Immediate: aborts everything still running. Idempotent. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}

export interface UpstreamTls {
  /** Extra CA certificates (PEM) trusted for this upstream. */
  ca?: string;
}

export function poolKey(origin: string, opts: UpstreamDefaults, tls?: UpstreamTls): string {
  const ca = tls?.ca ? ` ca:${createHash('sha256').update(tls.ca).digest('hex').slice(0, 16)}` : '';
  return `${origin} ${opts.connections} ${opts.keepAliveTimeout} ${opts.responseTimeout} ${opts.bodyIdleTimeout} ${opts.connectTimeout}${ca}`;
}
