// Adds one benchmark run to BENCHMARKS.md: machine line, parameters, the harness's table, and
// mpgate's ratios against nginx and the best Node anchor in the same run.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const [jsonPath, mdPath, target] = process.argv.slice(2);
const run = JSON.parse(readFileSync(jsonPath, 'utf8'));
const table = readFileSync(mdPath, 'utf8').trim();
const m = run.machine ?? {};
const p = run.params ?? {};
const rows = run.results ?? [];

const rate = (cand, kase) => rows.find((r) => r.candidate === cand && r.case === kase);
const value = (r) => r?.rps;
// Issue 2's targets: small ≥ 0.40× nginx, 64k ≥ 0.45×, post1m ≥ 0.60×, and ahead of every Node anchor.
const TARGET = { small: 0.40, '64k': 0.45, post1m: 0.60 };
/** Hypervisor steal (% of a CPU) above which a row's ratio is not taken as evidence. */
const STEAL_LIMIT = 5;
const lines = [];
for (const cand of ['mpgate', 'mpgate-logged']) {
  for (const kase of ['small', '64k', 'post1m']) {
    const row = rate(cand, kase);
    const mine = value(row);
    const nginx = value(rate('nginx', kase));
    if (mine === undefined || nginx === undefined) continue;
    const nodes = ['node-http-proxy', 'fastify-reply-from', 'undici-raw', 'node-raw']
      .map((c) => [c, value(rate(c, kase))]).filter(([, v]) => v !== undefined).sort((a, b) => b[1] - a[1]);
    const [bestName, bestValue] = nodes[0] ?? ['-', NaN];
    const ratio = mine / nginx;
    const ok = ratio >= TARGET[kase] && mine > bestValue && (row.errors_total ?? 0) === 0;
    // CPU the hypervisor took from a row skews every ratio with it (seen here: nginx at 35k instead
    // of 76k with 20 % steal), so such a row is reported but not judged.
    const stolen = [['nginx', rate('nginx', kase)], [cand, row]].filter(([, r]) => (r?.cpu_pct?.steal ?? 0) > STEAL_LIMIT).map(([n, r]) => `${n} ${r.cpu_pct.steal}%`);
    const verdict = stolen.length > 0 ? `not judged (steal: ${stolen.join(', ')})` : ok ? 'met' : 'not met';
    lines.push(`| ${cand} | ${kase} | ${ratio.toFixed(2)}× (target ${TARGET[kase].toFixed(2)}×) | ${bestName} ${(bestValue / nginx).toFixed(2)}× | ${(mine / bestValue).toFixed(2)}× | ${row.errors_total ?? 0} | ${verdict} |`);
  }
}

const section = [
  `## ${run.started_at ?? new Date().toISOString()}`,
  '',
  `Machine: ${[m.cpu_model, m.cpus ? `${m.cpus} CPUs` : '', m.kernel, m.node && `Node ${m.node}`, m.nginx, m.wrk].filter(Boolean).join(', ')}.`,
  `Parameters: ${JSON.stringify(p)}`,
  '',
  '| candidate | case | vs nginx | best Node anchor vs nginx | vs best Node anchor | errors | targets |',
  '|---|---|--:|--:|--:|--:|---|',
  ...lines,
  '',
  table,
  '',
].join('\n');

const head = '# Benchmarks\n\nMeasured with `npm run bench` (`../shared/bench/proxy-bench.sh --repeat 3`: medians of interleaved rounds). `mpgate` runs without an access log, like every anchor (the harness turns nginx\'s off); `mpgate-logged` writes its JSON access log to a file. Newest run first. Ratios are from the same run only.\n\n';
const old = existsSync(target) ? readFileSync(target, 'utf8').replace(/^# Benchmarks[\s\S]*?(?=^## )/m, '') : '';
writeFileSync(target, head + section + '\n' + (old.startsWith('## ') ? old : ''));
