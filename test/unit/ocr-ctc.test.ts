import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ctcGreedyDecode, parseDictionary } from '../../src/ocr/ctc.js';
import { defaultModelPaths } from '../../src/ocr/pipeline.js';

/** A [T × C] probability matrix whose argmax per step is `path` (each step's winner gets `p`). */
function probs(path: number[], classes: number, p = 0.9): Float32Array {
  const out = new Float32Array(path.length * classes).fill((1 - p) / (classes - 1));
  path.forEach((c, t) => (out[t * classes + c] = p));
  return out;
}

describe('parseDictionary', () => {
  it('puts the blank first and appends a space after the file lines', () => {
    assert.deepEqual(parseDictionary('a\nb\nc'), ['', 'a', 'b', 'c', ' ']);
  });

  it('does not turn a final newline into an empty character, and accepts CRLF', () => {
    assert.deepEqual(parseDictionary('a\nb\n'), ['', 'a', 'b', ' ']);
    assert.deepEqual(parseDictionary('a\r\nb\r\n'), ['', 'a', 'b', ' ']);
  });

  it('gives the PP-OCRv4 recogniser its 6625 classes from ppocr_keys_v1.txt (ocr.md pitfall 4)', () => {
    const dict = parseDictionary(readFileSync(defaultModelPaths().dict, 'utf8'));
    assert.equal(dict.length, 6625);
    assert.equal(dict[0], '');
    assert.equal(dict[dict.length - 1], ' ');
    assert.equal(dict[1], "'");
  });
});

describe('ctcGreedyDecode', () => {
  const dict = parseDictionary('a\nb\nc'); // 0 blank, 1 a, 2 b, 3 c, 4 space

  it('collapses repeats and drops blanks', () => {
    const path = [0, 1, 1, 0, 2, 2, 2, 0, 0, 3];
    assert.equal(ctcGreedyDecode(probs(path, 5), path.length, 5, dict).text, 'abc');
  });

  it('keeps a doubled letter when a blank separates the two', () => {
    const path = [1, 1, 0, 1, 4, 2];
    assert.equal(ctcGreedyDecode(probs(path, 5), path.length, 5, dict).text, 'aa b');
  });

  it('scores the mean of the kept characters’ maximum probabilities', () => {
    const classes = 5;
    const p = new Float32Array(4 * classes);
    p.set([0.1, 0.6, 0.1, 0.1, 0.1], 0); // a 0.6
    p.set([0.1, 0.8, 0.05, 0.05, 0], 5); // a again: collapsed, not counted
    p.set([0.9, 0.1, 0, 0, 0], 10); // blank: not counted
    p.set([0, 0, 0, 1, 0], 15); // c 1.0
    const d = ctcGreedyDecode(p, 4, classes, dict);
    assert.equal(d.text, 'ac');
    assert.ok(Math.abs(d.score - 0.8) < 1e-6);
  });

  it('returns empty text with score 0 for an all-blank sequence', () => {
    assert.deepEqual(ctcGreedyDecode(probs([0, 0, 0], 5), 3, 5, dict), { text: '', score: 0 });
  });

  it('decodes one sequence of a batch from its offset', () => {
    const a = probs([1, 0, 2], 5);
    const b = probs([3, 3, 4], 5);
    const batch = new Float32Array(a.length + b.length);
    batch.set(a, 0);
    batch.set(b, a.length);
    assert.equal(ctcGreedyDecode(batch, 3, 5, dict, 0).text, 'ab');
    assert.equal(ctcGreedyDecode(batch, 3, 5, dict, 15).text, 'c ');
  });

  it('refuses a dictionary that does not match the model output', () => {
    assert.throws(() => ctcGreedyDecode(probs([1], 6), 1, 6, dict), /5 classes, model output has 6/);
  });
});
