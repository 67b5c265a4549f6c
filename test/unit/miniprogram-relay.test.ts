/**
 * The mini-program relay helper (miniprogram/utils/relay.ts and relay-url.ts), run in node.
 *
 * The helper is written against WeChat's typings and is not part of this project's build, so it
 * is loaded here from its real source: both files are transpiled with this project's TypeScript
 * (types stripped, nothing else changed) into a temporary directory and imported. Type errors are
 * the job of `npx --prefix miniprogram tsc -p miniprogram/tsconfig.json`.
 *
 * No WeChat runtime exists here: a fake `wx` global records every call and answers the way the
 * client does (callbacks after the call returns, `success` for every HTTP status with
 * `statusCode`/`data`/`header`, uploadFile's `data` always a string, downloads saved to a file,
 * `fail` only without an HTTP answer). Its answers come either from a script or from a real
 * in-process gateway with a relay route in front of a real backend.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { FormData, request as httpRequest, Response } from 'undici';
import { GatewayError } from '../../src/core/errors.js';
import { relayTarget, type RelayPolicy } from '../../src/relay/relay-target.js';
import { errorBody } from '../../src/server/respond.js';
import { closedPort, startBackend, startGateway, type Backend, type TestGateway } from '../helpers.js';

// ---------------------------------------------------------------------------------------------
// Loading the helper from its source.

type Opts = Record<string, any>;

interface GatewayErrorBody {
  status?: number;
  code: string;
  message: string;
  detail?: string;
  site?: string;
}

interface RelayErrorLike extends Error {
  statusCode: number | undefined;
  gatewayError: GatewayErrorBody | undefined;
  data: unknown;
  header: Opts | undefined;
  errMsg: string | undefined;
  errno: number | undefined;
  url: string;
}

interface RelayLike {
  base: string;
  mount: string;
  url(path: string, query?: Opts): string;
  request(options: Opts): Promise<Opts>;
  uploadFile(options: Opts): Promise<Opts>;
  downloadFile(options: Opts): Promise<Opts>;
}

/** What miniprogram/utils/relay.ts exports (checked against the source by the typecheck, not here). */
interface HelperModule {
  createRelay(options: { base: string; mount?: string; allowHttp?: boolean }): RelayLike;
  RelayError: abstract new (...args: never[]) => RelayErrorLike;
  parseGatewayError(data: unknown): GatewayErrorBody | undefined;
  encodeRelayPath(path: string): string;
  buildQuery(query?: unknown): string;
}

/** The checkout: the first ancestor of this file (dist/test/unit/...) holding the helper, else the cwd. */
function findRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'miniprogram/utils/relay.ts'))) return dir;
  }
  if (existsSync(join(process.cwd(), 'miniprogram/utils/relay.ts'))) return process.cwd();
  throw new Error('miniprogram/utils/relay.ts not found above the test file or in the working directory');
}

/** Transpiles relay-url.ts and relay.ts into a temporary directory and imports relay.js from there. */
async function loadHelper(): Promise<HelperModule> {
  const src = join(findRoot(), 'miniprogram/utils');
  const dir = mkdtempSync(join(tmpdir(), 'mpgate-miniprogram-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    for (const name of ['relay-url', 'relay']) {
      const out = ts.transpileModule(readFileSync(join(src, `${name}.ts`), 'utf8'), {
        fileName: `${name}.ts`,
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2020 },
      });
      const problems = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      if (problems.length > 0) throw new Error(`miniprogram/utils/${name}.ts does not parse: ${problems.join('; ')}`);
      writeFileSync(join(dir, `${name}.js`), out.outputText);
    }
    return (await import(pathToFileURL(join(dir, 'relay.js')).href)) as HelperModule;
  } finally {
    // Once imported, the modules live in memory; the files are no longer needed.
    rmSync(dir, { recursive: true, force: true });
  }
}

const helper = await loadHelper();

after(() => {
  delete (globalThis as { wx?: unknown }).wx;
});

// ---------------------------------------------------------------------------------------------
// A fake wx with the client's contract.

type Api = 'request' | 'uploadFile' | 'downloadFile';
type Reply = { status: number; body: string; header?: Record<string, string> } | { fail: string; errno?: number };
type Transport = (api: Api, options: Opts, wx: FakeWx) => Promise<Reply>;

interface FakeTask {
  aborted: boolean;
  abort(): void;
  onProgressUpdate(cb: unknown): void;
  onHeadersReceived(cb: unknown): void;
}

class FakeWx {
  readonly calls: { api: Api; options: Opts; task: FakeTask }[] = [];
  /** The fake local file system: wxfile:// paths to their text. */
  readonly files = new Map<string, string>();
  private seq = 0;
  getFileSystemManager?: () => { statSync(path: string): { size: number }; readFileSync(path: string, encoding?: string): string };

  constructor(private readonly transport: Transport, withFs = true) {
    if (withFs) {
      this.getFileSystemManager = () => ({
        statSync: (path) => {
          const text = this.files.get(path);
          if (text === undefined) throw Object.assign(new Error(`statSync:fail no such file or directory ${path}`), { errno: 1300002 });
          return { size: Buffer.byteLength(text) };
        },
        readFileSync: (path) => {
          const text = this.files.get(path);
          if (text === undefined) throw new Error(`readFileSync:fail no such file or directory ${path}`);
          return text;
        },
      });
    }
  }

  request(options: Opts): FakeTask {
    return this.call('request', options);
  }

  uploadFile(options: Opts): FakeTask {
    return this.call('uploadFile', options);
  }

  downloadFile(options: Opts): FakeTask {
    return this.call('downloadFile', options);
  }

  private call(api: Api, options: Opts): FakeTask {
    const task: FakeTask = { aborted: false, abort() { this.aborted = true; }, onProgressUpdate() {}, onHeadersReceived() {} };
    this.calls.push({ api, options, task });
    // Like the client: the callbacks run later, never inside the call.
    void this.transport(api, options, this).then((reply) => {
      if ('fail' in reply) {
        options.fail?.(api === 'request' ? { errMsg: `${api}:fail ${reply.fail}`, errno: reply.errno ?? 600001 } : { errMsg: `${api}:fail ${reply.fail}` });
      } else {
        options.success?.(this.result(api, options, reply));
      }
      options.complete?.({ errMsg: `${api}:complete` });
    });
    return task;
  }

  private result(api: Api, options: Opts, reply: { status: number; body: string; header?: Record<string, string> }): Opts {
    if (api === 'request') {
      // dataType 'json' (the default): wx parses the body when it is JSON, else hands over the text.
      let data: unknown = reply.body;
      if ((options.dataType ?? 'json') === 'json') {
        try {
          data = JSON.parse(reply.body);
        } catch {
          /* stays text */
        }
      }
      return { data, statusCode: reply.status, header: reply.header ?? {}, cookies: [], errMsg: 'request:ok' };
    }
    if (api === 'uploadFile') return { data: reply.body, statusCode: reply.status, errMsg: 'uploadFile:ok' };
    // downloadFile: every answer, error pages included, is saved to a file.
    if (typeof options.filePath === 'string') {
      this.files.set(options.filePath, reply.body);
      return { filePath: options.filePath, statusCode: reply.status, errMsg: 'downloadFile:ok' };
    }
    const tempFilePath = `wxfile://tmp_${++this.seq}`;
    this.files.set(tempFilePath, reply.body);
    return { tempFilePath, statusCode: reply.status, errMsg: 'downloadFile:ok' };
  }
}

/** A fake wx answering from a list of replies, in order; installed as the global `wx`. */
function scriptedWx(replies: Reply[], withFs = true): FakeWx {
  const wx = new FakeWx(async () => {
    const next = replies.shift();
    if (next === undefined) throw new Error('fake wx: more calls than scripted replies');
    return next;
  }, withFs);
  (globalThis as { wx?: unknown }).wx = wx;
  return wx;
}

async function relayFailure(p: Promise<unknown>): Promise<RelayErrorLike> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof helper.RelayError, `expected a RelayError, got ${String(err)}`);
    return err;
  }
  assert.fail('the call resolved; expected a RelayError');
}

async function usageFailure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error);
    assert.ok(!(err instanceof helper.RelayError), 'a refused path is a usage error, not a RelayError');
    return err;
  }
  assert.fail('the call resolved; expected it to be refused');
}

/** The gateway's real error body for a code (src/server/respond.ts). */
function gatewayBody(code: ConstructorParameters<typeof GatewayError>[0], detail: string | undefined, json: boolean): string {
  return errorBody(new GatewayError(code, detail), 'mp', json);
}

const BASE = 'https://relay.a.com';
const OPEN: RelayPolicy = { param: 'method', basePath: '', allow: ['/'] };

/** The backend target the gateway makes of a helper URL (mount '/relay'), or its refusal. */
function viaGateway(url: string, base = BASE, mount = '/relay', policy: RelayPolicy = OPEN): { ok: true; path: string } | { ok: false; reason: string } {
  assert.ok(url.startsWith(base), `${url} is not on ${base}`);
  const r = relayTarget(policy, mount, url.slice(base.length));
  return r.ok ? { ok: true, path: r.path } : { ok: false, reason: r.reason };
}

// ---------------------------------------------------------------------------------------------

describe('miniprogram relay helper: URLs', () => {
  it('builds the path form and the gateway maps it to the backend path', () => {
    const relay = helper.createRelay({ base: BASE });
    assert.equal(relay.base, BASE);
    assert.equal(relay.mount, '/relay');
    const cases: [string, Opts | undefined, string][] = [
      ['path', undefined, '/path'],
      ['/api/items', undefined, '/api/items'],
      ['api/items/', undefined, '/api/items/'],
      ['api/v1.2/a.b/.well-known/..x', undefined, '/api/v1.2/a.b/.well-known/..x'],
      ['images/a b.png', undefined, '/images/a%20b.png'],
      ["files/a&b=c+d,e;f!g*h'(i)~", undefined, "/files/a%26b%3Dc%2Bd%2Ce%3Bf!g*h'(i)~"],
      ['api/x:y/[1]{2}|"<>^`', undefined, '/api/x%3Ay/%5B1%5D%7B2%7D%7C%22%3C%3E%5E%60'],
      ['api/items', { page: 2, q: 'a b&c', on: true }, '/api/items?page=2&q=a%20b%26c&on=true'],
      // The backend's own `method` parameter is passed through: the path form does not use it.
      ['api/rpc', { method: 'user.get', id: [1, 2] }, '/api/rpc?method=user.get&id=1&id=2'],
      ['api/search', { q: '腾讯', skip: undefined, none: null }, '/api/search?q=%E8%85%BE%E8%AE%AF'],
    ];
    for (const [path, query, backend] of cases) {
      const url = relay.url(path, query);
      assert.deepEqual(viaGateway(url), { ok: true, path: backend }, `${path} → ${url}`);
    }
    assert.equal(relay.url('images/a b.png', { w: 100 }), 'https://relay.a.com/relay/images/a%20b.png?w=100');
  });

  it('normalises base and mount, and refuses bases WeChat cannot call', () => {
    const r = helper.createRelay({ base: 'HTTPS://a.com/gw/', mount: '/api-relay/' });
    assert.equal(r.url('x'), 'https://a.com/gw/api-relay/x');
    const root = helper.createRelay({ base: 'https://a.com', mount: '/' });
    assert.equal(root.mount, '');
    assert.equal(root.url('api/x'), 'https://a.com/api/x');
    assert.deepEqual(viaGateway(root.url('api/x'), 'https://a.com', '/'), { ok: true, path: '/api/x' });
    assert.equal(helper.createRelay({ base: 'http://127.0.0.1:8080', allowHttp: true }).url('a'), 'http://127.0.0.1:8080/relay/a');

    const bad: [Opts, RegExp][] = [
      [{ base: 'http://relay.a.com' }, /is http; mini-programs only call https/],
      [{ base: 'relay.a.com' }, /absolute URL/],
      [{ base: 'https://relay.a.com?x=1' }, /absolute URL/],
      [{ base: 'https://relay.a.com/#x' }, /absolute URL/],
      [{ base: 'https://user@relay.a.com' }, /user info/],
      [{ base: 'wss://relay.a.com' }, /absolute URL/],
      [{ base: '' }, /absolute URL/],
      [{ base: BASE, mount: 'relay' }, /mount must be/],
      [{ base: BASE, mount: '/relay?x' }, /mount must be/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => helper.createRelay(options as { base: string }), message, JSON.stringify(options));
    }
  });

  it('refuses paths early, with an Error that says why', () => {
    const relay = helper.createRelay({ base: BASE });
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['/', /empty/],
      ['https://evil.com/x', /absolute URL/],
      ['HTTP://evil.com', /absolute URL/],
      ['//evil.com/x', /absolute URL/],
      ['javascript:alert(1)', /absolute URL/],
      ['1:2/x', /':' in the first segment/],
      ['..', /'\.' or '\.\.' segment/],
      ['.', /'\.' or '\.\.' segment/],
      ['api/../admin', /'\.' or '\.\.' segment/],
      ['api/./x', /'\.' or '\.\.' segment/],
      ['api/...', /'\.' or '\.\.' segment/],
      ['api/.. /x', /'\.' or '\.\.' segment/],
      ['api/..;jsessionid=1/x', /'\.' or '\.\.' segment/],
      ['api//x', /empty segment/],
      ['api/x?y=1', /put parameters in query/],
      ['api/x#top', /put parameters in query/],
      ['files/a%20b', /'%' is not allowed/],
      ['user@evil.com/x', /'@'/],
      ['api\\..\\x', /'\\'/],
      ['api/x\r\nX-Injected: 1', /control characters/],
      ['api/x\u0000', /control characters/],
      ['图片/a.png', /non-ASCII/],
      ['api\uff0e\uff0e/x', /non-ASCII/],
    ];
    for (const [path, message] of bad) {
      assert.throws(() => relay.url(path), message, JSON.stringify(path));
      assert.throws(() => helper.encodeRelayPath(path), message, JSON.stringify(path));
    }
    assert.throws(() => relay.url(undefined as unknown as string), /must be a string/);
    assert.throws(() => relay.url('x', { a: { nested: 1 } }), /must be a string, number or boolean/);
    assert.throws(() => relay.url('x', { a: '\ud800' }), /not valid Unicode/);
    assert.throws(() => relay.url('x', ['a'] as unknown as Opts), /query must be an object/);
  });

  it('refuses exactly what the gateway would refuse (random paths, both ways)', () => {
    // Plain encoding without the helper's checks: what a page would send if the helper let it through.
    const naive = (path: string): string => `/relay/${(path.startsWith('/') ? path.slice(1) : path).split('/').map(encodeURIComponent).join('/')}`;
    const alphabet = ['a', 'b', 'Z', '0', '.', '.', '.', ' ', ';', ':', '/', '/', '%', '?', '#', '@', '\\', '~', '-', '_', '!', '*', '(', "'", '&', '=', '+', ',', '$', '"', '[', '`', '\t', '\n', '\u007f', 'é', '\u3002', '\uff0e', '\u2215'];
    let seed = 0x5eed;
    const rnd = (n: number): number => {
      // mulberry32: deterministic, so a failure is reproducible.
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) % n);
    };
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let path = '';
      const len = rnd(9);
      for (let j = 0; j < len; j++) path += alphabet[rnd(alphabet.length)]!;
      let built: string | undefined;
      try {
        built = helper.encodeRelayPath(path);
      } catch {
        built = undefined;
      }
      const gw = relayTarget(OPEN, '/relay', naive(path));
      assert.equal(built !== undefined, gw.ok, `${JSON.stringify(path)}: helper ${built === undefined ? 'refuses' : 'accepts'}, gateway ${gw.ok ? 'accepts' : `refuses (${gw.reason})`}`);
      if (built !== undefined && gw.ok) {
        accepted++;
        assert.equal(gw.path, `/${built}`);
      }
    }
    assert.ok(accepted > 2000, `only ${accepted} random paths were accepted; the sample is too narrow`);
  });
});

describe('miniprogram relay helper: parseGatewayError', () => {
  it("reads the gateway's real error answers, JSON and text", () => {
    const expected = { status: 400, code: 'MPG_RELAY_BAD_PATH', message: 'relay path refused', detail: "dot segment ('.' or '..') in backend path", site: 'mp' };
    const json = gatewayBody('MPG_RELAY_BAD_PATH', expected.detail, true);
    assert.deepEqual(helper.parseGatewayError(json), expected);
    assert.deepEqual(helper.parseGatewayError(JSON.parse(json)), expected);
    assert.deepEqual(helper.parseGatewayError(gatewayBody('MPG_RELAY_BAD_PATH', expected.detail, false)), expected);
    const { detail: _detail, ...noDetail } = { ...expected, status: 504, code: 'MPG_UPSTREAM_TIMEOUT', message: 'upstream did not answer in time' };
    assert.deepEqual(helper.parseGatewayError(gatewayBody('MPG_UPSTREAM_TIMEOUT', undefined, false)), noDetail);
    assert.deepEqual(helper.parseGatewayError(gatewayBody('MPG_UPSTREAM_TIMEOUT', undefined, true)), noDetail);
  });

  it("does not take a backend's body for the gateway's", () => {
    for (const body of [
      { error: { code: 'NOT_FOUND', message: 'no such item' } },
      '{"error":{"code":"E1","message":"x"}}',
      { error: 'MPG_NO_ROUTE' },
      { error: { code: 'MPG_X' } },
      '<h1>404 Not Found</h1>',
      '404 not found (E_MISSING)',
      '',
      null,
      undefined,
      42,
      ['MPG_X'],
      new ArrayBuffer(4),
    ]) {
      assert.equal(helper.parseGatewayError(body), undefined, JSON.stringify(body));
    }
  });
});

describe('miniprogram relay helper: wx.request', () => {
  it('calls wx.request with the relay URL and every other option unchanged, and resolves for 2xx', async () => {
    const wx = scriptedWx([{ status: 200, body: '{"items":[1,2]}', header: { 'Content-Type': 'application/json' } }]);
    const relay = helper.createRelay({ base: BASE });
    let task: unknown;
    const data = { x: 'a b', y: 2, method: 'own' };
    const header = { 'content-type': 'application/json', authorization: 'Bearer t' };
    const res = await relay.request({
      path: 'api/items', query: { v: 1 }, data, header, method: 'POST', timeout: 5000, enableHttp2: true, enableQuic: false,
      enableCache: true, dataType: 'json', responseType: 'text', onTask: (t: unknown) => (task = t),
    });
    assert.equal(wx.calls.length, 1);
    const { api, options } = wx.calls[0]!;
    assert.equal(api, 'request');
    assert.equal(task, wx.calls[0]!.task, 'onTask gets the task wx.request returned');
    assert.equal(options.url, 'https://relay.a.com/relay/api/items?v=1');
    assert.equal(options.data, data);
    assert.equal(options.header, header);
    for (const [k, v] of Object.entries({ method: 'POST', timeout: 5000, enableHttp2: true, enableQuic: false, enableCache: true, dataType: 'json', responseType: 'text' })) {
      assert.equal(options[k], v, k);
    }
    for (const k of ['path', 'query', 'onTask', 'complete']) assert.ok(!(k in options), `${k} is not passed to wx`);
    assert.equal(typeof options.success, 'function');
    assert.equal(typeof options.fail, 'function');
    assert.deepEqual(res.data, { items: [1, 2] });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.header, { 'Content-Type': 'application/json' });
  });

  it('resolves for every 2xx and rejects from 300 on (wx calls success for all of them)', async () => {
    const relay = helper.createRelay({ base: BASE });
    for (const status of [200, 201, 204, 299]) {
      scriptedWx([{ status, body: '' }]);
      assert.equal((await relay.request({ path: 'x' })).statusCode, status);
    }
    for (const status of [199, 301, 304, 400, 404, 500, 502]) {
      scriptedWx([{ status, body: '' }]);
      assert.equal((await relayFailure(relay.request({ path: 'x' }))).statusCode, status);
    }
  });

  it("rejects a gateway error with statusCode and the gateway's code, message and detail", async () => {
    const relay = helper.createRelay({ base: BASE });
    const body = gatewayBody('MPG_RELAY_BAD_PATH', 'backend path is outside the allowed paths', true);
    scriptedWx([{ status: 400, body, header: { 'x-mpgate-error': 'MPG_RELAY_BAD_PATH' } }]);
    const err = await relayFailure(relay.request({ path: 'admin/users', method: 'DELETE' }));
    assert.equal(err.name, 'RelayError');
    assert.equal(err.statusCode, 400);
    assert.deepEqual(err.gatewayError, { status: 400, code: 'MPG_RELAY_BAD_PATH', message: 'relay path refused', detail: 'backend path is outside the allowed paths', site: 'mp' });
    assert.deepEqual(err.data, JSON.parse(body));
    assert.deepEqual(err.header, { 'x-mpgate-error': 'MPG_RELAY_BAD_PATH' });
    assert.equal(err.url, 'https://relay.a.com/relay/admin/users');
    assert.equal(err.message, 'relay: DELETE admin/users answered HTTP 400: MPG_RELAY_BAD_PATH relay path refused (backend path is outside the allowed paths)');

    // A text answer (the page asked for dataType 'text', or sent a form): same error, read from text.
    scriptedWx([{ status: 504, body: gatewayBody('MPG_UPSTREAM_TIMEOUT', undefined, false) }]);
    const timeout = await relayFailure(relay.request({ path: 'api/slow', dataType: 'text' }));
    assert.equal(timeout.gatewayError?.code, 'MPG_UPSTREAM_TIMEOUT');
    assert.equal(timeout.message, 'relay: GET api/slow answered HTTP 504: MPG_UPSTREAM_TIMEOUT upstream did not answer in time');
  });

  it("keeps a backend's own error body in data, without a gatewayError", async () => {
    const relay = helper.createRelay({ base: BASE });
    scriptedWx([{ status: 404, body: '{"error":{"code":"NOT_FOUND","message":"no item 7"}}' }]);
    const err = await relayFailure(relay.request({ path: 'api/items/7' }));
    assert.equal(err.statusCode, 404);
    assert.equal(err.gatewayError, undefined);
    assert.deepEqual(err.data, { error: { code: 'NOT_FOUND', message: 'no item 7' } });
    assert.equal(err.message, 'relay: GET api/items/7 answered HTTP 404');
  });

  it('rejects a call without an answer with WeChat errMsg and errno, and no statusCode', async () => {
    scriptedWx([{ fail: 'timeout', errno: 5 }]);
    const err = await relayFailure(helper.createRelay({ base: BASE }).request({ path: 'api/x' }));
    assert.equal(err.statusCode, undefined);
    assert.equal(err.gatewayError, undefined);
    assert.equal(err.errMsg, 'request:fail timeout');
    assert.equal(err.errno, 5);
    assert.equal(err.message, 'relay: GET api/x failed: request:fail timeout');
  });

  it('refuses a bad path without calling wx', async () => {
    const wx = scriptedWx([]);
    const relay = helper.createRelay({ base: BASE });
    assert.match((await usageFailure(relay.request({ path: '../admin' }))).message, /'\.' or '\.\.' segment/);
    assert.match((await usageFailure(relay.request({ path: 'https://evil.com/x' }))).message, /absolute URL/);
    assert.match((await usageFailure(relay.uploadFile({ path: '', filePath: 'f', name: 'image' }))).message, /empty/);
    assert.match((await usageFailure(relay.downloadFile({ path: 'a/./b' }))).message, /'\.' or '\.\.' segment/);
    assert.equal(wx.calls.length, 0);
  });
});

describe('miniprogram relay helper: wx.uploadFile', () => {
  it('passes the upload options through and parses the string data as JSON', async () => {
    const wx = scriptedWx([{ status: 201, body: '{"text":"腾讯","items":[]}' }]);
    const relay = helper.createRelay({ base: BASE });
    let task: unknown;
    const res = await relay.uploadFile({
      path: 'api/ocr', query: { scene: 1 }, filePath: 'wxfile://tmp_img.jpg', name: 'image', formData: { user: 'u1' },
      header: { 'x-token': 't' }, timeout: 30000, enableHttp2: true, onTask: (t: unknown) => (task = t),
    });
    const { api, options } = wx.calls[0]!;
    assert.equal(api, 'uploadFile');
    assert.equal(task, wx.calls[0]!.task);
    assert.equal(options.url, 'https://relay.a.com/relay/api/ocr?scene=1');
    assert.equal(options.filePath, 'wxfile://tmp_img.jpg');
    assert.equal(options.name, 'image');
    assert.deepEqual(options.formData, { user: 'u1' });
    assert.deepEqual(options.header, { 'x-token': 't' });
    assert.equal(options.timeout, 30000);
    assert.equal(options.enableHttp2, true);
    for (const k of ['path', 'query', 'onTask']) assert.ok(!(k in options), `${k} is not passed to wx`);
    assert.deepEqual(res, { statusCode: 201, errMsg: 'uploadFile:ok', text: '{"text":"腾讯","items":[]}', json: true, data: { text: '腾讯', items: [] } });
  });

  it('keeps a non-JSON answer as text', async () => {
    const relay = helper.createRelay({ base: BASE });
    for (const body of ['ok', '', '<xml/>']) {
      scriptedWx([{ status: 200, body }]);
      const res = await relay.uploadFile({ path: 'api/up', filePath: 'f', name: 'file' });
      assert.equal(res.json, false);
      assert.equal(res.data, body);
      assert.equal(res.text, body);
    }
  });

  it('rejects non-2xx with the gateway error, JSON or text (uploads do not ask for JSON)', async () => {
    const relay = helper.createRelay({ base: BASE });
    scriptedWx([{ status: 413, body: gatewayBody('MPG_BODY_TOO_LARGE', 'larger than 10 MiB', false) }]);
    let err = await relayFailure(relay.uploadFile({ path: 'api/up', filePath: 'f', name: 'image' }));
    assert.equal(err.statusCode, 413);
    assert.deepEqual(err.gatewayError, { status: 413, code: 'MPG_BODY_TOO_LARGE', message: 'request body too large', detail: 'larger than 10 MiB', site: 'mp' });
    assert.equal(err.data, gatewayBody('MPG_BODY_TOO_LARGE', 'larger than 10 MiB', false));
    assert.equal(err.header, undefined);

    scriptedWx([{ status: 502, body: gatewayBody('MPG_UPSTREAM_REFUSED', undefined, true) }]);
    err = await relayFailure(relay.uploadFile({ path: 'api/up', filePath: 'f', name: 'image' }));
    assert.equal(err.gatewayError?.code, 'MPG_UPSTREAM_REFUSED');
    assert.deepEqual(err.data, JSON.parse(gatewayBody('MPG_UPSTREAM_REFUSED', undefined, true)));

    scriptedWx([{ status: 422, body: '{"errcode":101002,"errmsg":"image decode failed"}' }]);
    err = await relayFailure(relay.uploadFile({ path: 'api/ocr', filePath: 'f', name: 'image' }));
    assert.equal(err.gatewayError, undefined);
    assert.deepEqual(err.data, { errcode: 101002, errmsg: 'image decode failed' });

    scriptedWx([{ fail: 'url not in domain list' }]);
    err = await relayFailure(relay.uploadFile({ path: 'api/ocr', filePath: 'f', name: 'image' }));
    assert.equal(err.statusCode, undefined);
    assert.equal(err.errMsg, 'uploadFile:fail url not in domain list');
    assert.equal(err.message, 'relay: upload api/ocr failed: uploadFile:fail url not in domain list');
  });
});

describe('miniprogram relay helper: wx.downloadFile', () => {
  it('passes the options through and resolves with the file path for 2xx', async () => {
    const wx = scriptedWx([{ status: 200, body: 'PNG...' }, { status: 200, body: 'PNG2' }]);
    const relay = helper.createRelay({ base: BASE });
    const res = await relay.downloadFile({ path: 'images/a b.png', query: { w: 100 }, header: { 'x-a': '1' }, timeout: 1000, enableHttp2: true });
    const { api, options } = wx.calls[0]!;
    assert.equal(api, 'downloadFile');
    assert.equal(options.url, 'https://relay.a.com/relay/images/a%20b.png?w=100');
    assert.deepEqual(options.header, { 'x-a': '1' });
    assert.equal(options.timeout, 1000);
    assert.equal(options.enableHttp2, true);
    assert.deepEqual(res, { tempFilePath: 'wxfile://tmp_1', statusCode: 200, errMsg: 'downloadFile:ok' });
    assert.equal(wx.files.get('wxfile://tmp_1'), 'PNG...');

    const saved = await relay.downloadFile({ path: 'images/b.png', filePath: 'wxfile://usr/b.png' });
    assert.equal(wx.calls[1]!.options.filePath, 'wxfile://usr/b.png');
    assert.equal(saved.filePath, 'wxfile://usr/b.png');
  });

  it('rejects non-2xx, reading the saved error body for the gateway error', async () => {
    const relay = helper.createRelay({ base: BASE });
    scriptedWx([{ status: 502, body: gatewayBody('MPG_UPSTREAM_UNREACHABLE', undefined, false) }]);
    let err = await relayFailure(relay.downloadFile({ path: 'images/a.png' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.gatewayError?.code, 'MPG_UPSTREAM_UNREACHABLE');
    assert.equal(err.data, gatewayBody('MPG_UPSTREAM_UNREACHABLE', undefined, false));

    scriptedWx([{ status: 404, body: '{"error":{"code":"MPG_NO_ROUTE","message":"no route for this path","status":404}}' }]);
    err = await relayFailure(relay.downloadFile({ path: 'images/a.png', filePath: 'wxfile://usr/a.png' }));
    assert.deepEqual(err.gatewayError, { status: 404, code: 'MPG_NO_ROUTE', message: 'no route for this path' });

    scriptedWx([{ status: 404, body: '<h1>gone</h1>' }]);
    err = await relayFailure(relay.downloadFile({ path: 'images/a.png' }));
    assert.equal(err.gatewayError, undefined);
    assert.equal(err.data, '<h1>gone</h1>');

    // Large error bodies are not read into memory.
    scriptedWx([{ status: 500, body: 'x'.repeat(70 * 1024) }]);
    err = await relayFailure(relay.downloadFile({ path: 'big' }));
    assert.equal(err.data, undefined);

    // Without a file system API (older base library, or a plugin), still a RelayError with the status.
    scriptedWx([{ status: 502, body: gatewayBody('MPG_UPSTREAM_UNREACHABLE', undefined, false) }], false);
    err = await relayFailure(relay.downloadFile({ path: 'images/a.png' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.data, undefined);
    assert.equal(err.gatewayError, undefined);

    scriptedWx([{ fail: 'timeout' }]);
    err = await relayFailure(relay.downloadFile({ path: 'images/a.png' }));
    assert.equal(err.errMsg, 'downloadFile:fail timeout');
    assert.equal(err.statusCode, undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// Through a real gateway: a fake wx whose transport is a real HTTP client.

/** wx's request semantics over HTTP: GET data becomes the query, other data a JSON body. */
function httpWx(): FakeWx {
  const wx = new FakeWx(async (api, o, self) => {
    let url = String(o.url);
    const method = api === 'uploadFile' ? 'POST' : api === 'downloadFile' ? 'GET' : String(o.method ?? 'GET');
    const headers: Record<string, string> = api === 'request' ? { 'content-type': 'application/json', ...o.header } : { ...o.header };
    let body: string | Buffer | undefined;
    if (api === 'request' && o.data !== undefined) {
      if (method === 'GET' || method === 'HEAD') {
        const q = Object.entries(o.data as Opts).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
        if (q !== '') url += (url.includes('?') ? '&' : '?') + q;
      } else {
        body = typeof o.data === 'string' ? o.data : JSON.stringify(o.data);
      }
    }
    if (api === 'uploadFile') {
      const fd = new FormData();
      for (const [k, v] of Object.entries((o.formData ?? {}) as Opts)) fd.append(k, String(v));
      fd.append(String(o.name), new Blob([self.files.get(String(o.filePath)) ?? '']), 'tmp.jpg');
      const encoded = new Response(fd);
      headers['content-type'] = encoded.headers.get('content-type')!;
      body = Buffer.from(await encoded.arrayBuffer());
    }
    try {
      const r = await httpRequest(url, { method: method as 'GET', headers, body });
      const header: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) header[k] = Array.isArray(v) ? v.join(', ') : v;
      return { status: r.statusCode, body: await r.body.text(), header };
    } catch (err) {
      return { fail: (err as Error).message };
    }
  });
  (globalThis as { wx?: unknown }).wx = wx;
  return wx;
}

describe('miniprogram relay helper: through a real gateway', () => {
  let backend: Backend;
  let gw: TestGateway;
  let base: string;

  before(async () => {
    backend = await startBackend((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (req.url === '/v1/api/missing') {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"error":{"code":"NOT_FOUND","message":"nothing here"}}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, contentType: req.headers['content-type'] ?? null, body }));
      });
    });
    const dead = await closedPort();
    gw = await startGateway({
      sites: [{
        name: 'mp',
        hosts: ['127.0.0.1'],
        maxBodySize: '16KiB',
        routes: [
          { path: '/relay', relay: { upstream: `${backend.url}/v1`, phpCompat: true } },
          { path: '/strict', relay: { upstream: `${backend.url}/v1`, allow: ['/v1/api'] } },
          { path: '/dead', relay: { upstream: `http://127.0.0.1:${dead}` } },
        ],
      }],
    });
    base = `http://127.0.0.1:${gw.port}`;
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it("the seed's before/after: same backend request via the seed's get.php URL and via the helper", async () => {
    const wx = httpWx();
    // The seed's client code, unchanged, pointed at mpgate (phpCompat keeps /get.php).
    const seed = await new Promise<Opts>((resolve, reject) => {
      (wx as unknown as { request(o: Opts): unknown }).request({ url: `${base}/get.php`, data: { method: 'path', x: '1', y: 'a b' }, success: resolve, fail: reject });
    });
    assert.equal(seed.statusCode, 200);
    assert.equal((seed.data as Opts).url, '/v1/path?x=1&y=a%20b');

    const relay = helper.createRelay({ base, allowHttp: true });
    const res = await relay.request({ path: 'path', data: { x: '1', y: 'a b' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.url, '/v1/path?x=1&y=a%20b');

    // The backend's own `method` parameter survives the path form.
    const own = await relay.request({ path: 'api/rpc', data: { method: 'user.get' } });
    assert.equal(own.data.url, '/v1/api/rpc?method=user.get');
    const post = await relay.request({ path: 'api/a b/items', method: 'POST', data: { name: '腾讯', n: [1] } });
    assert.deepEqual(post.data, { method: 'POST', url: '/v1/api/a%20b/items', contentType: 'application/json', body: '{"name":"腾讯","n":[1]}' });
  });

  it('rejects with the real gateway errors and keeps backend errors apart', async () => {
    httpWx();
    const strict = helper.createRelay({ base, mount: '/strict', allowHttp: true });
    let err = await relayFailure(strict.request({ path: 'admin/users' }));
    assert.equal(err.statusCode, 400);
    assert.deepEqual(err.gatewayError, { status: 400, code: 'MPG_RELAY_BAD_PATH', message: 'relay path refused', detail: 'backend path is outside the allowed paths', site: 'mp' });
    assert.equal((await strict.request({ path: 'api/ok' })).data.url, '/v1/api/ok');

    const relay = helper.createRelay({ base, allowHttp: true });
    err = await relayFailure(relay.request({ path: 'api/missing' }));
    assert.equal(err.statusCode, 404);
    assert.equal(err.gatewayError, undefined);
    assert.deepEqual(err.data, { error: { code: 'NOT_FOUND', message: 'nothing here' } });

    const dead = helper.createRelay({ base, mount: '/dead', allowHttp: true });
    err = await relayFailure(dead.request({ path: 'api/x' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.gatewayError?.code, 'MPG_UPSTREAM_REFUSED');

    // downloadFile: the error body is saved to a file like any other; the helper reads it back.
    err = await relayFailure(dead.downloadFile({ path: 'images/a.png' }));
    assert.equal(err.statusCode, 502);
    assert.equal(err.gatewayError?.code, 'MPG_UPSTREAM_REFUSED');
    assert.equal((err.data as Opts).error.code, 'MPG_UPSTREAM_REFUSED');
  });

  it('uploads and downloads through the relay; an oversized upload gets the parsed 413', async () => {
    const wx = httpWx();
    const relay = helper.createRelay({ base, allowHttp: true });
    wx.files.set('wxfile://small.jpg', 'jpeg bytes');
    const up = await relay.uploadFile({ path: 'api/ocr', query: { scene: 2 }, filePath: 'wxfile://small.jpg', name: 'image', formData: { user: 'u1' } });
    assert.equal(up.json, true);
    assert.equal(up.data.url, '/v1/api/ocr?scene=2');
    assert.match(up.data.contentType, /^multipart\/form-data; boundary=/);
    assert.match(up.data.body, /name="image"; filename="tmp.jpg"[\s\S]*jpeg bytes/);
    assert.match(up.data.body, /name="user"\r\n\r\nu1\r\n/);

    wx.files.set('wxfile://big.jpg', 'x'.repeat(64 * 1024));
    const err = await relayFailure(relay.uploadFile({ path: 'api/ocr', filePath: 'wxfile://big.jpg', name: 'image' }));
    assert.equal(err.statusCode, 413);
    assert.equal(err.gatewayError?.code, 'MPG_BODY_TOO_LARGE');
    assert.equal(err.gatewayError?.site, 'mp');
    // The gateway answers a multipart upload in text (it did not ask for JSON); read all the same.
    assert.match(String(err.data), /^413 request body too large: .*\(MPG_BODY_TOO_LARGE, site mp\)\n$/);
    assert.match(String(err.gatewayError?.detail), /over the 16384-byte limit/);

    const down = await relay.downloadFile({ path: 'images/a b.png' });
    assert.equal(down.statusCode, 200);
    assert.equal(JSON.parse(wx.files.get(down.tempFilePath)!).url, '/v1/images/a%20b.png');
  });
});
