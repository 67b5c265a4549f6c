/**
 * Round-robin over a route's upstreams with passive failover: an upstream that failed `maxFails`
 * times in a row is skipped for `failTimeout` ms (nginx's max_fails/fail_timeout). Live health lives
 * in `UpstreamHealth` objects shared by every route naming the same origin, apart from the static
 * config (Caddy keeps upstream state the same way), so a reload keeps what was learned.
 */

export class UpstreamHealth {
  fails = 0;
  downUntil = 0;

  constructor(readonly origin: string) {}

  isUp(now: number): boolean {
    return this.downUntil <= now;
  }

  /** Records a connection failure; returns true when this one took the upstream out. */
  fail(now: number, maxFails: number, failTimeout: number): boolean {
    this.fails++;
    if (this.fails >= maxFails && this.downUntil <= now) {
      this.downUntil = now + failTimeout;
      return true;
    }
    return false;
  }

  succeed(): void {
    this.fails = 0;
    this.downUntil = 0;
  }
}

export interface Candidate {
  readonly health: UpstreamHealth;
}

export class RoundRobin<T extends Candidate> {
  #next = 0;
  constructor(readonly items: readonly T[]) {}

  /**
   * Next upstream that is up, skipping those in `exclude` (already tried for this request).
   * When every upstream is down, the one that comes back soonest is tried rather than failing
   * outright: a passive check cannot know it is still down.
   */
  pick(now: number, exclude?: ReadonlySet<T>): T | undefined {
    const n = this.items.length;
    if (n === 1) {
      const only = this.items[0]!;
      return exclude?.has(only) ? undefined : only;
    }
    let fallback: T | undefined;
    for (let i = 0; i < n; i++) {
      const item = this.items[(this.#next + i) % n]!;
      if (exclude?.has(item)) continue;
      if (item.health.isUp(now)) {
        this.#next = (this.#next + i + 1) % n;
        return item;
      }
      if (fallback === undefined || item.health.downUntil < fallback.health.downUntil) fallback = item;
    }
    return fallback;
  }
}
