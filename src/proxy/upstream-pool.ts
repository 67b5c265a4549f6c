/**
 * One connection pool per upstream origin and option set, shared by every route that names it and
 * kept across reloads so keep-alive connections survive a config change. Pools a reload no longer
 * uses are closed after a delay: close() lets queued and in-flight requests finish, and the delay
 * covers requests that picked their upstream on the old table a moment before the swap.
 */
import { createHash } from 'node:crypto';
import { H1Pool, type PoolStats } from './h1-client.js';
import { UpstreamHealth } from '../core/balancer.js';
import type { UpstreamDefaults } from '../config/schema.js';

export class UpstreamPools {
  readonly #pools = new Map<string, H1Pool>();
  readonly #health = new Map<string, UpstreamHealth>();
  readonly #retiring = new Set<Promise<void>>();
  #closed = false;

  /** The pool for `origin` with these options (created on first use). */
  pool(origin: string, opts: UpstreamDefaults, tls?: UpstreamTls): H1Pool {
    const key = poolKey(origin, opts, tls);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new H1Pool(origin, {
        connections: opts.connections,
        keepAliveTimeout: opts.keepAliveTimeout,
        connectTimeout: opts.connectTimeout,
        responseTimeout: opts.responseTimeout,
        bodyIdleTimeout: opts.bodyIdleTimeout,
        // A response head may be larger than what clients may send us (cookies, CSPs).
        maxHeaderSize: 64 * 1024,
        // https upstreams are always verified: against the system CAs, plus `tls.ca` when given.
        ca: tls?.ca,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Connections and waiting requests per origin (pools of one origin with different options summed). */
  stats(): OriginPoolStats[] {
    const byOrigin = new Map<string, OriginPoolStats>();
    for (const pool of this.#pools.values()) {
      const s = pool.stats();
      const t = byOrigin.get(pool.origin) ?? { origin: pool.origin, open: 0, idle: 0, queued: 0 };
      t.open += s.open;
      t.idle += s.idle;
      t.queued += s.queued;
      byOrigin.set(pool.origin, t);
    }
    return [...byOrigin.values()];
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
          void pool.close().then(resolve);
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

/** One upstream origin's connections, all its pools together. */
export interface OriginPoolStats extends PoolStats {
  origin: string;
}

export interface UpstreamTls {
  /** Extra CA certificates (PEM) trusted for this upstream. */
  ca?: string;
}

export function poolKey(origin: string, opts: UpstreamDefaults, tls?: UpstreamTls): string {
  const ca = tls?.ca ? ` ca:${createHash('sha256').update(tls.ca).digest('hex').slice(0, 16)}` : '';
  return `${origin} ${opts.connections} ${opts.keepAliveTimeout} ${opts.responseTimeout} ${opts.bodyIdleTimeout} ${opts.connectTimeout}${ca}`;
}
