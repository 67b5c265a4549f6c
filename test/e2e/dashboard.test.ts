/**
 * The admin dashboard (src/admin/dashboard/page.ts) in a real browser, against the real thing: a
 * `mpgate serve` process with an `admin:` section in a temporary config file, real backends, and
 * Debian's Chromium driven headless by playwright-core, on a 375×812 phone and on a desktop.
 *
 * Signs in (a wrong token is refused, a token that goes stale sends the page back to the sign-in
 * form), adds a site and checks the gateway routes it to its backend, sends traffic and waits for
 * it on the site's card, shows the API's validation problems next to the field, disables and
 * deletes a site through the card, switches zh/en (remembered), shows a user token only its own
 * sites, and checks that text from requests (a Host header with HTML in it) stays text.
 *
 * The page runs under DASHBOARD_CSP (set on the response here whatever the server sends), so a
 * script or style that the CSP refuses shows up as a console error. Chromium is a system package
 * (`apt-get install -y chromium`); without it this file fails, it never skips. Screenshots go to the
 * OS temp dir (mpgate-dashboard-*.png) for a person to look at. Browser-side code is passed to
 * page.evaluate as strings: the tsconfig has no DOM lib.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { launchChromium, requireChromium } from '../support/browser.js';
import { createToken } from '../../src/admin/auth.js';
import { DASHBOARD_CSP } from '../../src/admin/dashboard/page.js';
import { spawnCli, startBackend, waitFor, type Backend } from '../helpers.js';
import { serveWithAdmin, tokenAdd } from '../support/admin.js';

const PHONE: BrowserContextOptions = { viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } };

/** GET through the gateway with a chosen Host header (fetch cannot set Host). */
function viaGateway(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, body }));
    }).on('error', fail);
  });
}

/** `mpgate admin token add ARGS --config FILE`: the token it prints. */
/** One raw request, for a Host header that an HTTP client would refuse to send. */
async function rawGet(port: number, host: string): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  s.end(`GET /probe HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  s.resume(); // the answer is not needed, but 'close' only comes once it has been read
  await once(s, 'close');
}

describe('the admin dashboard in Chromium, against mpgate serve', () => {
  let dir = '';
  let child: ReturnType<typeof spawnCli> | undefined;
  let browser: Browser | undefined;
  let existing: Backend;
  let fresh: Backend;
  let gatewayPort = 0;
  let admin = '';
  let adminToken = '';
  let userToken = '';
  const contexts: BrowserContext[] = [];

  before(async () => {
    requireChromium();
    existing = await startBackend(undefined, 'existing-backend');
    fresh = await startBackend(undefined, 'fresh-backend');
    dir = await mkdtemp(join(tmpdir(), 'mpgate-dashboard-'));
    const file = join(dir, 'mpgate.yaml');
    await writeFile(file, [
      'listen: ["127.0.0.1:0"]',
      `accessLog: { path: ${JSON.stringify(join(dir, 'access.log'))} }`,
      'admin:',
      '  listen: 127.0.0.1:0',
      `  audit: ${JSON.stringify(join(dir, 'audit.log'))}`,
      'sites:',
      '  - hosts: [alice.test]',
      `    upstream: ${existing.url}`,
      '    owner: alice',
      '',
    ].join('\n'));
    // Tokens the way an administrator makes them; the CLI prints each once.
    adminToken = await tokenAdd(file, 'root', ['--role', 'admin']);
    userToken = await tokenAdd(file, 'alice');
    ({ child, port: gatewayPort, admin } = await serveWithAdmin(file));
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
    await existing?.close();
    await fresh?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh context and the dashboard in it; page errors, console errors and foreign requests are recorded. */
  async function open(device: BrowserContextOptions, locale = 'en-US') {
    const context = await browser!.newContext({ ...device, locale });
    context.setDefaultTimeout(15_000);
    contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('console', (m) => {
      // 401s are expected (the wrong token); Chromium logs every failed fetch as a console error.
      if ((m.type() === 'error' || m.type() === 'warning') && !/status of (401|400)/.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('request', (r) => requests.push(r.url()));
    // The page under its own CSP, whatever headers the server sends: a refused script or style is a console error.
    await page.route(`${admin}/`, async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, headers: { ...res.headers(), 'content-security-policy': DASHBOARD_CSP } });
    });
    const res = await page.goto(`${admin}/`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-type'] ?? '', /^text\/html/);
    await page.locator('#app[data-state="login"]').waitFor();
    const checkClean = () => {
      assert.deepEqual(problems, []);
      assert.deepEqual(requests.filter((u) => !u.startsWith(`${admin}/`)), [], 'the page only talks to the admin listener');
    };
    return { page, problems, checkClean };
  }

  async function signIn(page: Page, token: string) {
    await page.locator('#token').fill(token);
    await page.locator('#login-btn').click();
    await page.locator('#app[data-state="ready"]').waitFor();
  }

  const card = (page: Page, site: string) => page.locator(`.site[data-site="${site}"]`);
  const cardValue = async (page: Page, site: string, k: string) => (await card(page, site).locator(`[data-k="${k}"]`).textContent()) ?? '';

  it('on a phone: a wrong token is refused, then sign in, add a site, see it routed and its traffic', { timeout: 60_000 }, async (t) => {
    const { page, checkClean } = await open(PHONE);
    assert.equal(await page.locator('h1').textContent(), 'mpgate admin');

    await page.locator('#token').fill(createToken());
    await page.locator('#login-btn').click();
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#login-error').textContent(), 'This token was refused (wrong or revoked).');
    assert.equal(await page.locator('#login-error').getAttribute('role'), 'alert');
    assert.equal(await page.locator('#app').getAttribute('data-state'), 'login');
    assert.equal(await page.evaluate('sessionStorage.length'), 0, 'a refused token is not kept');

    await signIn(page, adminToken);
    assert.equal(await page.locator('#who').textContent(), 'root (admin)');
    await card(page, 'alice.test').waitFor();
    assert.match(await card(page, 'alice.test').textContent() ?? '', /alice/, 'an admin sees the owner');
    assert.equal(await card(page, 'alice.test').locator('.ups li[data-up="true"]').count(), 1, 'the upstream has a green dot');

    // Validation problems from the API land next to their field.
    await page.locator('#add-btn').click();
    assert.equal(await page.locator('#f-owner').isVisible(), true, 'an admin can set the owner');
    await page.locator('#f-host').fill('fresh.test');
    await page.locator('#f-port').fill('70000');
    await page.locator('#add-form button[type="submit"]').click();
    const portError = page.locator('#add-form .field-error[data-for="port"]');
    await portError.waitFor({ state: 'visible' });
    assert.match((await portError.textContent())!, /65535/);
    assert.equal(await page.locator('#f-port').getAttribute('aria-invalid'), 'true');

    // Add the site for real: the card appears and the gateway routes the host to its backend.
    await page.locator('#f-port').fill('');
    await page.locator('#f-upstream').fill(fresh.url);
    await page.locator('#add-form button[type="submit"]').click();
    await card(page, 'fresh.test').waitFor();
    assert.equal(await page.locator('#add-form').isVisible(), false);
    assert.equal(await page.locator('#notice').textContent(), 'Site fresh.test created.');
    const routed = await viaGateway(gatewayPort, 'fresh.test', '/hello');
    assert.equal(routed.status, 200);
    assert.equal((JSON.parse(routed.body) as { name: string; url: string }).name, 'fresh-backend');

    // Traffic shows on the card within a refresh or two.
    for (let i = 0; i < 30; i++) assert.equal((await viaGateway(gatewayPort, 'fresh.test', `/t${i}`)).status, 200);
    await waitFor(async () => Number(await cardValue(page, 'fresh.test', 'requests')) >= 31, 10_000, 'the requests on the card');
    assert.ok(Number(await cardValue(page, 'fresh.test', 'rps')) > 0, `req/s: ${await cardValue(page, 'fresh.test', 'rps')}`);
    assert.equal(await cardValue(page, 'fresh.test', 'errorRate'), '0%');
    assert.match(await cardValue(page, 'fresh.test', 'p95'), /^\d+(\.\d+)? m?s$/);
    assert.ok(await card(page, 'fresh.test').locator('svg.spark polyline.line').count() === 1, 'a sparkline');

    // Readable at 375 px: nothing wider than the screen.
    assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'no horizontal scrolling');
    const shot = join(tmpdir(), 'mpgate-dashboard-phone.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    checkClean();
  });

  it('edits a site from its card (disable: 503 at the gateway), shows failures, deletes it', { timeout: 60_000 }, async () => {
    const { page, checkClean } = await open(DESKTOP);
    await signIn(page, adminToken);
    const c = card(page, 'fresh.test');
    await c.waitFor();

    await c.getByRole('button', { name: 'Edit' }).click();
    await c.locator('input[name="disabled"]').check();
    await c.getByRole('button', { name: 'Save' }).click();
    await c.locator('[data-k="disabled"]').waitFor({ state: 'visible' });
    assert.equal(await c.getAttribute('data-disabled'), 'true');
    assert.equal((await viaGateway(gatewayPort, 'fresh.test')).status, 503);

    // The 503s are errors: error rate on the card, and the recent-errors list.
    await waitFor(async () => (await cardValue(page, 'fresh.test', 'errorRate')) !== '0%', 10_000, 'the error rate');
    await page.locator('#errors li', { hasText: 'MPG_SITE_DISABLED' }).first().waitFor();

    // Text from requests stays text: a Host header carrying HTML.
    const evil = '<img src=x onerror=alert(1)>.test';
    await rawGet(gatewayPort, evil);
    await page.locator('#errors li .req', { hasText: evil }).first().waitFor();
    assert.equal(await page.locator('#errors img').count(), 0);

    await c.getByRole('button', { name: 'Edit' }).click();
    await c.locator('input[name="disabled"]').uncheck();
    await c.getByRole('button', { name: 'Save' }).click();
    await c.locator('[data-k="disabled"]').waitFor({ state: 'hidden' });
    assert.equal((await viaGateway(gatewayPort, 'fresh.test')).status, 200);

    // Delete asks once more, then the card goes and the host is no longer served.
    await c.getByRole('button', { name: 'Delete' }).click();
    await c.getByRole('button', { name: 'Really delete?' }).click();
    await c.waitFor({ state: 'detached' });
    assert.equal(await page.locator('#notice').textContent(), 'Site fresh.test deleted.');
    assert.equal((await viaGateway(gatewayPort, 'fresh.test')).status, 404);
    checkClean();
  });

  it('Chinese from the browser language, a toggle to English that is remembered', { timeout: 60_000 }, async () => {
    const { page, checkClean } = await open(PHONE, 'zh-CN');
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    assert.equal(await page.locator('h1').textContent(), 'mpgate 管理');
    assert.equal(await page.locator('#login-btn').textContent(), '登录');
    await page.locator('#token').fill(createToken());
    await page.locator('#login-btn').click();
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#login-error').textContent(), '令牌无效或已被撤销。');

    await signIn(page, adminToken);
    await card(page, 'alice.test').waitFor();
    assert.equal(await page.locator('#sites-h').textContent(), '站点');
    assert.equal(await card(page, 'alice.test').locator('.stat span').first().textContent(), '请求/秒');
    assert.match((await page.locator('#status').textContent())!, /^更新于/);

    await page.locator('#lang').click();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.locator('h1').textContent(), 'mpgate admin');
    assert.equal(await page.locator('#sites-h').textContent(), 'Sites');
    assert.equal(await card(page, 'alice.test').locator('.stat span').first().textContent(), 'req/s');
    assert.match((await page.locator('#status').textContent())!, /^Updated/);
    assert.equal(await page.locator('#lang').textContent(), '中文');

    // Reloaded: still English (localStorage) and still signed in (sessionStorage, this tab only).
    await page.reload();
    await page.locator('#app[data-state="ready"]').waitFor();
    assert.equal(await page.locator('h1').textContent(), 'mpgate admin');
    await page.locator('#lang').click();
    assert.equal(await page.locator('h1').textContent(), 'mpgate 管理');
    checkClean();
  });

  it('a user token sees only its own sites; a token that stops working returns to the sign-in form', { timeout: 60_000 }, async () => {
    const { page, checkClean } = await open(PHONE);
    await signIn(page, userToken);
    assert.equal(await page.locator('#who').textContent(), 'alice (user)');
    await card(page, 'alice.test').waitFor();
    await page.locator('#add-btn').click();
    assert.equal(await page.locator('#f-owner').isVisible(), false, 'a user cannot pick an owner');
    await page.locator('#add-cancel').click();

    // Someone else's site appears in the file; alice's dashboard does not show it.
    const other = await viaAdminApi('POST', '/api/v1/sites', { host: 'bob.test', owner: 'bob', upstream: existing.url });
    assert.equal(other.status, 201);
    await page.waitForTimeout(2500);
    assert.deepEqual(await page.locator('.site').evaluateAll((els) => els.map((e) => e.getAttribute('data-site'))), ['alice.test']);

    // The stored token goes stale (as when it is revoked): the next refresh shows the sign-in form.
    await page.evaluate(`sessionStorage.setItem('mpgate.admin.token', ${JSON.stringify(createToken())})`);
    await page.reload();
    await page.locator('#app[data-state="login"]').waitFor();
    assert.equal(await page.locator('#login-error').textContent(), 'Your session has ended; sign in again.');
    assert.equal(await page.evaluate("sessionStorage.getItem('mpgate.admin.token')"), null);
    checkClean();
  });

  it('GET / is one self-contained document: no external script, style or image', { timeout: 60_000 }, async () => {
    const res = await fetch(`${admin}/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.doesNotMatch(html, /<(script|link|img)\b[^>]*\b(src|href)="(?!data:)/i);
    assert.equal((html.match(/<script>/g) ?? []).length, 1);
  });

  async function viaAdminApi(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${admin}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }
});
