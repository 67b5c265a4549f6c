/**
 * The demo's "try OCR" page, served by the demo backend at `GET /ocr`: pick, drop or paste a photo,
 * the page POSTs it to `/wxocr` on the same origin (multipart field `image`, as `wx.uploadFile`
 * does) and shows WeChat's answer: the photo with each item's four corners drawn as a polygon, the
 * lines in the order they came (reading order), the raw JSON, the round-trip time, and `errmsg`
 * when `errcode` ≠ 0. Chinese or English after navigator.language, with a toggle.
 *
 * One self-contained HTML string: no build step, no framework, nothing fetched from elsewhere (it
 * works offline). The inline script and style are allowed by hash in OCR_PAGE_CSP, which also
 * limits the page's requests to its own origin. The script avoids template literals so that this
 * file can hold it in a String.raw template.
 */
import { inlinePageCsp, inlinePageHtml } from '../server/page-csp.js';

const STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1d2129; --muted: #5c6370; --bg: #f6f7f9; --card: #fff; --line: #d9dce1;
  --accent: #07c160; --box: #1a73e8; --box-fill: rgba(26, 115, 232, .14); --sel: #e8590c; --sel-fill: rgba(232, 89, 12, .28);
  --err-bg: #fdecea; --err-fg: #a61b12; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --muted: #a0a6b0; --bg: #16181c; --card: #20232a; --line: #3a3f48; --box-fill: rgba(90, 160, 255, .18);
    --box: #5aa0ff; --err-bg: #3b1d1b; --err-fg: #ffb4a9; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 16px; }
header { display: flex; align-items: center; justify-content: space-between; gap: 12px; flex-wrap: wrap; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 0 0 8px; }
button { font: inherit; color: inherit; }
.btn { border: 1px solid var(--line); background: var(--card); border-radius: 8px; padding: 6px 14px; cursor: pointer; min-height: 40px; }
.btn:hover { border-color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.intro { color: var(--muted); margin: 8px 0 16px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.drop { position: relative; border: 2px dashed var(--line); border-radius: 12px; background: var(--card); text-align: center;
  transition: border-color .15s, background .15s; }
.drop label { display: block; padding: 28px 16px; cursor: pointer; }
.drop:focus-within { outline: 3px solid var(--accent); outline-offset: 2px; }
.drop strong { display: inline-block; background: var(--accent); color: #fff; border-radius: 8px; padding: 8px 18px; margin-bottom: 8px; }
.drop .hint { display: block; color: var(--muted); font-size: .9rem; }
.dragging .drop { border-color: var(--accent); background: rgba(7, 193, 96, .08); }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
#status { min-height: 1.5em; margin: 14px 0 8px; font-weight: 600; }
[data-state="busy"] #status::before { content: ""; display: inline-block; width: .9em; height: .9em; margin-right: .5em; vertical-align: -2px;
  border: 2px solid var(--line); border-top-color: var(--accent); border-radius: 50%; animation: spin .8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { [data-state="busy"] #status::before { animation: none; } }
#error { background: var(--err-bg); color: var(--err-fg); border-radius: 10px; padding: 12px 14px; margin: 8px 0 12px; }
#error p { margin: 0; }
#errmsg { font-size: 1.1rem; word-break: break-word; }
.result { display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 800px) { .result { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); align-items: start; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 12px; }
.frame { position: relative; display: inline-block; max-width: 100%; line-height: 0; vertical-align: top; }
.frame img { display: block; max-width: 100%; max-height: 75vh; width: auto; height: auto; outline: 1px solid var(--line); background: repeating-conic-gradient(#ccc 0 25%, #eee 0 50%) 0 0 / 16px 16px; }
.frame svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; overflow: visible; pointer-events: none; }
.frame polygon { fill: var(--box-fill); stroke: var(--box); stroke-width: 2; vector-effect: non-scaling-stroke; pointer-events: auto; cursor: pointer; }
.frame polygon.sel { fill: var(--sel-fill); stroke: var(--sel); stroke-width: 3; }
.noimg .frame { display: none; }
.meta { color: var(--muted); font-size: .85rem; margin: 8px 0 0; word-break: break-all; }
.lines-head { display: flex; align-items: baseline; justify-content: space-between; gap: 8px; flex-wrap: wrap; }
.lines-hint { color: var(--muted); font-size: .85rem; margin: 0 0 8px; }
ol#lines { margin: 0; padding-left: 2.2em; }
ol#lines li { margin: 4px 0; }
ol#lines li::marker { color: var(--muted); }
ol#lines button { display: block; width: 100%; text-align: left; border: 1px solid transparent; background: none; border-radius: 6px;
  padding: 6px 8px; cursor: pointer; word-break: break-word; min-height: 40px; }
ol#lines button:hover { border-color: var(--line); }
ol#lines button[aria-pressed="true"] { border-color: var(--sel); background: var(--sel-fill); }
details { margin-top: 16px; }
summary { cursor: pointer; font-weight: 600; padding: 6px 0; }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px; overflow: auto; max-height: 60vh;
  font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; }
[hidden] { display: none !important; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var T = {
    zh: {
      pageTitle: 'mpgate · 文字识别试用',
      title: '文字识别试用',
      intro: '选择一张照片，页面把它 POST 到本站的 /wxocr（字段 image，与小程序的 wx.uploadFile 相同），再按微信的格式显示识别结果。',
      choose: '选择图片',
      orDrop: '或把照片拖到页面上，也可以直接粘贴',
      formats: 'JPEG、PNG、WebP、BMP',
      langBtn: 'English',
      langLabel: 'Switch to English',
      busy: '正在识别… {name}',
      done: '识别出 {n} 行文字，用时 {ms} ms（含上传）',
      doneNone: '没有识别到文字，用时 {ms} ms',
      failed: '识别失败，用时 {ms} ms',
      errTitle: '识别失败：',
      errcode: 'errcode {code}',
      http: '服务器返回 HTTP {status}，不是识别结果',
      network: '无法连接 /wxocr：{msg}',
      notJson: '服务器的回答不是 JSON',
      picH: '图片与文字框',
      boxes: '识别出的文字框',
      imgAlt: '上传的图片 {name}',
      meta: '{name} · {w}×{h} 像素 · {size}',
      linesH: '识别结果',
      linesHint: '按阅读顺序排列；点击一行，在图中高亮它的文字框。',
      noText: '图中没有识别到文字。',
      copy: '复制文字',
      copied: '已复制',
      raw: '原始 JSON 回答'
    },
    en: {
      pageTitle: 'mpgate · Try OCR',
      title: 'Try OCR',
      intro: 'Pick a photo: the page POSTs it to /wxocr on this site (field image, like wx.uploadFile in a mini-program) and shows the answer in WeChat\'s format.',
      choose: 'Choose an image',
      orDrop: 'or drop a photo anywhere on the page, or paste one',
      formats: 'JPEG, PNG, WebP, BMP',
      langBtn: '中文',
      langLabel: '切换到中文',
      busy: 'Recognising… {name}',
      done: '{n} lines recognised in {ms} ms (upload included)',
      doneNone: 'No text found ({ms} ms)',
      failed: 'Recognition failed after {ms} ms',
      errTitle: 'Recognition failed: ',
      errcode: 'errcode {code}',
      http: 'The server answered HTTP {status}, not an OCR result',
      network: 'Cannot reach /wxocr: {msg}',
      notJson: 'The server\'s answer is not JSON',
      picH: 'Image and text boxes',
      boxes: 'Detected text boxes',
      imgAlt: 'The uploaded image {name}',
      meta: '{name} · {w}×{h} px · {size}',
      linesH: 'Recognised text',
      linesHint: 'In reading order; click a line to highlight its box in the image.',
      noText: 'No text was found in the image.',
      copy: 'Copy text',
      copied: 'Copied',
      raw: 'Raw JSON answer'
    }
  };

  function $(id) { return document.getElementById(id); }
  var app = $('app'), fileInput = $('file'), statusEl = $('status'), errorBox = $('error'), errmsgEl = $('errmsg'),
    errcodeEl = $('errcode'), result = $('result'), linesCard = $('linescard'), img = $('img'), boxes = $('boxes'), linesEl = $('lines'),
    noText = $('notext'), meta = $('meta'), raw = $('raw'), rawStatus = $('rawstatus'), json = $('json'),
    langBtn = $('lang'), copyBtn = $('copy');
  var SVG = boxes.namespaceURI;
  var lang = pickLang();
  var status = null;      // { key, args } of the status line, re-rendered when the language changes
  var pending = null;     // AbortController of the request in flight
  var objectUrl = '';
  var file = null;
  var texts = [];
  var selected = -1;

  function pickLang() {
    var q = /[?&]lang=(zh|en)\b/.exec(location.search);
    if (q) return q[1];
    try { var saved = localStorage.getItem('mpgate.ocr.lang'); if (saved === 'zh' || saved === 'en') return saved; } catch (e) { /* storage off */ }
    var list = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
    for (var i = 0; i < list.length; i++) {
      var l = String(list[i]).toLowerCase();
      if (l === 'zh' || l.indexOf('zh-') === 0) return 'zh';
      if (l === 'en' || l.indexOf('en-') === 0) return 'en';
    }
    return 'en';
  }

  function t(key, args) {
    return T[lang][key].replace(/\{(\w+)\}/g, function (m, k) { return args && k in args ? String(args[k]) : m; });
  }

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('pageTitle');
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = t(nodes[i].getAttribute('data-i18n'));
    var labelled = document.querySelectorAll('[data-i18n-label]');
    for (var j = 0; j < labelled.length; j++) labelled[j].setAttribute('aria-label', t(labelled[j].getAttribute('data-i18n-label')));
    langBtn.textContent = t('langBtn');
    langBtn.setAttribute('aria-label', t('langLabel'));
    langBtn.lang = lang === 'zh' ? 'en' : 'zh-CN';
    if (file) img.alt = t('imgAlt', { name: file.name || '' });
    renderStatus();
    renderMeta();
  }

  function setStatus(key, args) { status = key ? { key: key, args: args || {} } : null; renderStatus(); }
  function renderStatus() { statusEl.textContent = status ? t(status.key, status.args) : ''; }
  function setState(s) { app.setAttribute('data-state', s); }

  function formatSize(n) {
    return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
  }
  function renderMeta() {
    meta.textContent = file && img.naturalWidth
      ? t('meta', { name: file.name || 'image', w: img.naturalWidth, h: img.naturalHeight, size: formatSize(file.size) }) : '';
  }

  function showImage(f) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(f);
    result.classList.remove('noimg');
    img.alt = t('imgAlt', { name: f.name || '' });
    img.src = objectUrl;
  }
  img.addEventListener('load', renderMeta);
  img.addEventListener('error', function () { if (img.getAttribute('src')) result.classList.add('noimg'); });

  function clearResult() {
    while (boxes.firstChild) boxes.removeChild(boxes.firstChild);
    while (linesEl.firstChild) linesEl.removeChild(linesEl.firstChild);
    texts = [];
    selected = -1;
    result.hidden = true;
    errorBox.hidden = true;
    raw.hidden = true;
  }

  function send(f) {
    if (!f) return;
    if (pending) pending.abort();
    var controller = new AbortController();
    pending = controller;
    file = f;
    clearResult();
    showImage(f);
    result.hidden = false;     // the photo shows while it is being read
    linesCard.hidden = true;
    setState('busy');
    setStatus('busy', { name: f.name || '' });
    var form = new FormData();
    form.append('image', f, f.name || 'image');
    var started = performance.now();
    var elapsed = function () { return Math.round(performance.now() - started); };
    fetch('/wxocr', {
      method: 'POST',
      body: form,
      signal: controller.signal,
      // errmsg in the page's language; Accept: JSON asks the gateway for JSON error bodies too.
      headers: { 'Accept': 'application/json', 'Accept-Language': lang === 'en' ? 'en' : 'zh-CN,zh;q=0.9' }
    }).then(function (res) {
      return res.text().then(function (text) { return { status: res.status, text: text }; });
    }).then(function (r) {
      if (pending !== controller) return;
      pending = null;
      var ms = elapsed();
      var data = null;
      try { data = JSON.parse(r.text); } catch (e) { data = null; }
      showRaw(r.status, data, r.text);
      if (r.status !== 200) {
        var ge = data && data.error;
        fail(t('http', { status: r.status }) + (ge && ge.message ? ' — ' + (ge.code ? ge.code + ': ' : '') + ge.message : ''), '', ms);
      } else if (!data || typeof data.errcode !== 'number') {
        fail(t('notJson'), '', ms);
      } else if (data.errcode !== 0) {
        fail(String(data.errmsg || ''), data.errcode, ms);
      } else {
        render(data, ms);
      }
    }, function (err) {
      if (pending !== controller) return;
      pending = null;
      fail(t('network', { msg: err && err.message ? err.message : String(err) }), '', elapsed());
    });
  }

  function fail(message, code, ms) {
    errmsgEl.textContent = message;
    errcodeEl.textContent = code === '' ? '' : t('errcode', { code: code });
    errcodeEl.hidden = code === '';
    errorBox.hidden = false;
    result.hidden = true;
    setStatus('failed', { ms: ms });
    setState('error');
  }

  function showRaw(httpStatus, data, text) {
    rawStatus.textContent = 'HTTP ' + httpStatus;
    json.textContent = data ? JSON.stringify(data, null, 2) : text;
    raw.hidden = false;
  }

  function corner(c) { return (+c.x) + ',' + (+c.y); }

  function render(data, ms) {
    var items = Array.isArray(data.items) ? data.items : [];
    var size = data.img_size && data.img_size.w > 0 && data.img_size.h > 0 ? data.img_size : { w: img.naturalWidth || 1, h: img.naturalHeight || 1 };
    // The boxes are in the image's own pixels; the viewBox scales them to the displayed size.
    boxes.setAttribute('viewBox', '0 0 ' + size.w + ' ' + size.h);
    items.forEach(function (item, i) {
      var text = String(item.text == null ? '' : item.text);
      texts.push(text);
      var p = item.pos;
      if (p && p.left_top && p.right_top && p.right_bottom && p.left_bottom) {
        var poly = document.createElementNS(SVG, 'polygon');
        poly.setAttribute('points', [p.left_top, p.right_top, p.right_bottom, p.left_bottom].map(corner).join(' '));
        poly.setAttribute('data-index', String(i));
        var title = document.createElementNS(SVG, 'title');
        title.textContent = (i + 1) + '. ' + text;
        poly.appendChild(title);
        poly.addEventListener('click', function () { select(selected === i ? -1 : i, true); });
        boxes.appendChild(poly);
      }
      var li = document.createElement('li');
      var button = document.createElement('button');
      button.type = 'button';
      button.textContent = text;
      button.setAttribute('aria-pressed', 'false');
      button.setAttribute('data-index', String(i));
      button.addEventListener('click', function () { select(selected === i ? -1 : i, false); });
      li.appendChild(button);
      linesEl.appendChild(li);
    });
    noText.hidden = items.length > 0;
    copyBtn.hidden = items.length === 0 || !(navigator.clipboard && navigator.clipboard.writeText);
    result.hidden = false;
    linesCard.hidden = false;
    setStatus(items.length ? 'done' : 'doneNone', { n: items.length, ms: ms });
    setState('done');
  }

  function select(i, fromBox) {
    selected = i;
    var polys = boxes.querySelectorAll('polygon');
    for (var a = 0; a < polys.length; a++) polys[a].classList.toggle('sel', polys[a].getAttribute('data-index') === String(i));
    var buttons = linesEl.querySelectorAll('button');
    for (var b = 0; b < buttons.length; b++) buttons[b].setAttribute('aria-pressed', String(buttons[b].getAttribute('data-index') === String(i)));
    if (i < 0) return;
    // On a phone the image and the list are far apart: bring the other half into view.
    var target = fromBox ? buttons[i] : img;
    if (!target) return;
    var r = target.getBoundingClientRect();
    if (r.bottom < 0 || r.top > window.innerHeight) target.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    if (fromBox) buttons[i].focus({ preventScroll: true });
  }

  copyBtn.addEventListener('click', function () {
    navigator.clipboard.writeText(texts.join('\n')).then(function () {
      copyBtn.textContent = t('copied');
      setTimeout(function () { copyBtn.textContent = t('copy'); }, 1500);
    }, function () { /* permission refused: nothing to do */ });
  });

  fileInput.addEventListener('change', function () {
    var f = fileInput.files && fileInput.files[0];
    if (f) send(f);
    fileInput.value = '';   // choosing the same file again is a new request
  });

  // Drag & drop anywhere on the page; the drop zone lights up while a file is over the page.
  var depth = 0;
  function hasFiles(e) {
    var types = e.dataTransfer && e.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, 'Files') !== -1;
  }
  function firstFile(list) {
    if (!list || !list.length) return null;
    for (var i = 0; i < list.length; i++) if (/^image\//.test(list[i].type)) return list[i];
    return list[0];
  }
  document.addEventListener('dragenter', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    app.classList.add('dragging');
  });
  document.addEventListener('dragover', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', function (e) {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) app.classList.remove('dragging');
  });
  document.addEventListener('drop', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    app.classList.remove('dragging');
    send(firstFile(e.dataTransfer.files));
  });
  document.addEventListener('paste', function (e) {
    var f = firstFile(e.clipboardData && e.clipboardData.files);
    if (f) { e.preventDefault(); send(f); }
  });

  langBtn.addEventListener('click', function () {
    lang = lang === 'zh' ? 'en' : 'zh';
    try { localStorage.setItem('mpgate.ocr.lang', lang); } catch (e) { /* storage off */ }
    applyLang();
  });

  applyLang();
  setState('idle');
})();
`;

const BODY = String.raw`
<main id="app" data-state="loading">
  <header>
    <h1 data-i18n="title">文字识别试用</h1>
    <button id="lang" class="btn" type="button">English</button>
  </header>
  <p class="intro" data-i18n="intro"></p>
  <section class="drop" id="drop">
    <input id="file" class="sr-only" type="file" accept="image/*">
    <label for="file">
      <strong data-i18n="choose">选择图片</strong>
      <span class="hint" data-i18n="orDrop"></span>
      <span class="hint" data-i18n="formats"></span>
    </label>
  </section>
  <p id="status" role="status" aria-live="polite"></p>
  <div id="error" role="alert" hidden>
    <p><strong data-i18n="errTitle"></strong><span id="errmsg"></span></p>
    <p><code id="errcode"></code></p>
  </div>
  <div id="result" class="result" hidden>
    <section class="card" aria-labelledby="pic-h">
      <h2 id="pic-h" data-i18n="picH"></h2>
      <div class="frame">
        <img id="img" alt="">
        <svg id="boxes" role="group" data-i18n-label="boxes" preserveAspectRatio="none"></svg>
      </div>
      <p class="meta" id="meta"></p>
    </section>
    <section class="card" id="linescard" aria-labelledby="lines-h">
      <div class="lines-head">
        <h2 id="lines-h" data-i18n="linesH"></h2>
        <button id="copy" class="btn" type="button" data-i18n="copy" hidden></button>
      </div>
      <p class="lines-hint" data-i18n="linesHint"></p>
      <ol id="lines" aria-labelledby="lines-h"></ol>
      <p id="notext" data-i18n="noText" hidden></p>
    </section>
  </div>
  <details id="raw" hidden>
    <summary><span data-i18n="raw"></span> · <span id="rawstatus"></span></summary>
    <pre id="json"></pre>
  </details>
</main>
`;


/** The page, one self-contained HTML document. */
export const OCR_PAGE_HTML = inlinePageHtml({ lang: 'zh-CN', title: 'mpgate · OCR', style: STYLE, body: BODY, script: SCRIPT });

/**
 * Content-Security-Policy for the page: its own inline script and style (by hash), images from the
 * chosen file (blob:), requests to its own origin only, nothing else.
 */
export const OCR_PAGE_CSP = inlinePageCsp({ script: SCRIPT, style: STYLE, imgSrc: 'blob: data:' });
