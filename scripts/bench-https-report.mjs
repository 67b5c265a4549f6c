// Report of scripts/bench-https.sh: medians per candidate and case over the alternating rounds,
// ratios mpgate ÷ nginx-tls from the same run, a markdown table (stdout, --md) and the JSON (--out);
// --record FILE prepends the section to BENCHMARKS.md (after its header, before the newest section).
//
//   node scripts/bench-https-report.mjs --meta META.json --results RESULTS.jsonl [--out F] [--md F] [--record F]
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!['meta', 'results', 'out', 'md', 'record'].includes(key) || argv[i + 1] === undefined) {
    console.error(`usage: bench-https-report.mjs --meta F --results F [--out F] [--md F] [--record F] (bad: ${argv[i]})`);
    process.exit(2);
  }
  args[key] = argv[i + 1];
}
const meta = JSON.parse(readFileSync(args.meta, 'utf8'));
const raws = readFileSync(args.results, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const m = meta.machine ?? {};
const p = meta.params ?? {};

const CASES = ['https-small', 'h2-small', 'h2-64k', 'handshakes', 'handshakes-full'];
const CANDIDATES = ['nginx-tls', 'mpgate', 'undici-raw-tls'];
const ANCHOR = 'undici-raw-tls';
const UNIT = { 'https-small': 'req/s', 'h2-small': 'req/s', 'h2-64k': 'req/s', handshakes: 'conn/s', 'handshakes-full': 'conn/s' };
// The issue's target: HTTPS small GET ≥ 0.40× nginx in the same run.
const TARGET = { 'https-small': 0.40 };
const NOISY_PCT = 10;
const SLOW_PROBE_PCT = 5;

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};
const max = (xs) => { const s = xs.filter((x) => typeof x === 'number'); return s.length ? Math.max(...s) : undefined; };

/** One round of one candidate × case, normalised across wrk, h2load and s_time. */
function round(r) {
  if (r.error !== undefined || r.raw === undefined) return { round: r.round, error: r.error ?? 'no result' };
  const j = r.raw;
  let rate, n, errors, lat = {};
  if (r.tool === 'wrk') {
    n = j.requests;
    rate = j.requests / (j.duration_us / 1e6);
    errors = Object.values(j.errors).reduce((a, b) => a + b, 0);
    lat = { p50: j.latency_us.p50 / 1000, p99: j.latency_us.p99 / 1000 };
  } else if (r.tool === 'h2load') {
    n = j.requests;
    rate = j.rps;
    errors = Object.values(j.errors).reduce((a, b) => a + b, 0) + (j.protocol === 'h2' ? 0 : 1);
    lat = { mean: j.latency_us.mean / 1000 };
  } else {
    n = j.connections;
    rate = j.connections / (j.duration_us / 1e6);
    errors = j.exited_early;
  }
  const cpu = r.cpu_pct ?? {};
  return {
    round: r.round,
    tool: r.tool,
    count: n,
    rate,
    // CPU time of the candidate's processes per request (connection): steadier than the rate on a
    // machine whose CPUs change speed, since both are measured over the same window.
    cpu_us_per_op: cpu.proxy_process && rate ? (cpu.proxy_process / 100) * 1e6 / rate : undefined,
    latency_ms: lat,
    errors,
    cpu_pct: cpu,
    probe: r.cpu_probe_ms,
    rss_mib: r.rss_kib ? r.rss_kib / 1024 : undefined,
    tcp_connects: r.tcp_connects,
    tls: r.tls,
    resumes: r.resumes,
    check: r.check,
    raw: j,
  };
}

const rounds = raws.map((r) => ({ candidate: r.candidate, case: r.case, ...round(r) }));
const bestProbe = { proxy: Math.min(...rounds.map((r) => r.probe?.proxy).filter(Boolean)), load: Math.min(...rounds.map((r) => r.probe?.load).filter(Boolean)) };

const rows = [];
for (const kase of CASES) {
  for (const cand of CANDIDATES) {
    const rs = rounds.filter((r) => r.case === kase && r.candidate === cand);
    if (rs.length === 0) continue;
    const ok = rs.filter((r) => r.error === undefined);
    const rates = ok.map((r) => r.rate);
    const med = median(rates);
    const flags = [];
    for (const r of ok) {
      if ((r.cpu_pct.other_processes ?? 0) > NOISY_PCT) flags.push(`round ${r.round}: other processes used ${r.cpu_pct.other_processes}% of a CPU`);
      if ((r.cpu_pct.steal ?? 0) > 5) flags.push(`round ${r.round}: steal ${r.cpu_pct.steal}%`);
      for (const side of ['proxy', 'load']) {
        const slow = r.probe?.[side] && bestProbe[side] ? (r.probe[side] / bestProbe[side] - 1) * 100 : 0;
        if (slow > SLOW_PROBE_PCT) flags.push(`round ${r.round}: the ${side} CPU probed ${slow.toFixed(0)}% slower than its best in this run`);
      }
    }
    rows.push({
      case: kase,
      candidate: cand,
      unit: UNIT[kase],
      rounds_ok: ok.length,
      rounds_failed: rs.filter((r) => r.error !== undefined).map((r) => ({ round: r.round, error: r.error })),
      rate: med,
      spread_pct: ok.length > 1 && med ? ((Math.max(...rates) - Math.min(...rates)) / med) * 100 : undefined,
      cpu_us_per_op: median(ok.map((r) => r.cpu_us_per_op)),
      latency_ms: { p50: median(ok.map((r) => r.latency_ms.p50)), p99: median(ok.map((r) => r.latency_ms.p99)), mean: median(ok.map((r) => r.latency_ms.mean)) },
      proxy_cpu_pct: median(ok.map((r) => r.cpu_pct.proxy_process)),
      load_cpu_pct: median(ok.map((r) => r.cpu_pct.load_cpu_busy)),
      other_cpu_pct_max: max(ok.map((r) => r.cpu_pct.other_processes)),
      rss_mib_max: max(ok.map((r) => r.rss_mib)),
      errors: ok.reduce((a, r) => a + (r.errors ?? 0), 0),
      tls: ok[0]?.tls,
      resumes: ok[0]?.resumes,
      check: [...new Set(ok.map((r) => r.check).filter((c) => c && c !== 'ok'))].join('; ') || 'ok',
      flags,
      rounds: rs,
    });
  }
}
const row = (cand, kase) => rows.find((r) => r.candidate === cand && r.case === kase);
for (const r of rows) {
  const n = row('nginx-tls', r.case);
  r.vs_nginx = n?.rate && r.rate ? r.rate / n.rate : undefined;
  r.cpu_vs_nginx = n?.cpu_us_per_op && r.cpu_us_per_op ? r.cpu_us_per_op / n.cpu_us_per_op : undefined;
}

// ---- markdown ------------------------------------------------------------------------------------
const f0 = (x) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const f1 = (x) => (x === undefined ? '–' : x.toFixed(1));
const f2 = (x) => (x === undefined ? '–' : x.toFixed(2));
const pct = (x) => (x === undefined ? '–' : `${Math.round(x)}%`);
const machine = [m.cpu_model, m.cpus ? `${m.cpus} CPUs` : '', m.kernel, m.node && `Node ${m.node} (OpenSSL ${m.node_openssl})`, m.nginx, m.openssl, m.wrk && `wrk ${m.wrk}`, m.h2load && `h2load ${m.h2load}`].filter(Boolean).join(', ');

const summary = [];
for (const kase of CASES) {
  const mine = row('mpgate', kase);
  const ng = row('nginx-tls', kase);
  if (!mine || !ng) continue;
  const t = TARGET[kase];
  const verdict = t === undefined ? '' : mine.vs_nginx !== undefined && mine.vs_nginx >= t && mine.errors === 0 ? `met (target ${t.toFixed(2)}×)` : `not met (target ${t.toFixed(2)}×)`;
  const an = row(ANCHOR, kase);
  const vsAnchor = an?.rate && mine.rate ? `${f2(mine.rate / an.rate)}×` : '–';
  const anVsNginx = an?.vs_nginx === undefined ? '–' : `${f2(an.vs_nginx)}×`;
  summary.push(`| ${kase} | ${f0(mine.rate)} ${mine.unit} | ${f0(ng.rate)} ${ng.unit} | ${mine.vs_nginx === undefined ? '–' : `${f2(mine.vs_nginx)}×`} | ${mine.cpu_vs_nginx === undefined ? '–' : `${f2(mine.cpu_vs_nginx)}×`} | ${anVsNginx} | ${vsAnchor} | ${mine.errors} / ${ng.errors} | ${verdict} |`);
}

const table = [];
for (const r of rows) {
  const lat = r.latency_ms.p50 !== undefined ? `${f2(r.latency_ms.p50)} / ${f2(r.latency_ms.p99)}` : r.latency_ms.mean !== undefined ? `mean ${f2(r.latency_ms.mean)}` : '–';
  table.push(`| ${r.case} | ${r.candidate}${r.flags.length ? ' (!)' : ''} | ${f0(r.rate)} ${r.unit} | ${r.spread_pct === undefined ? '–' : `${f1(r.spread_pct)}%`} | ${r.vs_nginx === undefined ? '–' : `${f2(r.vs_nginx)}×`} | ${f0(r.cpu_us_per_op)} | ${lat} | ${pct(r.proxy_cpu_pct)} | ${pct(r.load_cpu_pct)} | ${pct(r.other_cpu_pct_max)} | ${f0(r.rss_mib_max)} | ${r.errors}${r.rounds_failed.length ? ` (+${r.rounds_failed.length} failed rounds)` : ''} |`);
}

const tlsLines = CANDIDATES.map((c) => {
  const r = rows.find((x) => x.candidate === c && x.tls);
  return r ? `${c}: ${r.tls}, session resumption ${r.resumes}${r.check !== 'ok' ? `; ${r.check}` : ''}` : undefined;
}).filter(Boolean);
const failures = rows.flatMap((r) => r.rounds_failed.map((f) => `${r.candidate} ${r.case} round ${f.round}: ${f.error}`));
const flags = rows.flatMap((r) => r.flags.map((f) => `(!) ${r.candidate} ${r.case}: ${f}`));

const md = [
  `## HTTPS and HTTP/2 — ${meta.started_at}`,
  '',
  `\`npm run bench:https\` (\`scripts/bench-https.sh\`): mpgate's HTTPS listener next to nginx terminating TLS with the same certificate (${p.key_type === 'rsa' ? 'RSA 2048' : 'ECDSA P-256'}, throwaway CA), both proxying to the shared upstream nginx over keep-alive HTTP/1.1. ${p.repeat} round${p.repeat === 1 ? "" : "s"}, candidates alternating; medians shown, ratios from this run only.`,
  '',
  `Machine: ${machine}.`,
  `Parameters: ${JSON.stringify(p)}`,
  '',
  '| case | mpgate | nginx-tls | mpgate ÷ nginx | CPU per op, mpgate ÷ nginx | undici-raw-tls ÷ nginx | mpgate ÷ undici-raw-tls | errors (mpgate / nginx) | target |',
  '|---|--:|--:|--:|--:|--:|--:|--:|---|',
  ...summary,
  '',
  '| case | candidate | rate (median) | spread | vs nginx | proxy CPU µs/op | p50 / p99 ms | proxy CPU | load CPU | other CPU | RSS MiB | errors |',
  '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ...table,
  '',
  `Cases: https-small = wrk, HTTP/1.1 over TLS, keep-alive, ${p.connections} connections, 1 thread, GET / (13 bytes); h2-small / h2-64k = h2load, ${p.h2_clients} connections × ${p.h2_streams} streams, GET / and GET /64k; handshakes = wrk with \`Connection: close\`, ${p.connections} connections: one TCP + TLS connection per request, and wrk resumes the TLS session on each reconnect (TLS 1.3 session tickets, PSK + ECDHE), so these are resumed handshakes; handshakes-full = ${p.stime_procs} \`openssl s_time -new\` processes: a full handshake (no resumption, no SNI: both candidates use their default, the same, certificate) plus one GET / per connection. wrk SNI: ${p.wrk_sni}. ${p.duration_s} s per measurement after ${p.warmup_s} s warm-up. Proxy on CPU ${p.proxy_cpu}; load generators and upstream nginx on CPU ${p.load_cpu}.`,
  `nginx-tls: the shared anchor config (\`../shared/bench/conf/nginx-proxy.conf\`, one worker, keepalive upstream, no access log) with TLS listeners (ssl + h2), \`ssl_protocols TLSv1.2 TLSv1.3\`, mpgate's cipher list and order, stock session settings (tickets on). mpgate: \`accessLog: false\`, \`logLevel: warn\`. undici-raw-tls: the shared \`anchors/undici-raw.js\` unchanged, served by node's \`http2.createSecureServer({allowHTTP1})\` (\`scripts/bench-anchors/undici-raw-tls.cjs\`). TLS negotiated: ${tlsLines.join('; ')}.`,
  'proxy CPU µs/op: CPU time of the candidate\'s processes per request (per connection for the handshake cases), over the same window as the rate; steadier than req/s on a machine whose CPU speed drifts. h2 rows show h2load\'s mean request time instead of percentiles. Near 100% proxy CPU: the proxy was the bottleneck; near 100% load CPU: the load side (the client\'s share of each handshake included) set the ceiling, so the ratio flatters the slower candidate.',
  ...(flags.length ? ['', ...flags] : []),
  ...(failures.length ? ['', 'Failed rounds:', ...failures.map((f) => `- ${f}`)] : []),
  '',
].join('\n');

process.stdout.write(md);
if (args.md) writeFileSync(args.md, md);
if (args.out) writeFileSync(args.out, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
if (args.record) {
  // Keep the file's header (everything before the first "## ") and put this section first under it.
  const old = existsSync(args.record) ? readFileSync(args.record, 'utf8') : '# Benchmarks\n\n';
  const at = old.search(/^## /m);
  const head = at === -1 ? old.replace(/\n*$/, '\n\n') : old.slice(0, at);
  const rest = at === -1 ? '' : old.slice(at);
  writeFileSync(args.record, head + md + '\n' + rest);
}
