/**
 * The OCR engine's speed and accuracy work (issue: OCR benchmark): the ONNX graph rewrite, CTC
 * positions and the word spaces taken from the ink, and reading order on tilted pages.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { ctcGreedyDecode, ctcGreedyDecodeChars, parseDictionary, spacedText, type DecodedChar } from '../../src/ocr/ctc.js';
import { orderQuad, pageTilt, readingOrder, type Point, type Quad, type RgbImage } from '../../src/ocr/geometry.js';
import { rewriteOnnxModel } from '../../src/ocr/onnx-rewrite.js';
import { defaultModelPaths } from '../../src/ocr/pipeline.js';

describe('rewriteOnnxModel on the PP-OCRv4 models', () => {
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  const cases = [
    { name: 'recognition', path: defaultModelPaths().rec, shape: [2, 3, 48, 200], folds: { convAffine: 28, hardSwish: 28 } },
    { name: 'detection', path: defaultModelPaths().det, shape: [1, 3, 160, 224], folds: { convAffine: 28, hardSwish: 24 } },
    { name: 'direction', path: defaultModelPaths().cls, shape: [1, 3, 48, 192], folds: { convAffine: 0, hardSwish: 18 } },
  ];
  for (const c of cases) {
    it(`gives the ${c.name} model's outputs to float precision, with its elementwise chains folded`, async () => {
      const original = readFileSync(c.path);
      const { model, stats } = rewriteOnnxModel(original);
      assert.equal(stats.convAffine, c.folds.convAffine);
      assert.equal(stats.hardSwish, c.folds.hardSwish);
      const input = new Float32Array(c.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.37) * 0.8 + Math.sin(i * 0.001) * 0.2;
      const run = async (bytes: Uint8Array) => {
        const session = await ort.InferenceSession.create(bytes, options);
        try {
          const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, c.shape) });
          return out[session.outputNames[0]!]!;
        } finally {
          await session.release();
        }
      };
      const [a, b] = [await run(original), await run(model)];
      assert.deepEqual(b.dims, a.dims);
      const x = a.data as Float32Array;
      const y = b.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      assert.ok(worst < 1e-4, `largest difference ${worst}`);
    });
  }

  it('refuses bytes that are not a model', () => {
    assert.throws(() => rewriteOnnxModel(new Uint8Array([0x08, 0x07])), /no graph/);
    assert.throws(() => rewriteOnnxModel(new Uint8Array([0x0a, 0xff])), RangeError);
  });
});

/** A [T × C] softmax-like matrix whose argmax per step is `path`. */
function probs(path: number[], classes: number, p = 0.9): Float32Array {
  const out = new Float32Array(path.length * classes).fill((1 - p) / (classes - 1));
  path.forEach((c, t) => (out[t * classes + c] = p));
  return out;
}

describe('ctcGreedyDecodeChars', () => {
  const dict = parseDictionary('a\nb\nc'); // 0 blank, 1 a, 2 b, 3 c, 4 space

  it('gives each character the timesteps it was read in, and the text ctcGreedyDecode gives', () => {
    const path = [0, 1, 1, 0, 0, 2, 0, 1, 4, 3, 3];
    const chars = ctcGreedyDecodeChars(probs(path, 5), path.length, 5, dict);
    assert.deepEqual(chars.map((c) => [c.char, c.start, c.end]), [['a', 1, 2], ['b', 5, 5], ['a', 7, 7], [' ', 8, 8], ['c', 9, 10]]);
    assert.equal(chars.map((c) => c.char).join(''), ctcGreedyDecode(probs(path, 5), path.length, 5, dict).text);
  });

  it('finds the maximum when no class is over one half (the scan cannot stop early)', () => {
    const p = new Float32Array([0.3, 0.2, 0.1, 0.35, 0.05]);
    assert.deepEqual(ctcGreedyDecodeChars(p, 1, 5, dict).map((c) => c.char), ['c']);
  });
});

/** A white strip with dark glyph blocks at the given column ranges (rows 14–33 of 48). */
function strip(width: number, glyphs: [number, number][]): RgbImage {
  const data = new Uint8Array(width * 48 * 3).fill(245);
  for (const [from, to] of glyphs) for (let y = 14; y < 34; y++) for (let x = from; x < to; x++) data.fill(20, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { data, width, height: 48 };
}
const ch = (char: string, start: number, end = start): DecodedChar => ({ char, start, end, prob: 0.9 });

describe('spacedText', () => {
  // Text 20 px high: a space needs a blank run of 0.28 × 20 = 5.6 columns.
  it('adds a space where the ink has a word gap the recogniser skipped, none inside a word', () => {
    const s = strip(160, [[10, 18], [20, 28], [44, 52], [54, 62]]); // "ab" gap of 16 px "cd"
    const chars = [ch('a', 1), ch('b', 3), ch('c', 6), ch('d', 7)];
    assert.equal(spacedText(chars, s, 8), 'ab cd');
  });

  it('keeps the recogniser’s own spaces and adds none next to them', () => {
    const s = strip(160, [[10, 18], [44, 52]]);
    assert.equal(spacedText([ch('a', 1), ch(' ', 4), ch('c', 6)], s, 8), 'a c');
  });

  it('adds none next to full-width punctuation, whose glyph carries its own space', () => {
    const s = strip(160, [[10, 18], [20, 24], [48, 56]]);
    assert.equal(spacedText([ch('名', 1), ch('：', 2), ch('张', 6)], s, 8), '名：张');
  });

  it('asks more of narrow characters (side bearings), and nothing of a blank strip', () => {
    const s = strip(160, [[10, 18], [24, 26]]); // 6 px gap before a narrow "."
    assert.equal(spacedText([ch('a', 1), ch('.', 3)], s, 8), 'a.');
    assert.equal(spacedText([ch('a', 1), ch('b', 3)], s, 8), 'a b');
    assert.equal(spacedText([ch('a', 1), ch('b', 3)], strip(160, []), 8), 'ab');
  });

  it('reads light text on a dark background the same way', () => {
    const s = strip(160, [[10, 18], [20, 28], [44, 52]]);
    for (let i = 0; i < s.data.length; i++) s.data[i] = 255 - s.data[i]!;
    assert.equal(spacedText([ch('a', 1), ch('b', 3), ch('c', 6)], s, 8), 'ab c');
  });
});

/** The corners of a w×h rectangle centred on (cx, cy), turned by `deg` (y down). */
function rotated(cx: number, cy: number, w: number, h: number, deg: number): Quad {
  const a = (deg * Math.PI) / 180;
  const pts: Point[] = [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]].map(([x, y]) => ({ x: cx + x! * Math.cos(a) - y! * Math.sin(a), y: cy + x! * Math.sin(a) + y! * Math.cos(a) }));
  return orderQuad(pts);
}

describe('pageTilt and readingOrder on a tilted photo', () => {
  it('takes the median slope of the long boxes, 0 under 1° and without long boxes', () => {
    const deg = (r: number) => (r * 180) / Math.PI;
    assert.ok(Math.abs(deg(pageTilt([rotated(500, 100, 600, 30, -5), rotated(500, 200, 500, 30, -5), rotated(300, 300, 40, 30, 20)])) + 5) < 1e-6);
    assert.equal(pageTilt([rotated(500, 100, 600, 30, 0.5)]), 0);
    assert.equal(pageTilt([rotated(500, 100, 40, 30, 10)]), 0);
  });

  it('keeps a receipt line’s item and price together when the page is turned 5°', () => {
    // Items at x≈300, prices at x≈900 on lines 50 px apart, all turned -5° about (640, 480):
    // a price sits ~52 px above its item, level with the previous line's item.
    const t = (-5 * Math.PI) / 180;
    const turn = (x: number, y: number) => ({ x: 640 + (x - 640) * Math.cos(t) - (y - 480) * Math.sin(t), y: 480 + (x - 640) * Math.sin(t) + (y - 480) * Math.cos(t) });
    const boxes: { name: string; quad: Quad }[] = [];
    for (let i = 0; i < 4; i++) {
      const y = 300 + 50 * i;
      const item = turn(380, y);
      const price = turn(900, y);
      boxes.push({ name: `item${i}`, quad: rotated(item.x, item.y, 200, 30, -5) }, { name: `price${i}`, quad: rotated(price.x, price.y, 90, 30, -5) });
    }
    const order = readingOrder([...boxes].reverse(), (b) => b.quad).map((b) => b.name);
    assert.deepEqual(order, ['item0', 'price0', 'item1', 'price1', 'item2', 'price2', 'item3', 'price3']);
  });
});
