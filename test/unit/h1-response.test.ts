import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseError, ResponseParser, type ResponseEvents } from '../../src/core/h1-response.js';

/** One event as the recorder normalises it: consecutive body chunks are merged into one. */
type Event =
  | { type: 'head'; status: number; reason: string; headers: string[] }
  | { type: 'body'; data: string }
  | { type: 'end' };

/** Collects events, checking the order rules every consumer relies on. */
class Recorder implements ResponseEvents {
  events: Event[] = [];
  /** Body chunks as delivered (views, not copies). */
  chunks: Buffer[] = [];
  #inResponse = false;

  onHead(status: number, reason: string, headers: string[]): void {
    assert.equal(this.#inResponse, false, 'onHead while a response is open');
    this.#inResponse = true;
    this.events.push({ type: 'head', status, reason, headers: [...headers] });
  }

  onBody(chunk: Buffer): void {
    assert.equal(this.#inResponse, true, 'onBody outside a response');
    assert.ok(chunk.length > 0, 'empty body chunk');
    this.chunks.push(chunk);
    // Copied: the feeder overwrites its buffers after each execute(), as a socket would reuse them.
    const data = chunk.toString('latin1');
    const last = this.events[this.events.length - 1];
    if (last !== undefined && last.type === 'body') last.data += data;
    else this.events.push({ type: 'body', data });
  }

  onEnd(): void {
    assert.equal(this.#inResponse, true, 'onEnd outside a response');
    this.#inResponse = false;
    this.events.push({ type: 'end' });
  }
}

interface Options {
  /** The request was HEAD. */
  head?: boolean;
  maxHead?: number;
  /** Call finish() after the last piece (the upstream closed the connection). */
  close?: boolean;
}

interface Outcome {
  events: Event[];
  /** Sum of execute()'s return values. */
  leftover: number;
  busy: boolean;
  reusable: boolean;
  keepAliveHint: number;
}

const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

/** A fresh, unpooled copy of `b`, so the parser sees a buffer of its own. */
function own(b: Buffer): Buffer {
  const out = Buffer.alloc(b.length);
  b.copy(out);
  return out;
}

/** Feeds `pieces` to a new parser; every piece is overwritten after execute() returns. */
function feed(pieces: Buffer[], opts: Options = {}): Outcome {
  const rec = new Recorder();
  const p = new ResponseParser(rec, opts.maxHead ?? 8192);
  p.expect(opts.head ?? false);
  let leftover = 0;
  for (const piece of pieces) {
    const b = own(piece);
    const extra = p.execute(b);
    assert.ok(extra >= 0 && extra <= b.length, `leftover ${extra} out of range`);
    leftover += extra;
    b.fill(0x58);
  }
  if (opts.close === true) p.finish();
  return { events: rec.events, leftover, busy: p.busy, reusable: p.reusable, keepAliveHint: p.keepAliveHint };
}

/** The ways of cutting `raw`: whole, in two at every offset (sampled when large), byte by byte. */
function* cuts(raw: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [raw]];
  const step = raw.length > 8192 ? 997 : 1;
  for (let i = 1; i < raw.length; i += step) yield [`split at ${i}`, [raw.subarray(0, i), raw.subarray(i)]];
  if (step !== 1) for (const i of [raw.length - 2, raw.length - 1]) if (i > 0) yield [`split at ${i}`, [raw.subarray(0, i), raw.subarray(i)]];
  const ones: Buffer[] = [];
  for (let i = 0; i < raw.length; i++) ones.push(raw.subarray(i, i + 1));
  yield ['byte by byte', ones];
}

/** Feeds `raw` every way and asserts the outcome never depends on how it was cut. */
function same(raw: string | Buffer, opts: Options = {}): Outcome {
  const buf = bytes(raw);
  const whole = feed([buf], opts);
  for (const [how, pieces] of cuts(buf)) assert.deepEqual(feed(pieces, opts), whole, how);
  return whole;
}

/** Asserts every way of feeding `raw` (then finish() with `close`) throws a ResponseError. */
function rejects(raw: string | Buffer, detail?: RegExp, opts: Options = {}): void {
  for (const [how, pieces] of cuts(bytes(raw))) {
    let caught: unknown;
    try {
      feed(pieces, opts);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ResponseError, `${how}: expected a ResponseError, got ${String(caught)}`);
    if (detail !== undefined) assert.match(caught.detail, detail, how);
  }
}

const head = (status: number, reason: string, headers: string[]): Event => ({ type: 'head', status, reason, headers });
const body = (data: string): Event => ({ type: 'body', data });
const END: Event = { type: 'end' };

describe('ResponseParser: Content-Length', () => {
  it('Content-Length: 0 ends at the head', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '0']), END]);
    assert.equal(o.leftover, 0);
    assert.equal(o.busy, false);
    assert.equal(o.reusable, true);
    assert.equal(o.keepAliveHint, -1);
  });

  it('reads a small body exactly', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Type', 'text/plain', 'Content-Length', '5']), body('hello'), END]);
    assert.equal(o.reusable, true);
    assert.equal(o.busy, false);
  });

  it('reads a large body exactly', () => {
    let data = '';
    for (let i = 0; data.length < 100_000; i++) data += `${i % 10}`.repeat(7) + '\r\n\r\n';
    data = data.slice(0, 100_000);
    const o = same(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n${data}`);
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '100000']), body(data), END]);
    assert.equal(o.leftover, 0);
    assert.equal(o.reusable, true);
  });

  it('waits for the rest of the body', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello')), 0);
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events, [head(200, 'OK', ['Content-Length', '10']), body('hello')]);
    assert.equal(p.execute(bytes('world')), 0);
    assert.equal(p.busy, false);
    assert.deepEqual(rec.events, [head(200, 'OK', ['Content-Length', '10']), body('helloworld'), END]);
  });

  it('a body that looks like a response is just body', () => {
    const inner = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    const o = same(`HTTP/1.1 200 OK\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`);
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', String(inner.length)]), body(inner), END]);
    assert.equal(o.leftover, 0);
    assert.equal(o.reusable, true);
  });

  it('HEAD: Content-Length describes the GET body, none follows', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', { head: true });
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '5']), END]);
    assert.equal(o.reusable, true);
    assert.equal(o.busy, false);
  });

  it('HEAD: a body sent anyway is left over and the connection is not reused', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', { head: true });
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '5']), END]);
    assert.equal(o.leftover, 5);
    assert.equal(o.reusable, false);
  });

  it('HEAD: Transfer-Encoding: chunked has no body either', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', { head: true });
    assert.deepEqual(o.events, [head(200, 'OK', ['Transfer-Encoding', 'chunked']), END]);
    assert.equal(o.busy, false);
  });

  it('204 and 304 have no body whatever Content-Length says', () => {
    const a = same('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
    assert.deepEqual(a.events, [head(204, 'No Content', ['Content-Length', '5']), END]);
    assert.equal(a.reusable, true);
    const b = same('HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: "x"\r\n\r\n');
    assert.deepEqual(b.events, [head(304, 'Not Modified', ['Content-Length', '1234', 'ETag', '"x"']), END]);
    assert.equal(b.reusable, true);
    assert.equal(b.busy, false);
  });

  it('204 and 304 have no body whatever Transfer-Encoding says', () => {
    const a = same('HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n');
    assert.deepEqual(a.events, [head(204, 'No Content', ['Transfer-Encoding', 'chunked']), END]);
    const b = same('HTTP/1.1 304 Not Modified\r\n\r\n');
    assert.deepEqual(b.events, [head(304, 'Not Modified', []), END]);
    assert.equal(b.reusable, true);
  });

  it('a body after a 204 is left over', () => {
    const o = same('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(o.leftover, 5);
    assert.equal(o.reusable, false);
  });

  it('"5, 5" and two fields of 5 are one length', () => {
    const a = same('HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello');
    assert.deepEqual(a.events, [head(200, 'OK', ['Content-Length', '5, 5']), body('hello'), END]);
    assert.equal(a.reusable, true);
    const b = same('HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello');
    assert.deepEqual(b.events, [head(200, 'OK', ['Content-Length', '5', 'content-length', '5']), body('hello'), END]);
    const c = same('HTTP/1.1 200 OK\r\nContent-Length: 5,5 , 5\r\n\r\nhello');
    assert.deepEqual(c.events.slice(1), [body('hello'), END]);
  });

  it('whitespace around the value is trimmed', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Length:  5 \r\nX-Tab:\tv\t\r\n\r\nhello');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '5', 'X-Tab', 'v']), body('hello'), END]);
    const p = same('HTTP/1.1 200 OK\r\nContent-Length:5\r\n\r\nhello');
    assert.deepEqual(p.events, [head(200, 'OK', ['Content-Length', '5']), body('hello'), END]);
  });

  it('the field name is case-insensitive', () => {
    const o = same('HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\n\r\nhi');
    assert.deepEqual(o.events, [head(200, 'OK', ['CONTENT-LENGTH', '2']), body('hi'), END]);
  });

  it('leading zeros are the same number', () => {
    const o = same('HTTP/1.1 200 OK\r\nContent-Length: 005\r\nContent-Length: 5\r\n\r\nhello');
    assert.deepEqual(o.events.slice(1), [body('hello'), END]);
  });

  it('conflicting lengths are refused', () => {
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello', /conflicting/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', /conflicting/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-A: b\r\ncontent-length: 5\r\n\r\nhello', /conflicting/);
    rejects('HTTP/1.1 304 Not Modified\r\nContent-Length: 5, 6\r\n\r\n', /conflicting/);
  });

  for (const bad of ['-1', 'abc', '+5', '0x5', '5 5', '5;', '1e3', '5.0', '', '5,', ',5', '5,,5', '1234567890123456', '\u00b55', '٥']) {
    it(`Content-Length: ${JSON.stringify(bad)} is refused`, () => {
      rejects(`HTTP/1.1 200 OK\r\nContent-Length: ${bad}\r\n\r\nhello`, /Content-Length/);
    });
  }

  it('a bad Content-Length is refused even beside Transfer-Encoding', () => {
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: abc\r\n\r\n0\r\n\r\n', /Content-Length/);
  });

  it('a 15-digit length is accepted exactly', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\n\r\nabc')), 0);
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events.slice(1), [body('abc')]);
  });

  it('keeps the reason phrase as sent', () => {
    const o = same('HTTP/1.1 404 Not  Found\tat all \r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(o.events[0], head(404, 'Not  Found\tat all ', ['Content-Length', '0']));
    const latin = same(Buffer.concat([bytes('HTTP/1.1 200 Caf'), Buffer.from([0xe9]), bytes('\r\nContent-Length: 0\r\n\r\n')]));
    assert.deepEqual(latin.events[0], head(200, 'Caf\u00e9', ['Content-Length', '0']));
  });

  it('a status line without a reason phrase', () => {
    for (const line of ['HTTP/1.1 200', 'HTTP/1.1 200 ']) {
      const o = same(`${line}\r\nContent-Length: 2\r\n\r\nok`);
      assert.deepEqual(o.events, [head(200, '', ['Content-Length', '2']), body('ok'), END], line);
    }
  });

  it('headers are the flat raw list: names as sent, order and repeats kept, empty values allowed', () => {
    const o = same('HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nx-lower: v\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Spaces:   \r\nX-Inner: a  b\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(o.events[0], head(201, 'Created', [
      'Set-Cookie', 'a=1', 'x-lower', 'v', 'Set-Cookie', 'b=2', 'X-Empty', '', 'X-Spaces', '', 'X-Inner', 'a  b', 'Content-Length', '0',
    ]));
  });

  it('names of framing lengths that are not framing fields are passed on untouched', () => {
    // 14, 17 and 10 characters, like content-length, transfer-encoding and connection.
    const o = same('HTTP/1.1 200 OK\r\nContent-Lengtx: 9\r\nTransfer-Encodinx: chunked\r\nConnectiox: close\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual(o.events.slice(1), [body('ok'), END]);
    assert.equal(o.reusable, true);
  });

  it('header values may carry obs-text bytes', () => {
    const o = same(Buffer.concat([bytes('HTTP/1.1 200 OK\r\nX-Name: '), Buffer.from([0x80, 0xff]), bytes('\r\nContent-Length: 0\r\n\r\n')]));
    assert.deepEqual(o.events[0], head(200, 'OK', ['X-Name', '\u0080\u00ff', 'Content-Length', '0']));
  });
});

describe('ResponseParser: chunked', () => {
  it('joins several chunks', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\n\r\n');
    assert.deepEqual(o.events, [head(200, 'OK', ['Transfer-Encoding', 'chunked']), body('hello, world'), END]);
    assert.equal(o.leftover, 0);
    assert.equal(o.reusable, true);
    assert.equal(o.busy, false);
  });

  it('an empty chunked body', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.deepEqual(o.events, [head(200, 'OK', ['Transfer-Encoding', 'chunked']), END]);
    assert.equal(o.reusable, true);
  });

  it('chunk data may contain CRLF and size-like text', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n');
    assert.deepEqual(o.events.slice(1), [body('0\r\n\r\n\r\n'), END]);
    assert.equal(o.leftover, 0);
  });

  it('ignores chunk extensions', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;foo=bar\r\nhello\r\n6 ; a="b;c" ;d\r\n world\r\n3\t;x\r\n!!!\r\n0;last\r\n\r\n');
    assert.deepEqual(o.events.slice(1), [body('hello world!!!'), END]);
  });

  it('accepts whitespace between the size and the line end', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\t\r\n\r\n');
    assert.deepEqual(o.events.slice(1), [body('ok'), END]);
  });

  it('reads upper- and lower-case hex and leading zeros', () => {
    const data = 'x'.repeat(0x1a) + 'y'.repeat(0xa) + 'z'.repeat(0x10);
    const o = same(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1A\r\n${'x'.repeat(26)}\r\na\r\n${'y'.repeat(10)}\r\n0010\r\n${'z'.repeat(16)}\r\n000\r\n\r\n`);
    assert.deepEqual(o.events.slice(1), [body(data), END]);
  });

  it('reads a large chunk', () => {
    const data = 'abcdefghij'.repeat(7000);
    const o = same(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${data.length.toString(16)}\r\n${data}\r\n1\r\n!\r\n0\r\n\r\n`);
    assert.deepEqual(o.events.slice(1), [body(`${data}!`), END]);
  });

  it('drops trailers and ends after the empty line', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:\r\nContent-Length: 99\r\n\r\n');
    assert.deepEqual(o.events, [head(200, 'OK', ['Transfer-Encoding', 'chunked', 'Trailer', 'X-Checksum']), body('abc'), END]);
    assert.equal(o.leftover, 0);
    assert.equal(o.reusable, true);
  });

  it('bytes after the trailers are left over', () => {
    const second = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    const o = same(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: b\r\n\r\n${second}`);
    assert.deepEqual(o.events.slice(1), [body('abc'), END]);
    assert.equal(o.leftover, second.length);
    assert.equal(o.reusable, false);
  });

  it('"gzip, chunked" is chunked (the body stays gzip)', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n');
    assert.deepEqual(o.events, [head(200, 'OK', ['Transfer-Encoding', 'gzip, chunked']), body('\x1f\x8b'), END]);
    assert.equal(o.reusable, true);
  });

  it('Transfer-Encoding fields are one list: gzip then chunked is chunked', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX-A: b\r\nTransfer-Encoding: Chunked \r\n\r\n2\r\nzz\r\n0\r\n\r\n');
    assert.deepEqual(o.events.slice(1), [body('zz'), END]);
    assert.equal(o.reusable, true);
  });

  it('Transfer-Encoding fields are one list: chunked then gzip reads until close', () => {
    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n2\r\nzz\r\n0\r\n\r\n', { close: true });
    assert.deepEqual(o.events.slice(1), [body('2\r\nzz\r\n0\r\n\r\n'), END]);
    assert.equal(o.reusable, false);
  });

  it('chunked with Content-Length: chunked wins and the connection is not reused', () => {
    for (const fields of ['Transfer-Encoding: chunked\r\nContent-Length: 3', 'Content-Length: 3\r\nTransfer-Encoding: chunked']) {
      const o = same(`HTTP/1.1 200 OK\r\n${fields}\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`);
      assert.deepEqual(o.events.slice(1), [body('hello world'), END], fields);
      assert.equal(o.leftover, 0, fields);
      assert.equal(o.reusable, false, fields);
    }
  });

  it('Transfer-Encoding: gzip alone reads until close', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nab')), 0);
    assert.equal(p.execute(bytes('cd')), 0);
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events, [head(200, 'OK', ['Transfer-Encoding', 'gzip', 'Content-Length', '2']), body('abcd')]);
    p.finish();
    assert.equal(p.busy, false);
    assert.equal(p.reusable, false);
    assert.deepEqual(rec.events.slice(1), [body('abcd'), END]);

    const o = same('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\r\n\r\n0\r\n\r\n', { close: true });
    assert.deepEqual(o.events.slice(1), [body('\x1f\x8b\r\n\r\n0\r\n\r\n'), END]);
    assert.equal(o.reusable, false);
  });

  it('an HTTP/1.0 response with Transfer-Encoding is never reused (RFC 9112 §6.1)', () => {
    const o = same('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    assert.deepEqual(o.events.slice(1), [body('ok'), END]);
    assert.equal(o.reusable, false);
  });

  it('the final chunk may come in a later read', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    p.execute(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n'));
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events.slice(1), [body('ok')]);
    p.execute(bytes('0\r\n'));
    assert.equal(p.busy, true);
    p.execute(bytes('\r\n'));
    assert.equal(p.busy, false);
    assert.deepEqual(rec.events.slice(1), [body('ok'), END]);
  });
});

describe('ResponseParser: chunked errors', () => {
  const H = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';

  for (const [name, size] of [
    ['a non-hex digit', 'g'], ['0x prefix', '0x5'], ['a sign', '-5'], ['a plus', '+5'], ['leading space', ' 5'],
    ['an empty size', ''], ['a size then junk', '5 x'], ['a size then a comma', '5,'], ['14 hex digits', '10000000000000'],
    ['14 hex digits of leading zeros', '00000000000005'], ['a bare CR in an extension', '5;a\rb'], ['a fraction', '5.0'],
  ] as const) {
    it(`refuses a chunk size with ${name}`, () => {
      rejects(`${H}${size}\r\nhello\r\n0\r\n\r\n`, /chunk/);
    });
  }

  it('accepts 13 hex digits (still an exact number)', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(bytes(`${H}FFFFFFFFFFFFF\r\nabc`)), 0);
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events.slice(1), [body('abc')]);
  });

  it('refuses a size line ended by a bare LF', () => {
    rejects(`${H}5\nhello\r\n0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhello\r\n0\n\r\n`, /CRLF/);
    rejects(`${H}\n`, /CRLF/);
  });

  it('refuses chunk data not followed by CRLF', () => {
    rejects(`${H}5\r\nhelloX\r\n0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhello\n0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhello\r0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhelloX\n0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhello\n\n0\r\n\r\n`, /CRLF/);
    rejects(`${H}5\r\nhello world\r\n0\r\n\r\n`, /CRLF/);
  });

  it('a chunk-size line is at most 4096 bytes with its CRLF', () => {
    const ext = (n: number): string => `5;${'a'.repeat(n - 4)}\r\n`;
    assert.equal(ext(4096).length, 4096);
    const o = same(`${H}${ext(4096)}hello\r\n0\r\n\r\n`);
    assert.deepEqual(o.events.slice(1), [body('hello'), END]);
    rejects(`${H}${ext(4097)}hello\r\n0\r\n\r\n`, /too long/);
  });

  it('refuses a chunk-size line that never ends', () => {
    rejects(`${H}5;${'a'.repeat(5000)}`, /too long/);
    rejects(`${H}${'0'.repeat(4097)}`, /too long/);
  });

  it('refuses bad trailer lines', () => {
    rejects(`${H}0\r\nX-A: b\n\r\n`, /CRLF|trailer/);
    rejects(`${H}0\r\nno colon here\r\n\r\n`, /trailer/);
    rejects(`${H}0\r\n: no name\r\n\r\n`, /trailer/);
    rejects(`${H}0\r\nX-A: b\rc\r\n\r\n`, /trailer/);
    rejects(`${H}0\r\nX-A: b\x00c\r\n\r\n`, /trailer/);
    rejects(`${H}0\r\n\n`, /CRLF|trailer/);
  });

  it('refuses trailers larger than the head limit', () => {
    const trailers = `X-Pad: ${'p'.repeat(200)}\r\n`;
    rejects(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailers}\r\n`, /trailers too large/, { maxHead: 128 });
    rejects(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-A: b\r\n'.repeat(20)}\r\n`, /trailers too large/, { maxHead: 128 });
  });
});

describe('ResponseParser: read until close and connection reuse', () => {
  it('no framing field reads until close', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(bytes('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome')), 0);
    assert.equal(p.execute(bytes(' more HTTP/1.1 200 OK\r\n\r\n')), 0);
    assert.equal(p.busy, true);
    assert.deepEqual(rec.events, [head(200, 'OK', ['Content-Type', 'text/plain']), body('some more HTTP/1.1 200 OK\r\n\r\n')]);
    p.finish();
    assert.equal(p.busy, false);
    assert.equal(p.reusable, false);
    assert.equal(rec.events[rec.events.length - 1]?.type, 'end');
    p.finish(); // a second close after the end is harmless
    assert.equal(rec.events.filter((e) => e.type === 'end').length, 1);
  });

  it('read until close, split every way', () => {
    const o = same('HTTP/1.1 200 OK\r\n\r\nuntil the end', { close: true });
    assert.deepEqual(o.events, [head(200, 'OK', []), body('until the end'), END]);
    assert.equal(o.reusable, false);
    assert.equal(o.leftover, 0);
  });

  it('read until close with an empty body', () => {
    const o = same('HTTP/1.1 200 OK\r\n\r\n', { close: true });
    assert.deepEqual(o.events, [head(200, 'OK', []), END]);
    assert.equal(o.reusable, false);
  });

  it('HTTP/1.0 is not reused by default', () => {
    const o = same('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '2']), body('hi'), END]);
    assert.equal(o.reusable, false);
  });

  it('HTTP/1.0 with Connection: keep-alive is reused', () => {
    for (const v of ['keep-alive', 'Keep-Alive', 'foo, keep-alive']) {
      const o = same(`HTTP/1.0 200 OK\r\nConnection: ${v}\r\nContent-Length: 2\r\n\r\nhi`);
      assert.deepEqual(o.events.slice(1), [body('hi'), END], v);
      assert.equal(o.reusable, true, v);
    }
  });

  it('HTTP/1.0 keep-alive without a length still reads until close', () => {
    const o = same('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody', { close: true });
    assert.deepEqual(o.events.slice(1), [body('body'), END]);
    assert.equal(o.reusable, false);
  });

  it('HTTP/1.0 with keep-alive and close is not reused', () => {
    const o = same('HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n');
    assert.equal(o.reusable, false);
  });

  it('Connection: close on HTTP/1.1 is not reused', () => {
    for (const fields of ['Connection: close', 'Connection: CLOSE', 'connection: keep-alive, close', 'Connection: keep-alive\r\nConnection: close', 'Connection:  Close ']) {
      const o = same(`HTTP/1.1 200 OK\r\n${fields}\r\nContent-Length: 2\r\n\r\nhi`);
      assert.deepEqual(o.events.slice(1), [body('hi'), END], fields);
      assert.equal(o.reusable, false, fields);
    }
  });

  it('other Connection tokens on HTTP/1.1 keep it reusable', () => {
    for (const v of ['keep-alive', 'Upgrade', 'closed', 'x-close']) {
      const o = same(`HTTP/1.1 200 OK\r\nConnection: ${v}\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(o.reusable, true, v);
    }
  });

  it('Keep-Alive: timeout=N is a hint in milliseconds', () => {
    const cases: Array<[string, number]> = [
      ['timeout=5', 5000], ['timeout=5, max=100', 5000], ['max=100, timeout=30', 30000], ['Timeout = 2', 2000],
      ['max=100', -1], ['timeout=abc', -1], ['xtimeout=5', -1],
    ];
    for (const [v, ms] of cases) {
      const o = same(`HTTP/1.1 200 OK\r\nKeep-Alive: ${v}\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(o.keepAliveHint, ms, v);
      assert.equal(o.reusable, true, v);
    }
    assert.equal(same('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').keepAliveHint, -1);
  });

  it('a Keep-Alive hint on a 1xx head does not count', () => {
    const o = same('HTTP/1.1 100 Continue\r\nKeep-Alive: timeout=9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    assert.equal(o.keepAliveHint, -1);
  });
});

describe('ResponseParser: 1xx', () => {
  it('skips 100 Continue', () => {
    const o = same('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '2']), body('ok'), END]);
    assert.equal(o.reusable, true);
    assert.equal(o.leftover, 0);
  });

  it('skips 103 Early Hints and several 1xx in a row; their fields are not the final ones', () => {
    const o = same('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100\r\nConnection: close\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '2']), body('ok'), END]);
    assert.equal(o.reusable, true);
  });

  it('skips 1xx before the answer to a HEAD request', () => {
    const o = same('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n', { head: true });
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '2']), END]);
  });

  it('a 1xx alone leaves the parser waiting for the final head, no longer untouched', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.untouched, true);
    assert.equal(p.execute(bytes('HTTP/1.1 100 Continue\r\n\r\n')), 0);
    assert.deepEqual(rec.events, []);
    assert.equal(p.busy, true);
    // The upstream saw the request: a close now is no stale keep-alive connection to retry on.
    assert.equal(p.untouched, false);
    assert.throws(() => p.finish(), (e: unknown) => e instanceof ResponseError && /before the response head/.test(e.detail));
  });

  it('refuses 101 Switching Protocols', () => {
    rejects('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', /101/);
    rejects('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n', /101/);
  });
});

describe('ResponseParser: malformed heads', () => {
  const refuse = (name: string, raw: string, detail?: RegExp): void => {
    it(`refuses ${name}`, () => rejects(raw, detail));
  };

  refuse('obs-fold with a space', 'HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n', /obs-fold/);
  refuse('obs-fold with a tab', 'HTTP/1.1 200 OK\r\nX-A: b\r\n\tc\r\nContent-Length: 0\r\n\r\n', /obs-fold/);
  refuse('obs-fold continuing Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 0\r\n\r\n0123456789', /obs-fold/);
  refuse('a field line starting with whitespace right after the status line', 'HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n', /obs-fold/);
  refuse('a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', /header name/);
  refuse('a tab before the colon', 'HTTP/1.1 200 OK\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n', /header name/);
  refuse('a line without a colon', 'HTTP/1.1 200 OK\r\nX-A b\r\nContent-Length: 0\r\n\r\n', /colon/);
  refuse('an empty field name', 'HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 0\r\n\r\n', /header name/);
  refuse('a non-token field name', 'HTTP/1.1 200 OK\r\nX(A): b\r\nContent-Length: 0\r\n\r\n', /header name/);
  refuse('a bare LF between fields', 'HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 5\r\n\r\nhello', /bare/);
  refuse('a bare LF after the status line', 'HTTP/1.1 200 OK\nContent-Length: 5\r\n\r\nhello', /bare/);
  refuse('a bare LF inside a value', 'HTTP/1.1 200 OK\r\nX-A: b\nc\r\nContent-Length: 0\r\n\r\n', /bare/);
  refuse('a bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 0\r\n\r\n', /bare/);
  refuse('a bare CR before CRLF', 'HTTP/1.1 200 OK\r\nX-A: b\r\r\nContent-Length: 0\r\n\r\n', /bare/);
  refuse('a bare CR as a line end', 'HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n', /bare/);
  refuse('NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n', /control/);
  refuse('other control characters in a value', 'HTTP/1.1 200 OK\r\nX-A: b\x01\x1bc\r\nContent-Length: 0\r\n\r\n', /control/);
  refuse('DEL in a value', 'HTTP/1.1 200 OK\r\nX-A: b\x7f\r\nContent-Length: 0\r\n\r\n', /control/);
  refuse('NUL in the reason phrase', 'HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n', /control/);
  refuse('a second status line', 'HTTP/1.1 200 OK\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', /colon/);

  it('a head with bare LF line ends is refused at the first one, without waiting for more', () => {
    rejects('HTTP/1.1 200 OK\nContent-Length: 0\n\n', /bare LF/);
    // Once a CRLFCRLF does turn up, the bare LFs before it are refused.
    rejects('HTTP/1.1 200 OK\nContent-Length: 4\n\n\r\n\r\n', /bare/);
  });

  it('HTAB inside a value is fine', () => {
    const o = same('HTTP/1.1 200 OK\r\nX-A: b\tc\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(o.events[0], head(200, 'OK', ['X-A', 'b\tc', 'Content-Length', '0']));
  });

  for (const line of [
    'HTTP/2.0 200 OK', 'HTTP/1.1 2000 OK', 'ICY 200 OK', 'HTTP/1.1 20 OK', 'HTTP/1.2 200 OK', 'HTTP/1.1 099 OK', 'HTTP/1.1 000 OK',
    'HTTP/1.1  200 OK', 'HTTP/1.1 200OK', 'http/1.1 200 OK', 'HTTP/1.1 2x0 OK', 'HTTP/1.1\t200 OK', 'HTTP/1.1 200\tOK', 'HTTP/1.1 -200 OK',
    'HTTP/1.1', 'HTTP/1.1 ', 'HTTP/1 200 OK', 'HTTP/11 200 OK', ' HTTP/1.1 200 OK', 'HTTP/1.1 1200', '',
  ]) {
    it(`refuses the status line ${JSON.stringify(line)}`, () => {
      rejects(`${line}\r\nContent-Length: 0\r\n\r\n`, /status|version/);
    });
  }

  it('refuses an empty line before the status line', () => {
    rejects('\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', /status/);
  });

  it('refuses an empty head', () => {
    rejects('\r\n\r\n', /status/);
  });

  it('no events come before a refused head', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.throws(() => p.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello')), ResponseError);
    assert.deepEqual(rec.events, []);
  });
});

describe('ResponseParser: head size limit', () => {
  const MAX = 64;
  /** A head of exactly `n` bytes including its CRLFCRLF. */
  const headOf = (n: number): string => {
    const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
    return `${start}${'p'.repeat(n - start.length - 4)}\r\n\r\n`;
  };

  it('accepts a head of exactly the limit', () => {
    assert.equal(headOf(MAX).length, MAX);
    const o = same(headOf(MAX), { maxHead: MAX });
    assert.equal(o.events[0]?.type, 'head');
    assert.equal(o.busy, false);
  });

  it('refuses a head one byte over the limit', () => {
    rejects(headOf(MAX + 1), /too large/, { maxHead: MAX });
  });

  it('refuses a head whose terminator comes much too late', () => {
    rejects(`${headOf(MAX * 3)}`, /too large/, { maxHead: MAX });
  });

  it('refuses a head whose terminator never comes', () => {
    rejects(`HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(MAX * 2)}`, /too large/, { maxHead: MAX });
    rejects(`HTTP/1.1 200 OK\r\n${'X-A: b\r\n'.repeat(20)}`, /too large/, { maxHead: MAX });
  });

  it('the body does not count toward the head limit', () => {
    const data = 'b'.repeat(MAX * 4);
    const h = `HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`;
    const o = same(`${h}${data}`, { maxHead: MAX });
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', String(data.length)]), body(data), END]);
  });

  it('each 1xx head and the final head are limited on their own', () => {
    const info = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n';
    assert.ok(info.length <= MAX);
    const o = same(`${info}${info}${info}${headOf(MAX)}`, { maxHead: MAX });
    assert.equal(o.events.length, 2);
    assert.equal(o.busy, false);
  });
});

describe('ResponseParser: finish()', () => {
  const closeAfter = (raw: string): ResponseParser => {
    const p = new ResponseParser(new Recorder(), 8192);
    p.expect(false);
    p.execute(bytes(raw));
    return p;
  };
  const throwsOnFinish = (raw: string, detail: RegExp): void => {
    for (const [how, pieces] of cuts(bytes(raw))) {
      const p = new ResponseParser(new Recorder(), 8192);
      p.expect(false);
      for (const piece of pieces) p.execute(own(piece));
      assert.throws(() => p.finish(), (e: unknown) => e instanceof ResponseError && detail.test(e.detail), `${how}: ${JSON.stringify(raw)}`);
    }
  };

  it('throws when nothing arrived', () => {
    const p = new ResponseParser(new Recorder(), 8192);
    p.expect(false);
    assert.equal(p.untouched, true);
    assert.equal(p.busy, true);
    assert.throws(() => p.finish(), (e: unknown) => e instanceof ResponseError && /before the response head/.test(e.detail));
  });

  it('throws mid-head', () => {
    throwsOnFinish('HTTP/1.1 200 OK\r\nContent-Len', /before the response head/);
    throwsOnFinish('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r', /before the response head/);
    const p = closeAfter('H');
    assert.equal(p.untouched, false);
  });

  it('throws mid Content-Length body', () => {
    throwsOnFinish('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', /inside the response body/);
    throwsOnFinish('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell', /inside the response body/);
  });

  it('throws mid chunked body, wherever it stops', () => {
    const H = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (const rest of ['', '5', '5\r', '5\r\n', '5\r\nhel', '5\r\nhello', '5\r\nhello\r', '5\r\nhello\r\n', '5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\nX-A: b\r\n', '0\r\n\r']) {
      throwsOnFinish(`${H}${rest}`, /inside the response body/);
    }
  });

  it('is fine when idle after a complete response, and before any expect()', () => {
    for (const raw of ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n']) {
      const rec = new Recorder();
      const p = new ResponseParser(rec, 8192);
      p.expect(false);
      p.execute(bytes(raw));
      assert.equal(p.busy, false, raw);
      p.finish();
      assert.equal(rec.events.filter((e) => e.type === 'end').length, 1, raw);
    }
    const fresh = new ResponseParser(new Recorder(), 8192);
    assert.equal(fresh.busy, false);
    fresh.finish();
  });
});

describe('ResponseParser: leftover bytes and sequences', () => {
  const first = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  const second = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld';

  it('a response glued after a complete one is left over, and the connection is not reused', () => {
    const o = same(first + second);
    assert.deepEqual(o.events, [head(200, 'OK', ['Content-Length', '5']), body('hello'), END]);
    assert.equal(o.leftover, second.length);
    assert.equal(o.reusable, false);
    assert.equal(o.busy, false);
  });

  it('execute() returns the exact count past the end within one buffer', () => {
    const p = new ResponseParser(new Recorder(), 8192);
    p.expect(false);
    assert.equal(p.execute(bytes(`${first}XYZ`)), 3);
    assert.equal(p.reusable, false);
    assert.equal(p.execute(bytes('more')), 4);
  });

  it('bytes before any expect() are all left over', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    assert.equal(p.execute(bytes(first)), first.length);
    assert.deepEqual(rec.events, []);
    assert.equal(p.reusable, false);
  });

  it('an empty buffer changes nothing', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(Buffer.alloc(0)), 0);
    assert.equal(p.untouched, true);
    assert.deepEqual(rec.events, []);
  });

  it('reads responses in sequence, expect() between them resetting the state', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    const steps: Array<{ isHead: boolean; raw: string; events: Event[]; reusable: boolean; hint: number }> = [
      {
        isHead: false, raw: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=3\r\nContent-Length: 5\r\n\r\nhello',
        events: [head(200, 'OK', ['Keep-Alive', 'timeout=3', 'Content-Length', '5']), body('hello'), END], reusable: true, hint: 3000,
      },
      {
        isHead: false, raw: 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        events: [head(201, 'Created', ['Transfer-Encoding', 'chunked']), body('abc'), END], reusable: true, hint: -1,
      },
      {
        isHead: true, raw: 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n',
        events: [head(200, 'OK', ['Content-Length', '99']), END], reusable: true, hint: -1,
      },
      {
        isHead: false, raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno',
        events: [head(404, 'Not Found', ['Content-Length', '2']), body('no'), END], reusable: true, hint: -1,
      },
      {
        isHead: false, raw: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n',
        events: [head(200, 'OK', ['Content-Length', '1', 'Transfer-Encoding', 'chunked']), body('x'), END], reusable: false, hint: -1,
      },
      {
        isHead: false, raw: 'HTTP/1.1 304 Not Modified\r\n\r\n',
        events: [head(304, 'Not Modified', []), END], reusable: true, hint: -1,
      },
    ];
    for (const [i, step] of steps.entries()) {
      rec.events = [];
      p.expect(step.isHead);
      assert.equal(p.untouched, true, `step ${i}`);
      assert.equal(p.busy, true, `step ${i}`);
      // Byte by byte for odd steps, whole for even ones, so state left from one cut meets the next.
      if (i % 2 === 1) for (const b of bytes(step.raw)) assert.equal(p.execute(Buffer.from([b])), 0, `step ${i}`);
      else assert.equal(p.execute(bytes(step.raw)), 0, `step ${i}`);
      assert.deepEqual(rec.events, step.events, `step ${i}`);
      assert.equal(p.busy, false, `step ${i}`);
      assert.equal(p.reusable, step.reusable, `step ${i}`);
      assert.equal(p.keepAliveHint, step.hint, `step ${i}`);
    }
  });

  it('the second response after a leftover-free first one is parsed from the bytes left over', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    const buf = bytes(first + second);
    const extra = p.execute(buf);
    assert.equal(extra, second.length);
    // A client that pipelined would hand the leftover to the next response; the parser allows it.
    p.expect(false);
    assert.equal(p.execute(buf.subarray(buf.length - extra)), 0);
    assert.deepEqual(rec.events.slice(3), [head(200, 'OK', ['Content-Length', '5']), body('world'), END]);
    assert.equal(p.reusable, true);
  });
});

describe('ResponseParser: bodies are views, not copies', () => {
  /** `s` in an unpooled buffer of its own. */
  const alone = (s: string): Buffer => own(bytes(s));

  it('a Content-Length body in the same buffer as its head', () => {
    const h = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    const input = alone(`${h}hello`);
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(input), 0);
    assert.equal(rec.chunks.length, 1);
    const chunk = rec.chunks[0]!;
    assert.equal(chunk.buffer, input.buffer);
    assert.equal(chunk.byteOffset, input.byteOffset + h.length);
    assert.equal(chunk.length, 5);
    input[h.length] = 0x48;
    assert.equal(chunk.toString('latin1'), 'Hello');
  });

  it('a Content-Length body in a buffer of its own is that buffer', () => {
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    p.execute(alone('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'));
    const a = alone('hello');
    const b = alone('world');
    p.execute(a);
    p.execute(b);
    assert.equal(rec.chunks[0], a);
    assert.equal(rec.chunks[1], b);
  });

  it('chunked data and read-until-close bodies share memory with the input', () => {
    const h = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n';
    const input = alone(`${h}hello\r\n0\r\n\r\n`);
    const rec = new Recorder();
    const p = new ResponseParser(rec, 8192);
    p.expect(false);
    assert.equal(p.execute(input), 0);
    assert.equal(rec.chunks[0]!.buffer, input.buffer);
    assert.equal(rec.chunks[0]!.byteOffset, input.byteOffset + h.length);

    const u = 'HTTP/1.1 200 OK\r\n\r\n';
    const input2 = alone(`${u}stream`);
    const rec2 = new Recorder();
    const p2 = new ResponseParser(rec2, 8192);
    p2.expect(false);
    p2.execute(input2);
    assert.equal(rec2.chunks[0]!.buffer, input2.buffer);
    assert.equal(rec2.chunks[0]!.byteOffset, input2.byteOffset + u.length);
    const more = alone('more');
    p2.execute(more);
    assert.equal(rec2.chunks[1], more);
  });

  it('a head split across reads does not keep references to the reads', () => {
    // feed() overwrites every buffer after execute(); the head must still parse right.
    const o = same('HTTP/1.1 200 OK\r\nX-Long: abcdefghijklmnopqrstuvwxyz\r\nContent-Length: 3\r\n\r\nabc');
    assert.deepEqual(o.events, [head(200, 'OK', ['X-Long', 'abcdefghijklmnopqrstuvwxyz', 'Content-Length', '3']), body('abc'), END]);
  });
});

describe('ResponseError', () => {
  it('carries the rule it broke', () => {
    const e = new ResponseError('bad chunk size');
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.detail, 'bad chunk size');
    assert.match(e.message, /bad chunk size/);
  });
});
