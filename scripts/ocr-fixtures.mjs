#!/usr/bin/env node
// Regenerates the OCR test images in test/fixtures/ocr/ and their manifest (fixtures.json: the text
// of every line and the ink box where it was drawn, in the displayed frame, i.e. after EXIF rotation).
// The images are committed so the tests need neither this script nor the font; run it again only to
// change the fixtures: `apt-get install fonts-noto-cjk && node scripts/ocr-fixtures.mjs`.
// Text is drawn with librsvg (sharp's SVG input), which finds the font through fontconfig.
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';

const OUT = new URL('../test/fixtures/ocr/', import.meta.url);
const FONT = 'Noto Sans CJK SC';

function requireFont() {
  let families = '';
  try {
    families = execFileSync('fc-list', [':', 'family'], { encoding: 'utf8' });
  } catch {
    // fc-list missing: librsvg would fall back silently, so refuse instead.
  }
  if (!families.includes(FONT)) {
    console.error(`ocr-fixtures: font "${FONT}" not found; install it with: apt-get install fonts-noto-cjk`);
    process.exit(1);
  }
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One SVG with the given lines (x, baseline y, font size, text) on white, or transparent for measuring. */
function svg(width, height, lines, background = '#ffffff') {
  const texts = lines
    .map((l) => `<text x="${l.x}" y="${l.y}" font-family="${FONT}" font-size="${l.size}" font-weight="${l.weight ?? 400}" fill="${l.color ?? '#111111'}">${esc(l.text)}</text>`)
    .join('');
  const bg = background ? `<rect width="100%" height="100%" fill="${background}"/>` : '';
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${bg}${texts}</svg>`);
}

/** The ink box of one line, measured by drawing it alone on a transparent canvas. */
async function inkBox(width, height, line) {
  const { data, info } = await sharp(svg(width, height, [line], null)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let left = width, top = height, right = -1, bottom = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if (data[(y * info.width + x) * info.channels + 3] > 64) {
        if (x < left) left = x;
        if (x > right) right = x;
        if (y < top) top = y;
        if (y > bottom) bottom = y;
      }
    }
  }
  if (right < 0) throw new Error(`nothing drawn for "${line.text}"`);
  return { left, top, right, bottom };
}

async function describe(name, width, height, lines) {
  const boxes = [];
  for (const l of lines) boxes.push({ text: l.text, box: await inkBox(width, height, l) });
  return { file: name, width, height, lines: boxes };
}

const FIXTURES = [
  {
    name: 'zh-line.png',
    width: 560,
    height: 80,
    lines: [{ x: 20, y: 52, size: 32, text: '欢迎使用微信小程序文字识别服务' }],
  },
  {
    name: 'en-line.png',
    width: 520,
    height: 80,
    lines: [{ x: 20, y: 52, size: 32, text: 'Printed text recognition 2024' }],
  },
  {
    name: 'mixed-lines.png',
    width: 640,
    height: 240,
    lines: [
      { x: 24, y: 56, size: 30, text: '订单号 A1024-778' },
      { x: 24, y: 124, size: 30, text: '金额 128.50 元 共 3 件' },
      { x: 24, y: 192, size: 30, text: '2024年5月20日 Monday' },
    ],
  },
  {
    // Drawn upright, then stored sideways with EXIF orientation 6 ("rotate 90° clockwise to show").
    name: 'exif-rotated.jpg',
    width: 600,
    height: 200,
    exif: 6,
    lines: [
      { x: 30, y: 70, size: 34, text: '旋转照片测试' },
      { x: 30, y: 150, size: 34, text: 'EXIF orientation 6' },
    ],
  },
  {
    name: 'page-1280x960.png',
    width: 1280,
    height: 960,
    lines: [
      { x: 80, y: 100, size: 44, weight: 700, text: '小程序服务端说明' },
      { x: 80, y: 180, size: 28, text: '本服务在一台服务器上提供网关、转发和文字识别。' },
      { x: 80, y: 230, size: 28, text: '图片在本机识别，不会上传到第三方。' },
      { x: 80, y: 300, size: 28, text: 'The gateway routes requests by Host on port 443.' },
      { x: 80, y: 350, size: 28, text: 'Images up to 2 MB are accepted.' },
      { x: 80, y: 430, size: 28, text: '联系电话 010-12345678' },
      { x: 80, y: 480, size: 28, text: '版本 0.1.0 更新日期 2024年6月1日' },
      { x: 80, y: 560, size: 24, text: '第一步 上传图片' },
      { x: 700, y: 560, size: 24, text: 'Step two: read the text' },
      { x: 80, y: 640, size: 36, text: '识别结果按阅读顺序排列' },
      { x: 80, y: 720, size: 24, text: 'Version 2.5 build 1187' },
      { x: 80, y: 860, size: 22, color: '#444444', text: '第 1 页 共 1 页' },
    ],
  },
];

requireFont();
mkdirSync(OUT, { recursive: true });
const manifest = [];
for (const f of FIXTURES) {
  const drawn = sharp(svg(f.width, f.height, f.lines)).flatten({ background: '#ffffff' });
  let out;
  if (f.exif === 6) {
    // Stored frame = displayed frame turned 90° anticlockwise; orientation 6 turns it back.
    const upright = await drawn.png().toBuffer();
    out = await sharp(upright).rotate(-90).jpeg({ quality: 88 }).withMetadata({ orientation: 6 }).toBuffer();
  } else if (f.name.endsWith('.jpg')) {
    out = await drawn.jpeg({ quality: 88 }).toBuffer();
  } else {
    out = await drawn.png({ compressionLevel: 9, palette: true, colours: 16 }).toBuffer();
  }
  writeFileSync(new URL(f.name, OUT), out);
  manifest.push(await describe(f.name, f.width, f.height, f.lines));
  console.log(`${f.name}: ${out.length} bytes`);
}
writeFileSync(new URL('fixtures.json', OUT), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`fixtures.json: ${manifest.length} images`);
