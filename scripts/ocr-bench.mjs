#!/usr/bin/env node
// Measures the offline OCR engine on the committed fixtures (run `npx tsc -p .` first):
//   cold start (model load + warm-up) of one worker, per-image latency on one worker (median of
//   --runs), character error rate, and throughput and peak RSS with --workers workers.
// Usage: node scripts/ocr-bench.mjs [--runs 7] [--workers 2] [--jobs 24] [--batch N] [--unclip R] [--max-side N]
// The machine may be shared: latencies are wall-clock, so run it when nothing else is busy.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    workers: { type: 'string', default: '2' },
    jobs: { type: 'string', default: '24' },
    batch: { type: 'string' },
    unclip: { type: 'string' },
    'max-side': { type: 'string' },
  },
});
const root = new URL('..', import.meta.url);
const { OcrPool } = await import(new URL('dist/src/ocr/worker-pool.js', root).href);
const fixtures = new URL('test/fixtures/ocr/', root);
const manifest = JSON.parse(readFileSync(new URL('fixtures.json', fixtures), 'utf8'));
const images = manifest.map((f) => ({ ...f, data: readFileSync(new URL(f.file, fixtures)) }));

const engine = {};
if (values.batch) engine.recBatchSize = Number(values.batch);
if (values.unclip) engine.db = { unclipRatio: Number(values.unclip) };
if (values['max-side']) engine.detMaxSide = Number(values['max-side']);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function levenshtein(a, b) {
  const x = [...a], y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length];
}

// 1. Throughput, peak RSS and event-loop delay with N workers (first, so RSS is this pool's alone).
const workers = Number(values.workers);
const jobs = Number(values.jobs);
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const pool = await OcrPool.start({ workers, engine, maxQueue: jobs });
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
let t = performance.now();
await Promise.all(Array.from({ length: jobs }, (_, i) => pool.recognize(images[i % images.length].data)));
const wall = performance.now() - t;
loop.disable();
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
console.log(`${workers} workers, ${jobs} jobs over all fixtures: ${(jobs / (wall / 1000)).toFixed(2)} images/s; peak RSS ${(peak / 2 ** 20).toFixed(0)} MB (maxRSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB); main event-loop delay max ${(loop.max / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms`);
await pool.close();

// 2. Cold start and latency, one worker.
const events = [];
t = performance.now();
const one = await OcrPool.start({ workers: 1, engine, onEvent: (e) => events.push(e) });
const startMs = performance.now() - t;
const ready = events.find((e) => e.type === 'ready');
console.log(`\ncold start, 1 worker: ${startMs.toFixed(0)} ms until ready (in the worker: load ${ready.loadMs.toFixed(0)} ms + warm-up ${ready.warmupMs.toFixed(0)} ms)`);

let errors = 0, chars = 0, errorsNoSpace = 0, charsNoSpace = 0;
console.log(`\nper image, 1 worker, median of ${values.runs} runs:`);
for (const img of images) {
  const times = [];
  let answer;
  for (let r = 0; r < Number(values.runs); r++) {
    t = performance.now();
    answer = await one.recognize(img.data);
    times.push(performance.now() - t);
  }
  const got = answer.items.map((i) => i.text).join('\n');
  const want = img.lines.map((l) => l.text).join('\n');
  const d = levenshtein(got, want);
  const dn = levenshtein(got.replace(/\s/g, ''), want.replace(/\s/g, ''));
  errors += d; chars += [...want].length;
  errorsNoSpace += dn; charsNoSpace += [...want.replace(/\s/g, '')].length;
  console.log(`  ${img.file.padEnd(20)} ${img.width}x${img.height}  ${median(times).toFixed(0).padStart(5)} ms  lines ${answer.items.length}/${img.lines.length}  edits ${d} (${dn} ignoring spaces)`);
  if (dn > 0) console.log(`    got:  ${JSON.stringify(got)}\n    want: ${JSON.stringify(want)}`);
}
console.log(`CER: ${((100 * errorsNoSpace) / charsNoSpace).toFixed(2)} % ignoring spaces (${errorsNoSpace}/${charsNoSpace}), ${((100 * errors) / chars).toFixed(2)} % with spaces (${errors}/${chars})`);
await one.close();
