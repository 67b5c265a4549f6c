import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { DURATION_BUCKETS, Metrics } from '../../src/admin/metrics.js';
import type { AccessEntry } from '../../src/server/access-log.js';

function entry(over: Partial<AccessEntry> = {}): AccessEntry {
  return { host: 'a.example.com', method: 'GET', path: '/', status: 200, bytes: 12, upstream: 'http://127.0.0.1:8000', ms: 3, site: 'a', ip: '127.0.0.1', ...over };
}

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the text exposition format (version 0.0.4): samples, and the TYPE of each family. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3] === '+Inf' ? Infinity : m[3]) });
  }
  return { samples, types };
}

/** The value of the one sample with this name and (at least) these labels; undefined if none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

describe('Metrics', () => {
  it('counts requests per site and status class, upstream errors per code, durations in a histogram', async () => {
    const gauges = { connections: 7, websockets: 2, upstreams: [{ origin: 'http://127.0.0.1:8000', open: 5, idle: 2, queued: 4 }] };
    const m = new Metrics({ gauges: () => gauges });
    for (let i = 0; i < 5; i++) m.observe(entry({ ms: 3 }));
    m.observe(entry({ status: 304, ms: 40 }));
    m.observe(entry({ status: 404, ms: 1, code: 'MPG_NO_ROUTE' }));
    m.observe(entry({ status: 499, ms: 2000, code: 'MPG_CLIENT_GONE' }));
    m.observe(entry({ status: 502, ms: 20, code: 'MPG_UPSTREAM_REFUSED' }));
    m.observe(entry({ status: 502, ms: 20, code: 'MPG_UPSTREAM_REFUSED' }));
    m.observe(entry({ status: 504, ms: 60_000, code: 'MPG_UPSTREAM_TIMEOUT' }));
    m.observe(entry({ site: 'b', status: 101, ms: 600_000 }));
    m.observe(entry({ site: 'b', status: 0, ms: 5_000, code: 'MPG_UPSTREAM_RESET' }));
    m.observe(entry({ site: '', host: 'nobody.example', status: 404, ms: 0.2, code: 'MPG_NO_SITE' }));

    const { contentType, body } = await m.render();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parse(body);
    assert.equal(types.get('mpgate_requests_total'), 'counter');
    assert.equal(types.get('mpgate_request_duration_seconds'), 'histogram');
    assert.equal(types.get('mpgate_upstream_errors_total'), 'counter');
    assert.equal(types.get('mpgate_open_connections'), 'gauge');
    assert.equal(types.get('mpgate_open_websockets'), 'gauge');

    const req = (site: string, status_class: string) => value(samples, 'mpgate_requests_total', { site, status_class });
    assert.equal(req('a', '2xx'), 5);
    assert.equal(req('a', '3xx'), 1);
    assert.equal(req('a', '4xx'), 2);
    assert.equal(req('a', '5xx'), 3);
    assert.equal(req('a', '1xx'), undefined, 'no sample for a class never seen');
    assert.equal(req('b', '1xx'), 1);
    assert.equal(req('b', '5xx'), 1, 'a WebSocket whose upstream died (status 0) counts as its code\'s 502');
    assert.equal(req('-', '4xx'), 1, 'requests that matched no site');

    const up = (site: string, code: string) => value(samples, 'mpgate_upstream_errors_total', { site, code });
    assert.equal(up('a', 'MPG_UPSTREAM_REFUSED'), 2);
    assert.equal(up('a', 'MPG_UPSTREAM_TIMEOUT'), 1);
    assert.equal(up('b', 'MPG_UPSTREAM_RESET'), 1);
    assert.equal(samples.filter((s) => s.name === 'mpgate_upstream_errors_total').length, 3, 'client-side codes are not upstream errors');

    // Site a's 11 durations: 3 ms ×5, 40, 1, 2000, 20, 20, 60000 ms.
    const bucket = (site: string, le: string) => value(samples, 'mpgate_request_duration_seconds_bucket', { site, le });
    assert.deepEqual(
      DURATION_BUCKETS.map((b) => bucket('a', String(b))),
      [6, 6, 8, 9, 9, 9, 9, 9, 10, 10, 10],
    );
    assert.equal(bucket('a', '+Inf'), 11);
    assert.equal(value(samples, 'mpgate_request_duration_seconds_count', { site: 'a' }), 11);
    assert.ok(Math.abs(value(samples, 'mpgate_request_duration_seconds_sum', { site: 'a' })! - 62.096) < 1e-9);
    assert.equal(value(samples, 'mpgate_request_duration_seconds_count', { site: 'b' }), undefined, 'WebSocket lifetimes are not request durations');

    assert.equal(value(samples, 'mpgate_open_connections'), 7);
    assert.equal(value(samples, 'mpgate_open_websockets'), 2);
    assert.equal(value(samples, 'mpgate_upstream_connections', { origin: 'http://127.0.0.1:8000', state: 'busy' }), 3);
    assert.equal(value(samples, 'mpgate_upstream_connections', { origin: 'http://127.0.0.1:8000', state: 'idle' }), 2);
    assert.equal(value(samples, 'mpgate_upstream_queued', { origin: 'http://127.0.0.1:8000' }), 4);
    gauges.connections = 3;
    gauges.websockets = 0;
    gauges.upstreams = [];
    const again = parse((await m.render()).body).samples;
    assert.equal(value(again, 'mpgate_open_connections'), 3, 'gauges are read at each scrape');
    assert.equal(value(again, 'mpgate_open_websockets'), 0);
    assert.equal(value(again, 'mpgate_upstream_queued', { origin: 'http://127.0.0.1:8000' }), undefined, 'an origin without a pool any more is gone');
    assert.equal(value(again, 'mpgate_requests_total', { site: 'a', status_class: '2xx' }), 5);
  });

  it('has the process default metrics, in its own registry, not the global one', async () => {
    const a = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }) });
    const b = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }) });
    a.observe(entry());
    const { samples, types } = parse((await a.render()).body);
    assert.ok(types.has('process_cpu_user_seconds_total'));
    assert.ok(types.has('nodejs_heap_size_used_bytes'));
    assert.ok(value(samples, 'process_resident_memory_bytes')! > 0);
    assert.equal(value(parse((await b.render()).body).samples, 'mpgate_requests_total', { site: 'a', status_class: '2xx' }), undefined, 'two instances share nothing');
    assert.equal(globalRegistry.getSingleMetric('mpgate_requests_total'), undefined);
  });

  it('forget drops a site\'s series', async () => {
    const m = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }), defaultMetrics: false });
    m.observe(entry({ site: 'gone' }));
    m.observe(entry({ site: 'gone', status: 502, code: 'MPG_UPSTREAM_RESET' }));
    m.observe(entry({ site: 'kept' }));
    m.forget('gone');
    const { samples } = parse((await m.render()).body);
    assert.deepEqual(samples.filter((s) => s.labels.site === 'gone'), []);
    assert.equal(value(samples, 'mpgate_requests_total', { site: 'kept', status_class: '2xx' }), 1);
    m.observe(entry({ site: 'gone' }));
    assert.equal(value(parse((await m.render()).body).samples, 'mpgate_requests_total', { site: 'gone', status_class: '2xx' }), 1, 'and counts it afresh if it comes back');
  });

  it('a duration equal to a bucket bound counts in that bucket (le is inclusive)', async () => {
    const m = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }), defaultMetrics: false });
    m.observe(entry({ ms: 5 }));
    m.observe(entry({ ms: 10_000 }));
    m.observe(entry({ ms: 10_000.01 }));
    const { samples } = parse((await m.render()).body);
    const bucket = (le: string) => value(samples, 'mpgate_request_duration_seconds_bucket', { site: 'a', le });
    assert.deepEqual([bucket('0.005'), bucket('5'), bucket('10'), bucket('+Inf')], [1, 1, 2, 3]);
  });

  it('observe is cheap (diagnostic, not a benchmark)', async (t) => {
    const m = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }), defaultMetrics: false });
    const entries = Array.from({ length: 64 }, (_, i) => entry({ site: `s${i % 4}`, ms: 0.2 * 1.37 ** (i % 32), status: i % 16 === 0 ? 502 : 200, code: i % 16 === 0 ? 'MPG_UPSTREAM_RESET' : undefined }));
    const n = 200_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) m.observe(entries[i & 63]!);
    t.diagnostic(`Metrics.observe: ${(((performance.now() - started) * 1e6) / n).toFixed(0)} ns per call`);
    const { samples } = parse((await m.render()).body);
    assert.equal(value(samples, 'mpgate_request_duration_seconds_count', { site: 's0' }), n / 4);
    assert.equal(value(samples, 'mpgate_upstream_errors_total', { site: 's0', code: 'MPG_UPSTREAM_RESET' }), n / 16);
  });

  it('label values are escaped in the exposition', async () => {
    const m = new Metrics({ gauges: () => ({ connections: 0, websockets: 0 }), defaultMetrics: false });
    m.observe(entry({ site: 'we"ird\\site' }));
    const { samples } = parse((await m.render()).body);
    assert.equal(value(samples, 'mpgate_requests_total', { site: 'we\\"ird\\\\site', status_class: '2xx' }), 1);
  });
});
