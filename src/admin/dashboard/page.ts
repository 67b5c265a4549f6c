/**
 * The admin dashboard, served by the admin listener at `/`: sign in with an API token, then every
 * site the token may see as a card (hosts, owner, upstreams with up/down dots, req/s, error rate,
 * p95, a sparkline of the last minutes, certificate expiry, disabled badge) refreshed every 2 s,
 * the recent failed requests, a form to add a site and one per card to change its upstream or
 * disable it. Problems the API reports come back next to the field they name. Chinese or English
 * after navigator.language, with a toggle remembered in localStorage. Laid out for a 375 px phone
 * first, in columns on wider screens.
 *
 * One self-contained HTML string, like the demo's OCR page (src/demo/ocr-page.ts): no build step, no
 * framework, nothing fetched from elsewhere. The inline script and style are allowed by hash in
 * DASHBOARD_CSP, which also keeps the page's requests on its own origin (the admin API). The token
 * lives in sessionStorage (gone with the tab) and goes out as `Authorization: Bearer`, never in a
 * URL or a cookie, so other sites cannot make the browser use it (no CSRF). Every value from the
 * API reaches the page through textContent or setAttribute, never innerHTML. The script avoids
 * template literals so that this file can hold it in a String.raw template.
 *
 * API used (all JSON, `Authorization: Bearer TOKEN`; 401 anywhere goes back to the sign-in form):
 *   GET /api/v1/me, GET /api/v1/sites, GET /api/v1/errors, POST /api/v1/sites,
 *   PATCH /api/v1/sites/:name, DELETE /api/v1/sites/:name.
 */
import { inlinePageCsp, inlinePageHtml } from '../../server/page-csp.js';

const STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1d2129; --muted: #5c6370; --bg: #f4f5f7; --card: #fff; --line: #d9dce1;
  --accent: #07c160; --accent-fg: #fff; --up: #12a150; --down: #d92d20; --warn-bg: #fdecea; --warn-fg: #a61b12;
  --ok-bg: #e7f6ee; --ok-fg: #0b6b3a; --spark: #1a73e8; --spark-fill: rgba(26, 115, 232, .12); --badge: #eef0f3; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --muted: #a0a6b0; --bg: #16181c; --card: #20232a; --line: #3a3f48; --up: #3ccf7e; --down: #ff6b5e;
    --warn-bg: #3b1d1b; --warn-fg: #ffb4a9; --ok-bg: #15301f; --ok-fg: #8fe0b0; --spark: #5aa0ff; --spark-fill: rgba(90, 160, 255, .16);
    --badge: #2c3039; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
header.top { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line); }
.top-in { max-width: 1200px; margin: 0 auto; padding: 8px 12px; display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
h1 { font-size: 1.15rem; margin: 0; margin-right: auto; }
h2 { font-size: 1.05rem; margin: 0; }
h3 { font-size: 1rem; margin: 0; overflow-wrap: anywhere; }
main { max-width: 1200px; margin: 0 auto; padding: 12px; }
button, input { font: inherit; color: inherit; }
.btn { border: 1px solid var(--line); background: var(--card); border-radius: 8px; padding: 6px 12px; cursor: pointer; min-height: 40px; }
.btn:hover { border-color: var(--accent); }
.btn.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-fg); font-weight: 600; }
.btn.danger { color: var(--down); }
.btn.danger.armed { background: var(--down); border-color: var(--down); color: #fff; }
.btn:disabled { opacity: .6; cursor: default; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
#who { color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
@media (max-width: 479px) { #who { order: 5; flex-basis: 100%; font-size: .8rem; margin-top: -4px; } .top .btn { min-height: 36px; padding: 4px 10px; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 12px; }
.login { max-width: 420px; margin: 8vh auto 0; }
.login p { margin: 4px 0 12px; color: var(--muted); font-size: .9rem; }
label { display: block; font-weight: 600; font-size: .92rem; margin: 10px 0 4px; }
input[type=text], input[type=password], input[type=number], input[type=url] { width: 100%; min-height: 42px; padding: 8px 10px;
  border: 1px solid var(--line); border-radius: 8px; background: var(--bg); }
input[aria-invalid=true] { border-color: var(--down); }
.check { display: flex; align-items: center; gap: 8px; font-weight: 400; }
.check input { width: 20px; height: 20px; }
.hint { color: var(--muted); font-size: .85rem; margin: 4px 0 0; }
.field-error { color: var(--warn-fg); font-size: .88rem; margin: 4px 0 0; }
.alert { background: var(--warn-bg); color: var(--warn-fg); border-radius: 8px; padding: 8px 12px; margin: 10px 0 0; overflow-wrap: anywhere; }
.notice { background: var(--ok-bg); color: var(--ok-fg); border-radius: 8px; padding: 8px 12px; margin: 0 0 12px; }
.row { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 12px; }
.bar { display: flex; align-items: center; justify-content: space-between; gap: 8px; flex-wrap: wrap; margin: 4px 0 10px; }
#status { color: var(--muted); font-size: .85rem; margin: 0 0 10px; min-height: 1.3em; }
#status.bad { color: var(--warn-fg); }
.two { display: grid; gap: 0 12px; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 640px) { .two { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
#add-form { margin-bottom: 12px; }
#sites { display: grid; gap: 12px; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 720px) { #sites { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (min-width: 1100px) { #sites { grid-template-columns: repeat(3, minmax(0, 1fr)); } }
.site.off { opacity: .75; }
.site-head { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
.badge { display: inline-block; font-size: .75rem; border-radius: 999px; padding: 1px 8px; background: var(--badge); color: var(--muted); white-space: nowrap; }
.badge.off { background: var(--warn-bg); color: var(--warn-fg); font-weight: 600; }
dl { margin: 8px 0 0; display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 2px 10px; font-size: .9rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.ups { list-style: none; margin: 0; padding: 0; }
.dot { display: inline-block; width: .6em; height: .6em; border-radius: 50%; margin-right: .4em; vertical-align: 1px; background: var(--down); }
.dot.up { background: var(--up); }
.stats { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 4px; margin-top: 10px; text-align: center; }
.stat b { display: block; font-size: 1.05rem; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.stat span { color: var(--muted); font-size: .72rem; line-height: 1.2; display: block; }
.stat.bad b { color: var(--down); }
svg.spark { display: block; width: 100%; height: 32px; margin-top: 8px; }
svg.spark .area { fill: var(--spark-fill); stroke: none; }
svg.spark .line { fill: none; stroke: var(--spark); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
svg.spark .err { fill: none; stroke: var(--down); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.cert.warn { color: var(--down); font-weight: 600; }
.muted { color: var(--muted); }
.edit { border-top: 1px solid var(--line); margin-top: 10px; padding-top: 4px; }
#errors { list-style: none; margin: 0; padding: 0; }
#no-errors { margin: 0; }
#errors li { border-bottom: 1px solid var(--line); padding: 6px 0; font-size: .88rem; display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 0 8px; }
#errors li:last-child { border-bottom: 0; }
.code { font-weight: 700; font-variant-numeric: tabular-nums; color: var(--down); }
.code.c4 { color: var(--muted); }
.req { overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .84rem; }
.sub { color: var(--muted); font-size: .8rem; grid-column: 2; overflow-wrap: anywhere; }
section + section { margin-top: 20px; }
[hidden] { display: none !important; }
`;

const BODY = String.raw`
<header class="top">
  <div class="top-in">
    <h1 data-i18n="title"></h1>
    <span id="who" hidden></span>
    <button type="button" class="btn" id="lang"></button>
    <button type="button" class="btn" id="logout" data-i18n="logout" hidden></button>
  </div>
</header>
<main id="app" data-state="loading">
  <section id="login-view" class="card login" hidden>
    <h2 data-i18n="loginH"></h2>
    <form id="login-form" novalidate>
      <label for="token" data-i18n="tokenLabel"></label>
      <input type="password" id="token" name="token" autocomplete="off" autocapitalize="off" spellcheck="false" required>
      <p class="hint" data-i18n="tokenHint"></p>
      <div id="login-error" class="alert" role="alert" hidden></div>
      <div class="row"><button type="submit" class="btn primary" id="login-btn" data-i18n="login"></button></div>
    </form>
  </section>

  <div id="main-view" hidden>
    <p id="status" role="status" aria-live="polite"></p>
    <div id="notice" class="notice" role="status" hidden></div>
    <section aria-labelledby="sites-h">
      <div class="bar">
        <h2 id="sites-h" data-i18n="sitesH"></h2>
        <button type="button" class="btn primary" id="add-btn" aria-expanded="false" aria-controls="add-form" data-i18n="addBtn"></button>
      </div>
      <form id="add-form" class="card" novalidate hidden>
        <h3 data-i18n="addH"></h3>
        <div class="two">
          <div>
            <label for="f-host" data-i18n="host"></label>
            <input type="text" id="f-host" name="host" autocomplete="off" autocapitalize="off" spellcheck="false" inputmode="url" required>
            <p class="hint" data-i18n="hostHint"></p>
            <p class="field-error" data-for="host" hidden></p>
          </div>
          <div id="owner-field">
            <label for="f-owner" data-i18n="owner"></label>
            <input type="text" id="f-owner" name="owner" autocomplete="off" autocapitalize="off" spellcheck="false">
            <p class="hint" data-i18n="ownerHint"></p>
            <p class="field-error" data-for="owner" hidden></p>
          </div>
          <div>
            <label for="f-port" data-i18n="port"></label>
            <input type="number" id="f-port" name="port" min="1" max="65535" inputmode="numeric">
            <p class="field-error" data-for="port" hidden></p>
          </div>
          <div>
            <label for="f-upstream" data-i18n="upstream"></label>
            <input type="text" id="f-upstream" name="upstream" autocomplete="off" autocapitalize="off" spellcheck="false" inputmode="url" placeholder="http://127.0.0.1:8001">
            <p class="field-error" data-for="upstream" hidden></p>
          </div>
        </div>
        <p class="hint" data-i18n="orHint"></p>
        <label class="check"><input type="checkbox" id="f-tls" name="tls"> <span data-i18n="tlsLabel"></span></label>
        <p class="field-error" data-for="tls" hidden></p>
        <div class="alert form-error" role="alert" hidden></div>
        <div class="row">
          <button type="submit" class="btn primary" data-i18n="create"></button>
          <button type="button" class="btn" id="add-cancel" data-i18n="cancel"></button>
        </div>
      </form>
      <p id="no-sites" class="muted" data-i18n="noSites" hidden></p>
      <div id="sites"></div>
    </section>
    <section aria-labelledby="errors-h">
      <div class="bar"><h2 id="errors-h" data-i18n="errorsH"></h2></div>
      <div class="card">
        <p id="no-errors" class="muted" data-i18n="noErrors" hidden></p>
        <ul id="errors"></ul>
      </div>
    </section>
  </div>
</main>
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var T = {
    zh: {
      pageTitle: 'mpgate 管理面板',
      title: 'mpgate 管理',
      langBtn: 'English',
      langLabel: 'Switch to English',
      loginH: '登录',
      tokenLabel: '访问令牌',
      tokenHint: '令牌由管理员用 mpgate admin token add 创建，只保存在本标签页中。',
      login: '登录',
      checking: '正在验证…',
      badToken: '令牌无效或已被撤销。',
      expired: '登录已失效，请重新登录。',
      emptyToken: '请输入令牌。',
      logout: '退出',
      who: '{name}（{role}）',
      admin: '管理员',
      user: '用户',
      sitesH: '站点',
      addBtn: '添加站点',
      addH: '添加站点',
      host: '域名',
      hostHint: '例如 alice.example.com',
      owner: '所有者',
      ownerHint: '站点归属的用户名',
      port: '本机端口',
      upstream: '上游地址',
      orHint: '填写端口（上游为 http://127.0.0.1:端口）或完整的上游地址；都不填则自动分配一个空闲端口。',
      create: '创建',
      cancel: '取消',
      save: '保存',
      edit: '修改',
      del: '删除',
      confirmDel: '确认删除？',
      editUpstream: '上游地址（多个用逗号分隔）',
      tlsLabel: 'HTTPS（自动申请并续期证书，小程序必需）',
      disableLabel: '停用此站点（请求返回 503）',
      disabled: '已停用',
      tlsAuto: '自动证书',
      tlsFiles: '证书文件',
      hostsK: '域名',
      ownerK: '所有者',
      upstreamK: '上游',
      routes: '{n} 条路由',
      up: '正常',
      down: '不可用',
      noUpstream: '无',
      certK: '证书',
      certDays: '还剩 {n} 天',
      certExpired: '已过期 {n} 天',
      certPending: '尚未签发',
      httpOnly: '仅 HTTP',
      certTitle: '有效期至 {date}，签发者 {issuer}',
      rps: '请求/秒',
      errRate: '错误率',
      p95: 'P95 延迟',
      requests: '5 分钟请求',
      spark: '最近几分钟的请求数（红线为错误）',
      noStats: '暂无流量数据',
      noSites: '还没有站点。',
      errorsH: '最近的错误',
      noErrors: '最近没有错误。',
      updated: '更新于 {time}，每 2 秒刷新',
      offline: '无法连接管理接口（{msg}），正在重试…',
      created: '已创建站点 {name}。',
      saved: '站点 {name} 已保存。',
      deleted: '站点 {name} 已删除。',
      failed: '操作失败：{msg}',
      httpStatus: 'HTTP {status}',
      ms: '{n} ms',
      s: '{n} s'
    },
    en: {
      pageTitle: 'mpgate dashboard',
      title: 'mpgate admin',
      langBtn: '中文',
      langLabel: '切换到中文',
      loginH: 'Sign in',
      tokenLabel: 'API token',
      tokenHint: 'Tokens are made by the administrator with mpgate admin token add. It is kept in this tab only.',
      login: 'Sign in',
      checking: 'Checking…',
      badToken: 'This token was refused (wrong or revoked).',
      expired: 'Your session has ended; sign in again.',
      emptyToken: 'Enter a token.',
      logout: 'Sign out',
      who: '{name} ({role})',
      admin: 'admin',
      user: 'user',
      sitesH: 'Sites',
      addBtn: 'Add a site',
      addH: 'Add a site',
      host: 'Host name',
      hostHint: 'For example alice.example.com',
      owner: 'Owner',
      ownerHint: 'User the site belongs to',
      port: 'Local port',
      upstream: 'Upstream URL',
      orHint: 'Give a port (the upstream is then http://127.0.0.1:port) or a full upstream URL; leave both empty to get the next free port.',
      create: 'Create',
      cancel: 'Cancel',
      save: 'Save',
      edit: 'Edit',
      del: 'Delete',
      confirmDel: 'Really delete?',
      editUpstream: 'Upstream URL (several: separate with commas)',
      tlsLabel: 'HTTPS (certificate issued and renewed automatically; mini-programs need it)',
      disableLabel: 'Disable this site (requests get 503)',
      disabled: 'Disabled',
      tlsAuto: 'auto certificate',
      tlsFiles: 'certificate files',
      hostsK: 'Hosts',
      ownerK: 'Owner',
      upstreamK: 'Upstream',
      routes: '{n} routes',
      up: 'up',
      down: 'down',
      noUpstream: 'none',
      certK: 'Certificate',
      certDays: '{n} days left',
      certExpired: 'expired {n} days ago',
      certPending: 'not issued yet',
      httpOnly: 'HTTP only',
      certTitle: 'Valid until {date}, issued by {issuer}',
      rps: 'req/s',
      errRate: 'errors',
      p95: 'p95',
      requests: 'requests (5 min)',
      spark: 'Requests over the last minutes (errors in red)',
      noStats: 'No traffic data yet',
      noSites: 'No sites yet.',
      errorsH: 'Recent errors',
      noErrors: 'No errors recently.',
      updated: 'Updated {time}, refreshed every 2 s',
      offline: 'Cannot reach the admin API ({msg}); retrying…',
      created: 'Site {name} created.',
      saved: 'Site {name} saved.',
      deleted: 'Site {name} deleted.',
      failed: 'Failed: {msg}',
      httpStatus: 'HTTP {status}',
      ms: '{n} ms',
      s: '{n} s'
    }
  };
  var REFRESH_MS = 2000;
  var CERT_WARN_DAYS = 14;
  var SVGNS = 'http://www.w3.org/2000/svg';
  var TOKEN_KEY = 'mpgate.admin.token';
  var LANG_KEY = 'mpgate.admin.lang';

  function $(id) { return document.getElementById(id); }
  function stored(store, key) { try { return store.getItem(key); } catch (e) { return null; } }
  function store(s, key, value) { try { if (value === null) s.removeItem(key); else s.setItem(key, value); } catch (e) { /* storage off */ } }

  var lang = stored(localStorage, LANG_KEY);
  if (lang !== 'zh' && lang !== 'en') lang = /^zh/i.test(navigator.language || '') ? 'zh' : 'en';
  function t(key, vars) {
    var s = T[lang][key];
    if (s === undefined) s = key;
    if (vars) s = s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : String(vars[k]); });
    return s;
  }

  var app = $('app');
  var token = stored(sessionStorage, TOKEN_KEY);
  var me = null;
  var sitesData = null;
  var errorsData = null;
  var cards = new Map();
  var timer = 0;
  var refreshing = false;
  var generation = 0;   // bumped at sign-out: answers to older requests are dropped
  var lastOk = 0;
  var statusState = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function i18n(node, key) { node.setAttribute('data-i18n', key); node.textContent = t(key); return node; }
  /** A labelled checkbox named like the API field, with the place its validation problem shows. */
  function checkField(name, labelKey) {
    var label = el('label', 'check');
    var box = el('input');
    box.type = 'checkbox';
    box.name = name;
    label.appendChild(box);
    label.appendChild(i18n(el('span'), labelKey));
    var error = el('p', 'field-error');
    error.setAttribute('data-for', name);
    error.hidden = true;
    return { label: label, box: box, error: error };
  }

  // ---- API ----------------------------------------------------------------------------------
  function AuthError() { this.name = 'AuthError'; }
  function api(method, path, body) {
    var gen = generation;
    var init = { method: method, headers: { authorization: 'Bearer ' + token, accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (gen !== generation) throw new AuthError();
        if (res.status === 401) { signOut('expired'); throw new AuthError(); }
        return { status: res.status, ok: res.ok, json: json };
      });
    });
  }
  /** The API's error object, or one made from the status. */
  function apiError(r) {
    var e = r.json && r.json.error;
    if (e && typeof e === 'object') return e;
    return { status: r.status, message: t('httpStatus', { status: r.status }) };
  }

  // ---- sign in / out ------------------------------------------------------------------------
  function show(state) {
    app.setAttribute('data-state', state);
    $('login-view').hidden = state !== 'login';
    $('main-view').hidden = state !== 'ready';
    $('logout').hidden = state !== 'ready';
    $('who').hidden = state !== 'ready';
  }
  function loginError(key, extra) {
    var box = $('login-error');
    box.hidden = !key;
    box.setAttribute('data-key', key || '');
    box.setAttribute('data-extra', extra || '');
    box.textContent = key ? t(key, { msg: extra }) + (extra && key !== 'failed' ? ' (' + extra + ')' : '') : '';
  }
  function signOut(reason) {
    generation++;
    clearTimeout(timer);
    token = null;
    me = null;
    sitesData = null;
    errorsData = null;
    store(sessionStorage, TOKEN_KEY, null);
    cards.forEach(function (c) { c.el.remove(); });
    cards.clear();
    $('errors').textContent = '';
    $('notice').hidden = true;
    noticeState = null;
    $('add-form').hidden = true;
    $('add-btn').setAttribute('aria-expanded', 'false');
    loginError(reason || null);
    show('login');
    $('token').value = '';
    $('token').focus();
  }
  function start() {
    return api('GET', '/api/v1/me').then(function (r) {
      if (!r.ok || !r.json) throw new Error(apiError(r).message);
      me = r.json;
      $('owner-field').hidden = me.role !== 'admin';
      renderWho();
      show('ready');
      refresh();
    });
  }
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var value = $('token').value.trim();
    if (!value) { loginError('emptyToken'); return; }
    var btn = $('login-btn');
    btn.disabled = true;
    btn.textContent = t('checking');
    token = value;
    loginError(null);
    start().then(function () {
      store(sessionStorage, TOKEN_KEY, value);
    }, function (err) {
      if (err instanceof AuthError) { loginError('badToken'); return; }
      token = null;
      loginError('failed', err && err.message);
    }).then(function () {
      btn.disabled = false;
      btn.textContent = t('login');
    });
  });
  $('logout').addEventListener('click', function () { signOut(null); });

  // ---- refresh ------------------------------------------------------------------------------
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }
  function refresh() {
    if (!token || refreshing) return;
    // A hidden tab does not poll; it catches up when shown again.
    if (document.hidden) { schedule(); return; }
    refreshing = true;
    var gen = generation;
    Promise.all([api('GET', '/api/v1/sites'), api('GET', '/api/v1/errors')]).then(function (rs) {
      if (!rs[0].ok) throw new Error(apiError(rs[0]).message);
      sitesData = (rs[0].json && rs[0].json.sites) || [];
      errorsData = rs[1].ok && rs[1].json ? rs[1].json.errors || [] : [];
      lastOk = Date.now();
      setStatus(null);
      renderSites();
      renderErrors();
    }, function (err) {
      if (err instanceof AuthError) return;
      setStatus(err && err.message ? err.message : String(err));
    }).then(function () {
      refreshing = false;
      if (token && gen === generation) schedule();
    });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden && token) refresh(); });
  function setStatus(problem) {
    statusState = problem;
    var s = $('status');
    s.classList.toggle('bad', problem !== null);
    if (problem !== null) s.textContent = t('offline', { msg: problem });
    else if (lastOk) s.textContent = t('updated', { time: new Date(lastOk).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB') });
    else s.textContent = '';
  }
  var noticeTimer = 0;
  var noticeState = null;
  /** A short confirmation above the sites (kept as key + values so that the language toggle redraws it). */
  function notice(key, vars) {
    var n = $('notice');
    noticeState = { key: key, vars: vars };
    n.textContent = t(key, vars);
    n.setAttribute('data-key', key);
    n.className = key === 'failed' ? 'alert' : 'notice';
    n.setAttribute('role', key === 'failed' ? 'alert' : 'status');
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { n.hidden = true; noticeState = null; }, 5000);
  }

  // ---- formatting ---------------------------------------------------------------------------
  function fmtRps(x) {
    if (!(x > 0)) return '0';
    if (x < 10) return x.toFixed(2).replace(/\.?0+$/, '');
    if (x < 1000) return x.toFixed(1).replace(/\.0$/, '');
    return Math.round(x).toString();
  }
  function fmtRate(x) {
    if (!(x > 0)) return '0%';
    var p = x * 100;
    return (p < 10 ? p.toFixed(1).replace(/\.0$/, '') : Math.round(p).toString()) + '%';
  }
  function fmtMs(ms) {
    if (!(ms > 0)) return '–';
    if (ms < 10) return t('ms', { n: ms.toFixed(1).replace(/\.0$/, '') });
    if (ms < 1000) return t('ms', { n: Math.round(ms) });
    return t('s', { n: (ms / 1000).toFixed(ms < 10000 ? 2 : 1).replace(/\.?0+$/, '') });
  }
  function fmtTime(v) {
    var d = typeof v === 'number' ? new Date(v) : typeof v === 'string' ? new Date(v) : null;
    if (!d || isNaN(d.getTime())) return '';
    return d.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB');
  }
  function fmtDate(v) {
    var d = new Date(v);
    return isNaN(d.getTime()) ? String(v) : d.toLocaleDateString(lang === 'zh' ? 'zh-CN' : 'en-GB', { year: 'numeric', month: 'short', day: 'numeric' });
  }
  function upstreamText(u) {
    if (u === null || u === undefined) return '';
    return Array.isArray(u) ? u.join(', ') : String(u);
  }

  // ---- site cards ---------------------------------------------------------------------------
  function field(dl, key) {
    var dt = i18n(el('dt'), key);
    var dd = el('dd');
    dl.appendChild(dt);
    dl.appendChild(dd);
    return { dt: dt, dd: dd };
  }
  function stat(parent, key, k) {
    var box = el('div', 'stat');
    var b = el('b');
    b.setAttribute('data-k', k);
    box.appendChild(b);
    box.appendChild(i18n(el('span'), key));
    parent.appendChild(box);
    return { box: box, b: b };
  }
  function makeCard(name) {
    var c = { name: name, el: el('article', 'card site') };
    c.el.setAttribute('data-site', name);
    var head = el('div', 'site-head');
    c.title = el('h3', null, name);
    head.appendChild(c.title);
    c.offBadge = i18n(el('span', 'badge off'), 'disabled');
    c.offBadge.setAttribute('data-k', 'disabled');
    c.tlsBadge = el('span', 'badge');
    head.appendChild(c.offBadge);
    head.appendChild(c.tlsBadge);
    c.el.appendChild(head);

    var dl = el('dl');
    c.hosts = field(dl, 'hostsK');
    c.owner = field(dl, 'ownerK');
    c.ups = field(dl, 'upstreamK');
    c.upList = el('ul', 'ups');
    c.ups.dd.appendChild(c.upList);
    c.cert = field(dl, 'certK');
    c.cert.dd.setAttribute('data-k', 'cert');
    c.el.appendChild(dl);

    var stats = el('div', 'stats');
    c.rps = stat(stats, 'rps', 'rps');
    c.err = stat(stats, 'errRate', 'errorRate');
    c.p95 = stat(stats, 'p95', 'p95');
    c.req = stat(stats, 'requests', 'requests');
    c.el.appendChild(stats);
    c.spark = document.createElementNS(SVGNS, 'svg');
    c.spark.setAttribute('class', 'spark');
    c.spark.setAttribute('viewBox', '0 0 100 30');
    c.spark.setAttribute('preserveAspectRatio', 'none');
    c.spark.setAttribute('role', 'img');
    c.el.appendChild(c.spark);

    var actions = el('div', 'row');
    c.editBtn = i18n(el('button', 'btn'), 'edit');
    c.editBtn.type = 'button';
    c.editBtn.setAttribute('aria-expanded', 'false');
    c.delBtn = i18n(el('button', 'btn danger'), 'del');
    c.delBtn.type = 'button';
    actions.appendChild(c.editBtn);
    actions.appendChild(c.delBtn);
    c.el.appendChild(actions);

    // The edit form: filled when opened, left alone by the refreshes while open.
    var form = el('form', 'edit');
    form.noValidate = true;
    form.hidden = true;
    var uid = 'e' + Math.random().toString(36).slice(2);
    var lab = i18n(el('label'), 'editUpstream');
    lab.htmlFor = uid + 'u';
    var up = el('input');
    up.type = 'text';
    up.id = uid + 'u';
    up.name = 'upstream';
    up.autocomplete = 'off';
    up.spellcheck = false;
    var upErr = el('p', 'field-error');
    upErr.setAttribute('data-for', 'upstream');
    upErr.hidden = true;
    var disabledField = checkField('disabled', 'disableLabel');
    var dis = disabledField.box;
    var tlsField = checkField('tls', 'tlsLabel');
    var tlsBox = tlsField.box;
    var formErr = el('div', 'alert form-error');
    formErr.setAttribute('role', 'alert');
    formErr.hidden = true;
    var row = el('div', 'row');
    var save = i18n(el('button', 'btn primary'), 'save');
    save.type = 'submit';
    var cancel = i18n(el('button', 'btn'), 'cancel');
    cancel.type = 'button';
    row.appendChild(save);
    row.appendChild(cancel);
    [lab, up, upErr, disabledField.label, disabledField.error, tlsField.label, tlsField.error, formErr, row].forEach(function (n) { form.appendChild(n); });
    c.el.appendChild(form);
    c.form = form;

    c.editBtn.addEventListener('click', function () {
      if (!form.hidden) { closeEdit(c); return; }
      var s = c.data;
      c.origUpstream = upstreamText(s.upstream);
      up.value = c.origUpstream;
      up.disabled = s.upstream === null || s.upstream === undefined;   // a site with routes: edit the config file
      dis.checked = !!s.disabled;
      tlsBox.checked = !!s.tls;
      // Certificate files are set in the config file; only "auto" is switched here.
      tlsBox.disabled = s.tls === 'files';
      clearProblems(form);
      form.hidden = false;
      c.editBtn.setAttribute('aria-expanded', 'true');
      (up.disabled ? dis : up).focus();
    });
    cancel.addEventListener('click', function () { closeEdit(c); });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var body = {};
      var v = up.value.trim();
      if (!up.disabled && v !== c.origUpstream) {
        var list = v.split(/[\s,]+/).filter(Boolean);
        body.upstream = list.length > 1 ? list : v;
      }
      if (dis.checked !== !!c.data.disabled) body.disabled = dis.checked;
      if (!tlsBox.disabled && tlsBox.checked !== !!c.data.tls) body.tls = tlsBox.checked ? 'auto' : null;
      if (Object.keys(body).length === 0) { closeEdit(c); return; }
      save.disabled = true;
      clearProblems(form);
      api('PATCH', '/api/v1/sites/' + encodeURIComponent(c.name), body).then(function (r) {
        if (!r.ok) { showProblems(form, apiError(r)); return; }
        closeEdit(c);
        notice('saved', { name: c.name });
        refresh();
      }, function (err) {
        if (!(err instanceof AuthError)) showProblems(form, { message: err.message });
      }).then(function () { save.disabled = false; });
    });

    var disarm = 0;
    c.delBtn.addEventListener('click', function () {
      if (!c.delBtn.classList.contains('armed')) {
        c.delBtn.classList.add('armed');
        c.delBtn.setAttribute('data-i18n', 'confirmDel');
        c.delBtn.textContent = t('confirmDel');
        disarm = setTimeout(unarm, 4000);
        return;
      }
      clearTimeout(disarm);
      unarm();
      c.delBtn.disabled = true;
      api('DELETE', '/api/v1/sites/' + encodeURIComponent(c.name)).then(function (r) {
        if (!r.ok) { notice('failed', { msg: apiError(r).message }); return; }
        notice('deleted', { name: c.name });
        refresh();
      }, function (err) {
        if (!(err instanceof AuthError)) notice('failed', { msg: err.message });
      }).then(function () { c.delBtn.disabled = false; });
    });
    function unarm() {
      c.delBtn.classList.remove('armed');
      c.delBtn.setAttribute('data-i18n', 'del');
      c.delBtn.textContent = t('del');
    }
    return c;
  }
  function closeEdit(c) {
    c.form.hidden = true;
    c.editBtn.setAttribute('aria-expanded', 'false');
  }

  function fillCard(c, s) {
    c.data = s;
    c.el.classList.toggle('off', !!s.disabled);
    c.el.setAttribute('data-disabled', String(!!s.disabled));
    c.offBadge.hidden = !s.disabled;
    c.tlsBadge.hidden = !s.tls;
    c.tlsBadge.textContent = s.tls === 'auto' ? t('tlsAuto') : s.tls ? t('tlsFiles') : '';
    c.hosts.dd.textContent = (s.hosts || []).join(', ');
    var showOwner = me && me.role === 'admin';
    c.owner.dt.hidden = c.owner.dd.hidden = !showOwner;
    c.owner.dd.textContent = s.owner || '–';

    c.upList.textContent = '';
    var ups = s.upstreams || [];
    if (ups.length === 0) {
      var none = el('li', 'muted', upstreamText(s.upstream) || t('noUpstream'));
      c.upList.appendChild(none);
    }
    ups.forEach(function (u) {
      var li = el('li');
      var dot = el('span', 'dot' + (u.up ? ' up' : ''));
      dot.setAttribute('role', 'img');
      dot.setAttribute('aria-label', t(u.up ? 'up' : 'down'));
      dot.title = t(u.up ? 'up' : 'down');
      li.setAttribute('data-up', String(!!u.up));
      li.appendChild(dot);
      li.appendChild(document.createTextNode(u.origin));
      c.upList.appendChild(li);
    });
    if (s.routes > 1) c.upList.appendChild(el('li', 'muted', t('routes', { n: s.routes })));

    var cert = c.cert.dd;
    cert.className = 'cert';
    cert.removeAttribute('title');
    if (s.cert) {
      var days = Math.floor(s.cert.daysLeft);
      cert.textContent = days < 0 ? t('certExpired', { n: -days }) : t('certDays', { n: days });
      cert.classList.toggle('warn', days < CERT_WARN_DAYS);
      cert.title = t('certTitle', { date: fmtDate(s.cert.notAfter), issuer: s.cert.issuer || '?' });
      cert.setAttribute('data-days', String(days));
    } else {
      cert.textContent = s.tls ? t('certPending') : t('httpOnly');
      cert.classList.toggle('warn', !!s.tls);
      cert.classList.toggle('muted', !s.tls);
      cert.removeAttribute('data-days');
    }

    var st = s.stats;
    c.rps.b.textContent = st ? fmtRps(st.rps) : '–';
    c.err.b.textContent = st ? fmtRate(st.errorRate) : '–';
    c.err.box.classList.toggle('bad', !!st && st.errorRate >= 0.05);
    c.p95.b.textContent = st ? fmtMs(st.p95Ms) : '–';
    c.req.b.textContent = st ? String(st.requests) : '–';
    drawSpark(c.spark, st && st.series);
  }

  function drawSpark(svg, series) {
    svg.textContent = '';
    var title = document.createElementNS(SVGNS, 'title');
    title.textContent = series && series.length ? t('spark') : t('noStats');
    svg.appendChild(title);
    svg.setAttribute('aria-label', title.textContent);
    if (!series || series.length < 2) return;
    var max = 1;
    series.forEach(function (p) { if (p.requests > max) max = p.requests; });
    var n = series.length - 1;
    function pts(key) {
      return series.map(function (p, i) {
        var y = 29 - (Math.max(0, p[key] || 0) / max) * 27;
        return (i * 100 / n).toFixed(2) + ',' + y.toFixed(2);
      }).join(' ');
    }
    var line = pts('requests');
    var area = document.createElementNS(SVGNS, 'polygon');
    area.setAttribute('class', 'area');
    area.setAttribute('points', '0,30 ' + line + ' 100,30');
    svg.appendChild(area);
    var pl = document.createElementNS(SVGNS, 'polyline');
    pl.setAttribute('class', 'line');
    pl.setAttribute('points', line);
    svg.appendChild(pl);
    if (series.some(function (p) { return p.errors > 0; })) {
      var er = document.createElementNS(SVGNS, 'polyline');
      er.setAttribute('class', 'err');
      er.setAttribute('points', pts('errors'));
      svg.appendChild(er);
    }
  }

  function renderSites() {
    if (!sitesData) return;
    var box = $('sites');
    var seen = new Set();
    sitesData.forEach(function (s, i) {
      seen.add(s.name);
      var c = cards.get(s.name);
      if (!c) { c = makeCard(s.name); cards.set(s.name, c); }
      fillCard(c, s);
      if (box.children[i] !== c.el) box.insertBefore(c.el, box.children[i] || null);
    });
    cards.forEach(function (c, name) {
      if (!seen.has(name)) { c.el.remove(); cards.delete(name); }
    });
    $('no-sites').hidden = sitesData.length > 0;
  }

  function renderErrors() {
    if (!errorsData) return;
    var list = $('errors');
    list.textContent = '';
    errorsData.slice(0, 50).forEach(function (e) {
      var li = el('li');
      var code = el('span', 'code' + (e.status >= 400 && e.status < 500 ? ' c4' : ''), e.status);
      li.appendChild(code);
      li.appendChild(el('span', 'req', (e.method || '') + ' ' + (e.host || '') + (e.path || '')));
      var sub = [fmtTime(e.time), e.site, e.code, e.upstream, e.ms !== undefined ? fmtMs(e.ms) : ''].filter(Boolean).join(' · ');
      li.appendChild(el('span', 'sub', sub));
      list.appendChild(li);
    });
    $('no-errors').hidden = errorsData.length > 0;
  }

  // ---- add a site ---------------------------------------------------------------------------
  var FIELD_KEYS = { host: 'host', hosts: 'host', name: 'host', owner: 'owner', port: 'port', upstream: 'upstream', disabled: 'disabled', tls: 'tls' };
  /** The form field a problem's key names ("host", "sites.3.hosts.0", "upstream"), if any. */
  function fieldFor(key) {
    var parts = String(key || '').split(/[.\[\]\/]+/).filter(Boolean);
    for (var i = parts.length - 1; i >= 0; i--) if (Object.prototype.hasOwnProperty.call(FIELD_KEYS, parts[i])) return FIELD_KEYS[parts[i]];
    return null;
  }
  function clearProblems(form) {
    Array.prototype.forEach.call(form.querySelectorAll('.field-error, .form-error'), function (p) { p.hidden = true; p.textContent = ''; });
    Array.prototype.forEach.call(form.querySelectorAll('input'), function (i) { i.removeAttribute('aria-invalid'); i.removeAttribute('aria-describedby'); });
  }
  function showProblems(form, error) {
    var general = [];
    var first = null;
    (error.problems && error.problems.length ? error.problems : []).forEach(function (p) {
      var f = fieldFor(p.key);
      var slot = f && form.querySelector('.field-error[data-for="' + f + '"]');
      var input = f && form.querySelector('input[name="' + f + '"]');
      if (!slot || slot.parentNode.hidden || (input && input.disabled)) { general.push((p.key ? p.key + ': ' : '') + p.message); return; }
      slot.textContent = slot.textContent ? slot.textContent + ' ' + p.message : p.message;
      slot.hidden = false;
      if (input) {
        if (!slot.id) slot.id = 'pe' + Math.random().toString(36).slice(2);
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', slot.id);
        if (!first) first = input;
      }
    });
    if (!error.problems || !error.problems.length || general.length) {
      var box = form.querySelector('.form-error');
      box.textContent = [error.message || ''].concat(general).filter(Boolean).join(' — ');
      box.hidden = false;
    }
    if (first) first.focus();
  }
  function toggleAdd(open) {
    var form = $('add-form');
    form.hidden = !open;
    $('add-btn').setAttribute('aria-expanded', String(open));
    if (open) { clearProblems(form); $('f-host').focus(); }
  }
  $('add-btn').addEventListener('click', function () { toggleAdd($('add-form').hidden); });
  $('add-cancel').addEventListener('click', function () { toggleAdd(false); });
  $('add-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var form = $('add-form');
    clearProblems(form);
    var body = { host: $('f-host').value.trim() };
    var owner = $('f-owner').value.trim();
    if (owner && me && me.role === 'admin') body.owner = owner;
    var port = $('f-port').value.trim();
    if (port) body.port = /^\d+$/.test(port) ? Number(port) : port;
    var upstream = $('f-upstream').value.trim();
    if (upstream) body.upstream = upstream;
    if ($('f-tls').checked) body.tls = 'auto';
    var submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    api('POST', '/api/v1/sites', body).then(function (r) {
      if (!r.ok) { showProblems(form, apiError(r)); return; }
      var site = r.json && r.json.site;
      notice('created', { name: (site && site.name) || body.host });
      form.reset();
      toggleAdd(false);
      refresh();
    }, function (err) {
      if (!(err instanceof AuthError)) showProblems(form, { message: err.message });
    }).then(function () { submit.disabled = false; });
  });

  // ---- language -----------------------------------------------------------------------------
  function renderWho() {
    if (!me) return;
    $('who').textContent = t('who', { name: me.name, role: t(me.role === 'admin' ? 'admin' : 'user') });
  }
  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('pageTitle');
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n]'), function (n) { n.textContent = t(n.getAttribute('data-i18n')); });
    var b = $('lang');
    b.textContent = t('langBtn');
    b.setAttribute('aria-label', t('langLabel'));
    b.setAttribute('lang', lang === 'zh' ? 'en' : 'zh-CN');
    var le = $('login-error');
    if (!le.hidden) loginError(le.getAttribute('data-key'), le.getAttribute('data-extra'));
    renderWho();
    setStatus(statusState);
    if (noticeState) $('notice').textContent = t(noticeState.key, noticeState.vars);
    renderSites();
    renderErrors();
  }
  $('lang').addEventListener('click', function () {
    lang = lang === 'zh' ? 'en' : 'zh';
    store(localStorage, LANG_KEY, lang);
    applyLang();
  });

  applyLang();
  if (token) {
    start().catch(function (err) {
      if (err instanceof AuthError) return;
      show('login');
      loginError('failed', err && err.message);
    });
  } else {
    show('login');
  }
})();
`;


const HTML = inlinePageHtml({ lang: 'en', title: 'mpgate', style: STYLE, body: BODY, script: SCRIPT, noReferrer: true });

/** The dashboard, one self-contained HTML document (the same string every call). */
export function dashboardHtml(): string {
  return HTML;
}

/**
 * Content-Security-Policy to send with the page: its own inline script and style (by hash),
 * requests to its own origin only (the admin API), no framing, nothing else.
 */
export const DASHBOARD_CSP = inlinePageCsp({ script: SCRIPT, style: STYLE, imgSrc: 'data:' });
