import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binBounds, isError, latencyBin, SiteStats } from '../../src/admin/stats.js';
import type { AccessEntry } from '../../src/server/access-log.js';

function entry(over: Partial<AccessEntry> = {}): AccessEntry {
  return { host: 'a.example.com', method: 'GET', path: '/', status: 200, bytes: 12, upstream: 'http://127.0.0.1:8000', ms: 3, site: 'a', ip: '127.0.0.1', ...over };
}

/** A SiteStats on a clock the test moves; starts at a round 10:00:00 so buckets are predictable. */
function clocked(opts: { windowMs?: number; bucketMs?: number; rateMs?: number; errorsPerSite?: number } = {}) {
  const clock = { t: Date.UTC(2026, 0, 1, 10, 0, 0) };
  const stats = new SiteStats({ ...opts, now: () => clock.t });
  return { stats, clock };
}

/** The exact q-quantile (nearest rank), to compare the binned estimate with. */
function exact(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
}

describe('latency bins', () => {
  it('put every duration inside its bin, 4 bins per doubling', () => {
    for (const ms of [0, 0.01, 0.124, 0.125, 0.3, 1, 1.5, 3, 17, 99.9, 100, 1234.5, 60_000, 131_071, 131_072, 1e9]) {
      const [lo, hi] = binBounds(latencyBin(ms));
      if (lo === hi) assert.ok(ms >= lo, `${ms} in the overflow bin from ${lo}`);
      else assert.ok(ms >= lo && ms < hi, `${ms} ms in [${lo}, ${hi})`);
    }
    const [lo, hi] = binBounds(latencyBin(10));
    assert.ok(Math.abs(hi / lo - 2 ** 0.25) < 1e-9);
    assert.equal(latencyBin(Number.NaN), 0);
    assert.equal(latencyBin(-5), 0);
  });
});

describe('what counts as an error', () => {
  it('5xx and 5xx codes, not 4xx nor the client leaving', () => {
    assert.equal(isError(entry({ status: 500 })), true);
    assert.equal(isError(entry({ status: 502, code: 'MPG_UPSTREAM_REFUSED' })), true);
    assert.equal(isError(entry({ status: 503, code: 'MPG_SITE_DISABLED' })), true);
    assert.equal(isError(entry({ status: 200, code: 'MPG_UPSTREAM_RESET' })), true, 'a response cut after a 200 head');
    assert.equal(isError(entry({ status: 0, code: 'MPG_UPSTREAM_RESET' })), true, 'a WebSocket whose upstream died');
    assert.equal(isError(entry({ status: 499, code: 'MPG_CLIENT_GONE' })), false);
    assert.equal(isError(entry({ status: 200, code: 'MPG_CLIENT_GONE' })), false);
    assert.equal(isError(entry({ status: 404, code: 'MPG_NO_ROUTE' })), false);
    assert.equal(isError(entry({ status: 413, code: 'MPG_BODY_TOO_LARGE' })), false);
    assert.equal(isError(entry({ status: 200 })), false);
    assert.equal(isError(entry({ status: 200, code: 'constructor' })), false, 'own keys only');
  });
});

describe('SiteStats', () => {
  it('counts requests and errors per site, with the error rate', () => {
    const { stats } = clocked();
    for (let i = 0; i < 8; i++) stats.observe(entry());
    stats.observe(entry({ status: 502, code: 'MPG_UPSTREAM_REFUSED' }));
    stats.observe(entry({ status: 404 }));
    stats.observe(entry({ site: 'b', status: 500 }));
    const a = stats.snapshot('a');
    assert.equal(a.requests, 10);
    assert.equal(a.errors, 1);
    assert.equal(a.errorRate, 0.1);
    const b = stats.snapshot('b');
    assert.deepEqual([b.requests, b.errors, b.errorRate], [1, 1, 1]);
    assert.deepEqual(stats.sites().sort(), ['a', 'b']);
  });

  it('a site never seen gives zeros and a full series of zeros', () => {
    const { stats } = clocked();
    const s = stats.snapshot('nobody');
    assert.deepEqual([s.rps, s.errorRate, s.p95Ms, s.requests, s.errors], [0, 0, 0, 0, 0]);
    assert.equal(s.series.length, 60);
    assert.ok(s.series.every((p) => p.requests === 0 && p.errors === 0));
  });

  it('p95 from the bins stays within one bin (+19 %) of the exact value', () => {
    const { stats } = clocked();
    // Uniform 1..200 ms, and a long-tailed mix (90 % fast, 10 % slow).
    const uniform = Array.from({ length: 2000 }, (_, i) => 1 + (i % 200));
    const tail = Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 800 + i : 2 + (i % 7) * 0.37));
    for (const ms of uniform) stats.observe(entry({ site: 'u', ms }));
    for (const ms of tail) stats.observe(entry({ site: 't', ms }));
    for (const [site, values] of [['u', uniform], ['t', tail]] as const) {
      const want = exact(values, 0.95);
      const got = stats.snapshot(site).p95Ms;
      assert.ok(got >= want / 2 ** 0.25 && got <= want * 2 ** 0.25, `${site}: p95 ${got} ms, exact ${want} ms`);
    }
    // Sub-millisecond answers (a local upstream) keep their resolution.
    for (let i = 0; i < 100; i++) stats.observe(entry({ site: 'fast', ms: 0.4 }));
    const fast = stats.snapshot('fast').p95Ms;
    assert.ok(fast > 0.3 && fast <= 0.48, `p95 of 0.4 ms answers: ${fast}`);
  });

  it('keeps WebSocket tunnels (their lifetime as ms) out of the latency, but counts them', () => {
    const { stats } = clocked();
    for (let i = 0; i < 20; i++) stats.observe(entry({ ms: 10 }));
    for (let i = 0; i < 20; i++) stats.observe(entry({ status: 101, ms: 600_000 }));
    stats.observe(entry({ status: 0, ms: 90_000, code: 'MPG_UPSTREAM_RESET' }));
    const s = stats.snapshot('a');
    assert.equal(s.requests, 41);
    assert.equal(s.errors, 1);
    assert.ok(s.p95Ms >= 10 / 2 ** 0.25 && s.p95Ms <= 10 * 2 ** 0.25, `p95 ${s.p95Ms}`);
  });

  it('forgets what is older than the window; the series moves with the clock', () => {
    const { stats, clock } = clocked({ windowMs: 60_000, bucketMs: 10_000 });
    stats.observe(entry());
    clock.t += 10_000;
    stats.observe(entry({ ms: 500 }));
    stats.observe(entry({ status: 503, ms: 500 }));
    let s = stats.snapshot('a');
    assert.equal(s.series.length, 6);
    assert.deepEqual(s.series.slice(-2).map((p) => [p.requests, p.errors]), [[1, 0], [2, 1]]);
    assert.equal(s.series.at(-1)!.t, clock.t, 'the last point is the current bucket (the clock is on a boundary)');
    assert.ok(s.series.every((p, i) => i === 0 || p.t - s.series[i - 1]!.t === 10_000));
    assert.equal(s.requests, 3);

    clock.t += 50_000; // the first bucket leaves the window
    s = stats.snapshot('a');
    assert.deepEqual([s.requests, s.errors], [2, 1]);
    assert.deepEqual(s.series.map((p) => p.requests), [2, 0, 0, 0, 0, 0]);

    clock.t += 10_000; // and the second; a new request reuses the second bucket's slot, cleared first
    stats.observe(entry({ ms: 1 }));
    s = stats.snapshot('a');
    assert.deepEqual([s.requests, s.errors], [1, 0]);
    assert.ok(s.p95Ms < 2, `the 500 ms request is gone from the histogram: p95 ${s.p95Ms}`);

    clock.t += 3_600_000;
    s = stats.snapshot('a');
    assert.deepEqual([s.requests, s.errors, s.rps, s.p95Ms], [0, 0, 0, 0]);
  });

  it('rps: the last minute, or the time since counting began when shorter', () => {
    const { stats, clock } = clocked();
    clock.t += 2_000;
    for (let i = 0; i < 10; i++) stats.observe(entry());
    assert.equal(stats.snapshot('a').rps, 5, '10 requests in the 2 s since the start');
    clock.t += 118_000;
    for (let i = 0; i < 60; i++) stats.observe(entry());
    const s = stats.snapshot('a');
    // The clock is on a bucket boundary: the rate covers 11 full buckets and the current one, just begun.
    assert.equal(s.rps, Math.round((60 / 55) * 100) / 100, '60 requests in the last minute');
    assert.equal(s.requests, 70, 'the 5-minute window still holds the first 10');
    clock.t += 61_000;
    assert.equal(stats.snapshot('a').rps, 0);
  });

  it('recentErrors: failures and 4xx, newest first, per site or merged, at most 200 per site', () => {
    const { stats, clock } = clocked();
    stats.observe(entry({ path: '/ok' }));
    stats.observe(entry({ path: '/missing', status: 404, code: 'MPG_NO_ROUTE' }));
    clock.t += 1;
    stats.observe(entry({ site: 'b', path: '/b-down', status: 502, code: 'MPG_UPSTREAM_REFUSED' }));
    clock.t += 1;
    stats.observe(entry({ path: '/cut', status: 200, code: 'MPG_UPSTREAM_RESET' }));
    stats.observe(entry({ site: '', host: 'unknown.example', status: 404, code: 'MPG_NO_SITE' }));

    assert.deepEqual(stats.recentErrors('a').map((e) => e.path), ['/cut', '/missing']);
    assert.deepEqual(stats.recentErrors().map((e) => e.path), ['/', '/cut', '/b-down', '/missing'], 'same millisecond: the later first');
    assert.deepEqual(stats.recentErrors(['a', 'b'], 2).map((e) => e.path), ['/cut', '/b-down']);
    assert.deepEqual(stats.recentErrors('nobody'), []);
    const [cut] = stats.recentErrors('a', 1);
    assert.equal(cut!.time, new Date(clock.t).toISOString());
    assert.equal(cut!.code, 'MPG_UPSTREAM_RESET');

    for (let i = 0; i < 250; i++) stats.observe(entry({ site: 'flood', path: `/${i}`, status: 500 }));
    const flood = stats.recentErrors('flood', 1000);
    assert.equal(flood.length, 200);
    assert.equal(flood[0]!.path, '/249');
    assert.equal(flood[199]!.path, '/50');
    assert.equal(stats.recentErrors('a').length, 2, 'a noisy site does not push out the others');
    assert.equal(stats.recentErrors(undefined, 5).length, 5);
  });

  it('forget drops a site', () => {
    const { stats } = clocked();
    stats.observe(entry({ status: 500 }));
    stats.forget('a');
    assert.equal(stats.snapshot('a').requests, 0);
    assert.deepEqual(stats.recentErrors('a'), []);
    assert.deepEqual(stats.sites(), []);
  });

  it('observe is cheap: a fixed cost whatever the latencies (diagnostic, not a benchmark)', (t) => {
    const stats = new SiteStats();
    const entries = Array.from({ length: 64 }, (_, i) => entry({ site: `s${i % 4}`, ms: 0.2 * 1.37 ** i, status: i % 16 === 0 ? 502 : 200 }));
    const n = 200_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) stats.observe(entries[i & 63]!);
    const ns = ((performance.now() - started) * 1e6) / n;
    t.diagnostic(`SiteStats.observe: ${ns.toFixed(0)} ns per call`);
    assert.equal(stats.snapshot('s0').requests, n / 4);
  });
});
