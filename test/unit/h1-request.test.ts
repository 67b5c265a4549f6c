import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_MINE, PARTIAL, readRequestHead, type HeadLimits, type RequestHead } from '../../src/core/h1-request.js';

type Result = RequestHead | typeof PARTIAL | typeof NOT_MINE;

const LIMITS: HeadLimits = { maxBytes: 8192, maxFields: 100 };

const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

/** A fresh, unpooled copy of `b`, so the reader sees a buffer of its own (and offsets are real). */
function own(b: Buffer): Buffer {
  const out = Buffer.alloc(b.length);
  b.copy(out);
  return out;
}

/** Reads `raw` (latin1 when a string) at `start`; the buffer is checked to be left untouched. */
function read(raw: string | Buffer, start = 0, limits: HeadLimits = LIMITS): Result {
  const buf = own(bytes(raw));
  const before = own(buf);
  const r = readRequestHead(buf, start, limits);
  assert.ok(buf.equals(before), 'readRequestHead modified its input');
  return r;
}

/** The expected head; `end` defaults to the whole of `raw` (a head with nothing after it). */
function head(method: string, url: string, rawHeaders: string[], opts: { contentLength?: number; close?: boolean; end: number }): RequestHead {
  return { method, url, rawHeaders, contentLength: opts.contentLength ?? -1, close: opts.close ?? false, end: opts.end };
}

/** `r` shifted by `d` bytes (the same head read further into a buffer). */
function shifted(r: Result, d: number): Result {
  return typeof r === 'number' ? r : { ...r, end: r.end + d };
}

/** Bytes that may follow a head: a body, a pipelined request, stray line ends, every byte value. */
const TRAILERS: Buffer[] = [
  bytes('x'),
  bytes('\r'),
  bytes('\n'),
  bytes('\r\n'),
  bytes('\r\n\r\n'),
  bytes('hello'),
  bytes('GET /next HTTP/1.1\r\nHost: b\r\n\r\n'),
  bytes('Transfer-Encoding: chunked\r\n\r\n'),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.alloc(20000, 0x41),
];
/** Bytes that may come before a head in the buffer (read with `start` past them). */
const PREFIXES: Buffer[] = [bytes('X'), bytes('\r\n'), bytes('POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc'), Buffer.from([0, 0xff, 0x0a, 0x0d, 0x20])];

/**
 * Asserts `raw` (a whole head, nothing after it) reads as `expected` with end = raw.length, and
 * that the answer does not change with bytes after it or before it (with `start` past them).
 */
function accepts(raw: string | Buffer, expected: Omit<RequestHead, 'end'>, limits: HeadLimits = LIMITS): RequestHead {
  const b = bytes(raw);
  const want: RequestHead = { ...expected, end: b.length };
  assert.deepEqual(read(b, 0, limits), want);
  for (const t of TRAILERS) assert.deepEqual(read(Buffer.concat([b, t]), 0, limits), want, `followed by ${JSON.stringify(t.toString('latin1').slice(0, 40))}`);
  for (const p of PREFIXES) {
    assert.deepEqual(read(Buffer.concat([p, b]), p.length, limits), shifted(want, p.length), `after ${JSON.stringify(p.toString('latin1'))}`);
    assert.deepEqual(read(Buffer.concat([p, b, bytes('tail')]), p.length, limits), shifted(want, p.length), `after ${JSON.stringify(p.toString('latin1'))}, with a tail`);
  }
  return want;
}

/** Asserts `raw` is NOT_MINE, whatever follows it and wherever it starts in the buffer. */
function refuses(raw: string | Buffer, limits: HeadLimits = LIMITS): void {
  const b = bytes(raw);
  assert.equal(read(b, 0, limits), NOT_MINE);
  for (const t of TRAILERS) assert.equal(read(Buffer.concat([b, t]), 0, limits), NOT_MINE, `followed by ${JSON.stringify(t.toString('latin1').slice(0, 40))}`);
  for (const p of PREFIXES) assert.equal(read(Buffer.concat([p, b]), p.length, limits), NOT_MINE, `after ${JSON.stringify(p.toString('latin1'))}`);
}

// ---------------------------------------------------------------------------------------------
// A reference reader, written from the documented grammar with regular expressions, used to
// cross-check the real one on heads made by mutating valid ones. It answers for complete input
// only: a head, or null when no head of the subset starts at `start`.

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\/[\x21\x22\x24-\x7e]*) HTTP\/1\.1\r\n/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\r\n/;
const trimOws = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');

function reference(buf: Buffer, start: number, maxFields: number): RequestHead | null {
  const text = buf.toString('latin1', start);
  const line = REQUEST_LINE.exec(text);
  if (line === null) return null;
  let pos = line[0].length;
  const rawHeaders: string[] = [];
  for (;;) {
    if (text.startsWith('\r\n', pos)) {
      pos += 2;
      break;
    }
    const f = FIELD_LINE.exec(text.slice(pos));
    if (f === null) return null;
    rawHeaders.push(f[1]!, f[2]!);
    pos += f[0].length;
  }
  if (!METHODS.includes(line[1]!) || rawHeaders.length / 2 > maxFields) return null;
  let contentLength = -1;
  let close = false;
  for (let k = 0; k < rawHeaders.length; k += 2) {
    const name = rawHeaders[k]!.toLowerCase();
    const value = rawHeaders[k + 1]!;
    if (name === 'content-length') {
      if (contentLength !== -1 || !/^(?:0|[1-9][0-9]{0,14})$/.test(value)) return null;
      contentLength = Number(value);
    } else if (name === 'transfer-encoding' || name === 'expect' || name === 'upgrade') {
      return null;
    } else if (name === 'connection') {
      for (const token of value.split(',')) {
        const t = trimOws(token).toLowerCase();
        if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(t) || t === 'upgrade') return null;
        if (t === 'close') close = true;
      }
    }
  }
  return { method: line[1]!, url: line[2]!, rawHeaders, contentLength, close, end: start + pos };
}

// ---------------------------------------------------------------------------------------------
// Heads the reader takes, with what it must make of them.

interface Case {
  name: string;
  raw: string;
  expect: Omit<RequestHead, 'end'>;
}

const h = (method: string, url: string, rawHeaders: string[], contentLength = -1, close = false): Omit<RequestHead, 'end'> => ({
  method,
  url,
  rawHeaders,
  contentLength,
  close,
});

const ACCEPTED: Case[] = [
  { name: 'simple GET', raw: 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', expect: h('GET', '/', ['Host', 'example.com']) },
  { name: 'no fields at all', raw: 'GET / HTTP/1.1\r\n\r\n', expect: h('GET', '/', []) },
  ...METHODS.map((m) => ({ name: `method ${m}`, raw: `${m} /m HTTP/1.1\r\nHost: a\r\n\r\n`, expect: h(m, '/m', ['Host', 'a']) })),
  {
    name: 'query string and percent-encoding',
    raw: 'GET /search/%E4%B8%AD?q=a%20b+c&lang=zh-CN&empty=&x=%2F%3F HTTP/1.1\r\nHost: a\r\n\r\n',
    expect: h('GET', '/search/%E4%B8%AD?q=a%20b+c&lang=zh-CN&empty=&x=%2F%3F', ['Host', 'a']),
  },
  {
    name: 'every visible ASCII character but # in the target',
    raw: 'GET /!"$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\n\r\n',
    expect: h('GET', '/!"$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~', []),
  },
  { name: 'a target of "//"', raw: 'GET // HTTP/1.1\r\n\r\n', expect: h('GET', '//', []) },
  {
    name: 'names as sent, order and repeats kept',
    raw: 'POST /api HTTP/1.1\r\nhost: a\r\nX-Foo: 1\r\nx-foo: 2\r\nACCEPT: */*\r\nX-Foo: 3\r\n\r\n',
    expect: h('POST', '/api', ['host', 'a', 'X-Foo', '1', 'x-foo', '2', 'ACCEPT', '*/*', 'X-Foo', '3']),
  },
  {
    name: 'every tchar in a name',
    raw: "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
    expect: h('GET', '/', ["!#$%&'*+-.^_`|~09azAZ", 'v']),
  },
  {
    name: 'values with inner spaces and tabs',
    raw: 'GET / HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nX-Tab: a\tb  c\t \td\r\n\r\n',
    expect: h('GET', '/', ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)', 'X-Tab', 'a\tb  c\t \td']),
  },
  {
    name: 'values with every visible character',
    raw: 'GET / HTTP/1.1\r\nX: !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\r\n\r\n',
    expect: h('GET', '/', ['X', '!"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~']),
  },
  {
    name: 'obs-text in values, decoded as latin1',
    raw: 'GET / HTTP/1.1\r\nX-Latin: caf\xe9 \x80\xff\xa0!\r\nX-Only: \x80\r\n\r\n',
    expect: h('GET', '/', ['X-Latin', 'caf\u00e9 \u0080\u00ff\u00a0!', 'X-Only', '\u0080']),
  },
  {
    name: 'leading and trailing OWS trimmed',
    raw: 'GET / HTTP/1.1\r\nX-A:   spaced   \r\nX-B:\t\ttabbed\t\t\r\nX-C: \t mixed \t \r\nX-D:none\r\n\r\n',
    expect: h('GET', '/', ['X-A', 'spaced', 'X-B', 'tabbed', 'X-C', 'mixed', 'X-D', 'none']),
  },
  {
    name: 'only SP and HTAB are trimmed (not 0xA0)',
    raw: 'GET / HTTP/1.1\r\nX: \xa0a\xa0 \r\n\r\n',
    expect: h('GET', '/', ['X', '\u00a0a\u00a0']),
  },
  {
    name: 'empty values',
    raw: 'GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   \r\nX-Tabs:\t\t\r\nHost: a\r\n\r\n',
    expect: h('GET', '/', ['X-Empty', '', 'X-Spaces', '', 'X-Tabs', '', 'Host', 'a']),
  },
  {
    name: 'a value that looks like a request or a blank line',
    raw: 'GET / HTTP/1.1\r\nX: GET / HTTP/1.1\r\nY: :\r\n\r\n',
    expect: h('GET', '/', ['X', 'GET / HTTP/1.1', 'Y', ':']),
  },
  { name: 'Content-Length: 0', raw: 'POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n', expect: h('POST', '/', ['Content-Length', '0'], 0) },
  { name: 'Content-Length: 5', raw: 'PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n', expect: h('PUT', '/x', ['Content-Length', '5'], 5) },
  {
    name: 'a large Content-Length',
    raw: 'POST /up HTTP/1.1\r\nContent-Length: 1234567890\r\n\r\n',
    expect: h('POST', '/up', ['Content-Length', '1234567890'], 1234567890),
  },
  {
    name: 'a 15-digit Content-Length',
    raw: 'POST /up HTTP/1.1\r\nContent-Length: 999999999999999\r\n\r\n',
    expect: h('POST', '/up', ['Content-Length', '999999999999999'], 999999999999999),
  },
  {
    name: 'Content-Length in any case, with OWS around it',
    raw: 'PATCH /p HTTP/1.1\r\ncontent-LENGTH:\t 42 \t\r\n\r\n',
    expect: h('PATCH', '/p', ['content-LENGTH', '42'], 42),
  },
  { name: 'Connection: close', raw: 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', expect: h('GET', '/', ['Connection', 'close'], -1, true) },
  { name: 'Connection: keep-alive', raw: 'GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n', expect: h('GET', '/', ['Connection', 'keep-alive'], -1, false) },
  {
    name: 'Connection: Keep-Alive, close',
    raw: 'GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n',
    expect: h('GET', '/', ['Connection', 'Keep-Alive, close'], -1, true),
  },
  {
    name: 'Connection: CLOSE in any case, name in any case',
    raw: 'GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n',
    expect: h('GET', '/', ['connection', 'CLOSE'], -1, true),
  },
  {
    name: 'Connection: close among other tokens with OWS',
    raw: 'GET / HTTP/1.1\r\nConnection: x-a ,\tclose\t, te\r\n\r\n',
    expect: h('GET', '/', ['Connection', 'x-a ,\tclose\t, te'], -1, true),
  },
  {
    name: 'Connection: close in a second Connection field',
    raw: 'GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n',
    expect: h('GET', '/', ['Connection', 'keep-alive', 'Connection', 'close'], -1, true),
  },
  {
    name: 'Connection naming another field',
    raw: 'GET / HTTP/1.1\r\nConnection: X-Foo\r\nX-Foo: bar\r\n\r\n',
    expect: h('GET', '/', ['Connection', 'X-Foo', 'X-Foo', 'bar'], -1, false),
  },
  {
    name: 'Connection tokens that only resemble close or upgrade',
    raw: 'GET / HTTP/1.1\r\nConnection: closed, clos, x-upgrade, upgrades\r\n\r\n',
    expect: h('GET', '/', ['Connection', 'closed, clos, x-upgrade, upgrades'], -1, false),
  },
  {
    name: 'names as long as the framing fields but different',
    raw: 'GET / HTTP/1.1\r\nContent-Lengtx: abc\r\nTransfer-Encodinx: chunked\r\nConnectiox: upgrade\r\nExpecx: 100-continue\r\nUpgradx: h2c\r\n\r\n',
    expect: h('GET', '/', ['Content-Lengtx', 'abc', 'Transfer-Encodinx', 'chunked', 'Connectiox', 'upgrade', 'Expecx', '100-continue', 'Upgradx', 'h2c']),
  },
  {
    name: 'names that contain the framing fields',
    raw: 'GET / HTTP/1.1\r\nX-Content-Length: 1, 2\r\nTransfer-Encodings: chunked\r\nProxy-Connection: upgrade\r\nExpects: 1\r\nX-Upgrade: h2c\r\nKeep-Alive: timeout=5\r\n\r\n',
    expect: h('GET', '/', [
      'X-Content-Length', '1, 2', 'Transfer-Encodings', 'chunked', 'Proxy-Connection', 'upgrade', 'Expects', '1', 'X-Upgrade', 'h2c', 'Keep-Alive', 'timeout=5',
    ]),
  },
  {
    name: 'a realistic browser request',
    raw:
      'POST /api/v1/items?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n' +
      'Accept: application/json, text/plain, */*\r\nAccept-Language: zh-CN,zh;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n' +
      'Content-Type: application/json;charset=UTF-8\r\nContent-Length: 17\r\nCookie: a=1; b=2\r\nConnection: keep-alive\r\n\r\n',
    expect: h(
      'POST',
      '/api/v1/items?id=7',
      [
        'Host', 'api.example.com',
        'User-Agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)',
        'Accept', 'application/json, text/plain, */*',
        'Accept-Language', 'zh-CN,zh;q=0.9',
        'Accept-Encoding', 'gzip, deflate, br',
        'Content-Type', 'application/json;charset=UTF-8',
        'Content-Length', '17',
        'Cookie', 'a=1; b=2',
        'Connection', 'keep-alive',
      ],
      17,
      false,
    ),
  },
];

describe('readRequestHead: accepted heads', () => {
  for (const c of ACCEPTED) {
    it(c.name, () => {
      accepts(c.raw, c.expect);
    });
  }

  it('a simple GET, exactly', () => {
    const raw = 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n';
    assert.equal(raw.length, 37);
    assert.deepEqual(read(raw), head('GET', '/', ['Host', 'example.com'], { end: 37 }));
    assert.deepEqual(read('GET / HTTP/1.1\r\n\r\n'), head('GET', '/', [], { end: 18 }));
  });

  it('obs-text values: one string character per byte', () => {
    const r = read(Buffer.concat([bytes('GET / HTTP/1.1\r\nX: '), Buffer.from([0x80, 0x9f, 0xa0, 0xc3, 0xa9, 0xff]), bytes('\r\n\r\n')]));
    assert.ok(typeof r === 'object');
    const v = r.rawHeaders[1]!;
    assert.deepEqual([...v].map((ch) => ch.charCodeAt(0)), [0x80, 0x9f, 0xa0, 0xc3, 0xa9, 0xff]);
  });

  it('the head ends exactly past CRLFCRLF; the body is not consumed', () => {
    const h1 = 'POST /upload HTTP/1.1\r\nContent-Length: 5\r\n\r\n';
    const r = read(`${h1}hello`);
    assert.deepEqual(r, head('POST', '/upload', ['Content-Length', '5'], { contentLength: 5, end: h1.length }));
    // A body made of CRLFs and a head of its own changes nothing.
    const r2 = read(`${h1}\r\n\r\nGET / HTTP/1.1\r\n\r\n`);
    assert.deepEqual(r2, head('POST', '/upload', ['Content-Length', '5'], { contentLength: 5, end: h1.length }));
  });

  it('pipelined requests are read one after the other, `end` absolute', () => {
    const a = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
    const b = 'POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\n';
    const c = 'DELETE /c HTTP/1.1\r\nConnection: close\r\n\r\n';
    const buf = bytes(`${a}${b}abc${c}`);
    const ra = readRequestHead(buf, 0, LIMITS);
    assert.deepEqual(ra, head('GET', '/a', ['Host', 'x'], { end: a.length }));
    const rb = readRequestHead(buf, a.length, LIMITS);
    assert.deepEqual(rb, head('POST', '/b', ['Content-Length', '3'], { contentLength: 3, end: a.length + b.length }));
    const rc = readRequestHead(buf, a.length + b.length + 3, LIMITS);
    assert.deepEqual(rc, head('DELETE', '/c', ['Connection', 'close'], { close: true, end: buf.length }));
    // Reading at the body is not a head of the subset.
    assert.equal(readRequestHead(buf, a.length + b.length, LIMITS), NOT_MINE);
  });

  it('`start` > 0: the head after other bytes, `end` absolute', () => {
    const raw = 'OPTIONS /o HTTP/1.1\r\nX: y\r\n\r\n';
    const junk = 'garbage that is not a request\r\n\r\n';
    assert.deepEqual(read(junk + raw, junk.length), head('OPTIONS', '/o', ['X', 'y'], { end: junk.length + raw.length }));
    assert.deepEqual(read(junk + raw + 'tail', junk.length), head('OPTIONS', '/o', ['X', 'y'], { end: junk.length + raw.length }));
  });

  it('a view into a larger ArrayBuffer is read at its own offsets', () => {
    const raw = 'HEAD /v HTTP/1.1\r\nHost: v\r\n\r\n';
    const big = Buffer.alloc(raw.length + 200, 0x0a);
    big.write(raw, 100, 'latin1');
    const view = big.subarray(100, 100 + raw.length + 10);
    assert.deepEqual(readRequestHead(view, 0, LIMITS), head('HEAD', '/v', ['Host', 'v'], { end: raw.length }));
  });

  it('returns a fresh result each time', () => {
    const buf = bytes('GET / HTTP/1.1\r\nA: b\r\n\r\n');
    const r1 = readRequestHead(buf, 0, LIMITS);
    const r2 = readRequestHead(buf, 0, LIMITS);
    assert.ok(typeof r1 === 'object' && typeof r2 === 'object');
    assert.notEqual(r1, r2);
    assert.notEqual(r1.rawHeaders, r2.rawHeaders);
    assert.deepEqual(r1, r2);
  });

  it('rawHeaders is a dense array of strings', () => {
    const r = read('GET / HTTP/1.1\r\nA: 1\r\nB:\r\nC: 3\r\n\r\n');
    assert.ok(typeof r === 'object');
    assert.equal(r.rawHeaders.length, 6);
    for (let k = 0; k < r.rawHeaders.length; k++) {
      assert.ok(k in r.rawHeaders, `hole at ${k}`);
      assert.equal(typeof r.rawHeaders[k], 'string');
    }
  });
});

describe('readRequestHead: PARTIAL', () => {
  it('an empty buffer, and `start` at the end of the buffer', () => {
    assert.equal(read(''), PARTIAL);
    assert.equal(read('abc', 3), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\n\r\n', 18), PARTIAL);
  });

  for (const c of ACCEPTED) {
    it(`every prefix of: ${c.name}`, () => {
      const b = bytes(c.raw);
      for (let k = 0; k < b.length; k++) {
        assert.equal(read(b.subarray(0, k)), PARTIAL, `prefix of ${k} bytes: ${JSON.stringify(c.raw.slice(0, k))}`);
      }
    });
  }

  it('every prefix, with `start` > 0', () => {
    const junk = bytes('POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc');
    for (const c of ACCEPTED) {
      const b = bytes(c.raw);
      for (let k = 0; k < b.length; k++) {
        assert.equal(read(Buffer.concat([junk, b.subarray(0, k)]), junk.length), PARTIAL, `${c.name}: prefix of ${k} bytes`);
      }
    }
  });

  it('every prefix of a head exactly maxBytes long', () => {
    const raw = bytes('GET /limit HTTP/1.1\r\nHost: example.com\r\nX: y\r\n\r\n');
    const limits = { maxBytes: raw.length, maxFields: 2 };
    for (let k = 0; k < raw.length; k++) assert.equal(read(raw.subarray(0, k), 0, limits), PARTIAL, `prefix of ${k} bytes`);
    assert.deepEqual(read(raw, 0, limits), head('GET', '/limit', ['Host', 'example.com', 'X', 'y'], { end: raw.length }));
  });

  it('cut at the line ends', () => {
    assert.equal(read('GET / HTTP/1.1\r'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\n'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA: b\r'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA: b\r\n'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA: b\r\n\r'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA:'), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA:   '), PARTIAL);
    assert.equal(read('GET / HTTP/1.1\r\nA: b  \t'), PARTIAL);
  });
});

// Heads outside the subset: each is complete (or broken before its end), so NOT_MINE whatever follows.
const REFUSED: Array<[string, string | Buffer]> = [
  // The method.
  ['lowercase get', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['mixed-case Get', 'Get / HTTP/1.1\r\n\r\n'],
  ['lowercase post', 'post / HTTP/1.1\r\nContent-Length: 0\r\n\r\n'],
  ['CONNECT in origin-form', 'CONNECT / HTTP/1.1\r\n\r\n'],
  ['CONNECT in authority-form', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
  ['TRACE', 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['PRI (the HTTP/2 preface)', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ['PRI in origin-form', 'PRI / HTTP/1.1\r\n\r\n'],
  ['PROPFIND', 'PROPFIND / HTTP/1.1\r\n\r\n'],
  ['GETS', 'GETS / HTTP/1.1\r\n\r\n'],
  ['GE', 'GE / HTTP/1.1\r\n\r\n'],
  ['an empty method', ' / HTTP/1.1\r\n\r\n'],
  ['a non-token byte in the method', 'G(T / HTTP/1.1\r\n\r\n'],
  ['HTAB after the method', 'GET\t/ HTTP/1.1\r\n\r\n'],
  ['two SP after the method', 'GET  / HTTP/1.1\r\n\r\n'],
  // The target.
  ['absolute-form', 'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n'],
  ['asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a target without "/"', 'GET example.com HTTP/1.1\r\n\r\n'],
  ['"#" in the target', 'GET /a#frag HTTP/1.1\r\n\r\n'],
  ['"#" alone after "/"', 'GET /# HTTP/1.1\r\n\r\n'],
  ['"#" in the query', 'GET /a?b=#c HTTP/1.1\r\n\r\n'],
  ['SP in the target', 'GET /a b HTTP/1.1\r\n\r\n'],
  ['HTAB in the target', 'GET /a\tb HTTP/1.1\r\n\r\n'],
  ['NUL in the target', 'GET /a\x00b HTTP/1.1\r\n\r\n'],
  ['0x01 in the target', 'GET /\x01 HTTP/1.1\r\n\r\n'],
  ['0x1f in the target', 'GET /a\x1f HTTP/1.1\r\n\r\n'],
  ['CR in the target', 'GET /a\rb HTTP/1.1\r\n\r\n'],
  ['LF in the target', 'GET /a\nb HTTP/1.1\r\n\r\n'],
  ['DEL in the target', 'GET /a\x7fb HTTP/1.1\r\n\r\n'],
  ['0x80 in the target', 'GET /a\x80b HTTP/1.1\r\n\r\n'],
  ['0xff in the target', 'GET /\xff HTTP/1.1\r\n\r\n'],
  ['UTF-8 in the target', Buffer.concat([bytes('GET /'), Buffer.from('中', 'utf8'), bytes(' HTTP/1.1\r\n\r\n')])],
  ['an empty target', 'GET  HTTP/1.1\r\n\r\n'],
  // The version.
  ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n'],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n'],
  ['HTTP/0.9 (no version)', 'GET /\r\n\r\n'],
  ['"HTTP/1.1 " with trailing SP', 'GET / HTTP/1.1 \r\n\r\n'],
  ['"HTTP/1.1" with trailing junk', 'GET / HTTP/1.1x\r\n\r\n'],
  ['"HTTP/1.1\\t"', 'GET / HTTP/1.1\t\r\n\r\n'],
  ['lowercase http/1.1', 'GET / http/1.1\r\n\r\n'],
  ['HTTP/11', 'GET / HTTP/11\r\n\r\n'],
  ['two SP before the version', 'GET /  HTTP/1.1\r\n\r\n'],
  // Line ends.
  ['bare LF after the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
  ['bare LF after a field', 'GET / HTTP/1.1\r\nHost: a\n\r\n'],
  ['bare LF as the blank line', 'GET / HTTP/1.1\r\nHost: a\r\n\n'],
  ['bare LF everywhere', 'GET / HTTP/1.1\nHost: a\n\n'],
  ['bare LF inside a value', 'GET / HTTP/1.1\r\nX: a\nb\r\n\r\n'],
  ['bare LF right after the colon', 'GET / HTTP/1.1\r\nX:\n\r\n'],
  ['bare CR after the request line', 'GET / HTTP/1.1\rHost: a\r\n\r\n'],
  ['CR CR LF after the request line', 'GET / HTTP/1.1\r\r\n\r\n'],
  ['bare CR inside a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'],
  ['CR CR LF after a value', 'GET / HTTP/1.1\r\nX: a\r\r\n\r\n'],
  ['bare CR as the blank line', 'GET / HTTP/1.1\r\nX: a\r\n\rX'],
  ['CR CR as the blank line', 'GET / HTTP/1.1\r\nX: a\r\n\r\r\n'],
  ['bare CR in a name', 'GET / HTTP/1.1\r\nX\r: a\r\n\r\n'],
  ['a leading empty line', '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a leading bare LF', '\nGET / HTTP/1.1\r\n\r\n'],
  ['a leading SP', ' GET / HTTP/1.1\r\n\r\n'],
  // Field lines.
  ['obs-fold with SP', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
  ['obs-fold with HTAB', 'GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n'],
  ['a first field line starting with SP', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
  ['a first field line starting with HTAB', 'GET / HTTP/1.1\r\n\tHost: a\r\n\r\n'],
  ['SP before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
  ['HTAB before the colon', 'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n'],
  ['SP before the colon of Transfer-Encoding', 'POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n'],
  ['an empty field name', 'GET / HTTP/1.1\r\n: x\r\n\r\n'],
  ['an empty field name and value', 'GET / HTTP/1.1\r\n:\r\n\r\n'],
  ['a field line without a colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n'],
  ['a name alone on its line', 'GET / HTTP/1.1\r\nHost\r\n\r\n'],
  ...['(', ')', '@', '/', '[', ']', '{', '}', '"', '=', ',', ';', '?', '\\', '<', '>', '\x7f', '\x00', '\x80', '\xe9', '\xff'].map(
    (ch): [string, string] => [`${JSON.stringify(ch)} in a name`, `GET / HTTP/1.1\r\nX${ch}Y: a\r\n\r\n`],
  ),
  ['a non-token byte starting a name', 'GET / HTTP/1.1\r\n(X: a\r\n\r\n'],
  ...[...Array.from({ length: 0x20 }, (_, c) => c).filter((c) => c !== 0x09 && c !== 0x0d), 0x7f].map((c): [string, string] => [
    `control 0x${c.toString(16).padStart(2, '0')} inside a value`,
    `GET / HTTP/1.1\r\nX: a${String.fromCharCode(c)}b\r\n\r\n`,
  ]),
  ['NUL starting a value', 'GET / HTTP/1.1\r\nX: \x00\r\n\r\n'],
  ['NUL ending a value', 'GET / HTTP/1.1\r\nX: a\x00\r\n\r\n'],
  ['DEL alone as a value', 'GET / HTTP/1.1\r\nX:\x7f\r\n\r\n'],
  ['a control in the value of a later field', 'GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: \x1b[0m\r\n\r\n'],
  // Transfer-Encoding, Expect, Upgrade.
  ['Transfer-Encoding: chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['transfer-encoding: chunked', 'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n'],
  ['TRANSFER-ENCODING: gzip', 'POST / HTTP/1.1\r\nTRANSFER-ENCODING: gzip\r\n\r\n'],
  ['Transfer-Encoding: identity', 'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n'],
  ['an empty Transfer-Encoding', 'GET / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n'],
  ['Transfer-Encoding beside Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['Transfer-Encoding after many fields', 'POST / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nTransfer-Encoding: chunked\r\nD: 4\r\n\r\n'],
  ['Expect: 100-continue', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n'],
  ['expect in lowercase', 'GET / HTTP/1.1\r\nexpect: x\r\n\r\n'],
  ['an empty Expect', 'GET / HTTP/1.1\r\nExpect:\r\n\r\n'],
  ['Upgrade: websocket', 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ['Upgrade alone', 'GET / HTTP/1.1\r\nupgrade: h2c\r\n\r\n'],
  ['an empty Upgrade', 'GET / HTTP/1.1\r\nUPGRADE:\r\n\r\n'],
  // Connection.
  ['Connection: upgrade', 'GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n'],
  ['Connection: Upgrade', 'GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n'],
  ['Connection: UPGRADE with OWS', 'GET / HTTP/1.1\r\nConnection:\t UPGRADE \t\r\n\r\n'],
  ['Connection: keep-alive, Upgrade', 'GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n'],
  ['Connection: upgrade in a second field', 'GET / HTTP/1.1\r\nConnection: close\r\nconnection: upgrade\r\n\r\n'],
  ['Connection: close, (an empty token)', 'GET / HTTP/1.1\r\nConnection: close,\r\n\r\n'],
  ['Connection: ,close', 'GET / HTTP/1.1\r\nConnection: ,close\r\n\r\n'],
  ['Connection: close,,keep-alive', 'GET / HTTP/1.1\r\nConnection: close,,keep-alive\r\n\r\n'],
  ['Connection: close, \\t, x', 'GET / HTTP/1.1\r\nConnection: close, \t, x\r\n\r\n'],
  ['Connection: ,', 'GET / HTTP/1.1\r\nConnection: ,\r\n\r\n'],
  ['an empty Connection', 'GET / HTTP/1.1\r\nConnection:\r\n\r\n'],
  // Content-Length.
  ['two Content-Length, the same value', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n'],
  ['two Content-Length, different values', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n'],
  ['two Content-Length, names in different cases', 'POST / HTTP/1.1\r\ncontent-length: 3\r\nX: y\r\nCONTENT-LENGTH: 3\r\n\r\n'],
  ['two Content-Length of 0', 'POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n'],
  ...['+3', '-1', '-0', '03', '00', '007', '3 3', ' 3 3', '3,3', '3, 3', '0x10', '1e3', '3.0', '3;', '', 'abc', '3a', '1_000', '\xb3', '\xa03', '3\xa0', '1234567890123456', '9999999999999999', '12345678901234567890'].map(
    (v): [string, string] => [`Content-Length: ${JSON.stringify(v)}`, `POST / HTTP/1.1\r\nContent-Length: ${v}\r\n\r\n`],
  ),
];

describe('readRequestHead: NOT_MINE', () => {
  for (const [name, raw] of REFUSED) {
    it(name, () => {
      refuses(raw);
    });
  }

  it('the refused heads are refused by the reference reader too (the list is right)', () => {
    for (const [name, raw] of REFUSED) assert.equal(reference(bytes(raw), 0, LIMITS.maxFields), null, name);
  });

  it('a head refused for its method is refused in any position of a pipeline', () => {
    const a = 'GET /a HTTP/1.1\r\n\r\n';
    const buf = bytes(`${a}TRACE / HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n`);
    assert.deepEqual(readRequestHead(buf, 0, LIMITS), head('GET', '/a', [], { end: a.length }));
    assert.equal(readRequestHead(buf, a.length, LIMITS), NOT_MINE);
  });
});

describe('readRequestHead: limits', () => {
  /** A GET with `n` fields named F0, F1, ... */
  function withFields(n: number): { raw: string; names: string[] } {
    let raw = 'GET /f HTTP/1.1\r\n';
    const names: string[] = [];
    for (let k = 0; k < n; k++) {
      raw += `F${k}: v${k}\r\n`;
      names.push(`F${k}`, `v${k}`);
    }
    return { raw: `${raw}\r\n`, names };
  }

  for (const max of [0, 1, 5, 100]) {
    it(`maxFields ${max}: exactly ${max} fields taken, ${max + 1} refused`, () => {
      const limits = { maxBytes: 65536, maxFields: max };
      const ok = withFields(max);
      accepts(ok.raw, h('GET', '/f', ok.names), limits);
      refuses(withFields(max + 1).raw, limits);
      refuses(withFields(max + 7).raw, limits);
    });
  }

  it('maxFields counts repeated fields one by one', () => {
    const limits = { maxBytes: 65536, maxFields: 2 };
    accepts('GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\n\r\n', h('GET', '/', ['A', '1', 'A', '2']), limits);
    refuses('GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\nA: 3\r\n\r\n', limits);
  });

  it('maxBytes: a head exactly at the limit is taken, one byte longer is refused', () => {
    const raw = 'GET /limit HTTP/1.1\r\nHost: example.com\r\nX: y\r\n\r\n';
    const expect = h('GET', '/limit', ['Host', 'example.com', 'X', 'y']);
    accepts(raw, expect, { maxBytes: raw.length, maxFields: 10 });
    accepts(raw, expect, { maxBytes: raw.length + 1, maxFields: 10 });
    refuses(raw, { maxBytes: raw.length - 1, maxFields: 10 });
    refuses(raw, { maxBytes: raw.length - 2, maxFields: 10 });
  });

  it('maxBytes: PARTIAL with up to maxBytes bytes, NOT_MINE once more are present without the end', () => {
    const raw = bytes('POST /limit?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\nX:  y \r\n\r\n');
    for (let max = 0; max < raw.length; max++) {
      const limits = { maxBytes: max, maxFields: 10 };
      for (let k = 0; k <= max; k++) assert.equal(read(raw.subarray(0, k), 0, limits), PARTIAL, `maxBytes ${max}, ${k} bytes`);
      for (let k = max + 1; k <= raw.length; k++) assert.equal(read(raw.subarray(0, k), 0, limits), NOT_MINE, `maxBytes ${max}, ${k} bytes`);
      assert.equal(read(Buffer.concat([raw, bytes('body......')]), 0, limits), NOT_MINE, `maxBytes ${max}, with the body`);
    }
  });

  it('maxBytes is counted from `start`', () => {
    const raw = 'GET /s HTTP/1.1\r\nA: b\r\n\r\n';
    const junk = 'x'.repeat(50);
    const fit = { maxBytes: raw.length, maxFields: 10 };
    assert.deepEqual(read(junk + raw, junk.length, fit), head('GET', '/s', ['A', 'b'], { end: junk.length + raw.length }));
    assert.deepEqual(read(junk + raw + 'more', junk.length, fit), head('GET', '/s', ['A', 'b'], { end: junk.length + raw.length }));
    const short = { maxBytes: raw.length - 1, maxFields: 10 };
    assert.equal(read(junk + raw, junk.length, short), NOT_MINE);
    assert.equal(read(junk + raw.slice(0, -1), junk.length, short), PARTIAL);
  });

  it('maxBytes: a long value, a long target, a long method, endless fields', () => {
    const limits = { maxBytes: 8192, maxFields: 1000 };
    const longValue = `GET / HTTP/1.1\r\nX: ${'a'.repeat(10000)}\r\n\r\n`;
    refuses(longValue, limits);
    assert.equal(read(longValue.slice(0, 8192), 0, limits), PARTIAL);
    assert.equal(read(longValue.slice(0, 8193), 0, limits), NOT_MINE);
    refuses(`GET /${'p'.repeat(9000)} HTTP/1.1\r\n\r\n`, limits);
    assert.equal(read(`GET /${'p'.repeat(9000)}`, 0, limits), NOT_MINE);
    assert.equal(read(`GET /${'p'.repeat(8000)}`, 0, limits), PARTIAL);
    // A method is at most 7 bytes, so a long one is refused before any limit.
    assert.equal(read('G'.repeat(8), 0, limits), NOT_MINE);
    // (maxFields high enough that only maxBytes can refuse them.)
    const many = { maxBytes: 8192, maxFields: 100000 };
    let fields = 'GET / HTTP/1.1\r\n';
    while (fields.length <= 9000) fields += 'A: b\r\n';
    assert.equal(read(fields, 0, many), NOT_MINE);
    assert.equal(read(fields.slice(0, 8192), 0, many), PARTIAL);
  });

  it('PARTIAL only while every byte so far fits the subset: a refusal node:http makes at once is not delayed', () => {
    const limits = { maxBytes: 8192, maxFields: 100 };
    for (const partial of ['', 'G', 'GE', 'GET', 'OPTIONS', 'PATC', 'GET ', 'GET /x HTTP/1.1\r\nContent-Length: 5\r\n', 'GET /x HTTP/1.1\r\nConnection: keep-alive, close\r\nHost: a\r\n']) {
      assert.equal(read(partial, 0, limits), PARTIAL, JSON.stringify(partial));
    }
    const refused = [
      'g', 'hello', 'Get', 'PROPF', 'GETS', 'OPTIONSX', 'GET\t', 'M-SEARCH ',
      'GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n',
      'GET /x HTTP/1.1\r\nContent-Length: 01\r\n',
      'GET /x HTTP/1.1\r\ncontent-length: 1x\r\n',
      'GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n',
      'GET /x HTTP/1.1\r\nExpect: 100-continue\r\n',
      'GET /x HTTP/1.1\r\nUPGRADE: websocket\r\n',
      'GET /x HTTP/1.1\r\nConnection: upgrade\r\n',
      'GET /x HTTP/1.1\r\nConnection: a b\r\n',
    ];
    for (const partial of refused) assert.equal(read(partial, 0, limits), NOT_MINE, JSON.stringify(partial));
  });

  it('maxBytes of 0', () => {
    const limits = { maxBytes: 0, maxFields: 10 };
    assert.equal(read('', 0, limits), PARTIAL);
    assert.equal(read('G', 0, limits), NOT_MINE);
    assert.equal(read('GET / HTTP/1.1\r\n\r\n', 0, limits), NOT_MINE);
  });
});

describe('readRequestHead: properties', () => {
  it('each accepted head reads the same whole and with any bytes after it', () => {
    const extras = [...TRAILERS, ...Array.from({ length: 256 }, (_, c) => Buffer.from([c]))];
    for (const c of ACCEPTED) {
      const b = bytes(c.raw);
      const whole = readRequestHead(own(b), 0, LIMITS);
      assert.deepEqual(whole, { ...c.expect, end: b.length }, c.name);
      for (const e of extras) assert.deepEqual(readRequestHead(own(Buffer.concat([b, e])), 0, LIMITS), whole, `${c.name} + ${JSON.stringify(e.toString('latin1').slice(0, 20))}`);
    }
  });

  it('the reference reader agrees on every accepted head (the reference is right)', () => {
    for (const c of ACCEPTED) assert.deepEqual(reference(bytes(c.raw), 0, LIMITS.maxFields), { ...c.expect, end: c.raw.length }, c.name);
  });

  it('single-byte changes, insertions and deletions: the same answer as the reference reader', () => {
    const values = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x23, 0x28, 0x2c, 0x2f, 0x30, 0x31, 0x3a, 0x41, 0x61, 0x7e, 0x7f, 0x80, 0xa0, 0xe9, 0xff];
    const seeds = ACCEPTED.filter((c) => ['simple GET', 'Connection: Keep-Alive, close', 'a 15-digit Content-Length', 'leading and trailing OWS trimmed', 'names as sent, order and repeats kept'].includes(c.name));
    assert.equal(seeds.length, 5);
    let heads = 0;
    let refused = 0;
    const check = (buf: Buffer, what: string): void => {
      const got = readRequestHead(own(buf), 0, LIMITS);
      const want = reference(buf, 0, LIMITS.maxFields);
      if (want !== null) {
        heads++;
        assert.deepEqual(got, want, what);
      } else {
        refused++;
        assert.ok(got === NOT_MINE || got === PARTIAL, `${what}: got ${JSON.stringify(got)}`);
        // PARTIAL only when there is no complete head in the bytes at all.
        if (got === PARTIAL) assert.ok(!buf.includes('\r\n\r\n'), `${what}: PARTIAL with CRLFCRLF present`);
      }
    };
    for (const c of seeds) {
      const b = bytes(c.raw);
      for (let i = 0; i < b.length; i++) {
        for (const v of values) {
          const m = own(b);
          m[i] = v;
          check(m, `${c.name}: byte ${i} set to 0x${v.toString(16)}`);
          check(Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]), `${c.name}: 0x${v.toString(16)} inserted at ${i}`);
        }
        check(Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]), `${c.name}: byte ${i} deleted`);
      }
    }
    // Both kinds of answer were exercised.
    assert.ok(heads > 100, `only ${heads} heads`);
    assert.ok(refused > 1000, `only ${refused} refusals`);
  });

  it('never throws, and its answers are consistent, on random input', () => {
    let seed = 0x12345678;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pieces = ['GET', 'POST', ' ', '/', '/a?b', ' HTTP/1.1', '\r\n', '\r', '\n', 'Host', ':', ': ', 'x', '\t', 'Content-Length', '5', 'Connection', 'close', ',', '#', '\x00', '\x7f', '\xff', '\r\n\r\n'];
    for (let round = 0; round < 5000; round++) {
      let s = '';
      const count = rand(20);
      for (let k = 0; k < count; k++) s += pieces[rand(pieces.length)]!;
      const buf = bytes(s);
      const start = rand(buf.length + 1);
      const limits = { maxBytes: rand(4) === 0 ? rand(40) : 8192, maxFields: rand(6) };
      const r = readRequestHead(buf, start, limits);
      if (typeof r === 'number') {
        assert.ok(r === PARTIAL || r === NOT_MINE, `round ${round}: ${r}`);
        continue;
      }
      assert.ok(r.end > start && r.end <= buf.length && r.end - start <= limits.maxBytes, `round ${round}: end ${r.end}`);
      assert.equal(buf.toString('latin1', r.end - 4, r.end), '\r\n\r\n', `round ${round}: end not past a blank line`);
      assert.ok(r.rawHeaders.length / 2 <= limits.maxFields);
      // The head alone reads the same.
      assert.deepEqual(readRequestHead(own(buf.subarray(0, r.end)), start, limits), r, `round ${round}`);
      assert.deepEqual(r, reference(buf.subarray(0, r.end), start, limits.maxFields), `round ${round}`);
    }
  });
});

describe('readRequestHead: Connection values that are not token lists', () => {
  // The subset admits "Connection only with tokens": anything else goes to node:http.
  it('a Connection value with a non-token element is outside the subset', () => {
    refuses('GET / HTTP/1.1\r\nConnection: a b\r\n\r\n');
    refuses('GET / HTTP/1.1\r\nConnection: "close"\r\n\r\n');
    refuses('GET / HTTP/1.1\r\nConnection: close x\r\n\r\n');
  });

  // String.prototype.trim() strips U+00A0 (byte 0xA0 read as latin1), which would make "\xa0close"
  // the token close; node:http (llhttp) keeps such a connection alive. OWS is SP and HTAB only.
  it('0xA0 next to "close" is not the token close', () => {
    for (const v of ['\xa0close', 'close\xa0', 'x, \xa0close\xa0']) {
      const r = read(`GET / HTTP/1.1\r\nConnection: ${v}\r\n\r\n`);
      assert.ok(r === NOT_MINE || (typeof r === 'object' && r.close === false), `${JSON.stringify(v)}: ${JSON.stringify(r)}`);
    }
  });
});
