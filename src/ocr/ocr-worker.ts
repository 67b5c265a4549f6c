/**
 * One OCR worker thread: loads its own sessions once (ONNX sessions cannot be shared between
 * threads), reports progress and readiness, then runs one job at a time for the pool.
 *
 * Protocol (all messages are plain objects):
 *   worker → pool  { type: 'progress', stage }            while loading
 *                  { type: 'ready', loadMs, warmupMs }    once, then jobs may come
 *                  { type: 'load-failed', error }         then the thread exits
 *                  { type: 'done', id, result, timings }  one per job
 *                  { type: 'failed', id, error }          one per job
 *   pool → worker  { type: 'job', id, image, options }    `image` is a transferred ArrayBuffer
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { OcrError } from './errors.js';
import { OcrEngine, type OcrEngineOptions, type RecognizeOptions } from './pipeline.js';

export interface WorkerData {
  engine: OcrEngineOptions;
  /** Nice value for this thread (Linux); 0 leaves it alone. */
  nice: number;
}

export interface WireError {
  code: string;
  message: string;
}

export type WorkerMessage =
  | { type: 'progress'; stage: string }
  | { type: 'ready'; loadMs: number; warmupMs: number }
  | { type: 'load-failed'; error: WireError }
  | { type: 'done'; id: number; result: unknown; timings: unknown }
  | { type: 'failed'; id: number; error: WireError };

export interface JobMessage {
  type: 'job';
  id: number;
  image: ArrayBuffer;
  options: RecognizeOptions;
}

function toWire(err: unknown): WireError {
  if (err instanceof OcrError) return { code: err.code, message: err.message };
  return { code: 'OCR_ENGINE_FAILED', message: err instanceof Error ? err.message : String(err) };
}

const port = parentPort;
if (!port) throw new Error('ocr-worker.js runs inside a worker thread (see worker-pool.ts)');
const post = (m: WorkerMessage) => port.postMessage(m);

/**
 * Lowers this thread's CPU priority, so that when the cores are all busy the gateway's event loop
 * (nice 0) is scheduled first and the OCR threads take what is left. Linux keeps a nice value per
 * thread (setpriority(2), "BUGS"), and Node's os.setPriority passes the id through, so the thread id
 * from /proc/thread-self renices this thread alone, together with the threads it starts later
 * (inference runs on this thread). Measured with two CPU-bound worker threads on 2 cores: main-thread
 * stalls of 20–100 ms at nice 0, none above 25 ms at nice 10 (other processes at nice 0 can still
 * delay it). Elsewhere, or if it fails, nothing changes.
 */
function lowerPriority(nice: number): void {
  if (nice === 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    // Never the process id: that would renice the main thread, the one this is meant to protect.
    if (Number.isInteger(tid) && tid > 0 && tid !== process.pid) setPriority(tid, nice);
  } catch {
    // No /proc, or not permitted: run at normal priority.
  }
}

lowerPriority((workerData as WorkerData).nice);

const engine = await OcrEngine.load((workerData as WorkerData).engine, (stage) => post({ type: 'progress', stage })).catch((err: unknown) => {
  post({ type: 'load-failed', error: toWire(err) });
  return undefined;
});

if (engine) {
  post({ type: 'ready', loadMs: engine.timings.loadMs, warmupMs: engine.timings.warmupMs });
  port.on('message', (msg: JobMessage) => {
    if (msg.type !== 'job') return;
    engine.run(new Uint8Array(msg.image), msg.options).then(
      ({ result, timings }) => post({ type: 'done', id: msg.id, result, timings }),
      (err: unknown) => post({ type: 'failed', id: msg.id, error: toWire(err) }),
    );
  });
} else {
  // Nothing else keeps the thread alive: it ends once the message is out (the pool also terminates it).
  port.close();
}
