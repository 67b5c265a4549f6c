/**
 * WeChat OCR client: AccessTokenManager and WechatOcrEngine against the fake WeChat server
 * (test/support/fake-wechat.ts) over real loopback sockets. One clock is shared by the fake and the
 * code under test, so token lifetimes and force-refresh spacing need no sleeps.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, it } from 'node:test';
import { OcrError } from '../../src/ocr/errors.js';
import { WechatApiError, WechatOcrEngine, type WechatOcrOptions } from '../../src/ocr/wechat-engine.js';
import { AccessTokenManager, apiUrl, WechatTokenError, type AccessTokenOptions, type TokenRefreshEvent } from '../../src/ocr/wechat-token.js';
import { defaultOcrAnswer, FakeWechat, type FakeWechatOptions } from '../support/fake-wechat.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const MIB = 1024 * 1024;

/** A PNG signature and some bytes: the fake reads files, it does not decode them. */
function png(size = 64, seed = 1): Uint8Array {
  const b = new Uint8Array(size);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < size; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Env {
  clock: { t: number };
  advance(ms: number): void;
  fake: FakeWechat;
  tokens: AccessTokenManager;
  ocr: WechatOcrEngine;
}

async function setup(o: { token?: Partial<AccessTokenOptions>; ocr?: Partial<WechatOcrOptions>; fake?: FakeWechatOptions } = {}): Promise<Env> {
  const clock = { t: Date.UTC(2025, 0, 1, 8) };
  const now = () => clock.t;
  const fake = await FakeWechat.start({ now, ...o.fake });
  const tokens = new AccessTokenManager({ appid: fake.appid, secret: fake.secret, baseUrl: fake.url, now, retryDelays: [5, 5], ...o.token });
  const ocr = new WechatOcrEngine({ tokens, baseUrl: fake.url, retryDelays: [5], timeout: 5_000, ...o.ocr });
  cleanups.push(async () => {
    await ocr.close();
    await tokens.close();
    await fake.close();
  });
  return { clock, advance: (ms) => (clock.t += ms), fake, tokens, ocr };
}

/** Resolves to the rejection of `p`, failing when it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

async function ocrError(p: Promise<unknown>): Promise<OcrError> {
  const err = await rejection(p);
  assert.ok(err instanceof OcrError, `expected an OcrError, got ${String(err)}`);
  return err;
}

describe('AccessTokenManager', () => {
  it('builds endpoint URLs under baseUrl, keeping a path prefix', () => {
    assert.equal(apiUrl('https://api.weixin.qq.com', 'cgi-bin/stable_token'), 'https://api.weixin.qq.com/cgi-bin/stable_token');
    assert.equal(apiUrl('http://127.0.0.1:9/', 'cv/ocr/comm'), 'http://127.0.0.1:9/cv/ocr/comm');
    assert.equal(apiUrl('https://gw.example/wx', 'cv/ocr/comm'), 'https://gw.example/wx/cv/ocr/comm');
  });

  it('caches the token and reuses it while more than 5 minutes remain', async () => {
    const { fake, tokens, advance } = await setup();
    const t1 = await tokens.get();
    assert.equal(t1, fake.currentStableToken);
    advance(HOUR);
    assert.equal(await tokens.get(), t1);
    advance(HOUR - 5 * MIN - 1_000); // 5 min + 1 s left
    assert.equal(await tokens.get(), t1);
    assert.equal(fake.counts.stableToken, 1);
    assert.deepEqual(fake.stableTokenRequests.map((r) => r.force), [false]);
  });

  it('refreshes (normal mode) once less than 5 minutes remain; the old token keeps working', async () => {
    const { fake, tokens, advance } = await setup();
    const t1 = await tokens.get();
    advance(2 * HOUR - 5 * MIN + 1_000); // 4 min 59 s left
    const t2 = await tokens.get();
    assert.notEqual(t2, t1);
    assert.equal(fake.counts.stableToken, 2);
    assert.equal(fake.counts.forcedRefresh, 0);
    assert.ok(fake.tokenValid(t1), 'normal mode never invalidates the earlier token');
    assert.equal(await tokens.get(), t2);
    assert.equal(fake.counts.stableToken, 2);
  });

  it('honours a configured refreshMargin', async () => {
    const { fake, tokens, advance } = await setup({ token: { refreshMargin: 30 * MIN } });
    await tokens.get();
    advance(2 * HOUR - 31 * MIN);
    await tokens.get();
    assert.equal(fake.counts.stableToken, 1);
    advance(2 * MIN);
    await tokens.get();
    assert.equal(fake.counts.stableToken, 2);
  });

  it('single-flight: 20 concurrent get() calls make one request', async () => {
    const { fake, tokens, advance } = await setup();
    fake.scriptStableToken({ delay: 50 });
    const all = await Promise.all(Array.from({ length: 20 }, () => tokens.get()));
    assert.equal(new Set(all).size, 1);
    assert.equal(fake.counts.stableToken, 1);
    // Same when the cached token is due for refresh.
    advance(2 * HOUR - 60_000);
    fake.scriptStableToken({ delay: 50 });
    const again = await Promise.all(Array.from({ length: 20 }, () => tokens.get()));
    assert.equal(new Set(again).size, 1);
    assert.notEqual(again[0], all[0]);
    assert.equal(fake.counts.stableToken, 2);
  });

  it('surfaces token endpoint errors with WeChat\'s errcode, without retrying them', async () => {
    const cases: [string, (f: FakeWechat) => Partial<AccessTokenOptions>, number][] = [
      ['invalid appid', () => ({ appid: 'wx-not-mine' }), 40013],
      ['invalid secret', () => ({ secret: 'wrong' }), 40125],
      ['secret frozen', (f) => ((f.secretFrozen = true), {}), 40243],
    ];
    for (const [name, make, errcode] of cases) {
      const { fake, clock } = await setup();
      const tokens = new AccessTokenManager({ appid: fake.appid, secret: fake.secret, baseUrl: fake.url, now: () => clock.t, retryDelays: [5, 5], ...make(fake) });
      cleanups.push(() => tokens.close());
      const err = await rejection(tokens.get());
      assert.ok(err instanceof WechatTokenError, name);
      assert.equal(err.code, 'WX_TOKEN_CREDENTIALS', name);
      assert.equal(err.errcode, errcode, name);
      assert.equal(err.retryable, false, name);
      assert.ok(!err.message.includes(fake.secret), 'the secret never appears in an error');
      assert.equal(fake.counts.stableToken, 1, `${name}: not retried`);
    }
  });

  it('retries errcode -1 (busy) with backoff, then succeeds', async () => {
    const { fake, tokens } = await setup();
    fake.scriptStableToken({ errcode: -1, errmsg: 'system error' }, { errcode: -1, errmsg: 'system error' });
    const token = await tokens.get();
    assert.equal(token, fake.currentStableToken);
    assert.equal(fake.counts.stableToken, 3);
  });

  it('gives up after retryDelays.length retries with WX_TOKEN_BUSY errcode -1', async () => {
    const { fake, tokens } = await setup();
    fake.scriptStableToken({ errcode: -1 }, { errcode: -1 }, { errcode: -1 }, { errcode: -1 });
    const err = await rejection(tokens.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.code, 'WX_TOKEN_BUSY');
    assert.equal(err.errcode, -1);
    assert.equal(fake.counts.stableToken, 3);
    // The fourth scripted answer is still queued: the next get() meets it, then succeeds.
    assert.equal(await tokens.get(), fake.currentStableToken);
  });

  it('retries network failures and HTTP 5xx; types them WX_TOKEN_NETWORK', async () => {
    const { fake, tokens } = await setup();
    fake.scriptStableToken({ destroy: true }, { status: 502, body: 'bad gateway' });
    assert.equal(await tokens.get(), fake.currentStableToken);
    assert.equal(fake.counts.stableToken, 3);

    const { fake: fake2, tokens: tokens2 } = await setup();
    fake2.scriptStableToken({ status: 200, body: 'not json' }, { destroy: true }, { destroy: true });
    const err = await rejection(tokens2.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.code, 'WX_TOKEN_NETWORK');
    assert.equal(err.errcode, undefined);
    assert.equal(fake2.counts.stableToken, 3);

    const { fake: fake3, tokens: tokens3 } = await setup();
    fake3.scriptStableToken({ status: 403, body: 'forbidden' });
    const err3 = await rejection(tokens3.get());
    assert.ok(err3 instanceof WechatTokenError);
    assert.equal(err3.retryable, false);
    assert.equal(fake3.counts.stableToken, 1, 'a 4xx is not retried');
  });

  it('times out a token request that gets no answer', async () => {
    const { fake, tokens } = await setup({ token: { timeout: 100, retryDelays: [] } });
    fake.scriptStableToken({ delay: 2_000 });
    const err = await rejection(tokens.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.code, 'WX_TOKEN_NETWORK');
    assert.match(err.message, /timed out after 100 ms/);
  });

  it('serves the cached token while it is still valid when an early refresh fails', async () => {
    const { fake, tokens, advance } = await setup();
    const events: TokenRefreshEvent[] = [];
    const onEvent = (m: unknown) => events.push(m as TokenRefreshEvent);
    subscribe('mpgate:wechat:token', onEvent);
    cleanups.push(async () => void unsubscribe('mpgate:wechat:token', onEvent));
    const t1 = await tokens.get();
    advance(2 * HOUR - 2 * MIN);
    fake.scriptStableToken({ errcode: -1 }, { errcode: -1 }, { errcode: -1 });
    assert.equal(await tokens.get(), t1);
    assert.deepEqual(events.at(-1), { force: false, ok: false, code: 'WX_TOKEN_BUSY', errcode: -1, servedStale: true });
    // Once it has expired there is nothing to fall back on.
    advance(3 * MIN);
    fake.scriptStableToken({ errcode: -1 }, { errcode: -1 }, { errcode: -1 });
    const err = await rejection(tokens.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.errcode, -1);
    // And the next attempt recovers.
    assert.notEqual(await tokens.get(), t1);
  });

  it('invalidate() only acts on the current token', async () => {
    const { fake, tokens } = await setup();
    const t1 = await tokens.get();
    assert.equal(tokens.invalidate('some-old-token'), false);
    assert.equal(await tokens.get(), t1);
    assert.equal(fake.counts.stableToken, 1);
    assert.equal(tokens.invalidate(t1), true);
    fake.forceRefreshElsewhere();
    const t2 = await tokens.get();
    assert.notEqual(t2, t1);
    assert.equal(tokens.invalidate(t1), false, 'already replaced');
    assert.equal(fake.counts.forcedRefresh, 0, 'normal mode found the new token: no forced refresh spent');
  });

  it('limits forced refreshes to forceRefreshPerDay in 24 h and forceRefreshInterval apart', async () => {
    const { fake, tokens, advance } = await setup({ token: { forceRefreshPerDay: 3 } });
    for (let i = 0; i < 3; i++) {
      const t = await tokens.get();
      fake.rejectToken(t);
      tokens.invalidate(t);
      assert.notEqual(await tokens.get(), t);
      assert.equal(tokens.canForceRefresh, false, 'not within 30 s');
      advance(30_000);
    }
    assert.equal(fake.counts.forcedRefresh, 3);
    assert.equal(tokens.canForceRefresh, false, 'three used in the last 24 h');
    const t = await tokens.get();
    fake.rejectToken(t);
    tokens.invalidate(t);
    const err = await rejection(tokens.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.code, 'WX_TOKEN_REJECTED');
    assert.equal(err.errcode, 40001);
    assert.equal(fake.counts.forcedRefresh, 3, 'no fourth forced request was sent');
    advance(24 * HOUR - 60_000); // the first one leaves the window
    assert.equal(tokens.canForceRefresh, true);
    // t has expired meanwhile: normal mode hands out a new token, nothing to force.
    const t4 = await tokens.get();
    assert.notEqual(t4, t);
    assert.equal(fake.counts.forcedRefresh, 3);
    fake.rejectToken(t4);
    tokens.invalidate(t4);
    assert.notEqual(await tokens.get(), t4);
    assert.equal(fake.counts.forcedRefresh, 4);
    assert.equal(fake.counts.forcedRefused, 0, 'WeChat never had to refuse one');
  });

  it('close() is idempotent, lets a refresh in flight finish, then refuses', async () => {
    const { fake, tokens } = await setup();
    fake.scriptStableToken({ delay: 100 });
    const pending = tokens.get();
    const c1 = tokens.close();
    const c2 = tokens.close();
    assert.equal(c1, c2);
    assert.equal(await pending, fake.currentStableToken);
    await c1;
    await tokens.close();
    const err = await rejection(tokens.get());
    assert.ok(err instanceof WechatTokenError);
    assert.equal(err.code, 'WX_TOKEN_CLOSED');
  });
});

describe('WechatOcrEngine', () => {
  it('sends the image as multipart field img and passes WeChat\'s answer through exactly', async () => {
    const { fake, ocr } = await setup();
    const img = png(1000);
    const answer = await ocr.recognize(img);
    assert.deepEqual(answer, defaultOcrAnswer(img));
    assert.equal(fake.counts.ocr, 1);
    const seen = fake.ocrRequests[0]!;
    assert.equal(seen.token, fake.currentStableToken);
    assert.deepEqual(seen.img?.bytes, img);
    assert.equal(seen.img?.filename, 'image.png');
    assert.equal(seen.img?.type, 'image/png');
    // A second image reuses the token.
    await ocr.recognize(png(10, 2), { score: true });
    assert.equal(fake.counts.stableToken, 1);
  });

  it('keeps items as WeChat gave them and fills in only missing fields', async () => {
    const { fake, ocr } = await setup();
    const items = [{ text: ' 空格 ', pos: { left_top: { x: 0, y: 0 }, right_top: { x: 9, y: 0 }, right_bottom: { x: 9, y: 9 }, left_bottom: { x: 0, y: 9 } }, extra: [1] }];
    fake.answer = () => ({ errcode: 0, errmsg: 'ok', items, img_size: { w: 10, h: 10 }, unknown_top_level: true });
    assert.deepEqual(await ocr.recognize(png()), { errcode: 0, errmsg: 'ok', items, img_size: { w: 10, h: 10 } });
    fake.answer = () => ({ errcode: 0, errmsg: 'ok' });
    assert.deepEqual(await ocr.recognize(png()), { errcode: 0, errmsg: 'ok', items: [], img_size: { w: 0, h: 0 } });
    fake.answer = () => ({ errcode: 0, errmsg: 'ok', items: [{ text: 1 }] });
    const err = await ocrError(ocr.recognize(png()));
    assert.equal(err.code, 'OCR_UPSTREAM_FAILED');
  });

  it('40001: invalidates once, forces one refresh when normal mode returns the same token, retries once', async () => {
    const { fake, tokens, ocr } = await setup();
    const t1 = await tokens.get();
    fake.rejectToken(t1);
    const img = png();
    assert.deepEqual(await ocr.recognize(img), defaultOcrAnswer(img));
    assert.equal(fake.counts.ocr, 2);
    assert.deepEqual(fake.stableTokenRequests.map((r) => r.force), [false, false, true]);
    const t2 = fake.currentStableToken;
    assert.notEqual(t2, t1);
    assert.deepEqual(fake.ocrRequests.map((r) => [r.token, r.errcode]), [[t1, 40001], [t2, 0]]);
  });

  it('40001 after someone else force-refreshed: a normal refresh finds the new token, no forced refresh', async () => {
    const { fake, tokens, ocr } = await setup();
    const t1 = await tokens.get();
    const t2 = fake.forceRefreshElsewhere();
    await ocr.recognize(png());
    assert.deepEqual(fake.ocrRequests.map((r) => [r.token, r.errcode]), [[t1, 40001], [t2, 0]]);
    assert.equal(fake.counts.forcedRefresh, 0);
  });

  it('42001 (token expired) and 40014 (invalid token) are treated like 40001: one refresh, one retry', async () => {
    for (const errcode of [42001, 40014]) {
      const { fake, ocr } = await setup();
      fake.scriptOcr({ errcode });
      await ocr.recognize(png());
      assert.deepEqual(fake.ocrRequests.map((r) => r.errcode), [errcode, 0]);
      // Normal mode handed back the same token (WeChat still considers it current), so it was forced.
      assert.deepEqual(fake.stableTokenRequests.map((r) => r.force), [false, false, true]);
      assert.notEqual(fake.ocrRequests[1]!.token, fake.ocrRequests[0]!.token);
    }
  });

  it('10 concurrent 40001 answers cause one refresh', async () => {
    const { fake, tokens, ocr } = await setup();
    const t1 = await tokens.get();
    fake.rejectToken(t1);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => ocr.recognize(png(32, i))));
    assert.equal(answers.length, 10);
    assert.equal(fake.counts.forcedRefresh, 1);
    assert.deepEqual(fake.stableTokenRequests.map((r) => r.force), [false, false, true]);
    assert.equal(fake.counts.ocr, 20);
    assert.equal(fake.ocrRequests.filter((r) => r.errcode === 40001).length, 10);
  });

  it('two rejections within 30 s: the second gets no forced refresh (OCR_UPSTREAM_AUTH); after 30 s it does', async () => {
    const { fake, tokens, ocr, advance } = await setup();
    fake.rejectToken(await tokens.get());
    await ocr.recognize(png());
    assert.equal(fake.counts.forcedRefresh, 1);

    advance(10_000);
    const t2 = await tokens.get();
    fake.rejectToken(t2);
    const err = await ocrError(ocr.recognize(png()));
    assert.equal(err.code, 'OCR_UPSTREAM_AUTH');
    assert.equal(err.errcode, 101906);
    assert.ok(err.cause instanceof WechatTokenError);
    assert.equal(err.cause.code, 'WX_TOKEN_REJECTED');
    assert.equal(err.cause.errcode, 40001);
    assert.equal(fake.counts.forcedRefresh, 1, 'no forced request inside 30 s');
    assert.deepEqual(fake.stableTokenRequests.map((r) => r.force), [false, false, true, false]);

    advance(20_000); // 30 s after the first forced refresh
    await ocr.recognize(png());
    assert.equal(fake.counts.forcedRefresh, 2);
    assert.equal(fake.counts.forcedRefused, 0);
    assert.notEqual(fake.currentStableToken, t2);
  });

  it('a token WeChat still rejects after the retry is OCR_UPSTREAM_AUTH, not retried again', async () => {
    const { fake, ocr } = await setup();
    fake.scriptOcr({ errcode: 40001 }, { errcode: 40001 });
    const err = await ocrError(ocr.recognize(png()));
    assert.equal(err.code, 'OCR_UPSTREAM_AUTH');
    assert.ok(err.cause instanceof WechatApiError);
    assert.equal(err.cause.errcode, 40001);
    assert.equal(fake.counts.ocr, 2);
  });

  it('token endpoint errors reach recognize() as OCR_UPSTREAM_AUTH with WeChat\'s errcode in the cause', async () => {
    const { fake, clock } = await setup();
    const tokens = new AccessTokenManager({ appid: fake.appid, secret: 'wrong', baseUrl: fake.url, now: () => clock.t });
    const engine = new WechatOcrEngine({ tokens, baseUrl: fake.url });
    cleanups.push(async () => {
      await engine.close();
      await tokens.close();
    });
    const err = await ocrError(engine.recognize(png()));
    assert.equal(err.code, 'OCR_UPSTREAM_AUTH');
    assert.ok(err.cause instanceof WechatTokenError);
    assert.equal(err.cause.errcode, 40125);
    assert.equal(fake.counts.ocr, 0);
  });

  it('retries errcode -1 (busy) with backoff, then succeeds; gives OCR_BUSY (-1) when it persists', async () => {
    const { fake, ocr } = await setup();
    fake.scriptOcr({ errcode: -1 });
    const img = png();
    assert.deepEqual(await ocr.recognize(img), defaultOcrAnswer(img));
    assert.equal(fake.counts.ocr, 2);

    fake.scriptOcr({ errcode: -1 }, { errcode: -1 });
    const err = await ocrError(ocr.recognize(img));
    assert.equal(err.code, 'OCR_BUSY');
    assert.equal(err.errcode, -1);
    assert.deepEqual(err.toAnswer(), { errcode: -1, errmsg: 'system busy' });
    assert.equal(fake.counts.ocr, 4);
  });

  it('maps WeChat errcodes, keeping the one the client sees identical', async () => {
    const { fake, ocr } = await setup();
    const cases: [number, string, number][] = [
      [101003, 'OCR_QUOTA', 101003],
      [101002, 'OCR_DECODE_FAILED', 101002],
      [101000, 'OCR_BAD_IMAGE_URL', 101000],
      [41005, 'OCR_NO_IMAGE', 41005],
      [101001, 'OCR_UPSTREAM_FAILED', 101905],
      [45009, 'OCR_UPSTREAM_FAILED', 101905],
    ];
    for (const [wechat, code, errcode] of cases) {
      const before = fake.counts.ocr;
      fake.scriptOcr({ errcode: wechat, errmsg: `msg ${wechat}` });
      const err = await ocrError(ocr.recognize(png()));
      assert.equal(err.code, code, String(wechat));
      assert.equal(err.errcode, errcode, String(wechat));
      assert.equal(err.toAnswer().errcode, errcode);
      assert.ok(err.cause instanceof WechatApiError);
      assert.deepEqual([err.cause.errcode, err.cause.errmsg], [wechat, `msg ${wechat}`]);
      assert.equal(fake.counts.ocr - before, 1, `${wechat} is not retried`);
    }
    fake.scriptOcr({ errcode: 101003 });
    assert.deepEqual((await ocrError(ocr.recognize(png()))).toAnswer(), { errcode: 101003, errmsg: 'quota used up' });
  });

  it('refuses images over 2 MB locally with 101002 before any call; exactly 2 MB goes through', async () => {
    const { fake, ocr } = await setup();
    const err = await ocrError(ocr.recognize(png(2 * MIB + 1)));
    assert.equal(err.code, 'OCR_IMAGE_TOO_LARGE');
    assert.equal(err.errcode, 101002);
    assert.equal(fake.counts.ocr, 0);
    assert.equal(fake.counts.stableToken, 0, 'not even a token was fetched');
    const empty = await ocrError(ocr.recognize(new Uint8Array(0)));
    assert.equal(empty.code, 'OCR_NO_IMAGE');
    assert.equal(fake.counts.ocr, 0);
    const exact = png(2 * MIB);
    assert.deepEqual(await ocr.recognize(exact), defaultOcrAnswer(exact));
    assert.equal(fake.ocrRequests[0]!.img?.bytes.length, 2 * MIB);
  });

  it('the fake itself enforces WeChat\'s 2 MB limit (101002) when the engine is configured higher', async () => {
    const { fake, ocr } = await setup({ ocr: { maxImageBytes: 3 * MIB } });
    const err = await ocrError(ocr.recognize(png(2 * MIB + 1)));
    assert.equal(err.errcode, 101002);
    assert.equal(fake.counts.ocr, 1);
  });

  it('times out as OCR_TIMEOUT and does not resend (WeChat may have counted the call)', async () => {
    const { fake, ocr } = await setup({ ocr: { timeout: 100 } });
    fake.scriptOcr({ delay: 1_000 });
    const t0 = performance.now();
    const err = await ocrError(ocr.recognize(png()));
    assert.equal(err.code, 'OCR_TIMEOUT');
    assert.equal(err.errcode, 101901);
    assert.ok(performance.now() - t0 < 900);
    assert.equal(fake.counts.ocr, 1);
  });

  it('retries a refused connection, then reports OCR_UPSTREAM_FAILED', async () => {
    const dead = http.createServer();
    dead.listen(0, '127.0.0.1');
    await once(dead, 'listening');
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    let gets = 0;
    const engine = new WechatOcrEngine({ tokens: { get: async () => (gets++, 'tok'), invalidate: () => false }, baseUrl: `http://127.0.0.1:${port}`, retryDelays: [5, 5] });
    cleanups.push(() => engine.close());
    const err = await ocrError(engine.recognize(png()));
    assert.equal(err.code, 'OCR_UPSTREAM_FAILED');
    assert.equal(err.retryable, true);
    assert.equal(gets, 3, 'first try and two retries');
  });

  it('close() is idempotent and lets a request in flight finish; later calls get OCR_CLOSED', async () => {
    const { fake, ocr, tokens } = await setup();
    fake.scriptOcr({ delay: 150 });
    const img = png();
    const inflight = ocr.recognize(img);
    await new Promise((r) => setTimeout(r, 30));
    const c1 = ocr.close();
    const c2 = ocr.close();
    assert.equal(c1, c2);
    const late = await ocrError(ocr.recognize(img));
    assert.equal(late.code, 'OCR_CLOSED');
    assert.deepEqual(await inflight, defaultOcrAnswer(img));
    await c1;
    await ocr.close();
    await tokens.close();
    await tokens.close();
    // A token source that closed under an engine surfaces as OCR_CLOSED.
    const engine = new WechatOcrEngine({ tokens, baseUrl: fake.url });
    cleanups.push(() => engine.close());
    assert.equal((await ocrError(engine.recognize(img))).code, 'OCR_CLOSED');
  });
});

describe('fake WeChat conformance', () => {
  async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await res.json()) as Record<string, unknown>;
  }

  it('stable_token validates its input and returns the same token in normal mode', async () => {
    const { fake } = await setup();
    const url = `${fake.url}/cgi-bin/stable_token`;
    const ok = { grant_type: 'client_credential', appid: fake.appid, secret: fake.secret };
    assert.equal((await post(url, { ...ok, grant_type: 'password' })).errcode, 40002);
    assert.equal((await post(url, { ...ok, appid: '' })).errcode, 41002);
    assert.equal((await post(url, { ...ok, secret: undefined })).errcode, 41004);
    const a = await post(url, ok);
    assert.equal(a.expires_in, 7200);
    assert.equal(typeof a.access_token, 'string');
    const b = await post(url, { ...ok, force_refresh: false });
    assert.equal(b.access_token, a.access_token);
    const c = await post(url, { ...ok, force_refresh: true });
    assert.notEqual(c.access_token, a.access_token);
    assert.equal(fake.tokenValid(a.access_token as string), false, 'force_refresh invalidates the previous token');
    assert.deepEqual(await post(url, { ...ok, force_refresh: true }), { errcode: 45011, errmsg: 'api minute-quota reach limit' });
  });

  it('classic /cgi-bin/token issues a new token each call; the previous one lasts 5 more minutes', async () => {
    const { fake, clock } = await setup();
    const get = async (secret: string) => (await (await fetch(`${fake.url}/cgi-bin/token?grant_type=client_credential&appid=${fake.appid}&secret=${secret}`)).json()) as Record<string, unknown>;
    assert.equal((await get('wrong')).errcode, 40001);
    const a = (await get(fake.secret)).access_token as string;
    const b = (await get(fake.secret)).access_token as string;
    assert.notEqual(a, b);
    assert.ok(fake.tokenValid(a));
    clock.t += 5 * MIN;
    assert.equal(fake.tokenValid(a), false);
    assert.ok(fake.tokenValid(b));
  });

  it('cv/ocr/comm checks the token, then the img field', async () => {
    const { fake, tokens } = await setup();
    const token = await tokens.get();
    const call = async (q: string, form?: FormData) => (await (await fetch(`${fake.url}/cv/ocr/comm${q}`, { method: 'POST', body: form ?? new FormData() })).json()) as Record<string, unknown>;
    assert.equal((await call('')).errcode, 41001);
    assert.equal((await call('?access_token=nope')).errcode, 40001);
    assert.equal((await call(`?access_token=${token}`)).errcode, 41005);
    const form = new FormData();
    form.append('image', new Blob([png()]), 'a.png');
    assert.equal((await call(`?access_token=${token}`, form)).errcode, 41005, 'the field must be called img');
  });
});
