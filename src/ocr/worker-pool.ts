/**
 * A pool of OCR worker threads, so the gateway's event loop never runs an inference.
 *
 * - One worker per core by default, each with its own ONNX sessions (on 2 cores, two one-thread
 *   workers give 4.3 images/s against 3.0 for one two-thread worker: docs reference ocr.md pitfall
 *   2). A worker runs one job at a time; its inference uses two threads that sleep when idle, so a
 *   lone job gets both cores and concurrent jobs share them (pipeline.ts intraOpNumThreads).
 * - Jobs wait in a bounded queue; when it is full `recognize` rejects at once with OCR_BUSY
 *   (errcode -1, WeChat's "system busy"), so overload costs the caller nothing.
 * - Every job has a deadline counted from submission. A job that misses it while queued is dropped;
 *   one that misses it while running gets OCR_TIMEOUT and its worker is terminated and replaced,
 *   because an inference cannot be interrupted any other way.
 * - A worker that dies fails its job with OCR_WORKER_CRASHED and is replaced. A replacement that
 *   cannot load is retried with back-off; after three failures in a row its slot is given up.
 * - `close()` is idempotent and awaitable: queued and running jobs get OCR_CLOSED.
 * - Worker threads run at a lower CPU priority (nice 10, Linux), so a saturated machine still
 *   schedules the event loop promptly.
 */
// sharp must be loaded by the main thread before any worker loads it (glibc Linux; ocr.md pitfall 3).
import 'sharp';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { OcrError, ocrErrorFromWire } from './errors.js';
import type { JobMessage, WorkerData, WorkerMessage } from './ocr-worker.js';
import type { OcrEngineOptions, OcrResult, RecognizeOptions, RecognizeTimings } from './pipeline.js';

export interface OcrPoolOptions {
  /** Worker threads. Default: the number of cores. */
  workers?: number;
  /** Jobs that may wait for a free worker; one more is refused with OCR_BUSY. Default 2 × workers. */
  maxQueue?: number;
  /** Deadline of a job from submission (queue wait included). Default 30 s. */
  jobTimeoutMs?: number;
  /** Time a worker may take to load its models and warm up. Default 120 s. */
  startTimeoutMs?: number;
  /**
   * CPU nice value of each worker thread (Linux; 0 = unchanged). Default 10: under full load the
   * gateway's own thread gets the CPU first, so proxying stays fast while OCR waits.
   */
  nice?: number;
  /** Passed to OcrEngine.load in every worker. */
  engine?: OcrEngineOptions;
  /** Lifecycle and per-job events, for logs and metrics. Must not throw. */
  onEvent?: (event: OcrPoolEvent) => void;
  /** The worker script. Default: ocr-worker.js beside this module. Tests put a stand-in here. */
  workerUrl?: URL;
}

export type OcrPoolEvent =
  | { type: 'progress'; worker: number; stage: string }
  | { type: 'ready'; worker: number; loadMs: number; warmupMs: number }
  | { type: 'job'; worker: number; ok: boolean; code?: string; queuedMs: number; runMs: number; timings?: RecognizeTimings }
  | { type: 'worker-lost'; worker: number; reason: 'crash' | 'timeout' | 'load-failed' | 'start-timeout'; error: Error }
  | { type: 'slot-abandoned'; worker: number; failures: number };

export interface OcrJobOptions extends RecognizeOptions {
  /** Overrides the pool's jobTimeoutMs for this job. */
  timeoutMs?: number;
  /** Aborting drops a queued job; a running one finishes in its worker, its answer unused. */
  signal?: AbortSignal;
}

export interface OcrPoolStats {
  /** Slots not given up. */
  workers: number;
  /** Workers loaded and waiting. */
  idle: number;
  busy: number;
  /** Workers loading models. */
  starting: number;
  queued: number;
}

interface Job {
  id: number;
  image: Uint8Array;
  options: RecognizeOptions;
  submittedAt: number;
  startedAt?: number;
  slot?: Slot;
  timer?: NodeJS.Timeout;
  resolve(result: OcrResult): void;
  reject(err: unknown): void;
  /** Detaches the abort listener. */
  cleanup(): void;
  settled: boolean;
}

interface Slot {
  index: number;
  worker?: Worker;
  state: 'starting' | 'idle' | 'busy' | 'stopping' | 'backoff' | 'abandoned';
  job?: Job;
  /** Failures to come up in a row; reset when the worker is ready. */
  failures: number;
  lastError?: Error;
  startTimer?: NodeJS.Timeout;
  retryTimer?: NodeJS.Timeout;
}

const MAX_START_FAILURES = 3;

export class OcrPool {
  readonly #opts: Required<Omit<OcrPoolOptions, 'onEvent' | 'engine'>> & Pick<OcrPoolOptions, 'onEvent'> & { engine: OcrEngineOptions };
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextJobId = 1;
  #closing: Promise<void> | undefined;
  /** Settles the start() promise: every slot ready, or the first failure. */
  #startup: { resolve(): void; reject(err: unknown): void; pending: number } | undefined;

  private constructor(options: OcrPoolOptions) {
    const workers = options.workers ?? availableParallelism();
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
    this.#opts = {
      workers,
      maxQueue: options.maxQueue ?? 2 * workers,
      jobTimeoutMs: options.jobTimeoutMs ?? 30_000,
      startTimeoutMs: options.startTimeoutMs ?? 120_000,
      nice: options.nice ?? 10,
      engine: options.engine ?? {},
      onEvent: options.onEvent,
      workerUrl: options.workerUrl ?? new URL('./ocr-worker.js', import.meta.url),
    };
    if (!(this.#opts.maxQueue >= 0)) throw new RangeError(`maxQueue must be 0 or more, got ${this.#opts.maxQueue}`);
  }

  /**
   * Starts the workers and resolves once every one has loaded its models and warmed up.
   * @throws OcrError OCR_ENGINE_FAILED when a worker cannot load (the others are stopped)
   * @example const pool = await OcrPool.start({ workers: 2, onEvent: (e) => log.debug(e) });
   */
  static async start(options: OcrPoolOptions = {}): Promise<OcrPool> {
    const pool = new OcrPool(options);
    const ready = new Promise<void>((resolve, reject) => {
      pool.#startup = { resolve, reject, pending: pool.#opts.workers };
    });
    for (let i = 0; i < pool.#opts.workers; i++) {
      const slot: Slot = { index: i, state: 'starting', failures: 0 };
      pool.#slots.push(slot);
      pool.#spawn(slot);
    }
    try {
      await ready;
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /**
   * Reads the text of one image in a worker. Rejects at once with OCR_BUSY when every worker is busy
   * and the queue is full, and with OCR_CLOSED after close().
   * @example const answer = await pool.recognize(upload, { score: true, signal: req.signal });
   */
  recognize(image: Uint8Array, options: OcrJobOptions = {}): Promise<OcrResult> {
    if (this.#closing) return Promise.reject(new OcrError('OCR_CLOSED', 'ocr pool is closed'));
    if (!this.#slots.some((s) => s.state !== 'abandoned')) return Promise.reject(new OcrError('OCR_ENGINE_FAILED', 'no ocr worker could be started'));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const idle = this.#slots.find((s) => s.state === 'idle');
    if (!idle && this.#queue.length >= this.#opts.maxQueue) {
      return Promise.reject(new OcrError('OCR_BUSY', `all ${this.#opts.workers} ocr workers busy and ${this.#queue.length} jobs queued`));
    }
    const { timeoutMs = this.#opts.jobTimeoutMs, signal, ...recognizeOptions } = options;
    return new Promise<OcrResult>((resolve, reject) => {
      // A private copy: it is transferred to the worker, and the caller's buffer may be pooled memory.
      const copy = new Uint8Array(image.byteLength);
      copy.set(image);
      const onAbort = () => this.#abort(job, signal!.reason);
      const job: Job = {
        id: this.#nextJobId++,
        image: copy,
        options: { score: recognizeOptions.score === true },
        submittedAt: performance.now(),
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
        settled: false,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      job.timer = setTimeout(() => this.#timeout(job, timeoutMs), timeoutMs);
      if (idle) this.#run(idle, job);
      else this.#queue.push(job);
    });
  }

  get stats(): OcrPoolStats {
    const count = (state: Slot['state']) => this.#slots.filter((s) => s.state === state).length;
    return {
      workers: this.#slots.length - count('abandoned'),
      idle: count('idle'),
      busy: count('busy'),
      starting: count('starting') + count('backoff'),
      queued: this.#queue.length,
    };
  }

  /** Stops every worker; pending jobs get OCR_CLOSED. Idempotent: later calls return the same promise. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new OcrError('OCR_CLOSED', 'ocr pool closed');
      this.#startup?.reject(closed);
      this.#startup = undefined;
      for (const job of this.#queue.splice(0)) this.#settle(job, closed);
      const stopping: Promise<unknown>[] = [];
      for (const slot of this.#slots) {
        clearTimeout(slot.startTimer);
        clearTimeout(slot.retryTimer);
        if (slot.job) this.#settle(slot.job, closed);
        slot.job = undefined;
        slot.state = 'stopping';
        if (slot.worker) stopping.push(slot.worker.terminate());
      }
      await Promise.allSettled(stopping);
    })();
    return this.#closing;
  }

  #emit(event: OcrPoolEvent): void {
    try {
      this.#opts.onEvent?.(event);
    } catch {
      // A listener's bug must not break the pool.
    }
  }

  #spawn(slot: Slot): void {
    slot.state = 'starting';
    slot.lastError = undefined;
    const data: WorkerData = { engine: this.#opts.engine, nice: this.#opts.nice };
    const worker = new Worker(this.#opts.workerUrl, { workerData: data });
    slot.worker = worker;
    slot.startTimer = setTimeout(() => {
      this.#lose(slot, worker, 'start-timeout', new Error(`worker not ready after ${this.#opts.startTimeoutMs} ms`));
    }, this.#opts.startTimeoutMs);
    worker.on('message', (msg: WorkerMessage) => this.#onMessage(slot, worker, msg));
    worker.on('error', (err) => {
      if (slot.worker === worker) slot.lastError = err;
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker || slot.state === 'stopping') return;
      const reason = slot.state === 'starting' ? 'load-failed' : 'crash';
      this.#lose(slot, worker, reason, slot.lastError ?? new Error(`worker exited with code ${code}`));
    });
  }

  #onMessage(slot: Slot, worker: Worker, msg: WorkerMessage): void {
    if (slot.worker !== worker) return;
    switch (msg.type) {
      case 'progress':
        this.#emit({ type: 'progress', worker: slot.index, stage: msg.stage });
        break;
      case 'ready':
        clearTimeout(slot.startTimer);
        slot.failures = 0;
        slot.state = 'idle';
        this.#emit({ type: 'ready', worker: slot.index, loadMs: msg.loadMs, warmupMs: msg.warmupMs });
        if (this.#startup && --this.#startup.pending === 0) {
          this.#startup.resolve();
          this.#startup = undefined;
        }
        this.#dispatch(slot);
        break;
      case 'load-failed':
        this.#lose(slot, worker, 'load-failed', ocrErrorFromWire(msg.error));
        break;
      case 'done':
      case 'failed': {
        const job = slot.job;
        if (!job || job.id !== msg.id) return;
        slot.job = undefined;
        slot.state = 'idle';
        const runMs = performance.now() - (job.startedAt ?? job.submittedAt);
        const queuedMs = (job.startedAt ?? job.submittedAt) - job.submittedAt;
        if (msg.type === 'done') {
          this.#emit({ type: 'job', worker: slot.index, ok: true, queuedMs, runMs, timings: msg.timings as RecognizeTimings });
          this.#settle(job, undefined, msg.result as OcrResult);
        } else {
          const err = ocrErrorFromWire(msg.error);
          this.#emit({ type: 'job', worker: slot.index, ok: false, code: err.code, queuedMs, runMs });
          this.#settle(job, err);
        }
        this.#dispatch(slot);
        break;
      }
    }
  }

  /** A worker is gone (or must go): fail its job, stop it, and bring up a replacement. */
  #lose(slot: Slot, worker: Worker, reason: 'crash' | 'timeout' | 'load-failed' | 'start-timeout', error: Error): void {
    if (slot.worker !== worker || this.#closing) return;
    clearTimeout(slot.startTimer);
    slot.worker = undefined;
    void worker.terminate();
    this.#emit({ type: 'worker-lost', worker: slot.index, reason, error });
    const job = slot.job;
    slot.job = undefined;
    if (job && reason === 'crash') this.#settle(job, new OcrError('OCR_WORKER_CRASHED', `ocr worker ${slot.index} died: ${error.message}`, { cause: error }));
    if (reason === 'load-failed' || reason === 'start-timeout') {
      slot.failures++;
      const failure = error instanceof OcrError ? error : new OcrError('OCR_ENGINE_FAILED', `ocr worker ${slot.index} could not start: ${error.message}`, { cause: error });
      if (this.#startup) {
        // At start-up a failure is final: the caller learns the configuration is wrong.
        this.#startup.reject(failure);
        this.#startup = undefined;
        slot.state = 'abandoned';
        return;
      }
      if (slot.failures >= MAX_START_FAILURES) {
        slot.state = 'abandoned';
        this.#emit({ type: 'slot-abandoned', worker: slot.index, failures: slot.failures });
        if (!this.#slots.some((s) => s.state !== 'abandoned')) {
          for (const queued of this.#queue.splice(0)) this.#settle(queued, new OcrError('OCR_ENGINE_FAILED', 'no ocr worker could be started', { cause: error }));
        }
        return;
      }
      slot.state = 'backoff';
      slot.retryTimer = setTimeout(() => this.#spawn(slot), 1000 * 2 ** (slot.failures - 1));
      slot.retryTimer.unref();
      return;
    }
    this.#spawn(slot);
  }

  #run(slot: Slot, job: Job): void {
    slot.state = 'busy';
    slot.job = job;
    job.slot = slot;
    job.startedAt = performance.now();
    const msg: JobMessage = { type: 'job', id: job.id, image: job.image.buffer as ArrayBuffer, options: job.options };
    slot.worker!.postMessage(msg, [msg.image]);
  }

  #dispatch(slot: Slot): void {
    if (slot.state !== 'idle') return;
    const job = this.#queue.shift();
    if (job) this.#run(slot, job);
  }

  #timeout(job: Job, timeoutMs: number): void {
    if (job.settled) return;
    const err = new OcrError('OCR_TIMEOUT', `ocr did not finish within ${timeoutMs} ms`);
    const slot = job.slot;
    if (slot && slot.job === job && slot.worker) {
      this.#settle(job, err);
      this.#emit({ type: 'job', worker: slot.index, ok: false, code: err.code, queuedMs: (job.startedAt ?? 0) - job.submittedAt, runMs: performance.now() - (job.startedAt ?? 0) });
      this.#lose(slot, slot.worker, 'timeout', err);
    } else {
      this.#unqueue(job);
      this.#settle(job, err);
    }
  }

  #abort(job: Job, reason: unknown): void {
    if (job.settled) return;
    // A running job keeps its worker busy until it finishes; only the caller stops waiting.
    this.#unqueue(job);
    this.#settle(job, reason);
  }

  #unqueue(job: Job): void {
    const i = this.#queue.indexOf(job);
    if (i >= 0) this.#queue.splice(i, 1);
  }

  #settle(job: Job, err: unknown, result?: OcrResult): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    job.cleanup();
    if (err === undefined) job.resolve(result!);
    else job.reject(err);
  }
}
