/**
 * DBNet post-processing: from the detector's text-probability map to text boxes. Pure.
 *
 * Follows PaddleOCR's DBPostProcess (ppocr/postprocess/db_postprocess.py, box_type "quad",
 * score_mode "fast") without OpenCV: threshold → 8-connected components (where OpenCV traces
 * contours) → minimum-area rectangle of each component → mean probability inside it → unclip →
 * size filter → map to image coordinates.
 *
 * Points are pixel centres (i + 0.5) in the map's continuous coordinates, as OpenCV's contour points
 * are pixel indices: the unclip ratio 1.5 was tuned against rectangles measured that way.
 */
import { orderQuad, type Point, type Quad } from './geometry.js';

export interface DbOptions {
  /** Probability above which a map pixel is text. */
  thresh?: number;
  /** Boxes whose mean probability is below this are dropped. */
  boxThresh?: number;
  /** Expansion: each side moves out by area × ratio / perimeter of the rectangle. */
  unclipRatio?: number;
  /** Shorter side, in map pixels, below which a rectangle is noise (the unclipped one needs +2). */
  minSize?: number;
  /** Components looked at, at most. */
  maxCandidates?: number;
}

export const DB_DEFAULTS: Required<DbOptions> = Object.freeze({ thresh: 0.3, boxThresh: 0.6, unclipRatio: 1.5, minSize: 3, maxCandidates: 1000 });

export interface DetectedBox {
  /** In the destination image's continuous coordinates, ordered left_top, right_top, right_bottom, left_bottom. */
  quad: Quad;
  /** Mean text probability inside the box before unclipping. */
  score: number;
}

/** A rotated rectangle: centre, unit direction of its first side, side lengths. */
export interface RotatedRect {
  center: Point;
  /** Unit vector along `width`; the `height` side is perpendicular to it. */
  axis: Point;
  width: number;
  height: number;
}

/**
 * Labels 8-connected foreground components. Returns, per component, the leftmost and rightmost pixel
 * of every row it spans: enough for the convex hull, and far fewer points than the pixels.
 */
export function componentRuns(mask: Uint8Array, width: number, height: number, maxComponents = Infinity): { rows: number; top: number; minX: Int32Array; maxX: Int32Array }[] {
  const labels = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  const rowMin = new Int32Array(height);
  const rowMax = new Int32Array(height);
  // rowLabel[y] says which component rowMin[y]/rowMax[y] belong to, so nothing needs resetting.
  const rowLabel = new Int32Array(height);
  const out: { rows: number; top: number; minX: Int32Array; maxX: Int32Array }[] = [];
  let label = 0;
  for (let start = 0; start < mask.length && out.length < maxComponents; start++) {
    if (!mask[start] || labels[start]) continue;
    label++;
    let sp = 0;
    stack[sp++] = start;
    labels[start] = label;
    let top = height;
    let bottom = -1;
    while (sp > 0) {
      const i = stack[--sp]!;
      const y = (i / width) | 0;
      const x = i - y * width;
      if (rowLabel[y] !== label) {
        rowLabel[y] = label;
        rowMin[y] = x;
        rowMax[y] = x;
      } else if (x < rowMin[y]!) rowMin[y] = x;
      else if (x > rowMax[y]!) rowMax[y] = x;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const j = ny * width + nx;
          if (mask[j] && !labels[j]) {
            labels[j] = label;
            stack[sp++] = j;
          }
        }
      }
    }
    // An 8-connected component spans a contiguous run of rows, so every row in [top, bottom] is set.
    out.push({ rows: bottom - top + 1, top, minX: rowMin.slice(top, bottom + 1), maxX: rowMax.slice(top, bottom + 1) });
  }
  return out;
}

const cross = (o: Point, a: Point, b: Point): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);

/** Convex hull (Andrew's monotone chain), counter-clockwise in y-up terms, no collinear points. */
export function convexHull(points: readonly Point[]): Point[] {
  const pts = [...points].sort((a, b) => a.x - b.x || a.y - b.y);
  if (pts.length < 3) return pts.filter((p, i) => i === 0 || p.x !== pts[i - 1]!.x || p.y !== pts[i - 1]!.y);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/**
 * Minimum-area enclosing rectangle of a convex hull. The optimum has a side on a hull edge
 * (Freeman & Shapira, 1975), so each edge in turn is the caliper direction and the hull is projected
 * on it and its normal; hulls of text components have tens of vertices, so this quadratic sweep
 * costs less than maintaining the four calipers of the linear algorithm.
 */
export function minAreaRect(hull: readonly Point[]): RotatedRect {
  if (hull.length === 0) throw new RangeError('minAreaRect of no points');
  if (hull.length === 1) return { center: { ...hull[0]! }, axis: { x: 1, y: 0 }, width: 0, height: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  const n = hull.length;
  for (let i = 0; i < n; i++) {
    const p = hull[i]!;
    const q = hull[(i + 1) % n]!;
    const len = Math.hypot(q.x - p.x, q.y - p.y);
    if (len === 0) continue;
    const ux = (q.x - p.x) / len;
    const uy = (q.y - p.y) / len;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const h of hull) {
      const pu = h.x * ux + h.y * uy;
      const pv = -h.x * uy + h.y * ux;
      if (pu < minU) minU = pu;
      if (pu > maxU) maxU = pu;
      if (pv < minV) minV = pv;
      if (pv > maxV) maxV = pv;
    }
    const w = maxU - minU;
    const h = maxV - minV;
    // Strictly smaller, with a tolerance, so ties keep the first edge found (stable results).
    if (w * h < bestArea - 1e-9) {
      bestArea = w * h;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { center: { x: cu * ux - cv * uy, y: cu * uy + cv * ux }, axis: { x: ux, y: uy }, width: w, height: h };
    }
  }
  return best!;
}

/** The four corners of a rotated rectangle (in no particular reading order). */
export function rectCorners(r: RotatedRect): Point[] {
  const hx = (r.axis.x * r.width) / 2;
  const hy = (r.axis.y * r.width) / 2;
  const vx = (-r.axis.y * r.height) / 2;
  const vy = (r.axis.x * r.height) / 2;
  const { x, y } = r.center;
  return [
    { x: x - hx - vx, y: y - hy - vy },
    { x: x + hx - vx, y: y + hy - vy },
    { x: x + hx + vx, y: y + hy + vy },
    { x: x - hx + vx, y: y - hy + vy },
  ];
}

/**
 * Moves every side of the rectangle out by area × ratio / perimeter. This is DB's unclip (a Vatti
 * offset of the polygon) applied to a rectangle: the round-joined offset of a rectangle has exactly
 * this rectangle as its minimum-area box, which is what PaddleOCR keeps.
 */
export function unclipRect(r: RotatedRect, ratio: number): RotatedRect {
  const perimeter = 2 * (r.width + r.height);
  if (perimeter === 0) return r;
  const d = (r.width * r.height * ratio) / perimeter;
  return { ...r, width: r.width + 2 * d, height: r.height + 2 * d };
}

/**
 * Mean probability of the map pixels whose centres lie inside the convex quad (with half a pixel of
 * tolerance, as OpenCV's fillPoly also paints the pixels its edges cross). 0 when none do.
 */
export function boxScore(prob: Float32Array, width: number, height: number, corners: readonly Point[]): number {
  let left = Infinity, top = Infinity, right = -Infinity, bottom = -Infinity;
  for (const p of corners) {
    left = Math.min(left, p.x);
    right = Math.max(right, p.x);
    top = Math.min(top, p.y);
    bottom = Math.max(bottom, p.y);
  }
  const x0 = Math.max(0, Math.floor(left - 0.5));
  const x1 = Math.min(width - 1, Math.ceil(right));
  const y0 = Math.max(0, Math.floor(top - 0.5));
  const y1 = Math.min(height - 1, Math.ceil(bottom));
  // Signed-distance test against each edge; the orientation decides which side is inside.
  const n = corners.length;
  let area2 = 0;
  for (let i = 0; i < n; i++) {
    const a = corners[i]!;
    const b = corners[(i + 1) % n]!;
    area2 += a.x * b.y - b.x * a.y;
  }
  const sign = area2 >= 0 ? 1 : -1;
  const edges = corners.map((a, i) => {
    const b = corners[(i + 1) % n]!;
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    return { a, nx: (-(b.y - a.y) / len) * sign, ny: ((b.x - a.x) / len) * sign };
  });
  let sum = 0;
  let count = 0;
  for (let y = y0; y <= y1; y++) {
    const cy = y + 0.5;
    for (let x = x0; x <= x1; x++) {
      const cx = x + 0.5;
      let inside = true;
      for (const e of edges) {
        // Inside is where the left-hand normal (for the orientation found above) points.
        if ((cx - e.a.x) * e.nx + (cy - e.a.y) * e.ny < -0.5) {
          inside = false;
          break;
        }
      }
      if (inside) {
        sum += prob[y * width + x]!;
        count++;
      }
    }
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * Text boxes from a DB probability map of `width`×`height`, in the coordinates of a `dest` image
 * (the map is scaled to it per axis, then corners are clamped into it).
 *
 * @example dbPostprocess(out.data as Float32Array, 960, 736, { width: 1280, height: 960 })
 */
export function dbPostprocess(prob: Float32Array, width: number, height: number, dest: { width: number; height: number }, opts: DbOptions = {}): DetectedBox[] {
  const o = { ...DB_DEFAULTS, ...opts };
  if (prob.length < width * height) throw new RangeError(`probability map has ${prob.length} values, expected ${width}x${height}`);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = prob[i]! > o.thresh ? 1 : 0;
  const sx = dest.width / width;
  const sy = dest.height / height;
  const boxes: DetectedBox[] = [];
  for (const comp of componentRuns(mask, width, height, o.maxCandidates)) {
    const pts: Point[] = [];
    for (let r = 0; r < comp.rows; r++) {
      const y = comp.top + r + 0.5;
      pts.push({ x: comp.minX[r]! + 0.5, y });
      if (comp.maxX[r] !== comp.minX[r]) pts.push({ x: comp.maxX[r]! + 0.5, y });
    }
    const rect = minAreaRect(convexHull(pts));
    if (Math.min(rect.width, rect.height) < o.minSize) continue;
    const score = boxScore(prob, width, height, rectCorners(rect));
    if (score < o.boxThresh) continue;
    const grown = unclipRect(rect, o.unclipRatio);
    if (Math.min(grown.width, grown.height) < o.minSize + 2) continue;
    const corners = rectCorners(grown).map((p) => ({
      x: Math.min(dest.width, Math.max(0, p.x * sx)),
      y: Math.min(dest.height, Math.max(0, p.y * sy)),
    }));
    const quad = orderQuad(corners);
    // PaddleOCR's filter_tag_det_res: after scaling and clamping, a side of 3 px or less is not text.
    const w = Math.hypot(quad[1].x - quad[0].x, quad[1].y - quad[0].y);
    const h = Math.hypot(quad[3].x - quad[0].x, quad[3].y - quad[0].y);
    if (w <= 3 || h <= 3) continue;
    boxes.push({ quad, score });
  }
  return boxes;
}
