/**
 * `/wxocr` end to end: a real gateway with the real offline engine (one worker), uploads the way
 * the seed's page sends them (wx.uploadFile: multipart, field `image`, `res.data` a string), and the
 * hostile uploads the service must survive. Every failure must be HTTP 200 + errcode + errmsg.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { deflateSync, crc32 } from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FormData, request } from 'undici';
import { ROOT, rawRequest, startGateway, type TestGateway } from '../helpers.js';
import { FakeWechat } from '../support/fake-wechat.js';

const FIXTURES = join(ROOT, 'test/fixtures/ocr');

interface OcrAnswer {
  errcode: number;
  errmsg: string;
  items?: { text: string; pos: Record<'left_top' | 'right_top' | 'right_bottom' | 'left_bottom', { x: number; y: number }> }[];
  img_size?: { w: number; h: number };
}

/** What wx.uploadFile sends: multipart with one file under `name`, plus formData text fields. */
async function upload(gw: TestGateway, file: Buffer, opts: { name?: string; type?: string; extraFile?: boolean; lang?: string } = {}) {
  const form = new FormData();
  form.append('user', 'seed-page');
  form.append(opts.name ?? 'image', new Blob([file], { type: opts.type ?? 'image/png' }), 'photo.png');
  if (opts.extraFile) form.append('image2', new Blob([file], { type: 'image/png' }), 'second.png');
  const r = await request(`${gw.url}/wxocr`, {
    method: 'POST', body: form, headers: { host: 'ocr.test', ...(opts.lang ? { 'accept-language': opts.lang } : {}) },
  });
  // The seed's page gets res.data as a string and JSON.parses it itself.
  const text = await r.body.text();
  return { status: r.statusCode, text, json: JSON.parse(text) as OcrAnswer };
}

/** A PNG whose header claims width × height, with almost no pixel data: a decompression bomb's shape. */
function bombPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('/wxocr: the seed\'s OCR service (offline engine, WeChat\'s answer format)', () => {
  let gw: TestGateway;
  let zh: Buffer;

  before(async () => {
    zh = await readFile(join(FIXTURES, 'zh-line.png'));
    gw = await startGateway({
      ocr: { workers: 1, queue: 4 },
      sites: [{ hosts: ['ocr.test'], routes: [{ path: '/wxocr', ocr: { maxFileSize: '2MiB' } }] }],
    });
  });
  after(() => gw.close());

  it('answers the seed page\'s upload with text, four corners in image pixels, and img_size', async () => {
    const en = await readFile(join(FIXTURES, 'en-line.png'));
    const r = await upload(gw, en);
    assert.equal(r.status, 200);
    assert.equal(r.json.errcode, 0);
    assert.equal(r.json.errmsg, 'ok');
    assert.deepEqual(r.json.img_size, { w: 520, h: 80 });
    assert.equal(r.json.items?.length, 1);
    const item = r.json.items![0]!;
    assert.equal(item.text.replace(/\s/g, ''), 'Printedtextrecognition2024');
    const { left_top: lt, right_bottom: rb } = item.pos;
    // The fixture's text sits at x 23–448, y 26–59 (test/fixtures/ocr/fixtures.json).
    assert.ok(lt.x >= 10 && lt.x <= 35 && lt.y >= 15 && lt.y <= 35, JSON.stringify(item.pos));
    assert.ok(rb.x >= 435 && rb.x <= 470 && rb.y >= 50 && rb.y <= 70, JSON.stringify(item.pos));
    // Exactly WeChat's shape: no extra keys unless `score` is on.
    assert.deepEqual(Object.keys(r.json).sort(), ['errcode', 'errmsg', 'img_size', 'items']);
    assert.deepEqual(Object.keys(item).sort(), ['pos', 'text']);
  });

  it('reads Chinese, and accepts WeChat\'s own field name "img" and a raw image/png body', async () => {
    const viaImg = await upload(gw, zh, { name: 'img' });
    assert.equal(viaImg.json.errcode, 0);
    assert.ok(viaImg.json.items!.length >= 1);
    assert.match(viaImg.json.items![0]!.text, /^欢迎使用微信小程序/);
    const raw = await request(`${gw.url}/wxocr`, { method: 'POST', body: zh, headers: { host: 'ocr.test', 'content-type': 'image/png' } });
    const rawJson = (await raw.body.json()) as OcrAnswer;
    assert.equal(rawJson.errcode, 0);
    assert.equal(rawJson.items![0]!.text, viaImg.json.items![0]!.text);
  });

  it('applies EXIF orientation: img_size and boxes are in the upright image', async () => {
    const r = await upload(gw, await readFile(join(FIXTURES, 'exif-rotated.jpg')), { type: 'image/jpeg' });
    assert.equal(r.json.errcode, 0);
    const fixtures = JSON.parse(await readFile(join(FIXTURES, 'fixtures.json'), 'utf8')) as { file: string; width: number; height: number }[];
    const meta = fixtures.find((f) => f.file === 'exif-rotated.jpg')!;
    assert.deepEqual(r.json.img_size, { w: meta.width, h: meta.height });
    for (const item of r.json.items!) {
      for (const p of Object.values(item.pos)) assert.ok(p.x >= 0 && p.x <= meta.width && p.y >= 0 && p.y <= meta.height);
    }
  });

  it('not an image → 200, errcode 101002, Chinese errmsg by default and English on request', async () => {
    const zhAnswer = await upload(gw, Buffer.from('%PDF-1.4 this is not an image'), { type: 'application/pdf' });
    assert.equal(zhAnswer.status, 200);
    assert.equal(zhAnswer.json.errcode, 101002);
    assert.match(zhAnswer.json.errmsg, /图片/);
    const enAnswer = await upload(gw, Buffer.from('not an image'), { lang: 'en-US,en;q=0.9,zh;q=0.5' });
    assert.equal(enAnswer.json.errcode, 101002);
    assert.match(enAnswer.json.errmsg, /cannot be decoded/);
  });

  it('a truncated JPEG → 101002, and the service keeps working afterwards', async () => {
    const jpeg = await readFile(join(FIXTURES, 'exif-rotated.jpg'));
    const r = await upload(gw, jpeg.subarray(0, Math.floor(jpeg.length / 3)), { type: 'image/jpeg' });
    assert.equal(r.status, 200);
    assert.equal(r.json.errcode, 101002);
    assert.equal((await upload(gw, zh)).json.errcode, 0);
  });

  it('a 20000×20000 PNG (decompression bomb) is refused by the pixel limit, quickly', async () => {
    const t0 = performance.now();
    const r = await upload(gw, bombPng(20000, 20000));
    assert.equal(r.status, 200);
    assert.equal(r.json.errcode, 101002);
    assert.ok(performance.now() - t0 < 5000, 'refused from the header, not after decoding 400 megapixels');
  });

  it('a 50 MB body → errcode 101002 answered before it is read, connection closed', async () => {
    const head = `POST /wxocr HTTP/1.1\r\nHost: ocr.test\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`;
    const r = await rawRequest(gw.port, head + '--x\r\n', 3000);
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'close');
    assert.equal((JSON.parse(r.body) as OcrAnswer).errcode, 101002);
    // The same limit when the size is not announced: a chunked upload stops at maxFileSize.
    const boundary = 'b0undary';
    const parts = [
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`),
      ...Array.from({ length: 48 }, () => Buffer.alloc(64 * 1024, 1)), // 3 MiB, over the route's 2 MiB
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ];
    const chunked = await request(`${gw.url}/wxocr`, {
      method: 'POST', body: Readable.from(parts), headers: { host: 'ocr.test', 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    assert.equal(chunked.statusCode, 200);
    assert.equal(((await chunked.body.json()) as OcrAnswer).errcode, 101002);
    // 101002 also means "does not decode": the log tells which limit answered.
    assert.equal(gw.access.at(-1)!.code, 'OCR_IMAGE_TOO_LARGE');
  });

  it('two files in one upload → errcode 101907', async () => {
    const r = await upload(gw, zh, { extraFile: true });
    assert.equal(r.status, 200);
    assert.equal(r.json.errcode, 101907);
  });

  it('no file, or the file under another name → 41005 media data missing', async () => {
    const form = new FormData();
    form.append('image', 'just text');
    const r = await request(`${gw.url}/wxocr`, { method: 'POST', body: form, headers: { host: 'ocr.test' } });
    assert.equal(((await r.body.json()) as OcrAnswer).errcode, 41005);
    assert.equal((await upload(gw, zh, { name: 'photo' })).json.errcode, 41005);
  });

  it('GET → 405 with errcode 43002 (a developer mistake, not a user-facing one)', async () => {
    const r = await request(`${gw.url}/wxocr`, { headers: { host: 'ocr.test' } });
    assert.equal(r.statusCode, 405);
    assert.equal(r.headers.allow, 'POST');
    assert.equal(((await r.body.json()) as OcrAnswer).errcode, 43002);
  });

  it('the gateway\'s event loop stays responsive while OCR runs (inference is in workers)', async () => {
    const page = await readFile(join(FIXTURES, 'page-1280x960.png'));
    const longestStall = async (): Promise<number> => {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const answers = await Promise.all([upload(gw, page), upload(gw, page), upload(gw, zh)]);
      h.disable();
      for (const a of answers) assert.equal(a.json.errcode, 0);
      return h.max / 1e6;
    };
    // Decoding the upload and JSON are the only main-thread work. Inference on this thread would
    // stall it 240-360 ms per image (ocr.md), in every batch; the bound leaves room for a loaded
    // machine, where other processes alone were seen to cause ~100 ms (the bench measures the real
    // figure). A VM can also freeze a whole process for a second (hypervisor steal, seen in CI), so
    // one more batch is measured when the first exceeds the bound: main-thread inference fails both.
    const stalls = [await longestStall()];
    if (stalls[0]! >= 200) stalls.push(await longestStall());
    assert.ok(Math.min(...stalls) < 200, `longest event-loop stall per batch: ${stalls.map((ms) => `${ms.toFixed(1)} ms`).join(', ')}`);
  });

  it('logs each OCR request with its outcome', () => {
    const ocrLines = gw.access.filter((e) => e.path === '/wxocr');
    assert.ok(ocrLines.some((e) => e.status === 200 && e.code === undefined));
    assert.ok(ocrLines.some((e) => e.code === 'OCR_DECODE_FAILED'));
    assert.ok(ocrLines.some((e) => e.code === 'OCR_IMAGE_TOO_LARGE'));
  });
});

describe('/wxocr with WeChat\'s cloud engine (a local server following the cv/ocr/comm contract)', () => {
  let gw: TestGateway;
  let wx: FakeWechat;
  let zh: Buffer;

  before(async () => {
    zh = await readFile(join(FIXTURES, 'zh-line.png'));
    wx = await FakeWechat.start({ appid: 'wx-test-app', secret: 'test-secret' });
    process.env.MPGATE_TEST_WX_SECRET = 'test-secret';
    gw = await startGateway({
      ocr: { workers: 1, wechat: { appid: 'wx-test-app', secretEnv: 'MPGATE_TEST_WX_SECRET', baseUrl: wx.url } },
      sites: [{
        hosts: ['ocr.test'],
        routes: [
          { path: '/cloud', ocr: { engine: 'wechat' } },
          { path: '/cloud-then-local', ocr: { engine: 'wechat', fallback: 'local' } },
        ],
      }],
    });
  });
  after(async () => {
    await gw.close();
    await wx.close();
    delete process.env.MPGATE_TEST_WX_SECRET;
  });

  async function post(path: string): Promise<OcrAnswer> {
    const form = new FormData();
    form.append('image', new Blob([zh], { type: 'image/png' }), 'photo.png');
    const r = await request(`${gw.url}${path}`, { method: 'POST', body: form, headers: { host: 'ocr.test' } });
    assert.equal(r.statusCode, 200);
    return (await r.body.json()) as OcrAnswer;
  }

  it('passes the image to cv/ocr/comm as "img" with a stable_token access_token, and WeChat\'s answer back', async () => {
    const a = await post('/cloud');
    assert.equal(a.errcode, 0);
    assert.equal(a.items![0]!.text, '腾讯');
    assert.match(a.items![1]!.text, new RegExp(`^${zh.length} bytes `), 'the fake saw exactly our bytes');
    assert.equal(wx.counts.ocr, 1);
    assert.equal(wx.counts.stableToken, 1);
    await post('/cloud');
    assert.equal(wx.counts.stableToken, 1, 'the token is cached');
  });

  it('WeChat\'s quota error reaches the page as errcode 101003 — unless a fallback engine is set', async () => {
    wx.scriptOcr({ errcode: 101003, errmsg: 'quota used up' });
    const noFallback = await post('/cloud');
    assert.equal(noFallback.errcode, 101003);
    assert.match(noFallback.errmsg, /次数/);
    wx.scriptOcr({ errcode: 101003, errmsg: 'quota used up' });
    const fellBack = await post('/cloud-then-local');
    assert.equal(fellBack.errcode, 0);
    assert.match(fellBack.items![0]!.text, /^欢迎使用微信小程序/, 'the offline engine answered');
  });
});
