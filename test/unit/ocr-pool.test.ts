/**
 * The OCR worker pool: with the real engine for concurrency, back-pressure, shutdown and the event
 * loop; with a stand-in worker (test/fixtures/ocr/stub-worker.mjs) for crashes, hangs and failed starts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { OcrEngineOptions } from '../../src/ocr/pipeline.js';
import { OcrPool, type OcrPoolEvent, type OcrPoolOptions } from '../../src/ocr/worker-pool.js';
import { rejectsWith } from '../support/ocr-asserts.js';

const FIXTURES = new URL('../../../test/fixtures/ocr/', import.meta.url);
const fixture = (file: string) => readFileSync(new URL(file, FIXTURES));
const STUB = new URL('stub-worker.mjs', FIXTURES);

describe('OcrPool with the real engine (2 workers)', () => {
  let pool: OcrPool;
  const events: OcrPoolEvent[] = [];

  before(async () => {
    pool = await OcrPool.start({ workers: 2, maxQueue: 1, onEvent: (e) => events.push(e) });
  });
  after(async () => {
    await pool?.close();
  });

  it('reports progress and readiness of each worker', (t) => {
    const ready = events.filter((e) => e.type === 'ready');
    assert.deepEqual(ready.map((e) => e.worker).sort(), [0, 1]);
    assert.ok(events.some((e) => e.type === 'progress' && e.stage === 'warm-up'));
    for (const e of ready) if (e.type === 'ready') t.diagnostic(`worker ${e.worker}: load ${e.loadMs.toFixed(0)} ms, warm-up ${e.warmupMs.toFixed(0)} ms`);
    assert.deepEqual(pool.stats, { workers: 2, idle: 2, busy: 0, starting: 0, queued: 0 });
  });

  it('runs two jobs at once, one on each worker', async () => {
    events.length = 0;
    const [a, b] = await Promise.all([pool.recognize(fixture('mixed-lines.png')), pool.recognize(fixture('zh-line.png'), { score: true })]);
    assert.equal(a.items.length, 3);
    assert.equal(b.items[0]!.text, '欢迎使用微信小程序文字识别服务');
    assert.equal(typeof b.items[0]!.score, 'number');
    const jobs = events.filter((e) => e.type === 'job');
    assert.deepEqual(jobs.map((e) => e.worker).sort(), [0, 1]);
  });

  it('keeps the event loop free while workers read pages', async (t) => {
    const page = fixture('page-1280x960.png');
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    for (let round = 0; round < 2; round++) await Promise.all([pool.recognize(page), pool.recognize(page)]);
    const busyMs = performance.now() - t0;
    loop.disable();
    const maxMs = loop.max / 1e6;
    t.diagnostic(`4 pages on 2 workers in ${busyMs.toFixed(0)} ms; event-loop delay max ${maxMs.toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, mean ${(loop.mean / 1e6).toFixed(1)} ms`);
    // One detection of this page takes 250 ms or more, so an inference on this thread would show as a
    // delay above that. The bound leaves room for a machine shared with other test processes.
    assert.ok(busyMs > 500, 'the work was long enough to measure');
    assert.ok(maxMs < 200, `event loop stalled ${maxMs.toFixed(1)} ms`);
  });

  it('refuses at once with OCR_BUSY (errcode -1) when both workers are busy and the queue is full', async () => {
    const page = fixture('page-1280x960.png');
    const running = [pool.recognize(page), pool.recognize(page), pool.recognize(page)]; // 2 running, 1 queued
    assert.deepEqual({ busy: pool.stats.busy, queued: pool.stats.queued }, { busy: 2, queued: 1 });
    const t0 = performance.now();
    const err = await rejectsWith(pool.recognize(page), 'OCR_BUSY');
    assert.ok(performance.now() - t0 < 50, 'refused without waiting');
    assert.equal(err.errcode, -1);
    assert.deepEqual(err.toAnswer(), { errcode: -1, errmsg: 'system busy' });
    for (const answer of await Promise.all(running)) assert.equal(answer.items.length, 12);
  });

  it('leaves the caller’s buffer usable (the worker gets a copy)', async () => {
    const image = fixture('zh-line.png');
    await pool.recognize(image);
    assert.equal(image.byteLength > 0 && image[0], 0x89);
  });

  it('fails queued and running jobs with OCR_CLOSED on close(); close() is idempotent', async () => {
    const inFlight = [pool.recognize(fixture('page-1280x960.png')), pool.recognize(fixture('page-1280x960.png')), pool.recognize(fixture('zh-line.png'))];
    const first = pool.close();
    assert.equal(pool.close(), first, 'the same promise');
    for (const job of inFlight) await rejectsWith(job, 'OCR_CLOSED');
    await first;
    await rejectsWith(pool.recognize(fixture('zh-line.png')), 'OCR_CLOSED');
    await pool.close();
  });
});

describe('OcrPool failure handling (stand-in worker)', () => {
  const start = (opts: OcrPoolOptions = {}) => OcrPool.start({ workerUrl: STUB, workers: 1, ...opts });
  const job = (command: string) => Buffer.from(command);

  it('fails the job of a crashed worker with OCR_WORKER_CRASHED and replaces the worker', async () => {
    const events: OcrPoolEvent[] = [];
    const pool = await start({ onEvent: (e) => events.push(e) });
    try {
      const err = await rejectsWith(pool.recognize(job('crash')), 'OCR_WORKER_CRASHED');
      assert.match(err.message, /crashed on purpose/);
      assert.equal(err.retryable, true);
      assert.equal((await pool.recognize(job('after'))).items[0]!.text, 'after');
      assert.ok(events.some((e) => e.type === 'worker-lost' && e.reason === 'crash'));
      assert.equal(events.filter((e) => e.type === 'ready').length, 2);
    } finally {
      await pool.close();
    }
  });

  it('treats a worker that exits mid-job as crashed', async () => {
    const pool = await start();
    try {
      const err = await rejectsWith(pool.recognize(job('exit')), 'OCR_WORKER_CRASHED');
      assert.match(err.message, /code 7/);
      assert.equal((await pool.recognize(job('ok'))).items[0]!.text, 'ok');
    } finally {
      await pool.close();
    }
  });

  it('times a hung job out with OCR_TIMEOUT, terminates its worker and starts another', async () => {
    const events: OcrPoolEvent[] = [];
    const pool = await start({ jobTimeoutMs: 150, onEvent: (e) => events.push(e) });
    try {
      const t0 = performance.now();
      await rejectsWith(pool.recognize(job('hang')), 'OCR_TIMEOUT');
      assert.ok(performance.now() - t0 < 1000);
      assert.ok(events.some((e) => e.type === 'worker-lost' && e.reason === 'timeout'));
      assert.equal((await pool.recognize(job('next'))).items[0]!.text, 'next');
    } finally {
      await pool.close();
    }
  });

  it('times out a job still waiting in the queue without touching the running one', async () => {
    const pool = await start({ maxQueue: 4 });
    try {
      const slow = pool.recognize(job('slow:400'));
      await rejectsWith(pool.recognize(job('waits'), { timeoutMs: 100 }), 'OCR_TIMEOUT');
      assert.equal((await slow).items[0]!.text, 'slow:400');
      assert.equal(pool.stats.queued, 0);
    } finally {
      await pool.close();
    }
  });

  it('passes a worker’s typed failure through (OCR_DECODE_FAILED, errcode 101002)', async () => {
    const pool = await start();
    try {
      const err = await rejectsWith(pool.recognize(job('fail')), 'OCR_DECODE_FAILED');
      assert.equal(err.errcode, 101002);
      assert.equal((await pool.recognize(job('still fine'))).items[0]!.text, 'still fine');
    } finally {
      await pool.close();
    }
  });

  it('with maxQueue 0, refuses a second job while the only worker is busy', async () => {
    const pool = await start({ maxQueue: 0 });
    try {
      const first = pool.recognize(job('slow:100'));
      await rejectsWith(pool.recognize(job('second')), 'OCR_BUSY');
      await first;
    } finally {
      await pool.close();
    }
  });

  it('drops a queued job when its signal aborts; a running one finishes unseen', async () => {
    const pool = await start({ maxQueue: 2 });
    try {
      const running = new AbortController();
      const queued = new AbortController();
      const a = pool.recognize(job('slow:200'), { signal: running.signal });
      const b = pool.recognize(job('queued'), { signal: queued.signal });
      queued.abort(new Error('client gone'));
      running.abort(new Error('client gone too'));
      await assert.rejects(b, /client gone/);
      await assert.rejects(a, /client gone too/);
      assert.equal(pool.stats.queued, 0);
      assert.equal((await pool.recognize(job('later'))).items[0]!.text, 'later');
      await assert.rejects(pool.recognize(job('x'), { signal: AbortSignal.abort(new Error('already')) }), /already/);
    } finally {
      await pool.close();
    }
  });

  for (const [stub, extra] of [
    ['load-fail', {}],
    ['crash-on-load', {}],
    ['never-ready', { startTimeoutMs: 200 }],
  ] as const) {
    it(`rejects start() with OCR_ENGINE_FAILED when a worker cannot come up (${stub})`, async () => {
      await rejectsWith(start({ workers: 2, engine: { stub } as OcrEngineOptions, ...extra }), 'OCR_ENGINE_FAILED');
    });
  }

  it('refuses a pool without workers', async () => {
    await assert.rejects(start({ workers: 0 }), RangeError);
  });
});
