/**
 * CTC greedy decoding of the recogniser's output, and the character dictionary it indexes. Pure.
 *
 * The PP-OCR recogniser's classes are: 0 = CTC blank, 1..N = the dictionary file's lines, N+1 = a
 * space. The space is not in `ppocr_keys_v1.txt`; PaddleOCR appends it (`use_space_char`), and
 * without it every character decodes shifted by one (docs reference ocr.md, pitfall 4).
 */

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
