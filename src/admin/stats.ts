/**
 * Live per-site traffic numbers for the dashboard: requests per second, error rate and p95 latency
 * over the last minutes, a series for a sparkline, and the most recent failed requests.
 *
 * `observe` runs once per request (it is fed every access-log entry), so its cost is fixed and it
 * allocates nothing after a site's first request: each site owns one typed-array ring of time
 * buckets (5 s each over a 5-minute window by default). A bucket holds its request count, its error
 * count and a latency histogram with fixed log-spaced bins (4 per doubling, from 0.125 ms to 131 s)
 * instead of the samples, so memory is bounded whatever the traffic (82 bins × 4 bytes × 60
 * buckets ≈ 20 KiB a site) and the p95 is within one bin width (+19 %) of the exact value, like a
 * Prometheus histogram_quantile over fine buckets. Old buckets are cleared lazily when their slot
 * is reused.
 *
 * What counts as an error (decided here, shown on the dashboard):
 * - status ≥ 500, whoever produced it (the upstream, or the gateway: 502/504 on upstream failure,
 *   503 for a disabled site or during shutdown) — what the client saw was a server failure;
 * - an entry whose code is a 5xx failure even though its status is not (a response cut mid-body
 *   after a 200 head went out, a WebSocket whose upstream died: status 0, MPG_UPSTREAM_RESET);
 * - not 4xx, and in particular not 499 MPG_CLIENT_GONE: a client that leaves, a 404 for a probe or
 *   a 413 are the client's doing and would make a healthy site look sick.
 *
 * Latency: WebSocket tunnels are logged when they close, with `ms` the tunnel's lifetime (status
 * 101, or 0 when the upstream failed): those are counted as requests but stay out of the latency
 * histogram, as would any other status below 200.
 */
import { ERROR_CODES } from '../core/errors.js';
import type { AccessEntry } from '../server/access-log.js';

/** An entry from `recentErrors`: the access-log entry and when it was observed (ISO, like the access log's `time`). */
export type RecentError = AccessEntry & { time: string };

export interface SiteSnapshot {
  /** Requests per second over the last minute (or since counting began, when that is shorter). */
  rps: number;
  /** errors / requests over the window, 0..1 (0 without requests). */
  errorRate: number;
  /** 95th percentile of the request duration over the window, in ms (0 without timed requests). */
  p95Ms: number;
  /** Requests over the window. */
  requests: number;
  /** Errors over the window (see the module comment for what counts). */
  errors: number;
  /** One point per bucket, oldest first, covering the window; `t` is the bucket's start (epoch ms). */
  series: { t: number; requests: number; errors: number }[];
}

export interface SiteStatsOptions {
  /** Length of the window the numbers cover (default 5 minutes). */
  windowMs?: number;
  /** Width of one bucket (default windowMs / 60: 5 s); the window holds ceil(windowMs / bucketMs) of them. */
  bucketMs?: number;
  /** Window of `rps` (default 60 s, at most windowMs). */
  rateMs?: number;
  /** Failed requests kept per site for `recentErrors` (default 200). */
  errorsPerSite?: number;
  /** Clock, epoch ms (tests pass their own). */
  now?: () => number;
}

// Latency bins: 0 is [0, 0.125 ms), bin i ≥ 1 is [2^((i-1)/4 - 3), 2^(i/4 - 3)) ms, the last one is
// everything from 2^17 ms (131 s) up.
const BINS_PER_OCTAVE = 4;
const MIN_LOG2 = -3;
const MAX_LOG2 = 17;
const BINS = (MAX_LOG2 - MIN_LOG2) * BINS_PER_OCTAVE + 2;
/** Per bucket: [requests, errors, bin 0 .. bin BINS-1]. */
const STRIDE = 2 + BINS;

/** The latency bin for `ms`. */
export function latencyBin(ms: number): number {
  const i = Math.floor((Math.log2(ms) - MIN_LOG2) * BINS_PER_OCTAVE) + 1;
  // NaN and -Infinity (ms ≤ 0) fail both comparisons and land in bin 0.
  return i > 0 ? (i < BINS ? i : BINS - 1) : 0;
}

/** Lower and upper bound of a bin, in ms (the last bin's upper bound is its lower one). */
export function binBounds(bin: number): [number, number] {
  if (bin <= 0) return [0, 2 ** MIN_LOG2];
  const lower = 2 ** ((bin - 1) / BINS_PER_OCTAVE + MIN_LOG2);
  return bin >= BINS - 1 ? [lower, lower] : [lower, 2 ** (bin / BINS_PER_OCTAVE + MIN_LOG2)];
}

/** The status an entry stands for: its own, or its code's when no status went out (a WebSocket that failed: 0). */
export function outcomeStatus(e: AccessEntry): number {
  if (e.status >= 100 || e.code === undefined) return e.status;
  return Object.hasOwn(ERROR_CODES, e.code) ? ERROR_CODES[e.code as keyof typeof ERROR_CODES].status : e.status;
}

/** True when the entry is a server-side failure (see the module comment). */
export function isError(e: AccessEntry): boolean {
  if (e.status >= 500) return true;
  const code = e.code;
  return code !== undefined && Object.hasOwn(ERROR_CODES, code) && ERROR_CODES[code as keyof typeof ERROR_CODES].status >= 500;
}

class SiteRing {
  /** nBuckets × STRIDE counters. */
  readonly counts: Uint32Array;
  /** Bucket number (floor(t / bucketMs)) each slot currently holds; -1 for never used. */
  readonly slotBucket: Float64Array;
  /** Recent failed entries: a ring, `errHead` is the next slot to write. Allocated on the first one. */
  errEntries: (AccessEntry | undefined)[] | undefined;
  errTimes: Float64Array | undefined;
  errSeqs: Float64Array | undefined;
  errHead = 0;
  errCount = 0;

  constructor(nBuckets: number) {
    this.counts = new Uint32Array(nBuckets * STRIDE);
    this.slotBucket = new Float64Array(nBuckets).fill(-1);
  }
}

export class SiteStats {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly #nBuckets: number;
  readonly #rateBuckets: number;
  readonly #errorsPerSite: number;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #sites = new Map<string, SiteRing>();
  /** Orders recent errors across sites when two share a millisecond. */
  #seq = 0;
  /** Scratch histogram for snapshot(), reused. */
  readonly #hist = new Uint32Array(BINS);

  constructor(opts: SiteStatsOptions = {}) {
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.bucketMs = opts.bucketMs ?? Math.max(1, Math.round(this.windowMs / 60));
    if (!(this.windowMs > 0) || !(this.bucketMs > 0) || this.bucketMs > this.windowMs) {
      throw new RangeError(`SiteStats: windowMs (${this.windowMs}) and bucketMs (${this.bucketMs}) must be positive, bucketMs ≤ windowMs`);
    }
    this.#nBuckets = Math.ceil(this.windowMs / this.bucketMs);
    this.#rateBuckets = Math.min(this.#nBuckets, Math.max(1, Math.ceil((opts.rateMs ?? 60_000) / this.bucketMs)));
    this.#errorsPerSite = Math.max(1, opts.errorsPerSite ?? 200);
    this.#now = opts.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  /**
   * Counts one finished request. O(1), no allocation after the site's first request (and its
   * first failure). A failed entry (status ≥ 400, or an error by `isError`) is kept by reference,
   * not copied: the caller passes a fresh object per request, as the gateway does.
   */
  observe(e: AccessEntry): void {
    let ring = this.#sites.get(e.site);
    if (ring === undefined) {
      ring = new SiteRing(this.#nBuckets);
      this.#sites.set(e.site, ring);
    }
    const now = this.#now();
    const bucket = Math.floor(now / this.bucketMs);
    const slot = bucket % this.#nBuckets;
    const base = slot * STRIDE;
    const counts = ring.counts;
    if (ring.slotBucket[slot] !== bucket) {
      // A slot last used a window (or more) ago: start it afresh.
      counts.fill(0, base, base + STRIDE);
      ring.slotBucket[slot] = bucket;
    }
    counts[base]!++;
    const error = isError(e);
    if (error) counts[base + 1]!++;
    if (e.status >= 200) counts[base + 2 + latencyBin(e.ms)]!++;
    if (error || e.status >= 400) this.#keepError(ring, e, now);
  }

  #keepError(ring: SiteRing, e: AccessEntry, now: number): void {
    if (ring.errEntries === undefined) {
      ring.errEntries = new Array<AccessEntry | undefined>(this.#errorsPerSite).fill(undefined);
      ring.errTimes = new Float64Array(this.#errorsPerSite);
      ring.errSeqs = new Float64Array(this.#errorsPerSite);
    }
    const i = ring.errHead;
    ring.errEntries[i] = e;
    ring.errTimes![i] = now;
    ring.errSeqs![i] = this.#seq++;
    ring.errHead = (i + 1) % this.#errorsPerSite;
    if (ring.errCount < this.#errorsPerSite) ring.errCount++;
  }

  /** Sites seen so far (every site name an entry carried; '' for requests that matched no site). */
  sites(): string[] {
    return [...this.#sites.keys()];
  }

  /** Drops everything kept for a site (a site removed from the config). */
  forget(site: string): void {
    this.#sites.delete(site);
  }

  /** The numbers for one site, at this moment. A site never seen gives zeros (and a series of zeros). */
  snapshot(site: string): SiteSnapshot {
    const now = this.#now();
    const current = Math.floor(now / this.bucketMs);
    const n = this.#nBuckets;
    const ring = this.#sites.get(site);
    const hist = this.#hist.fill(0);
    const series: SiteSnapshot['series'] = [];
    let requests = 0;
    let errors = 0;
    let recent = 0;
    for (let k = n - 1; k >= 0; k--) {
      const bucket = current - k;
      let req = 0;
      let err = 0;
      if (ring !== undefined && bucket >= 0) {
        const slot = bucket % n;
        if (ring.slotBucket[slot] === bucket) {
          const base = slot * STRIDE;
          req = ring.counts[base]!;
          err = ring.counts[base + 1]!;
          for (let b = 0; b < BINS; b++) hist[b]! += ring.counts[base + 2 + b]!;
        }
      }
      requests += req;
      errors += err;
      if (k < this.#rateBuckets) recent += req;
      series.push({ t: bucket * this.bucketMs, requests: req, errors: err });
    }
    // The rate's span: the full buckets before this one plus the elapsed part of this one, but no
    // more than the time since counting began (right after a start, 3 requests in 2 s are 1.5/s).
    const span = Math.min((this.#rateBuckets - 1) * this.bucketMs + (now - current * this.bucketMs), now - this.#startedAt);
    const rps = recent === 0 ? 0 : recent / (Math.max(span, 1000) / 1000);
    return {
      rps: round2(rps),
      errorRate: requests === 0 ? 0 : round4(errors / requests),
      p95Ms: round2(quantile(hist, 0.95)),
      requests,
      errors,
      series,
    };
  }

  /**
   * The most recent failed requests (status ≥ 400, or errors by `isError`), newest first: of one
   * site, of several, or of every site (the up-to-200 kept per site, merged by time).
   */
  recentErrors(site?: string | readonly string[], limit = 200): RecentError[] {
    const rings: SiteRing[] = [];
    if (site === undefined) rings.push(...this.#sites.values());
    else {
      for (const s of typeof site === 'string' ? [site] : site) {
        const r = this.#sites.get(s);
        if (r !== undefined) rings.push(r);
      }
    }
    const found: { e: AccessEntry; t: number; seq: number }[] = [];
    for (const r of rings) {
      for (let k = 0; k < r.errCount; k++) {
        const i = (r.errHead - 1 - k + this.#errorsPerSite) % this.#errorsPerSite;
        found.push({ e: r.errEntries![i]!, t: r.errTimes![i]!, seq: r.errSeqs![i]! });
      }
    }
    found.sort((a, b) => b.t - a.t || b.seq - a.seq);
    return found.slice(0, Math.max(0, limit)).map(({ e, t }) => ({ ...e, time: new Date(t).toISOString() }));
  }
}

/** The q-quantile of a binned histogram, interpolated linearly inside its bin (0 when empty). */
function quantile(hist: Uint32Array, q: number): number {
  let total = 0;
  for (let b = 0; b < BINS; b++) total += hist[b]!;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let below = 0;
  for (let b = 0; b < BINS; b++) {
    const c = hist[b]!;
    if (below + c >= rank) {
      const [lo, hi] = binBounds(b);
      return lo + ((hi - lo) * (rank - below)) / c;
    }
    below += c;
  }
  return binBounds(BINS - 1)[0];
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
