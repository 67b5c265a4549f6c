import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boxScore, componentRuns, convexHull, dbPostprocess, minAreaRect, rectCorners, unclipRect } from '../../src/ocr/db-postprocess.js';
import { quadSize, type Point } from '../../src/ocr/geometry.js';

/** A synthetic probability map. */
class ProbMap {
  readonly data: Float32Array;
  constructor(readonly width: number, readonly height: number) {
    this.data = new Float32Array(width * height);
  }
  /** Pixels x0 ≤ x < x1, y0 ≤ y < y1. */
  rect(x0: number, y0: number, x1: number, y1: number, p = 0.9): this {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) this.data[y * this.width + x] = p;
    return this;
  }
  /** Pixels whose centre is inside the convex polygon. */
  polygon(corners: Point[], p = 0.9): this {
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const c = { x: x + 0.5, y: y + 0.5 };
        const inside = corners.every((a, i) => {
          const b = corners[(i + 1) % corners.length]!;
          return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x) >= 0;
        });
        if (inside) this.data[y * this.width + x] = p;
      }
    }
    return this;
  }
  boxes(dest = { width: this.width, height: this.height }, opts = {}) {
    return dbPostprocess(this.data, this.width, this.height, dest, opts);
  }
}

/** Corners of a w×h rectangle centred on (cx, cy), turned clockwise on screen by `deg`; clockwise order. */
function rotated(cx: number, cy: number, w: number, h: number, deg: number): Point[] {
  const a = (deg * Math.PI) / 180;
  return [
    [-w / 2, -h / 2],
    [w / 2, -h / 2],
    [w / 2, h / 2],
    [-w / 2, h / 2],
  ].map(([x, y]) => ({ x: cx + x! * Math.cos(a) - y! * Math.sin(a), y: cy + x! * Math.sin(a) + y! * Math.cos(a) }));
}

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

describe('dbPostprocess', () => {
  it('turns an axis-aligned text region into one unclipped box (exact arithmetic)', () => {
    const boxes = new ProbMap(200, 100).rect(20, 30, 120, 40).boxes();
    assert.equal(boxes.length, 1);
    // Pixel centres 20.5…119.5 × 30.5…39.5: a 99 × 9 rectangle; each side moves out by
    // d = 99 · 9 · 1.5 / (2 · (99 + 9)) = 6.1875.
    const d = 6.1875;
    const [lt, rt, rb, lb] = boxes[0]!.quad;
    close(lt.x, 20.5 - d), close(lt.y, 30.5 - d);
    close(rt.x, 119.5 + d), close(rt.y, 30.5 - d);
    close(rb.x, 119.5 + d), close(rb.y, 39.5 + d);
    close(lb.x, 20.5 - d), close(lb.y, 39.5 + d);
    close(boxes[0]!.score, 0.9, 1e-6);
  });

  it('uses the ratio it is given', () => {
    const [box] = new ProbMap(200, 100).rect(20, 30, 120, 40).boxes(undefined, { unclipRatio: 2 });
    close(box!.quad[0].x, 20.5 - (99 * 9 * 2) / 216);
  });

  it('scales to the destination image per axis and clamps to its edges', () => {
    const map = new ProbMap(100, 50).rect(0, 10, 40, 20);
    const [box] = map.boxes({ width: 300, height: 100 });
    const [lt, rt, rb] = box!.quad;
    assert.equal(lt.x, 0, 'clamped at the left edge');
    const d = (39 * 9 * 1.5) / (2 * 48);
    close(rt.x, (39.5 + d) * 3);
    close(lt.y, (10.5 - d) * 2);
    close(rb.y, (19.5 + d) * 2);
  });

  for (const deg of [-30, 15, 30]) {
    it(`finds a rectangle turned ${deg}° with its angle and centre`, () => {
      const [box, ...rest] = new ProbMap(240, 240).polygon(rotated(120, 120, 140, 16, deg)).boxes();
      assert.equal(rest.length, 0);
      const [lt, rt, rb, lb] = box!.quad;
      const angle = (Math.atan2(rt.y - lt.y, rt.x - lt.x) * 180) / Math.PI;
      assert.ok(Math.abs(angle - deg) < 2, `angle ${angle.toFixed(1)}°`);
      close((lt.x + rb.x) / 2, 120, 1.5);
      close((rt.y + lb.y) / 2, 120, 1.5);
      const size = quadSize(box!.quad);
      assert.ok(size.width > 140 && size.width < 175, `width ${size.width}`);
      assert.ok(size.height > 16 && size.height < 45, `height ${size.height}`);
    });
  }

  it('keeps regions one pixel apart as two boxes, left to right in the map', () => {
    const boxes = new ProbMap(200, 60).rect(10, 20, 60, 32).rect(61, 20, 120, 32).boxes();
    assert.equal(boxes.length, 2);
  });

  it('merges regions that touch into one box', () => {
    const boxes = new ProbMap(200, 60).rect(10, 20, 60, 32).rect(60, 20, 120, 32).boxes();
    assert.equal(boxes.length, 1);
    close(quadSize(boxes[0]!.quad).width, 109 + 2 * ((109 * 11 * 1.5) / 240));
  });

  it('joins pixels that touch only at a corner (8-connectivity, as OpenCV contours)', () => {
    const map = new ProbMap(200, 80).rect(10, 20, 60, 32).rect(60, 32, 120, 44);
    const mask = Uint8Array.from(map.data, (p) => (p > 0.3 ? 1 : 0));
    assert.equal(componentRuns(mask, 200, 80).length, 1);
    // The box around both is mostly empty, so its score (0.45) drops it.
    assert.deepEqual(map.boxes(), []);
  });

  it('drops specks and hairlines (shorter side under 3 map pixels)', () => {
    const map = new ProbMap(100, 100).rect(10, 10, 12, 12).rect(30, 30, 31, 31).rect(20, 60, 90, 61);
    assert.deepEqual(map.boxes(), []);
  });

  it('drops a region whose mean probability is under box_thresh 0.6', () => {
    assert.deepEqual(new ProbMap(200, 60).rect(10, 20, 120, 32, 0.5).boxes(), []);
    assert.equal(new ProbMap(200, 60).rect(10, 20, 120, 32, 0.65).boxes().length, 1);
  });

  it('ignores probabilities at or under the 0.3 threshold', () => {
    assert.deepEqual(new ProbMap(200, 60).rect(0, 0, 200, 60, 0.3).boxes(), []);
  });

  it('finds nothing in an empty map', () => {
    assert.deepEqual(new ProbMap(64, 64).boxes(), []);
  });

  it('looks at no more than maxCandidates regions', () => {
    const map = new ProbMap(200, 200);
    for (let i = 0; i < 5; i++) map.rect(10, 10 + i * 30, 100, 22 + i * 30);
    assert.equal(map.boxes(undefined, { maxCandidates: 2 }).length, 2);
    assert.equal(map.boxes().length, 5);
  });

  it('refuses a map shorter than its stated size', () => {
    assert.throws(() => dbPostprocess(new Float32Array(10), 10, 10, { width: 10, height: 10 }), RangeError);
  });
});

describe('convexHull', () => {
  it('keeps only the corners of a filled square', () => {
    const pts: Point[] = [];
    for (let x = 0; x <= 4; x++) for (let y = 0; y <= 4; y++) pts.push({ x, y });
    const hull = convexHull(pts);
    assert.equal(hull.length, 4);
    assert.deepEqual(new Set(hull.map((p) => `${p.x},${p.y}`)), new Set(['0,0', '4,0', '4,4', '0,4']));
  });

  it('handles fewer than three points and duplicates', () => {
    assert.deepEqual(convexHull([{ x: 1, y: 1 }, { x: 1, y: 1 }]), [{ x: 1, y: 1 }]);
  });
});

describe('minAreaRect', () => {
  it('finds the rotated rectangle, not the axis-aligned bounds', () => {
    const r = minAreaRect(convexHull(rotated(50, 50, 60, 20, 30)));
    close(r.width * r.height, 1200, 1e-6);
    assert.deepEqual([Math.round(Math.min(r.width, r.height)), Math.round(Math.max(r.width, r.height))], [20, 60]);
    close(r.center.x, 50), close(r.center.y, 50);
  });

  it('handles a square turned 45°', () => {
    const r = minAreaRect(convexHull(rotated(0, 0, 10, 10, 45)));
    close(r.width, 10), close(r.height, 10);
  });

  it('gives a zero-height rectangle for collinear points and a point for one point', () => {
    const line = minAreaRect(convexHull([{ x: 0, y: 0 }, { x: 10, y: 0 }]));
    close(line.width, 10), close(line.height, 0);
    assert.equal(minAreaRect([{ x: 3, y: 4 }]).width, 0);
  });

  it('returns corners that reproduce the rectangle', () => {
    const corners = rotated(30, 40, 50, 10, -20);
    const again = rectCorners(minAreaRect(convexHull(corners)));
    for (const p of corners) assert.ok(again.some((q) => Math.hypot(p.x - q.x, p.y - q.y) < 1e-6), `corner ${JSON.stringify(p)}`);
  });
});

describe('unclipRect and boxScore', () => {
  it('moves every side out by area × ratio / perimeter', () => {
    const r = unclipRect({ center: { x: 0, y: 0 }, axis: { x: 1, y: 0 }, width: 100, height: 10 }, 1.5);
    const d = (100 * 10 * 1.5) / 220;
    close(r.width, 100 + 2 * d), close(r.height, 10 + 2 * d);
  });

  it('leaves a degenerate rectangle alone', () => {
    const r = { center: { x: 1, y: 1 }, axis: { x: 1, y: 0 }, width: 0, height: 0 };
    assert.deepEqual(unclipRect(r, 1.5), r);
  });

  it('averages the map over the pixels whose centres are inside the quad', () => {
    const map = new ProbMap(20, 20).rect(0, 0, 10, 20, 1); // left half 1, right half 0
    const quad = (x0: number, x1: number) => [{ x: x0, y: 0.5 }, { x: x1, y: 0.5 }, { x: x1, y: 19.5 }, { x: x0, y: 19.5 }];
    close(boxScore(map.data, 20, 20, quad(0.5, 9.5)), 1);
    close(boxScore(map.data, 20, 20, quad(5.5, 14.5)), 0.5);
    close(boxScore(map.data, 20, 20, quad(14.5, 5.5)), 0.5); // either orientation
  });

  it('counts pixels up to half a pixel outside an edge, as fillPoly paints the pixels an edge crosses', () => {
    const map = new ProbMap(20, 20).rect(0, 0, 20, 20, 1).rect(10, 0, 11, 20, 0);
    const quad = [{ x: 0.5, y: 0.5 }, { x: 10.2, y: 0.5 }, { x: 10.2, y: 19.5 }, { x: 0.5, y: 19.5 }];
    close(boxScore(map.data, 20, 20, quad), 10 / 11);
  });
});
