/**
 * Chooses the engine for one OCR request: the route's own (`local` — the offline PP-OCR worker
 * pool — or `wechat` — WeChat's cloud `cv/ocr/comm`), and, when it fails for a reason that is not
 * the image's fault, the route's `fallback`. Engines are shared by every route and created once.
 */
import { OcrError } from './errors.js';
import type { OcrResult } from './pipeline.js';

export type EngineName = 'local' | 'wechat';

/** What the route needs from an engine; the worker pool and the WeChat client both provide it. */
export interface OcrEngineLike {
  recognize(image: Uint8Array, opts?: { score?: boolean }): Promise<OcrResult>;
  close(): Promise<void>;
}

export interface OcrRequestOptions {
  engine: EngineName;
  fallback?: EngineName | undefined;
  score?: boolean;
}

/**
 * Failures worth another engine: capacity, time, crashes, the cloud's quota or outage. An image
 * that does not decode or is too large would fail the same way everywhere, so it does not fall back.
 */
const FALLBACK_ON: ReadonlySet<string> = new Set([
  'OCR_BUSY', 'OCR_TIMEOUT', 'OCR_WORKER_CRASHED', 'OCR_CLOSED', 'OCR_ENGINE_FAILED', 'OCR_QUOTA', 'OCR_UPSTREAM_FAILED', 'OCR_UPSTREAM_AUTH',
]);

/**
 * Engines are held as promises: the local pool takes a second or two to load its models, and a
 * reload may add an engine while requests run. A request simply waits for its engine.
 */
export class OcrService {
  readonly #engines = new Map<EngineName, Promise<OcrEngineLike>>();
  #closed = false;

  /** Registers an engine (once per name; later calls keep the first). */
  add(name: EngineName, engine: Promise<OcrEngineLike>): void {
    if (this.#closed || this.#engines.has(name)) return;
    // A failed start is reported to the requests that need the engine, not as an unhandled rejection.
    engine.catch(() => {});
    this.#engines.set(name, engine);
  }

  has(name: EngineName): boolean {
    return this.#engines.has(name);
  }

  /** Resolves once the engine is up; rejects with why it could not start. */
  async ready(name: EngineName): Promise<void> {
    await this.#engines.get(name);
  }

  async recognize(image: Uint8Array, opts: OcrRequestOptions): Promise<{ result: OcrResult; engine: EngineName }> {
    if (this.#closed) throw new OcrError('OCR_CLOSED');
    try {
      return { result: await this.#run(opts.engine, image, opts), engine: opts.engine };
    } catch (err) {
      const code = err instanceof OcrError ? err.code : 'OCR_ENGINE_FAILED';
      if (opts.fallback === undefined || !this.#engines.has(opts.fallback) || !FALLBACK_ON.has(code)) throw err;
      return { result: await this.#run(opts.fallback, image, opts), engine: opts.fallback };
    }
  }

  async #run(name: EngineName, image: Uint8Array, opts: OcrRequestOptions): Promise<OcrResult> {
    const pending = this.#engines.get(name);
    if (pending === undefined) throw new OcrError('OCR_ENGINE_FAILED', `engine "${name}" is not configured`);
    let engine: OcrEngineLike;
    try {
      engine = await pending;
    } catch (err) {
      throw err instanceof OcrError ? err : new OcrError('OCR_ENGINE_FAILED', `engine "${name}" did not start`, { cause: err });
    }
    return engine.recognize(image, { score: opts.score ?? false });
  }

  /** Closes every engine (waiting for those still starting). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#engines.values()].map(async (p) => (await p).close()));
  }
}
