/**
 * Plane geometry for OCR boxes, and cutting text strips out of raw RGB pixels. Pure.
 *
 * Coordinates are continuous: an image of width W spans x ∈ [0, W], and pixel i covers [i, i+1), so
 * its centre is at i + 0.5. A Quad lists its corners as WeChat's `pos` does: left_top, right_top,
 * right_bottom, left_bottom.
 */

export interface Point {
  x: number;
  y: number;
}

/** Corners in order left_top, right_top, right_bottom, left_bottom. */
export type Quad = readonly [Point, Point, Point, Point];

/** Raw 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Bounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const dist = (a: Point, b: Point): number => Math.hypot(a.x - b.x, a.y - b.y);

/**
 * Orders four corners as left_top, right_top, right_bottom, left_bottom.
 *
 * The corners are first put clockwise around their centroid (y grows downwards); left_top is then the
 * start of the edge that points most nearly rightwards, so a box tilted either way keeps its visual
 * top edge first. The common "smallest x+y is top-left" rule breaks near 45°; this one only ties at
 * exactly 45°, where it keeps the first corner found.
 */
export function orderQuad(points: readonly Point[]): Quad {
  if (points.length !== 4) throw new RangeError(`a quad needs 4 points, got ${points.length}`);
  const cx = (points[0]!.x + points[1]!.x + points[2]!.x + points[3]!.x) / 4;
  const cy = (points[0]!.y + points[1]!.y + points[2]!.y + points[3]!.y) / 4;
  const cw = [...points].sort((a, b) => Math.atan2(a.y - cy, a.x - cx) - Math.atan2(b.y - cy, b.x - cx));
  let start = 0;
  let best = -Infinity;
  for (let i = 0; i < 4; i++) {
    const a = cw[i]!;
    const b = cw[(i + 1) % 4]!;
    const len = dist(a, b);
    const rightward = len === 0 ? -1 : (b.x - a.x) / len;
    if (rightward > best + 1e-9) {
      best = rightward;
      start = i;
    }
  }
  const at = (k: number): Point => ({ ...cw[(start + k) % 4]! });
  return [at(0), at(1), at(2), at(3)];
}

/** The axis-aligned box around a quad. */
export function quadBounds(q: readonly Point[]): Bounds {
  let left = Infinity, top = Infinity, right = -Infinity, bottom = -Infinity;
  for (const p of q) {
    if (p.x < left) left = p.x;
    if (p.x > right) right = p.x;
    if (p.y < top) top = p.y;
    if (p.y > bottom) bottom = p.y;
  }
  return { left, top, right, bottom };
}

/** Text width and height of a quad: the longer of each pair of opposite edges. */
export function quadSize(q: Quad): { width: number; height: number } {
  return { width: Math.max(dist(q[0], q[1]), dist(q[3], q[2])), height: Math.max(dist(q[0], q[3]), dist(q[1], q[2])) };
}

/**
 * Puts boxes in reading order: boxes whose vertical extents overlap by at least `minOverlap` of the
 * smaller height form a line; lines go top to bottom, boxes in a line left to right.
 *
 * A box's vertical extent is taken between the midpoints of its top and bottom edges, not from its
 * axis-aligned bounds: on a slightly tilted page a long line's bounds grow by the tilt and would
 * swallow the next line. And on a tilted page "top to bottom, left to right" is measured along the
 * page's own axes (pageTilt), so the two ends of a receipt line stay one line.
 */
export function readingOrder<T>(items: readonly T[], quadOf: (item: T) => Quad, minOverlap = 0.5): T[] {
  const quads = items.map(quadOf);
  // On a tilted page (a photo taken at an angle) the two ends of one line sit at different heights:
  // at 5° a receipt's price 600 px right of its item is 50 px higher, more than a line. So the
  // boxes are first turned back by the page's tilt, the median slope of its long boxes.
  const tilt = pageTilt(quads);
  const cos = Math.cos(-tilt);
  const sin = Math.sin(-tilt);
  const turn = (p: Point): Point => (tilt === 0 ? p : { x: p.x * cos - p.y * sin, y: p.x * sin + p.y * cos });
  const boxes = items.map((item, i) => {
    const q = quads[i]!.map(turn) as unknown as Quad;
    const top = (q[0].y + q[1].y) / 2;
    const bottom = (q[3].y + q[2].y) / 2;
    return { item, top, bottom, mid: (top + bottom) / 2, left: Math.min(q[0].x, q[3].x) };
  });
  boxes.sort((a, b) => a.mid - b.mid || a.left - b.left);
  const lines: { top: number; bottom: number; members: typeof boxes }[] = [];
  for (const b of boxes) {
    let target: (typeof lines)[number] | undefined;
    let bestRatio = minOverlap;
    for (const line of lines) {
      const overlap = Math.min(b.bottom, line.bottom) - Math.max(b.top, line.top);
      const ratio = overlap / Math.max(1e-6, Math.min(b.bottom - b.top, line.bottom - line.top));
      if (ratio >= bestRatio) {
        bestRatio = ratio;
        target = line;
      }
    }
    if (target) {
      // The line's extent is the mean of its members', so one tall box cannot chain two lines together.
      const n = target.members.push(b);
      target.top += (b.top - target.top) / n;
      target.bottom += (b.bottom - target.bottom) / n;
    } else {
      lines.push({ top: b.top, bottom: b.bottom, members: [b] });
    }
  }
  lines.sort((a, b) => a.top + a.bottom - (b.top + b.bottom));
  return lines.flatMap((line) => line.members.sort((a, b) => a.left - b.left).map((m) => m.item));
}

/**
 * The tilt of a page in radians (positive: lines fall to the right, y down), from its boxes: the
 * length-weighted median slope of the top edges of boxes at least three times wider than tall
 * (short boxes' slopes are mostly noise). 0 when there are none, or when the tilt is under 1°, so
 * the reading order of upright pages does not depend on rounding.
 */
export function pageTilt(quads: readonly Quad[]): number {
  const slopes: { angle: number; weight: number }[] = [];
  for (const q of quads) {
    const { width, height } = quadSize(q);
    if (width < 3 * height) continue;
    slopes.push({ angle: Math.atan2(q[1].y - q[0].y, q[1].x - q[0].x), weight: width });
  }
  if (slopes.length === 0) return 0;
  slopes.sort((a, b) => a.angle - b.angle);
  const half = slopes.reduce((s, x) => s + x.weight, 0) / 2;
  let acc = 0;
  for (const s of slopes) {
    acc += s.weight;
    if (acc >= half) return Math.abs(s.angle) < Math.PI / 180 ? 0 : s.angle;
  }
  return 0;
}

/**
 * The corners to read a box from. A box at least `tallRatio` times taller than wide is taken as text
 * running downwards and is turned a quarter anticlockwise, as PaddleOCR does (np.rot90): the new
 * left_top is the old right_top. Relabelling the corners is the whole rotation; the crop then samples
 * it upright. The ratio is 1.5, not 1, so single characters and short numbers, which are taller than
 * wide, are not turned on their side.
 */
export function stripQuad(q: Quad, tallRatio = 1.5): { quad: Quad; rotated: boolean } {
  const { width, height } = quadSize(q);
  if (width > 0 && height / width >= tallRatio) return { quad: [q[1], q[2], q[3], q[0]], rotated: true };
  return { quad: q, rotated: false };
}

/**
 * Samples the quad into a `width`×`height` image. Each output pixel maps through the bilinear patch of
 * the four corners (an affine map when the quad is a parallelogram, which rectangles are), reads the
 * source with bilinear interpolation and clamps at the edges (like OpenCV's BORDER_REPLICATE). When
 * the strip is smaller than the source region, k×k samples per pixel are averaged so thin strokes are
 * not skipped.
 */
export function cropQuad(img: RgbImage, q: Quad, width: number, height: number): RgbImage {
  if (!(width >= 1 && height >= 1)) throw new RangeError(`crop size ${width}x${height}`);
  const out = new Uint8Array(width * height * 3);
  const [a, b, c, d] = q;
  const { width: qw, height: qh } = quadSize(q);
  const k = Math.min(4, Math.max(1, Math.ceil(Math.max(qw / width, qh / height) - 1e-9)));
  const src = img.data;
  const stride = img.width;
  const maxX = img.width - 1;
  const maxY = img.height - 1;
  const inv = 1 / (k * k);
  // Sums of the k×k samples of one output row, per channel.
  const acc = new Float64Array(width * 3);
  for (let v = 0; v < height; v++) {
    acc.fill(0);
    for (let sy = 0; sy < k; sy++) {
      const t = (v + (sy + 0.5) / k) / height;
      // On the bilinear patch a row of constant t is the segment from the left edge (a→d) to the
      // right edge (b→c): x and y are linear in s along it.
      const lx = (1 - t) * a.x + t * d.x - 0.5;
      const ly = (1 - t) * a.y + t * d.y - 0.5;
      const rx = (1 - t) * b.x + t * c.x - 0.5;
      const ry = (1 - t) * b.y + t * c.y - 0.5;
      for (let u = 0; u < width; u++) {
        let r = 0, g = 0, bl = 0;
        for (let sx = 0; sx < k; sx++) {
          const s = (u + (sx + 0.5) / k) / width;
          const px = lx + s * (rx - lx);
          const py = ly + s * (ry - ly);
          const x = px < 0 ? 0 : px > maxX ? maxX : px;
          const y = py < 0 ? 0 : py > maxY ? maxY : py;
          const x0 = x | 0;
          const y0 = y | 0;
          const dx = x0 < maxX ? 3 : 0;
          const dy = y0 < maxY ? stride * 3 : 0;
          const fx = x - x0;
          const fy = y - y0;
          const i00 = (y0 * stride + x0) * 3;
          const i10 = i00 + dy;
          r += bilinear(src, i00, i00 + dx, i10, i10 + dx, fx, fy);
          g += bilinear(src, i00 + 1, i00 + dx + 1, i10 + 1, i10 + dx + 1, fx, fy);
          bl += bilinear(src, i00 + 2, i00 + dx + 2, i10 + 2, i10 + dx + 2, fx, fy);
        }
        acc[u * 3]! += r;
        acc[u * 3 + 1]! += g;
        acc[u * 3 + 2]! += bl;
      }
    }
    const row = v * width * 3;
    for (let i = 0; i < width * 3; i++) out[row + i] = Math.round(acc[i]! * inv);
  }
  return { data: out, width, height };
}

/** Bilinear interpolation between four samples (indices into `src`). */
function bilinear(src: Uint8Array, i00: number, i01: number, i10: number, i11: number, fx: number, fy: number): number {
  const top = src[i00]! + (src[i01]! - src[i00]!) * fx;
  const bot = src[i10]! + (src[i11]! - src[i10]!) * fx;
  return top + (bot - top) * fy;
}

export interface StripOptions {
  /** Strip height in pixels; the PP-OCR recogniser takes 48. */
  height?: number;
  /** Longest strip kept; wider text is squeezed to this width (bounds memory and time). */
  maxWidth?: number;
  /** See stripQuad. */
  tallRatio?: number;
}

/**
 * Cuts a text box out as an upright strip of fixed height, width in proportion, turning tall boxes
 * a quarter (see stripQuad).
 */
export function cropTextStrip(img: RgbImage, q: Quad, opts: StripOptions = {}): RgbImage & { rotated: boolean } {
  const height = opts.height ?? 48;
  const maxWidth = opts.maxWidth ?? 3200;
  const { quad, rotated } = stripQuad(q, opts.tallRatio);
  const size = quadSize(quad);
  const width = Math.max(1, Math.min(maxWidth, Math.round((height * size.width) / Math.max(1, size.height))));
  return { ...cropQuad(img, quad, width, height), rotated };
}
