import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cropQuad, cropTextStrip, orderQuad, quadBounds, quadSize, readingOrder, stripQuad, type Point, type Quad, type RgbImage } from '../../src/ocr/geometry.js';

const rect = (left: number, top: number, right: number, bottom: number): Quad => [
  { x: left, y: top },
  { x: right, y: top },
  { x: right, y: bottom },
  { x: left, y: bottom },
];

/** The corners of a w×h rectangle centred on (cx, cy), turned by `deg` (clockwise on screen, y down). */
function rotated(cx: number, cy: number, w: number, h: number, deg: number): Point[] {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return [
    [-w / 2, -h / 2],
    [w / 2, -h / 2],
    [w / 2, h / 2],
    [-w / 2, h / 2],
  ].map(([x, y]) => ({ x: cx + x! * c - y! * s, y: cy + x! * s + y! * c }));
}

const near = (a: Point, b: Point, eps = 1e-6) => Math.abs(a.x - b.x) < eps && Math.abs(a.y - b.y) < eps;

describe('orderQuad', () => {
  it('orders shuffled corners of an upright box as left_top, right_top, right_bottom, left_bottom', () => {
    const expected = rect(10, 20, 110, 50);
    for (const perm of [[0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]]) {
      const q = orderQuad(perm.map((i) => expected[i]!));
      q.forEach((p, i) => assert.ok(near(p, expected[i]!), `corner ${i} of permutation ${perm}`));
    }
  });

  for (const deg of [-30, -10, 10, 30]) {
    it(`keeps the visual top edge first for a box tilted ${deg}°`, () => {
      const corners = rotated(200, 100, 160, 40, deg);
      const q = orderQuad([corners[2]!, corners[0]!, corners[3]!, corners[1]!]);
      corners.forEach((p, i) => assert.ok(near(q[i]!, p), `corner ${i}`));
    });
  }

  it('orders a tall box (text running down) by the same visual rule', () => {
    const q = orderQuad(rect(0, 0, 20, 200).slice().reverse());
    assert.deepEqual(q, rect(0, 0, 20, 200));
  });

  it('refuses anything but four points', () => {
    assert.throws(() => orderQuad([{ x: 0, y: 0 }]), RangeError);
  });
});

describe('quadBounds and quadSize', () => {
  it('measures a rotated rectangle by its sides, not its bounds', () => {
    const q = orderQuad(rotated(100, 100, 80, 20, 30));
    const size = quadSize(q);
    assert.ok(Math.abs(size.width - 80) < 1e-6 && Math.abs(size.height - 20) < 1e-6);
    const b = quadBounds(q);
    assert.ok(b.bottom - b.top > 50, 'bounds grow with the tilt');
  });
});

describe('readingOrder', () => {
  const boxes = {
    title: rect(100, 10, 400, 50),
    leftA: rect(10, 100, 200, 130),
    rightA: rect(500, 104, 700, 132), // same line as leftA, a little lower
    leftB: rect(10, 150, 300, 180),
    footer: rect(300, 400, 360, 420),
  };
  const expected = ['title', 'leftA', 'rightA', 'leftB', 'footer'];

  it('goes line by line, top to bottom, left to right, whatever the input order', () => {
    const names = Object.keys(boxes) as (keyof typeof boxes)[];
    for (const order of [names, [...names].reverse(), ['footer', 'rightA', 'title', 'leftB', 'leftA'] as const]) {
      assert.deepEqual(readingOrder([...order], (n) => boxes[n]), expected);
    }
  });

  it('keeps two lines apart when they merely touch', () => {
    const a = rect(0, 0, 100, 20);
    const b = rect(50, 18, 150, 38); // 2 px of overlap: 10 % of a height
    assert.deepEqual(readingOrder([b, a], (q) => q), [a, b]);
  });

  it('is not fooled by long tilted lines whose bounds overlap', () => {
    // Two 1000 px lines tilted 4°, 40 px apart: each one's bounds are 90 px tall, so by bounds they
    // would overlap by 55 % and merge; a box on the first line must come between them.
    const first = orderQuad(rotated(500, 100, 1000, 20, 4));
    const second = orderQuad(rotated(500, 140, 1000, 20, 4));
    const middleOfFirst = rect(450, 90, 550, 110);
    assert.deepEqual(readingOrder([second, middleOfFirst, first], (q) => q), [first, middleOfFirst, second]);
  });

  it('returns an empty list for no boxes', () => {
    assert.deepEqual(readingOrder([], (q: Quad) => q), []);
  });
});

/** An RGB image whose pixel (x, y) is [x, y, 7] (values < 256). */
function coordImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x, y, 7], (y * width + x) * 3);
  return { data, width, height };
}
const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('cropQuad', () => {
  it('copies an axis-aligned box exactly when the sizes match', () => {
    const img = coordImage(64, 48);
    const out = cropQuad(img, rect(10, 5, 30, 15), 20, 10);
    assert.equal(out.width, 20);
    assert.equal(out.height, 10);
    for (const [x, y] of [[0, 0], [19, 0], [0, 9], [19, 9], [7, 4]] as const) assert.deepEqual(px(out, x, y), [10 + x, 5 + y, 7]);
  });

  it('interpolates bilinearly between pixels', () => {
    const img = coordImage(64, 48);
    // Shifted half a pixel: each output pixel is the mean of two columns.
    const out = cropQuad(img, rect(10.5, 5, 20.5, 6), 10, 1);
    assert.deepEqual(px(out, 0, 0), [11, 5, 7]); // (10 + 11) / 2 = 10.5, rounded
    assert.deepEqual(px(out, 3, 0), [14, 5, 7]);
  });

  it('clamps samples outside the image to its edge', () => {
    const img = coordImage(16, 16);
    const before = cropQuad(img, rect(-8, -8, 8, 8), 16, 16);
    assert.deepEqual(px(before, 0, 0), [0, 0, 7]);
    assert.deepEqual(px(before, 15, 15), [7, 7, 7]);
    const after = cropQuad(img, rect(8, 8, 24, 24), 16, 16);
    assert.deepEqual(px(after, 0, 0), [8, 8, 7]);
    assert.deepEqual(px(after, 15, 15), [15, 15, 7]);
  });

  it('averages when shrinking, so a thin line survives', () => {
    const data = new Uint8Array(100 * 100 * 3).fill(255);
    for (let x = 0; x < 100; x++) data.fill(0, (50 * 100 + x) * 3, (50 * 100 + x) * 3 + 3); // a 1 px black row
    const out = cropQuad({ data, width: 100, height: 100 }, rect(0, 0, 100, 100), 10, 10);
    // Without averaging the row would fall between samples and vanish.
    assert.ok(px(out, 5, 5)[0]! < 255, `row 5 is ${px(out, 5, 5)}`);
  });

  it('follows a rotated quad: left_top of the quad becomes the strip’s top-left', () => {
    const img = coordImage(100, 100);
    const q = orderQuad(rotated(50, 50, 40, 10, 30));
    const out = cropQuad(img, q, 40, 10);
    const start = px(out, 0, 0);
    const end = px(out, 39, 0);
    assert.ok(Math.abs(start[0]! - q[0].x) <= 2 && Math.abs(start[1]! - q[0].y) <= 2, `start ${start} vs ${JSON.stringify(q[0])}`);
    assert.ok(Math.abs(end[0]! - q[1].x) <= 2 && Math.abs(end[1]! - q[1].y) <= 2, `end ${end} vs ${JSON.stringify(q[1])}`);
  });
});

describe('stripQuad and cropTextStrip', () => {
  it('leaves wide boxes, and boxes less than 1.5 times taller than wide, as they are', () => {
    assert.equal(stripQuad(rect(0, 0, 100, 20)).rotated, false);
    assert.equal(stripQuad(rect(0, 0, 20, 29)).rotated, false);
  });

  it('turns a tall box a quarter anticlockwise (the old right_top becomes left_top)', () => {
    const q = rect(0, 0, 20, 100);
    const { quad, rotated: turned } = stripQuad(q);
    assert.equal(turned, true);
    assert.deepEqual(quad, [q[1], q[2], q[3], q[0]]);
  });

  it('cuts a 48 px high strip, width in proportion', () => {
    const img = coordImage(200, 100);
    const strip = cropTextStrip(img, rect(10, 10, 110, 35));
    assert.equal(strip.height, 48);
    assert.equal(strip.width, 192); // 48 × 100 / 25
    assert.equal(strip.rotated, false);
  });

  it('reads a tall box as a wide strip whose left end is the box’s top', () => {
    // A white 20×100 column with a black mark at its top: after the quarter turn the mark is on the left.
    const width = 40;
    const height = 120;
    const data = new Uint8Array(width * height * 3).fill(255);
    for (let y = 10; y < 20; y++) for (let x = 10; x < 30; x++) data.fill(0, (y * width + x) * 3, (y * width + x) * 3 + 3);
    const strip = cropTextStrip({ data, width, height }, rect(10, 10, 30, 110));
    assert.equal(strip.rotated, true);
    assert.equal(strip.height, 48);
    assert.equal(strip.width, 240);
    assert.ok(px(strip, 5, 24)[0]! < 50, 'left end is dark');
    assert.ok(px(strip, 200, 24)[0]! > 200, 'right end is light');
  });

  it('caps very long strips at maxWidth', () => {
    const img = coordImage(200, 100);
    assert.equal(cropTextStrip(img, rect(0, 0, 200, 2), { maxWidth: 1000 }).width, 1000);
  });
});
