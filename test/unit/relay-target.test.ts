import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRelayPath, relayTarget, takeParam, type RelayPolicy } from '../../src/relay/relay-target.js';
import { mulberry32 } from '../support/random.js';

const OPEN: RelayPolicy = { param: 'method', basePath: '', allow: ['/'] };

function policy(overrides: Partial<RelayPolicy> = {}): RelayPolicy {
  return { ...OPEN, ...overrides };
}

/** The upstream target, or a failure naming the request. */
function target(url: string, p: RelayPolicy = OPEN, mount = '/relay'): string {
  const r = relayTarget(p, mount, url);
  assert.ok(r.ok, `${url} was refused: ${r.ok ? '' : r.reason}`);
  return r.path;
}

function refused(url: string, p: RelayPolicy = OPEN, mount = '/relay'): string {
  const r = relayTarget(p, mount, url);
  assert.equal(r.ok, false, `${url} was accepted as ${r.ok ? r.path : ''}`);
  return r.ok ? '' : r.reason;
}

describe('relayTarget: query form', () => {
  it('handles the seed relay\'s exact shapes', () => {
    assert.equal(target('/get.php?method=path&param1=value1&param2=value2', OPEN, '/get.php'), '/path?param1=value1&param2=value2');
    assert.equal(target('/getDownImg.php?method=images/a.png', OPEN, '/getDownImg.php'), '/images/a.png');
    assert.equal(target('/getImg.php?method=/img/a.jpg&w=100', OPEN, '/getImg.php'), '/img/a.jpg?w=100');
    assert.equal(target('/post.php?method=api/save', OPEN, '/post.php'), '/api/save');
    assert.equal(target('/put.php?id=3&method=api/item', OPEN, '/put.php'), '/api/item?id=3');
  });

  it('reports the form', () => {
    assert.deepEqual(relayTarget(OPEN, '/relay', '/relay?method=api/items&x=1'), { ok: true, path: '/api/items?x=1', form: 'query' });
  });

  it('keeps the other parameters in order and byte for byte', () => {
    assert.equal(target('/relay?a=%20x&method=api&b=1+2&c='), '/api?a=%20x&b=1+2&c=');
    assert.equal(target('/relay?z=%E4%B8%AD&method=api&y=%2F%2e%2E&x'), '/api?z=%E4%B8%AD&y=%2F%2e%2E&x');
    assert.equal(target('/relay?method=api&a=%zz&b=%0d%0a'), '/api?a=%zz&b=%0d%0a');
    assert.equal(target('/relay?method=api'), '/api');
  });

  it('drops empty pieces of the query', () => {
    assert.equal(target('/relay?&a=1&&method=api&'), '/api?a=1');
    assert.equal(target('/relay?method=api&'), '/api');
  });

  it('accepts the path with or without a leading slash', () => {
    assert.equal(target('/relay?method=api/items'), '/api/items');
    assert.equal(target('/relay?method=/api/items'), '/api/items');
    assert.equal(target('/relay?method=%2Fapi%2Fitems'), '/api/items');
  });

  it('decodes the parameter value exactly once', () => {
    // encodeURIComponent(path) is the correct way to put a path in a query.
    assert.equal(target(`/relay?method=${encodeURIComponent('api/items')}`), '/api/items');
    // One decoding: %2520 becomes %20, which the backend decodes (that is its one decoding).
    assert.equal(target('/relay?method=files/my%2520file.png'), '/files/my%20file.png');
    // A space (from %20 or, as in PHP's $_GET, from "+") is encoded again for the path.
    assert.equal(target('/relay?method=files/my%20file.png'), '/files/my%20file.png');
    assert.equal(target('/relay?method=files/my+file.png'), '/files/my%20file.png');
    assert.equal(target('/relay?method=a%2Bb'), '/a+b');
    assert.equal(target('/relay?method=a%26b&c=1'), '/a&b?c=1');
  });

  it('takes /mount/ with the parameter as the query form', () => {
    assert.deepEqual(relayTarget(OPEN, '/relay', '/relay/?method=api&x=1'), { ok: true, path: '/api?x=1', form: 'query' });
  });

  it('says when the parameter is missing, so the JSON body can be tried', () => {
    for (const url of ['/relay', '/relay?', '/relay?x=1', '/relay/', '/relay/?x=1', '/relay?methods=api', '/relay?METHOD=api']) {
      const r = relayTarget(OPEN, '/relay', url);
      assert.equal(r.ok, false, url);
      assert.equal(!r.ok && r.missing, true, url);
      assert.match(!r.ok ? r.reason : '', /missing 'method'/, url);
    }
  });

  it('does not set missing for any other refusal', () => {
    for (const url of ['/relay?method=', '/relay?method=..', '/relay?method=a&method=b', '/other?method=a', '/relay?method=%zz']) {
      const r = relayTarget(OPEN, '/relay', url);
      assert.equal(r.ok, false, url);
      assert.equal(!r.ok && r.missing, undefined, url);
    }
  });

  it('refuses the parameter twice, however it is spelled', () => {
    assert.match(refused('/relay?method=a&method=b'), /more than one 'method'/);
    assert.match(refused('/relay?method=a&method=a'), /more than one/);
    assert.match(refused('/relay?method=a&%6Dethod=b'), /more than one/);
    assert.match(refused('/relay?method=a&x=1&method'), /more than one/);
    assert.match(refused('/get.php?method=api/a&param1=1&method=//evil.com', OPEN, '/get.php'), /more than one/);
  });

  it('uses the configured parameter name', () => {
    const p = policy({ param: 'path' });
    assert.equal(target('/relay?path=api/x&method=keep', p), '/api/x?method=keep');
    assert.equal(relayTarget(p, '/relay', '/relay?method=api').ok, false);
  });
});

describe('relayTarget: path form', () => {
  it('takes the backend path from the rest of the URL and passes the query unchanged', () => {
    assert.deepEqual(relayTarget(OPEN, '/relay', '/relay/api/items?x=1'), { ok: true, path: '/api/items?x=1', form: 'path' });
    assert.equal(target('/relay/api/items'), '/api/items');
    assert.equal(target('/relay/api/items?'), '/api/items?');
    assert.equal(target('/relay/api?a=%20x&b=1+2&c=&%zz'), '/api?a=%20x&b=1+2&c=&%zz');
  });

  it('wins over a method parameter, which goes to the backend as its own', () => {
    assert.deepEqual(relayTarget(OPEN, '/relay', '/relay/api/items?method=getList&x=1'), { ok: true, path: '/api/items?method=getList&x=1', form: 'path' });
    // Not ours to look at: even a hostile-looking or repeated one is just the backend's parameter.
    assert.equal(target('/relay/api?method=//evil.com&method=../x'), '/api?method=//evil.com&method=../x');
  });

  it('keeps percent-escapes as they are (no decoding)', () => {
    assert.equal(target('/relay/files/my%20file.png'), '/files/my%20file.png');
    assert.equal(target('/relay/a%2Db/c%2dd'), '/a%2Db/c%2dd');
    assert.equal(target('/relay/a+b'), '/a+b');
  });

  it('works on the seed compatibility mounts too', () => {
    assert.equal(target('/get.php/api/x?y=1', OPEN, '/get.php'), '/api/x?y=1');
  });
});

describe('relayTarget: mounts', () => {
  it('refuses requests that are not on the mount', () => {
    for (const url of ['/relayx?method=api', '/relayx/api', '/other/api', '/', '/re', '*', 'http://h/relay?method=api', '/x/../relay?method=api', '/%72elay?method=api', '/Relay?method=api', '/relay;x?method=api']) {
      assert.match(refused(url), /not under the relay mount/, url);
    }
  });

  it('ignores a trailing slash on the mount', () => {
    assert.equal(target('/relay?method=api', OPEN, '/relay/'), '/api');
    assert.equal(target('/relay/api?x=1', OPEN, '/relay/'), '/api?x=1');
  });

  it('works mounted at the root', () => {
    assert.deepEqual(relayTarget(OPEN, '/', '/?method=api&x=1'), { ok: true, path: '/api?x=1', form: 'query' });
    assert.deepEqual(relayTarget(OPEN, '/', '/api/x?method=y'), { ok: true, path: '/api/x?method=y', form: 'path' });
    assert.equal(refused('//evil.com/x', OPEN, '/'), refused('/relay//evil.com/x'));
  });
});

describe('basePath and allow-list', () => {
  it('joins the backend path to the base path with one slash', () => {
    const p = policy({ basePath: '/v1', allow: ['/v1'] });
    assert.equal(target('/relay?method=api&x=1', p), '/v1/api?x=1');
    assert.equal(target('/relay?method=/api', p), '/v1/api');
    assert.equal(target('/relay/api/items/?x=1', p), '/v1/api/items/?x=1');
    assert.deepEqual(checkRelayPath(p, 'api'), { ok: true, path: '/v1/api' });
    // A trailing slash on the base path is tolerated.
    assert.deepEqual(checkRelayPath(policy({ basePath: '/v1/', allow: ['/v1'] }), '/api'), { ok: true, path: '/v1/api' });
  });

  it('matches allow prefixes on whole segments', () => {
    const p = policy({ allow: ['/api', '/static/'] });
    assert.equal(target('/relay?method=api', p), '/api');
    assert.equal(target('/relay?method=api/', p), '/api/');
    assert.equal(target('/relay/api/x/y', p), '/api/x/y');
    assert.equal(target('/relay/static', p), '/static');
    assert.equal(target('/relay/static/a.png', p), '/static/a.png');
    // In the query form the one decoding happens first, so "%61pi" there is "api".
    assert.equal(target('/relay?method=%61pi/x', p), '/api/x');
    // The allow-list sees the path as sent: '%61pi' is not '/api' (a refusal, never an escape).
    for (const v of ['apix', 'api-v2/x', 'admin', 'API/x', 'staticx/a', 'x/api', '%61pi/x', 'api%2Dx']) {
      assert.match(refused(`/relay?method=${encodeURIComponent(v)}`, p), /outside the allowed paths/, v);
      assert.match(refused(`/relay/${v}`, p), /outside the allowed paths/, v);
    }
  });

  it('applies the allow-list after joining the base path', () => {
    const p = policy({ basePath: '/v1', allow: ['/v1/api'] });
    assert.equal(target('/relay?method=api/x', p), '/v1/api/x');
    for (const v of ['apix', 'other', 'v1/api']) assert.match(refused(`/relay/${v}`, p), /outside/, v);
    // An allow entry outside the base path can never match.
    assert.equal(relayTarget(policy({ basePath: '/v1', allow: ['/admin'] }), '/relay', '/relay/admin').ok, false);
  });

  it('fails closed on an empty or malformed allow-list', () => {
    assert.match(refused('/relay/api', policy({ allow: [] })), /outside/);
    assert.match(refused('/relay/api', policy({ allow: ['', 'api'] })), /outside/);
    assert.equal(target('/relay/anything/at/all', policy({ allow: ['', '/'] })), '/anything/at/all');
  });
});

describe('checkRelayPath (shared with the JSON-body form)', () => {
  it('returns the upstream path without a query', () => {
    assert.deepEqual(checkRelayPath(OPEN, 'api/items'), { ok: true, path: '/api/items' });
    assert.deepEqual(checkRelayPath(OPEN, '/api/items'), { ok: true, path: '/api/items' });
  });

  it('percent-encodes harmless characters that may not appear raw in a path', () => {
    assert.deepEqual(checkRelayPath(OPEN, 'files/my file.png'), { ok: true, path: '/files/my%20file.png' });
    assert.deepEqual(checkRelayPath(OPEN, 'a"b<c>d[e]f^g`h{i|j}'), { ok: true, path: '/a%22b%3Cc%3Ed%5Be%5Df%5Eg%60h%7Bi%7Cj%7D' });
  });

  it('treats the value as wire form: escapes stay as given', () => {
    assert.deepEqual(checkRelayPath(OPEN, 'files/my%20file.png'), { ok: true, path: '/files/my%20file.png' });
    assert.deepEqual(checkRelayPath(OPEN, 'x/a%3ab'), { ok: true, path: '/x/a%3ab' });
  });

  it('refuses non-ASCII, even ordinary letters, raw or encoded', () => {
    for (const v of ['api/中文', 'api/%E4%B8%AD%E6%96%87', 'café', 'caf%C3%A9']) {
      const r = checkRelayPath(OPEN, v);
      assert.match(r.ok ? '' : r.reason, /non-ASCII/, v);
    }
    assert.match(refused(`/relay?method=${encodeURIComponent('api/中文')}`), /non-ASCII/);
    assert.match(refused('/relay/api/%E4%B8%AD'), /non-ASCII/);
  });

  it('names the rule it applies', () => {
    const reason = (v: string): string => {
      const r = checkRelayPath(OPEN, v);
      assert.equal(r.ok, false, v);
      return r.ok ? '' : r.reason;
    };
    assert.match(reason(''), /empty/);
    assert.match(reason('/'), /empty/);
    assert.match(reason('http://evil.com'), /absolute URL or scheme/);
    assert.match(reason('//evil.com'), /protocol-relative/);
    assert.match(reason('a\\b'), /backslash/);
    assert.match(reason('a%5cb'), /encoded slash or backslash/);
    assert.match(reason('a%2fb'), /encoded slash/);
    assert.match(reason('../x'), /dot segment/);
    assert.match(reason('%2e%2e/x'), /dot segment/);
    assert.match(reason('a\r\nb'), /control character/);
    assert.match(reason('a%0d%0ab'), /encoded control character/);
    assert.match(reason('a@b'), /'@'/);
    assert.match(reason('a%40b'), /%40/);
    assert.match(reason('a?b'), /query injection/);
    assert.match(reason('a%3Fb'), /query injection/);
    assert.match(reason('a%252eb'), /double percent-encoding/);
    assert.match(reason('a%zz'), /malformed percent-escape/);
    assert.match(reason('a//b'), /empty segment/);
    assert.match(reason('．．/x'), /non-ASCII/);
    assert.match(reason('%c0%ae'), /non-ASCII/);
  });
});

describe('takeParam', () => {
  it('takes the value decoded once and keeps the rest exactly', () => {
    assert.deepEqual(takeParam('?a=%20x&method=api%2Fx&b=1+2&c=', 'method'), { ok: true, value: 'api/x', rest: '?a=%20x&b=1+2&c=' });
    assert.deepEqual(takeParam('method=a+b%2Bc', 'method'), { ok: true, value: 'a b+c', rest: '' });
    assert.deepEqual(takeParam('?method=a%252e', 'method'), { ok: true, value: 'a%2e', rest: '' });
    assert.deepEqual(takeParam('?method=%E4%B8%AD', 'method'), { ok: true, value: '中', rest: '' });
    assert.deepEqual(takeParam('?method=a=b', 'method'), { ok: true, value: 'a=b', rest: '' });
  });

  it('gives an empty value for "method" and "method="', () => {
    assert.deepEqual(takeParam('?method', 'method'), { ok: true, value: '', rest: '' });
    assert.deepEqual(takeParam('?x=1&method=', 'method'), { ok: true, value: '', rest: '?x=1' });
  });

  it('gives undefined when the parameter is absent', () => {
    assert.deepEqual(takeParam('', 'method'), { ok: true, value: undefined, rest: '' });
    assert.deepEqual(takeParam('?', 'method'), { ok: true, value: undefined, rest: '' });
    assert.deepEqual(takeParam('?a=1&methods=2&METHOD=3&method%5B%5D=4&xmethod=5', 'method'), { ok: true, value: undefined, rest: '?a=1&methods=2&METHOD=3&method%5B%5D=4&xmethod=5' });
  });

  it('matches the name after one decoding', () => {
    assert.deepEqual(takeParam('?%6Dethod=api&a=1', 'method'), { ok: true, value: 'api', rest: '?a=1' });
    assert.deepEqual(takeParam('?%256Dethod=api', 'method'), { ok: true, value: undefined, rest: '?%256Dethod=api' });
  });

  it('refuses two occurrences', () => {
    for (const q of ['?method=a&method=b', '?method=a&method=a', '?method&method=', '?method=a&%6dethod=b']) {
      const r = takeParam(q, 'method');
      assert.equal(r.ok, false, q);
      assert.match(r.ok ? '' : r.reason, /more than one 'method' parameter/, q);
    }
  });

  it('refuses a malformed escape or invalid UTF-8 in the value, not in other pairs', () => {
    for (const q of ['?method=%', '?method=%zz', '?method=a%2', '?method=%u002e', '?method=%c0%ae', '?method=%ff', '?method=%e0%80%ae']) {
      const r = takeParam(q, 'method');
      assert.equal(r.ok, false, q);
      assert.match(r.ok ? '' : r.reason, /malformed percent-encoding/, q);
    }
    assert.deepEqual(takeParam('?a=%zz&method=x&b=%c0', 'method'), { ok: true, value: 'x', rest: '?a=%zz&b=%c0' });
  });
});

/**
 * Escape attempts. Each is tried in every form it can be written in:
 *   query:   /relay?method=<payload>&x=1          (payload raw in the query, decoded once)
 *   encoded: /relay?method=<encodeURIComponent>   (decodes to exactly the payload)
 *   path:    /relay/<payload>?x=1                 (payload raw in the path, not decoded)
 *   value:   checkRelayPath(payload)              (the JSON-body form)
 * `noPath` marks payloads that cannot be written in the path form (a raw '?' ends the path).
 */
const ESCAPES: { payload: string; noPath?: true }[] = [
  // Absolute URLs, schemes, drive letters.
  { payload: 'http://evil.com/' },
  { payload: 'https://evil.com' },
  { payload: 'HTTP://EVIL.COM/x' },
  { payload: 'https:evil.com' },
  { payload: 'http:/evil.com' },
  { payload: 'https:%2F%2Fevil.com' },
  { payload: 'http%3A%2F%2Fevil.com' },
  { payload: 'http%3a//evil.com' },
  { payload: 'javascript:alert(1)' },
  { payload: 'file:///etc/passwd' },
  { payload: 'gopher://127.0.0.1:6379/_x' },
  { payload: 'C:/windows/win.ini' },
  { payload: 'C:%5cwindows' },
  // Protocol-relative and backslash hosts.
  { payload: '//evil.com/x' },
  { payload: '///evil.com' },
  { payload: '/%2fevil.com' },
  { payload: '%2f%2fevil.com' },
  { payload: '%2F%2Fevil.com' },
  { payload: '\\\\evil.com\\x' },
  { payload: '/\\evil.com' },
  { payload: '\\/evil.com' },
  { payload: '%5c%5cevil.com' },
  { payload: '%5C%5Cevil.com' },
  { payload: '/%5cevil.com' },
  // Userinfo.
  { payload: 'user@evil.com/x' },
  { payload: '@evil.com' },
  { payload: 'api%40evil.com' },
  { payload: 'user:pass@evil.com' },
  // Dot segments, raw.
  { payload: '..' },
  { payload: '.' },
  { payload: '../etc/passwd' },
  { payload: './api' },
  { payload: 'api/../../etc/passwd' },
  { payload: 'api/./items' },
  { payload: 'api/..' },
  { payload: 'api/.' },
  { payload: 'api/../' },
  { payload: '/../admin' },
  // Dot segments, encoded and mixed case.
  { payload: '%2e%2e/etc' },
  { payload: '%2E%2E/etc' },
  { payload: '%2e%2E/etc' },
  { payload: '.%2e/etc' },
  { payload: '%2e./etc' },
  { payload: '%2e/api' },
  { payload: 'api/%2e%2e' },
  { payload: 'api/%2E' },
  // Double encoding.
  { payload: '%252e%252e/etc' },
  { payload: '%252E%252E%252Fetc' },
  { payload: '..%252fetc' },
  { payload: 'api%252f..%252f..' },
  // Encoded separators next to dots.
  { payload: '..%2fetc' },
  { payload: '..%2Fetc' },
  { payload: 'api%2f..%2f..%2fetc' },
  { payload: '..\\etc' },
  { payload: 'api\\..\\..\\etc' },
  { payload: '..%5cetc' },
  { payload: '..%5C..%5Cetc' },
  // Path parameters and Windows dot tricks.
  { payload: '..;/admin' },
  { payload: 'api/..;/admin' },
  { payload: 'api/..;jsessionid=x/admin' },
  { payload: '..%3b/admin' },
  { payload: 'api/%2e%2e%3bx/admin' },
  { payload: '.;x/admin' },
  { payload: '...' },
  { payload: 'api/.../x' },
  { payload: '..%20/x' },
  { payload: '%20../x' },
  // Overlong UTF-8, fullwidth and look-alike dots and slashes, IIS %u, BOM.
  { payload: '%c0%ae%c0%ae/etc' },
  { payload: '%C0%AE%C0%AE/etc' },
  { payload: '%c0%2e%c0%2e/etc' },
  { payload: '%e0%80%ae%e0%80%ae/etc' },
  { payload: '..%c0%afetc' },
  { payload: '..%c1%9cetc' },
  { payload: '%ef%bc%8e%ef%bc%8e/etc' },
  { payload: '..%ef%bc%8fetc' },
  { payload: '..%e2%88%95etc' },
  { payload: '%e2%80%a4%e2%80%a4/etc' },
  { payload: '%e2%80%a5/etc' },
  { payload: '%ef%b9%92%ef%b9%92/etc' },
  { payload: '．．/etc' },
  { payload: '..／etc' },
  { payload: '..∕etc' },
  { payload: '‥/etc' },
  { payload: '%u002e%u002e/etc' },
  { payload: '..%u2215etc' },
  { payload: '%EF%BB%BF../etc' },
  // Header injection and control characters.
  { payload: 'api%0d%0aSet-Cookie:%20x=1' },
  { payload: 'api%0aX-Injected:1' },
  { payload: 'api%0D' },
  { payload: 'api%00.png' },
  { payload: 'api%09x' },
  { payload: 'api%7f' },
  { payload: 'api%1b' },
  { payload: 'api%250d%250a' },
  { payload: 'api\r\nX-Injected: 1' },
  { payload: 'api\u0000.png' },
  { payload: 'api\tx' },
  { payload: 'api\u007f' },
  // Query and fragment injection.
  { payload: 'api?admin=true', noPath: true },
  { payload: 'api%3Fadmin=true' },
  { payload: 'api%3fadmin' },
  { payload: 'api%253Fadmin=true' },
  { payload: 'api#frag' },
  { payload: 'api%23frag' },
  // Empty, malformed, double slashes.
  { payload: '' },
  { payload: '/' },
  { payload: '%' },
  { payload: '%zz' },
  { payload: 'api%2' },
  { payload: 'a//b' },
  { payload: 'api//evil.com' },
];

describe('escape attempts are refused in every form', () => {
  it(`has a long list (${ESCAPES.length} payloads, all distinct)`, () => {
    assert.ok(ESCAPES.length >= 40);
    assert.equal(new Set(ESCAPES.map((e) => e.payload)).size, ESCAPES.length);
  });

  for (const { payload, noPath } of ESCAPES) {
    it(JSON.stringify(payload), () => {
      for (const p of [OPEN, policy({ basePath: '/v1', allow: ['/v1'] })]) {
        refused(`/relay?method=${payload}&x=1`, p);
        refused(`/get.php?a=1&method=${payload}`, p, '/get.php');
        refused(`/relay?method=${encodeURIComponent(payload)}`, p);
        if (!noPath) refused(`/relay/${payload}?x=1`, p);
        const v = checkRelayPath(p, payload);
        assert.equal(v.ok, false, `checkRelayPath accepted ${JSON.stringify(payload)} as ${v.ok ? v.path : ''}`);
      }
    });
  }
});

/** Wire-form values that must be accepted, with the upstream path they become. */
const LEGIT: [value: string, upstream: string][] = [
  ['api/v1/items', '/api/v1/items'],
  ['/api/v1/items', '/api/v1/items'],
  ['api/items/', '/api/items/'],
  ['a.b/c.json', '/a.b/c.json'],
  ['..a/b', '/..a/b'],
  ['a../b', '/a../b'],
  ['a/...b', '/a/...b'],
  ['.well-known/acme-challenge/x', '/.well-known/acme-challenge/x'],
  ['a/.well-known/x', '/a/.well-known/x'],
  ['.hidden', '/.hidden'],
  ['a/%2ehidden', '/a/%2ehidden'],
  ['files/my%20file.png', '/files/my%20file.png'],
  ['v1/items:batchGet', '/v1/items:batchGet'],
  ['items;v=1/b', '/items;v=1/b'],
  ["a-b_c~d/e!$'()*,;=f", "/a-b_c~d/e!$'()*,;=f"],
  ['a%2Db', '/a%2Db'],
  ['x/a%3Ab', '/x/a%3Ab'],
  ['a%26b', '/a%26b'],
  ['100%20percent', '/100%20percent'],
  ['images/a.png', '/images/a.png'],
  ['UPPER/Case', '/UPPER/Case'],
];

describe('legitimate tricky paths are accepted', () => {
  for (const [value, upstream] of LEGIT) {
    it(JSON.stringify(value), () => {
      assert.deepEqual(checkRelayPath(OPEN, value), { ok: true, path: upstream });
      assert.equal(target(`/relay/${value.replace(/^\//, '')}?x=1`), `${upstream}?x=1`);
      assert.equal(target(`/relay?method=${encodeURIComponent(value)}&x=1`), `${upstream}?x=1`);
      // Written raw in the query it means the same when it has nothing the query decodes.
      if (!/[%+&]/.test(value)) assert.equal(target(`/relay?x=1&method=${value}`), `${upstream}?x=1`);
      const v1 = checkRelayPath(policy({ basePath: '/v1', allow: ['/v1'] }), value);
      assert.deepEqual(v1, { ok: true, path: `/v1${upstream}` });
    });
  }

  it('accepts "+" and "&" written raw in the path form', () => {
    assert.equal(target('/relay/a+b&c'), '/a+b&c');
  });
});

describe('invariants over generated inputs', () => {
  // Pieces that matter to the rules; random strings of them exercise the combinations.
  const PIECES = ['.', '..', '/', '//', '%2e', '%2E', '%2f', '%5c', '\\', '%25', '%', '2e', 'a', 'b.c', ':', '@', '%40', ';', '%3b', '%00',
    '%0d', ' ', '%20', '+', '#', '%3f', '%23', 'http', '%c0', '%ae', '~', '%7e', '%61', '．', '\n', 'api'];

  /** Decodes as often as anyone downstream might, ignoring malformed escapes. */
  function decodeFully(s: string): string {
    for (let i = 0; i < 5; i++) {
      const next = s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
      if (next === s) return s;
      s = next;
    }
    return s;
  }

  function assertSafe(upstreamTarget: string, base: string, input: string): void {
    const path = upstreamTarget.split('?', 1)[0]!;
    assert.ok(path.startsWith(`${base}/`), `${input} → ${upstreamTarget}`);
    assert.ok(!path.includes('//'), `${input} → ${upstreamTarget}`);
    const decoded = decodeFully(path);
    // Whatever a backend decodes, it stays a plain path under the base.
    assert.ok(!/[\\?#@\x00-\x1f\x7f-\uffff]/.test(decoded), `${input} → ${upstreamTarget}`);
    assert.ok(decoded.startsWith(`${base}/`) && !decoded.slice(1).startsWith('/'), `${input} → ${upstreamTarget}`);
    const segments = decoded.slice(base.length + 1).split('/');
    assert.ok(!segments[0]!.includes(':'), `${input} → ${upstreamTarget}`);
    for (const seg of segments) assert.ok(!/^[. ]*\.[. ]*$/.test(seg.split(';', 1)[0]!), `${input} → ${upstreamTarget}`);
  }

  it('never produces a path that leaves the base, whatever the input', () => {
    const next = mulberry32(20240521);
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let s = '';
      const n = 1 + Math.floor(next() * 8);
      for (let j = 0; j < n; j++) s += PIECES[Math.floor(next() * PIECES.length)];
      for (const [p, base] of [[OPEN, ''], [policy({ basePath: '/v1', allow: ['/v1'] }), '/v1']] as const) {
        const forms = [`/relay?method=${s}`, `/relay/${s.replace(/[?#]/g, '')}`, `/relay?method=${encodeURIComponent(s)}`];
        for (const url of forms) {
          const r = relayTarget(p, '/relay', url);
          if (r.ok) {
            accepted++;
            assertSafe(r.path, base, url);
          }
        }
        const v = checkRelayPath(p, s);
        if (v.ok) assertSafe(v.path, base, JSON.stringify(s));
      }
    }
    // The generator must also produce acceptable paths, or the test proves nothing.
    assert.ok(accepted > 1000, `only ${accepted} accepted`);
  });
});
