/**
 * CTC greedy decoding of the recogniser's output, the character dictionary it indexes, and the word
 * spaces the recogniser leaves out. Pure.
 *
 * The PP-OCR recogniser's classes are: 0 = CTC blank, 1..N = the dictionary file's lines, N+1 = a
 * space. The space is not in `ppocr_keys_v1.txt`; PaddleOCR appends it (`use_space_char`), and
 * without it every character decodes shifted by one (docs reference ocr.md, pitfall 4).
 */

import type { RgbImage } from './geometry.js';

/** Class labels: index 0 is the blank (empty string), the last one is the appended space. */
export type Dictionary = readonly string[];

/** Builds the class labels from the dictionary file's text (one character per line). */
export function parseDictionary(text: string): Dictionary {
  const lines = text.split(/\r?\n/);
  // A final newline ends the last line; it does not add an empty character.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return Object.freeze(['', ...lines, ' ']);
}

export interface Decoded {
  text: string;
  /** Mean of the per-character maximum probabilities (0 when nothing was read), as PaddleOCR reports. */
  score: number;
}

/**
 * Greedy CTC decode of one sequence: argmax per timestep, collapse repeats, drop blanks.
 *
 * @param probs   row-major [timesteps × classes] softmax output (may be a view into a batch)
 * @param offset  index in `probs` where this sequence starts
 * @example ctcGreedyDecode(out.data, T, C, dict, b * T * C)
 */
export function ctcGreedyDecode(probs: Float32Array, timesteps: number, classes: number, dict: Dictionary, offset = 0): Decoded {
  if (dict.length !== classes) throw new RangeError(`dictionary has ${dict.length} classes, model output has ${classes}`);
  let text = '';
  let sum = 0;
  let count = 0;
  let prev = -1;
  for (let t = 0; t < timesteps; t++) {
    const base = offset + t * classes;
    let best = 0;
    let bestP = probs[base]!;
    for (let c = 1; c < classes; c++) {
      const p = probs[base + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== prev) {
      text += dict[best]!;
      sum += bestP;
      count++;
    }
    prev = best;
  }
  return { text, score: count === 0 ? 0 : sum / count };
}

/** One character read by the CTC decoder, with the timesteps it was read in. */
export interface DecodedChar {
  char: string;
  /** First and last timestep (inclusive) in which this character was the most likely class. */
  start: number;
  end: number;
  prob: number;
}

/**
 * ctcGreedyDecode, keeping where each character was read (`probs` must be softmax output: rows sum
 * to 1, which lets a row's scan stop at a value over one half): the recogniser's timesteps are columns of
 * the strip (8 px each for PP-OCR's 48 px high input), so their positions say how far apart characters
 * are (see spacedText). The text is the characters joined; PaddleOCR's score is the mean of their `prob`.
 */
export function ctcGreedyDecodeChars(probs: Float32Array, timesteps: number, classes: number, dict: Dictionary, offset = 0): DecodedChar[] {
  if (dict.length !== classes) throw new RangeError(`dictionary has ${dict.length} classes, model output has ${classes}`);
  const out: DecodedChar[] = [];
  let prev = -1;
  for (let t = 0; t < timesteps; t++) {
    const base = offset + t * classes;
    let best = 0;
    let bestP = probs[base]!;
    // A probability over one half is the maximum of a softmax row: the rest of the scan cannot beat
    // it. Most timesteps are blanks read with more than 0.5, so most rows end at their first value.
    for (let c = 1; c < classes && bestP <= 0.5; c++) {
      const p = probs[base + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0) {
      if (best === prev) out[out.length - 1]!.end = t;
      else out.push({ char: dict[best]!, start: t, end: t, prob: bestP });
    }
    prev = best;
  }
  return out;
}

export interface WordSpaceOptions {
  /** A blank stretch at least this many text heights wide between two characters is a space. */
  minGap?: number;
  /** Added to minGap for each of the two characters that is narrow (. , : i l 1 …): their side bearings are wide, in monospaced fonts above all. */
  narrowExtra?: number;
}

/**
 * Measured on the benchmark set (test/fixtures/ocr-bench, 4,000 character pairs in 32 images,
 * five fonts, clean and photo-like): the recogniser itself wrote 248 of the 385 spaces (247
 * rightly); of the 138 it left out these thresholds restore 132, and add 3 where there was none.
 */
export const WORD_SPACE_DEFAULTS: Required<WordSpaceOptions> = Object.freeze({ minGap: 0.28, narrowExtra: 0.05 });

/** Full-width and CJK punctuation carry their own spacing inside the glyph: no space is added next to them. */
const FULL_WIDTH = /[\u3000-\u303f\uff00-\uffef\u2018-\u201f\u2014\u2026]/;
const NARROW = /[.,:;'!|iIl1()[\]-]/;

/**
 * The text of one strip, with a space wherever the ink shows one that the recogniser left out (ocr.md
 * pitfall 5: "Followus", "订单号A1024"). Between two consecutive characters, the widest run of ink-free
 * columns of the strip between their CTC positions is measured against the height of the text's ink;
 * timesteps alone (8 px) are too coarse for that, the pixels are not.
 *
 * @param stepPx strip pixels per recogniser timestep (input width ÷ timesteps: 8 for PP-OCRv4)
 * @example spacedText(ctcGreedyDecodeChars(p, T, C, dict), strip, width / T)
 */
export function spacedText(chars: readonly DecodedChar[], strip: RgbImage, stepPx: number, options: WordSpaceOptions = {}): string {
  const o = { ...WORD_SPACE_DEFAULTS, ...options };
  let text = '';
  let ink: InkProfile | undefined;
  for (let i = 0; i < chars.length; i++) {
    const b = chars[i]!;
    const a = chars[i - 1];
    if (a && a.char !== ' ' && b.char !== ' ' && !FULL_WIDTH.test(a.char) && !FULL_WIDTH.test(b.char)) {
      ink ??= inkProfile(strip);
      if (ink.textHeight > 0) {
        const from = Math.max(0, Math.round((a.end + 0.5) * stepPx));
        const to = Math.min(strip.width - 1, Math.round((b.start + 0.5) * stepPx));
        const minGap = o.minGap + o.narrowExtra * (Number(NARROW.test(a.char)) + Number(NARROW.test(b.char)));
        if (blankRun(ink.columns, from, to) >= minGap * ink.textHeight) text += ' ';
      }
    }
    text += b.char;
  }
  return text;
}

interface InkProfile {
  /** Ink pixels per column, counted within the text's rows. */
  columns: Int32Array;
  /** Rows from the first to the last that holds ink; 0 when nothing stands out. */
  textHeight: number;
}

/**
 * Which pixels of a strip are ink: those further from the median brightness (the background) than
 * 45 % of the way to the 2nd or 98th percentile, whichever side the text is on (dark on light or
 * light on dark). Percentiles, not extremes, so sensor noise and JPEG ringing do not set the scale.
 */
function inkProfile(strip: RgbImage): InkProfile {
  const { data, width, height } = strip;
  const n = width * height;
  const lum = new Uint8Array(n);
  const hist = new Uint32Array(256);
  for (let i = 0; i < n; i++) {
    const v = (77 * data[i * 3]! + 150 * data[i * 3 + 1]! + 29 * data[i * 3 + 2]!) >> 8;
    lum[i] = v;
    hist[v]!++;
  }
  const percentile = (q: number) => {
    const target = q * n;
    let acc = 0;
    for (let v = 0; v < 256; v++) {
      acc += hist[v]!;
      if (acc >= target) return v;
    }
    return 255;
  };
  const lo = percentile(0.02);
  const med = percentile(0.5);
  const hi = percentile(0.98);
  const dark = med - lo >= hi - med;
  const threshold = 0.45 * (dark ? med - lo : hi - med);
  const columns = new Int32Array(width);
  if (threshold < 4) return { columns, textHeight: 0 };
  const rowInk = new Int32Array(height);
  const isInk = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if ((dark ? med - lum[i]! : lum[i]! - med) > threshold) {
      isInk[i] = 1;
      rowInk[(i / width) | 0]!++;
    }
  }
  // The text's rows: those with ink in more than 1 % of the columns (stray specks do not count).
  const minRow = Math.max(2, 0.01 * width);
  let top = -1;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    if (rowInk[y]! > minRow) {
      if (top < 0) top = y;
      bottom = y;
    }
  }
  if (top < 0) return { columns, textHeight: 0 };
  for (let y = top; y <= bottom; y++) for (let x = 0; x < width; x++) columns[x]! += isInk[y * width + x]!;
  return { columns, textHeight: bottom - top + 1 };
}

/** The longest run of columns without ink in [from, to]. */
function blankRun(columns: Int32Array, from: number, to: number): number {
  let best = 0;
  let run = 0;
  for (let x = from; x <= to; x++) {
    if (columns[x] === 0) {
      run++;
      if (run > best) best = run;
    } else run = 0;
  }
  return best;
}
