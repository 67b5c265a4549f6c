/**
 * The demo's OCR page (GET /ocr, src/demo/ocr-page.ts) in a real browser: the demo is spawned as a
 * real `mpgate serve` process (its offline OCR engine included) and Debian's Chromium is driven
 * headless by playwright-core. The photo goes through the file input and through a drop event; the
 * lines, the boxes drawn over the displayed image, the raw JSON and errmsg in both languages are
 * read back from the page and compared with test/fixtures/ocr/fixtures.json.
 *
 * Chromium is a system package (`apt-get install -y chromium`, done by scripts/install-test-deps.sh
 * when run as root). Without it this file fails, it never skips. Screenshots are written to the OS
 * temp dir (mpgate-ocr-page-*.png) for a person to look at.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { launchChromium, requireChromium } from '../support/browser.js';
import { ocrMessage } from '../../src/ocr/messages.js';
import { ROOT, spawnCli, startedPort } from '../helpers.js';

const FIXTURES = join(ROOT, 'test/fixtures/ocr');
/** The first answer waits for the engine's models to load; later ones take well under a second. */
const OCR_WAIT = 60_000;

type Corner = { x: number; y: number };
interface OcrAnswer {
  errcode: number;
  errmsg: string;
  items?: { text: string; pos: Record<'left_top' | 'right_top' | 'right_bottom' | 'left_bottom', Corner> }[];
  img_size?: { w: number; h: number };
}
interface Box { left: number; top: number; right: number; bottom: number }
interface Fixture { file: string; width: number; height: number; lines: { text: string; box: Box }[] }

const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 860 } };

describe('the demo OCR page (/ocr) in Chromium', () => {
  let child: (ChildProcess & { out: () => string; err: () => string }) | undefined;
  let browser: Browser | undefined;
  let base = '';
  let fixture: Fixture;
  const contexts: BrowserContext[] = [];

  before(async () => {
    requireChromium();
    const manifest = JSON.parse(await readFile(join(FIXTURES, 'fixtures.json'), 'utf8')) as Fixture[];
    fixture = manifest.find((f) => f.file === 'mixed-lines.png')!;
    child = spawnCli(['serve', '--listen', '127.0.0.1:0', '--access-log', 'off']);
    base = `http://127.0.0.1:${await startedPort(child)}`;
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  /** A fresh browser context and page; every request, page error and console error is recorded. */
  async function open(locale: string, device: BrowserContextOptions) {
    const context = await browser!.newContext({ ...device, locale });
    contexts.push(context);
    const page = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    const res = await page.goto(`${base}/ocr`);
    assert.equal(res?.status(), 200);
    await page.locator('#app[data-state="idle"]').waitFor();
    /** Nothing failed in the page (a CSP refusal would be a console error) and it called nothing but its own origin. */
    const checkClean = () => {
      assert.deepEqual(problems, []);
      const foreign = requests.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
      assert.deepEqual(foreign, [], 'the page must work offline: no request leaves its origin');
      assert.ok(requests.includes(`${base}/wxocr`) || requests.length === 1, 'uploads go to /wxocr on the same origin');
    };
    return { page, requests, checkClean };
  }

  async function finished(page: Page): Promise<string> {
    await page.locator('#app[data-state="done"], #app[data-state="error"]').waitFor({ timeout: OCR_WAIT });
    return (await page.locator('#app').getAttribute('data-state'))!;
  }

  /**
   * Where an element is drawn, in CSS pixels (getBoundingClientRect: for an SVG shape, its geometry;
   * playwright's boundingBox() pads SVG shapes by a few pixels).
   */
  function rect(locator: ReturnType<Page['locator']>): Promise<{ x: number; y: number; width: number; height: number }> {
    return locator.evaluate((el) => {
      const r = (el as any).getBoundingClientRect() as { x: number; y: number; width: number; height: number };
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    });
  }

  async function answerOf(page: Page): Promise<OcrAnswer> {
    return JSON.parse((await page.locator('#json').textContent()) ?? '') as OcrAnswer;
  }

  /** The lines must be the ground truth; exact is expected, but the engine may drop spaces (reported). */
  function checkLines(t: TestContext, got: string[]) {
    const want = fixture.lines.map((l) => l.text);
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    const squash = (s: string) => s.replace(/\s+/g, '');
    t.diagnostic(`not an exact match with fixtures.json: page ${JSON.stringify(got)} vs ground truth ${JSON.stringify(want)}`);
    assert.deepEqual(got.map(squash), want.map(squash), 'the recognised lines, ignoring spaces');
  }

  /**
   * One polygon per line, where the answer says (to the pixel, at the displayed scale) and where the
   * text really is in the image (fixtures.json's ink boxes, within 10 image pixels per edge).
   */
  async function checkBoxes(t: TestContext, page: Page, answer: OcrAnswer) {
    const items = answer.items!;
    const size = answer.img_size!;
    assert.deepEqual(size, { w: fixture.width, h: fixture.height });
    const img = await rect(page.locator('#img'));
    const overlay = await rect(page.locator('#boxes'));
    for (const k of ['x', 'y', 'width', 'height'] as const) assert.ok(Math.abs(img[k] - overlay[k]) < 1, `the overlay covers the image (${k})`);
    const scale = img.width / size.w;
    assert.ok(Math.abs(img.height / size.h - scale) < 0.01, 'the image keeps its aspect ratio');
    assert.equal(await page.locator('#boxes polygon').count(), fixture.lines.length, 'one box per line');
    const drawn: Box[] = [];
    for (let i = 0; i < items.length; i++) {
      const r = await rect(page.locator(`#boxes polygon[data-index="${i}"]`));
      const box = { left: r.x - img.x, top: r.y - img.y, right: r.x - img.x + r.width, bottom: r.y - img.y + r.height };
      drawn.push(box);
      const c = Object.values(items[i]!.pos);
      const want = {
        left: Math.min(...c.map((p) => p.x)) * scale, top: Math.min(...c.map((p) => p.y)) * scale,
        right: Math.max(...c.map((p) => p.x)) * scale, bottom: Math.max(...c.map((p) => p.y)) * scale,
      };
      for (const k of ['left', 'top', 'right', 'bottom'] as const) {
        assert.ok(Math.abs(box[k] - want[k]) <= 1.5, `box ${i} ${k}: drawn at ${box[k].toFixed(1)}, the answer's pos gives ${want[k].toFixed(1)}`);
        const truth = fixture.lines[i]!.box[k] * scale;
        assert.ok(Math.abs(box[k] - truth) <= 10 * scale, `box ${i} ${k}: drawn at ${box[k].toFixed(1)}, the text is at ${truth.toFixed(1)} (scale ${scale.toFixed(3)})`);
      }
    }
    t.diagnostic(`displayed at scale ${scale.toFixed(3)}; boxes (css px) ${JSON.stringify(drawn.map((b) => [b.left, b.top, b.right, b.bottom].map((v) => Math.round(v))))}`);
  }

  it('GET /ocr is one self-contained page: no external URL, a CSP that keeps it on its own origin', async () => {
    const res = await fetch(`${base}/ocr`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, 'no URL to anywhere else');
    assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    // Anything else still reaches the echo backend.
    assert.equal(((await (await fetch(`${base}/ocrx`)).json()) as { url: string }).url, '/ocrx');
  });

  it('phone, zh-CN: a chosen photo gives its lines, one box per line at the right place, the raw JSON and the time', async (t) => {
    const { page, checkClean } = await open('zh-CN', PHONE);
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    assert.equal(await page.locator('h1').textContent(), '文字识别试用');
    await page.locator('#file').setInputFiles(join(FIXTURES, 'mixed-lines.png'));
    assert.equal(await finished(page), 'done', await page.locator('#status').textContent() ?? '');

    const answer = await answerOf(page);
    assert.equal(answer.errcode, 0);
    const lines = await page.locator('#lines button').allTextContents();
    assert.deepEqual(lines, answer.items!.map((i) => i.text), 'the page shows the answer\'s lines, in its order');
    checkLines(t, lines);
    await checkBoxes(t, page, answer);
    assert.match((await page.locator('#status').textContent())!, /^识别出 3 行文字，用时 \d+ ms/);
    assert.equal(await page.locator('#error').isVisible(), false);

    // Raw JSON: there, collapsed until asked for.
    assert.equal(await page.locator('#json').isVisible(), false);
    await page.locator('#raw summary').click();
    assert.equal(await page.locator('#json').isVisible(), true);
    assert.match((await page.locator('#raw summary').textContent())!, /HTTP 200/);

    // A click on a line highlights its box (and only it); a second click clears it.
    await page.locator('#lines button').nth(1).click();
    assert.equal(await page.locator('#boxes polygon.sel').count(), 1);
    assert.equal(await page.locator('#boxes polygon.sel').getAttribute('data-index'), '1');
    assert.deepEqual(await Promise.all([0, 1, 2].map((i) => page.locator('#lines button').nth(i).getAttribute('aria-pressed'))), ['false', 'true', 'false']);
    const shot = join(tmpdir(), 'mpgate-ocr-page-phone.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    await page.locator('#lines button').nth(1).click();
    assert.equal(await page.locator('#boxes polygon.sel').count(), 0);
    checkClean();
  });

  it('desktop, en-US: a photo dropped on the page (DataTransfer built in the page) is read the same way; the toggle switches language', async (t) => {
    const { page, checkClean } = await open('en-US', DESKTOP);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.locator('h1').textContent(), 'Try OCR');
    const png = (await readFile(join(FIXTURES, 'mixed-lines.png'))).toString('base64');
    // Runs in the page; this project's TypeScript has no DOM types, hence the untyped globalThis.
    const dataTransfer = await page.evaluateHandle(([b64, name]) => {
      const w = globalThis as any;
      const bytes = Uint8Array.from(w.atob(b64) as string, (ch) => ch.charCodeAt(0));
      const dt = new w.DataTransfer();
      dt.items.add(new w.File([bytes], name, { type: 'image/png' }));
      return dt;
    }, [png, 'mixed-lines.png'] as const);
    const zone = page.locator('#drop');
    await zone.dispatchEvent('dragenter', { dataTransfer });
    await zone.dispatchEvent('dragover', { dataTransfer });
    assert.match((await page.locator('#app').getAttribute('class')) ?? '', /\bdragging\b/, 'the drop zone lights up');
    await zone.dispatchEvent('drop', { dataTransfer });
    assert.equal(await finished(page), 'done', await page.locator('#status').textContent() ?? '');
    assert.doesNotMatch((await page.locator('#app').getAttribute('class')) ?? '', /\bdragging\b/);

    const answer = await answerOf(page);
    const lines = await page.locator('#lines button').allTextContents();
    assert.deepEqual(lines, answer.items!.map((i) => i.text));
    checkLines(t, lines);
    await checkBoxes(t, page, answer);
    assert.match((await page.locator('#status').textContent())!, /^3 lines recognised in \d+ ms/);

    await page.locator('#lines button').nth(0).click();
    const shot = join(tmpdir(), 'mpgate-ocr-page-desktop.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // The language toggle: everything, the status line included, switches and back.
    await page.locator('#lang').click();
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    assert.equal(await page.locator('h1').textContent(), '文字识别试用');
    assert.match((await page.locator('#status').textContent())!, /^识别出 3 行文字/);
    assert.equal(await page.locator('#lang').getAttribute('aria-label'), 'Switch to English');
    await page.locator('#lang').click();
    assert.equal(await page.locator('h1').textContent(), 'Try OCR');
    checkClean();
  });

  for (const [locale, lang] of [['zh-CN', 'zh'], ['en-US', 'en']] as const) {
    it(`a file that is not an image shows errmsg in the page's language (${locale})`, async () => {
      const { page, checkClean } = await open(locale, PHONE);
      await page.locator('#file').setInputFiles(join(ROOT, 'package.json'));
      assert.equal(await finished(page), 'error');
      const errmsg = ocrMessage('OCR_DECODE_FAILED', lang);
      assert.equal(await page.locator('#errmsg').textContent(), errmsg);
      assert.equal(await page.locator('#errcode').textContent(), 'errcode 101002');
      assert.equal(await page.locator('#error').isVisible(), true);
      assert.equal(await page.locator('#error').getAttribute('role'), 'alert');
      assert.equal(await page.locator('#result').isVisible(), false);
      assert.deepEqual(await answerOf(page), { errcode: 101002, errmsg });
      checkClean();
    });
  }
});
