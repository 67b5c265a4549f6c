/**
 * Prometheus metrics for the admin listener's GET /metrics (prom-client, text exposition format).
 *
 *   mpgate_requests_total{site,status_class}        counter   status_class 1xx..5xx, or "other"
 *   mpgate_request_duration_seconds{site}           histogram request head → end of response
 *   mpgate_upstream_errors_total{site,code}         counter   code MPG_UPSTREAM_* (refused, reset,
 *                                                             unreachable, timeouts, bad response, TLS)
 *   mpgate_open_connections                         gauge     client connections (WebSockets included)
 *   mpgate_open_websockets                          gauge     WebSocket tunnels
 *   mpgate_upstream_connections{origin,state}       gauge     pooled upstream connections, busy or idle
 *   mpgate_upstream_queued{origin}                  gauge     requests waiting for a connection
 *                                                             (upstream.connections reached)
 *   process_* / nodejs_*                                       prom-client's default metrics
 *
 * The metrics live in a Registry of their own, not prom-client's global one: two gateways in one
 * process (the tests) or a library that also uses prom-client must not share or collide.
 *
 * `observe` runs on every request, so it only adds to plain numbers kept per site (one Map lookup,
 * a few array increments, no allocation); prom-client sees them at scrape time. Calling
 * prom-client on each request, even through cached labelled children, cost 0.3–0.7 µs a request
 * here: every inc()/observe() hashes the label values into a string and validates them again, and
 * Histogram#observe allocates. The counters are handed over with prom-client's public API
 * (reset + inc in collect()); the histogram has no API to set bucket counts, so `SiteDurations`
 * answers get()/getForPromString() itself, in the shape prom-client 15's Histogram produces (the
 * unit test parses the result, so a change of that shape on upgrade shows there).
 *
 * Requests that matched no site carry site="-" (an empty label value reads as "no label" in
 * PromQL). WebSocket tunnels are logged when they close, with their lifetime as `ms`: they count
 * in mpgate_requests_total (as 101, or as their code's status when the upstream failed) but stay
 * out of the duration histogram, as does anything with a status below 200.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OriginPoolStats } from '../proxy/upstream-pool.js';
import type { AccessEntry } from '../server/access-log.js';
import { outcomeStatus } from './stats.js';

/** Seconds: a local upstream answers in a few ms, a slow one in seconds; responseTimeout defaults to 60 s. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Indexed by floor(status / 100); 0 stands for anything outside 100..599. */
const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Everything counted for one site since the start (or since `forget`). */
class SiteCounts {
  readonly requests = new Float64Array(STATUS_CLASSES.length);
  /** Per DURATION_BUCKETS bound, not cumulative; the last slot is +Inf. */
  readonly durations = new Float64Array(DURATION_BUCKETS.length + 1);
  durationSum = 0;
  durationCount = 0;
  readonly upstreamErrors = new Map<string, number>();
  constructor(readonly label: string) {}
}

type HistogramExport = Awaited<ReturnType<Histogram<'site'>['get']>>;

/** mpgate_request_duration_seconds, counted by Metrics and read from it at scrape time. */
class SiteDurations extends Histogram<'site'> {
  readonly #sites: Map<string, SiteCounts>;
  readonly #name: string;
  readonly #help: string;

  constructor(sites: Map<string, SiteCounts>, name: string, help: string, registry: Registry) {
    super({ name, help, labelNames: ['site'], buckets: [...DURATION_BUCKETS], registers: [registry] });
    this.#sites = sites;
    this.#name = name;
    this.#help = help;
  }

  override async get(): Promise<HistogramExport> {
    return this.#export();
  }

  /** prom-client's Registry reads this instead of get() when a metric has it (15.x: lib/registry.js). */
  async getForPromString(): Promise<HistogramExport> {
    return this.#export();
  }

  #export(): HistogramExport {
    const values: HistogramExport['values'] = [];
    const bucket = `${this.#name}_bucket`;
    for (const c of this.#sites.values()) {
      if (c.durationCount === 0) continue;
      let cumulative = 0;
      for (let i = 0; i <= DURATION_BUCKETS.length; i++) {
        cumulative += c.durations[i]!;
        const labels = { site: c.label, le: i < DURATION_BUCKETS.length ? DURATION_BUCKETS[i]! : '+Inf' };
        values.push({ labels, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { site: c.label }, value: c.durationSum, metricName: `${this.#name}_sum` });
      values.push({ labels: { site: c.label }, value: c.durationCount, metricName: `${this.#name}_count` });
    }
    // `type` is the string prom-client uses at run time; its typings declare a numeric enum it does not export.
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramExport;
  }
}

export interface MetricsOptions {
  /** Read at every scrape. */
  gauges: () => { connections: number; websockets: number; upstreams?: readonly OriginPoolStats[] };
  /** Also collect process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #sites = new Map<string, SiteCounts>();

  constructor(opts: MetricsOptions) {
    const registers = [this.registry];
    const sites = this.#sites;
    new Counter({
      name: 'mpgate_requests_total',
      help: 'Requests answered, by site and status class (WebSocket upgrades included, counted when they close).',
      labelNames: ['site', 'status_class'] as const,
      registers,
      collect() {
        this.reset();
        for (const c of sites.values()) {
          c.requests.forEach((n, i) => {
            if (n > 0) this.inc({ site: c.label, status_class: STATUS_CLASSES[i]! }, n);
          });
        }
      },
    });
    new SiteDurations(
      sites,
      'mpgate_request_duration_seconds',
      'Time from the request head to the end of the response, by site (WebSocket tunnels excluded).',
      this.registry,
    );
    new Counter({
      name: 'mpgate_upstream_errors_total',
      help: 'Requests that failed on the upstream side (connection refused, unreachable or timed out, reset, bad response, TLS), by site and code.',
      labelNames: ['site', 'code'] as const,
      registers,
      collect() {
        this.reset();
        for (const c of sites.values()) {
          for (const [code, n] of c.upstreamErrors) this.inc({ site: c.label, code }, n);
        }
      },
    });
    const gauges = opts.gauges;
    new Gauge({
      name: 'mpgate_open_connections',
      help: 'Open client connections (HTTP, HTTPS and WebSocket).',
      registers,
      collect() {
        this.set(gauges().connections);
      },
    });
    new Gauge({
      name: 'mpgate_open_websockets',
      help: 'Open WebSocket tunnels.',
      registers,
      collect() {
        this.set(gauges().websockets);
      },
    });
    new Gauge({
      name: 'mpgate_upstream_connections',
      help: 'Pooled connections to each upstream origin, busy (a request on it) or idle (kept alive for the next).',
      labelNames: ['origin', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of gauges().upstreams ?? []) {
          this.set({ origin: u.origin, state: 'busy' }, u.open - u.idle);
          this.set({ origin: u.origin, state: 'idle' }, u.idle);
        }
      },
    });
    new Gauge({
      name: 'mpgate_upstream_queued',
      help: 'Requests waiting for a connection to an upstream origin (its upstream.connections are all busy).',
      labelNames: ['origin'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of gauges().upstreams ?? []) this.set({ origin: u.origin }, u.queued);
      },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts one finished request (fed every access-log entry). No allocation after a site's first request. */
  observe(e: AccessEntry): void {
    let c = this.#sites.get(e.site);
    if (c === undefined) {
      c = new SiteCounts(e.site === '' ? '-' : e.site);
      this.#sites.set(e.site, c);
    }
    const status = outcomeStatus(e);
    c.requests[status >= 100 && status < 600 ? Math.floor(status / 100) : 0]!++;
    if (e.status >= 200) {
      const s = e.ms / 1000;
      let i = 0;
      while (i < DURATION_BUCKETS.length && s > DURATION_BUCKETS[i]!) i++;
      c.durations[i]!++;
      c.durationSum += s;
      c.durationCount++;
    }
    const code = e.code;
    if (code !== undefined && code.startsWith('MPG_UPSTREAM_')) c.upstreamErrors.set(code, (c.upstreamErrors.get(code) ?? 0) + 1);
  }

  /** Drops a site's series (a site removed from the config): the next scrape no longer lists it. */
  forget(site: string): void {
    this.#sites.delete(site);
  }

  /** The text exposition, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
