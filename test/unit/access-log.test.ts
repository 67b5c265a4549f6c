import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AccessLog, formatAccessLine, jsonString, type AccessEntry } from '../../src/server/access-log.js';

function entry(over: Partial<AccessEntry> = {}): AccessEntry {
  return { host: 'a.com', method: 'GET', path: '/', status: 200, bytes: 12, upstream: 'http://127.0.0.1:8000', ms: 3, site: 'a', ip: '127.0.0.1', ...over };
}

/** Every char code below 128. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

const NASTY = [
  '/订单/详情?名字=张三',
  '/say/"hi"\\there',
  '/ctl/\u0000\u0001\u001f\u007f\t\r\n/end',
  '/emoji/😀',
  '/lone/\ud800/surrogate',
  '/line\u2028sep\u2029',
  'ünïcödé host',
];

describe('jsonString', () => {
  it('is a JSON string literal, pure ASCII, that parses back to the input', () => {
    for (const s of [...NASTY, '', 'plain', '/a/b?c=d']) {
      const lit = jsonString(s);
      assert.ok(isAscii(lit), lit);
      assert.equal(JSON.parse(lit), s);
    }
  });

  it('escapes non-ASCII as lower-case \\uXXXX', () => {
    assert.equal(jsonString('中'), '"\\u4e2d"');
    assert.equal(jsonString('\u007f'), '"\\u007f"');
    assert.equal(jsonString('a"b'), '"a\\"b"');
  });
});

describe('formatAccessLine', () => {
  it('is one line of valid JSON with every field', () => {
    const line = formatAccessLine(entry({ code: 'MPG_UPSTREAM_REFUSED', status: 502 }));
    assert.ok(line.endsWith('\n'));
    assert.equal(line.indexOf('\n'), line.length - 1);
    const obj = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(Object.keys(obj), ['time', 'host', 'method', 'path', 'status', 'bytes', 'upstream', 'ms', 'site', 'ip', 'code']);
    assert.equal(obj.host, 'a.com');
    assert.equal(obj.method, 'GET');
    assert.equal(obj.path, '/');
    assert.equal(obj.status, 502);
    assert.equal(obj.bytes, 12);
    assert.equal(obj.upstream, 'http://127.0.0.1:8000');
    assert.equal(obj.ms, 3);
    assert.equal(obj.site, 'a');
    assert.equal(obj.ip, '127.0.0.1');
    assert.equal(obj.code, 'MPG_UPSTREAM_REFUSED');
  });

  it('leaves out code when there is none', () => {
    const obj = JSON.parse(formatAccessLine(entry())) as Record<string, unknown>;
    assert.equal('code' in obj, false);
  });

  it('has an ISO time close to now', () => {
    const before = Date.now();
    const obj = JSON.parse(formatAccessLine(entry())) as { time: string };
    const after = Date.now();
    assert.match(obj.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const t = Date.parse(obj.time);
    assert.ok(t >= before && t <= after, `${obj.time} not within [${before}, ${after}]`);
  });

  it('is pure ASCII and round-trips Chinese, quotes, backslashes and control characters', () => {
    for (const s of NASTY) {
      const line = formatAccessLine(entry({ path: s, host: s, site: s, upstream: s }));
      assert.ok(isAscii(line), line);
      assert.equal(line.indexOf('\n'), line.length - 1, 'a control character broke the line');
      const obj = JSON.parse(line) as AccessEntry;
      assert.equal(obj.path, s);
      assert.equal(obj.host, s);
      assert.equal(obj.site, s);
      assert.equal(obj.upstream, s);
    }
  });

  it('escapes a site name and upstream again after they were cached', () => {
    const a = JSON.parse(formatAccessLine(entry({ site: 'café "x"', upstream: 'http://ü' }))) as AccessEntry;
    const b = JSON.parse(formatAccessLine(entry({ site: 'café "x"', upstream: 'http://ü' }))) as AccessEntry;
    assert.equal(a.site, 'café "x"');
    assert.equal(b.site, 'café "x"');
    assert.equal(b.upstream, 'http://ü');
  });
});

describe('AccessLog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpgate-access-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Complete lines only: while queued writes are still landing, the file may end mid-line. */
  function readLines(file: string): Record<string, unknown>[] {
    const text = readFileSync(file, 'latin1');
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it('writes the entries, in order, by close()', () => {
    const file = join(dir, 'nested', 'dir', 'access.log');
    const log = new AccessLog(file);
    log.write(entry({ path: '/one' }));
    log.write(entry({ path: '/两', status: 404, code: 'MPG_NO_ROUTE' }));
    log.write(entry({ path: '/three' }));
    log.close();
    const lines = readLines(file);
    assert.deepEqual(lines.map((l) => l.path), ['/one', '/两', '/three']);
    assert.equal(lines[1]!.code, 'MPG_NO_ROUTE');
    assert.ok(isAscii(readFileSync(file, 'latin1')));
  });

  it('close() twice is fine, and writes after close() are dropped', () => {
    const file = join(dir, 'twice.log');
    const log = new AccessLog(file);
    log.write(entry({ path: '/a' }));
    log.close();
    log.close();
    log.write(entry({ path: '/after' }));
    log.close();
    assert.deepEqual(readLines(file).map((l) => l.path), ['/a']);
  });

  it('appends to an existing file', () => {
    const file = join(dir, 'append.log');
    const first = new AccessLog(file);
    first.write(entry({ path: '/first' }));
    first.close();
    const second = new AccessLog(file);
    second.write(entry({ path: '/second' }));
    second.close();
    assert.deepEqual(readLines(file).map((l) => l.path), ['/first', '/second']);
  });

  it('loses nothing and keeps the order when the buffer fills many times, also with close() right after', async () => {
    // Each line is about 400 bytes: 3000 lines fill the 64 KiB buffer about 18 times, so several
    // writes are in flight when close() is called.
    for (let run = 0; run < 5; run++) {
      const file = join(dir, `bulk-${run}.log`);
      const log = new AccessLog(file);
      const n = 3000;
      for (let i = 0; i < n; i++) log.write(entry({ path: `/item/${i}/${'x'.repeat(256)}` }));
      // One line larger than the whole buffer.
      log.write(entry({ path: `/huge/${'y'.repeat(70 * 1024)}` }));
      log.write(entry({ path: '/last' }));
      log.close();
      // Writes still in flight finish on the thread pool; wait until the file stops growing.
      let lines = readLines(file);
      for (let i = 0; i < 200 && lines.length < n + 2; i++) {
        await new Promise((r) => setTimeout(r, 10));
        lines = readLines(file);
      }
      assert.equal(lines.length, n + 2, `run ${run}: ${n + 2 - lines.length} lines lost`);
      const paths = lines.map((l) => String(l.path));
      for (let i = 0; i < n; i++) assert.ok(paths[i]!.startsWith(`/item/${i}/`), `run ${run}: line ${i} is ${paths[i]!.slice(0, 20)}`);
      assert.ok(paths[n]!.startsWith('/huge/'));
      assert.equal(paths[n]!.length, 6 + 70 * 1024);
      assert.equal(paths[n + 1], '/last');
    }
  });
});
