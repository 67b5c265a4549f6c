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
const lines = [];
for (const kase of ['small', '64k', 'post1m']) {
  const mine = value(rate('mpgate', kase));
  const nginx = value(rate('nginx', kase));
  if (mine === undefined || nginx === undefined) continue;
  const nodes = ['node-http-proxy', 'fastify-reply-from', 'undici-raw', 'node-raw']
    .map((c) => [c, value(rate(c, kase))]).filter(([, v]) => v !== undefined).sort((a, b) => b[1] - a[1]);
  const [bestName, bestValue] = nodes[0] ?? ['-', NaN];
  lines.push(`| ${kase} | ${(mine / nginx).toFixed(2)}× | ${bestName} ${(bestValue / nginx).toFixed(2)}× | ${(mine / bestValue).toFixed(2)}× |`);
}

const section = [
  `## ${run.started_at ?? new Date().toISOString()}`,
  '',
  `Machine: ${[m.cpu_model, m.cpus ? `${m.cpus} CPUs` : '', m.kernel, m.node && `Node ${m.node}`, m.nginx, m.wrk].filter(Boolean).join(', ')}.`,
  `Parameters: ${JSON.stringify(p)}`,
  '',
  '| case | mpgate vs nginx | best Node anchor vs nginx | mpgate vs best Node anchor |',
  '|---|--:|--:|--:|',
  ...lines,
  '',
  table,
  '',
].join('\n');

const head = '# Benchmarks\n\nMeasured with `npm run bench` (`../shared/bench/proxy-bench.sh --repeat 3`, medians of interleaved rounds; mpgate runs with its access log on, written to a file). Newest run first. Ratios are from the same run only.\n\n';
const old = existsSync(target) ? readFileSync(target, 'utf8').replace(/^# Benchmarks[\s\S]*?(?=^## )/m, '') : '';
writeFileSync(target, head + section + '\n' + (old.startsWith('## ') ? old : ''));
