import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasDotSegments, hidesDotSegments, removeDotSegments, splitTarget } from '../../src/core/path.js';

describe('splitTarget', () => {
  it('splits at the first "?", keeping it with the query', () => {
    assert.deepEqual(splitTarget('/a/b?x=1&y=2'), { path: '/a/b', query: '?x=1&y=2' });
    assert.deepEqual(splitTarget('/a?b?c'), { path: '/a', query: '?b?c' });
    assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '?' });
    assert.deepEqual(splitTarget('/?q'), { path: '/', query: '?q' });
  });

  it('gives an empty query when there is none', () => {
    assert.deepEqual(splitTarget('/a/b'), { path: '/a/b', query: '' });
    assert.deepEqual(splitTarget('/'), { path: '/', query: '' });
    assert.deepEqual(splitTarget(''), { path: '', query: '' });
  });

  it('leaves dots and percent-encodings in the query alone', () => {
    assert.deepEqual(splitTarget('/x?p=/../a%2e%2e'), { path: '/x', query: '?p=/../a%2e%2e' });
  });
});

describe('hasDotSegments', () => {
  it('finds "." and ".." segments anywhere', () => {
    for (const p of ['/.', '/..', '/./a', '/../a', '/a/.', '/a/..', '/a/./b', '/a/../b', '.', '..', './a', '../a']) {
      assert.equal(hasDotSegments(p), true, p);
    }
  });

  it('finds percent-encoded dots in either case', () => {
    for (const p of ['/%2e', '/%2E', '/%2e%2e/a', '/a/%2E%2e', '/a/.%2e/b', '/a/%2e./b', '/a/%2E/b']) {
      assert.equal(hasDotSegments(p), true, p);
    }
  });

  it('ignores dots that are part of a longer segment', () => {
    for (const p of ['/', '/a', '/a.b', '/.a', '/a.', '/..a', '/a..', '/...', '/a/.../b', '/.well-known/x', '/%2e%2e%2e', '/%2ea', '/x%2e', '/a%2fb', '']) {
      assert.equal(hasDotSegments(p), false, p);
    }
  });
});

describe('removeDotSegments', () => {
  it('follows the RFC 3986 §5.2.4 examples', () => {
    assert.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g');
    // §5.2.4's "mid/content=5/../6", as an absolute path.
    assert.equal(removeDotSegments('/mid/content=5/../6'), '/mid/6');
  });

  it('resolves the RFC 3986 §5.4 reference results that stay below the root', () => {
    // Base "http://a/b/c/d;p?q": merged paths and their expected results.
    const cases: [string, string][] = [
      ['/b/c/./g', '/b/c/g'],
      ['/b/c/.', '/b/c/'],
      ['/b/c/./', '/b/c/'],
      ['/b/c/..', '/b/'],
      ['/b/c/../', '/b/'],
      ['/b/c/../g', '/b/g'],
      ['/b/c/../..', '/'],
      ['/b/c/../../', '/'],
      ['/b/c/../../g', '/g'],
      ['/b/c/g.', '/b/c/g.'],
      ['/b/c/.g', '/b/c/.g'],
      ['/b/c/g..', '/b/c/g..'],
      ['/b/c/..g', '/b/c/..g'],
      ['/b/c/./../g', '/b/g'],
      ['/b/c/./g/.', '/b/c/g/'],
      ['/b/c/g/./h', '/b/c/g/h'],
      ['/b/c/g/../h', '/b/c/h'],
      ['/b/c/g;x=1/./y', '/b/c/g;x=1/y'],
      ['/b/c/g;x=1/../y', '/b/c/y'],
    ];
    for (const [input, expected] of cases) assert.equal(removeDotSegments(input), expected, input);
  });

  it('routes "/public/../admin" as "/admin"', () => {
    assert.equal(removeDotSegments('/public/../admin'), '/admin');
    assert.equal(removeDotSegments('/public/%2e%2e/admin'), '/admin');
  });

  it('treats %2e and %2E as "."', () => {
    assert.equal(removeDotSegments('/a/%2e/b'), '/a/b');
    assert.equal(removeDotSegments('/a/%2E/b'), '/a/b');
    assert.equal(removeDotSegments('/a/b/%2e%2e/c'), '/a/c');
    assert.equal(removeDotSegments('/a/b/%2E%2E/c'), '/a/c');
    assert.equal(removeDotSegments('/a/b/.%2E/c'), '/a/c');
    assert.equal(removeDotSegments('/a/b/%2e./c'), '/a/c');
    assert.equal(removeDotSegments('/a/b/%2E%2e'), '/a/');
  });

  it('keeps other segments byte for byte, encodings included', () => {
    assert.equal(removeDotSegments('/x/./%E4%B8%AD/a%2Fb/%2e%2e%2e'), '/x/%E4%B8%AD/a%2Fb/%2e%2e%2e');
  });

  it('handles a trailing "." and ".." by ending the path with "/"', () => {
    assert.equal(removeDotSegments('/a/b/.'), '/a/b/');
    assert.equal(removeDotSegments('/a/b/..'), '/a/');
    assert.equal(removeDotSegments('/a/..'), '/');
    assert.equal(removeDotSegments('/.'), '/');
    assert.equal(removeDotSegments('/a/%2e'), '/a/');
  });

  it('keeps empty segments', () => {
    assert.equal(removeDotSegments('/a//../b'), '/a/b');
    assert.equal(removeDotSegments('//a/../b'), '//b');
    assert.equal(removeDotSegments('/a/./'), '/a/');
  });

  it('returns undefined when ".." climbs above the root', () => {
    for (const p of ['/..', '/../', '/../x', '/a/../..', '/a/../../b', '/%2e%2e/x', '/%2E%2E', '/a/b/../../../c', '/./../x']) {
      assert.equal(removeDotSegments(p), undefined, p);
    }
  });

  it('returns a path without dot segments unchanged, as the same string', () => {
    for (const p of ['/', '/a/b', '/a.b/c..d/.e', '/...', '/a//b/', '/%2e%2e%2e']) {
      assert.equal(removeDotSegments(p), p);
    }
  });
});

describe('hidesDotSegments', () => {
  it('finds dot segments behind an encoded slash, an encoded backslash or a backslash', () => {
    for (const p of ['/pub/..%2fadmin', '/pub/..%2Fadmin', '/a/%2e%2e%5cx', '/a/..\\x', '/a/x%2f..', '/a/x%2f.%2fy', '/%2e%2e%2F%2e%2e%2fetc', '/a\\..\\b']) {
      assert.equal(hidesDotSegments(p), true, p);
    }
  });

  it('finds dot segments in front of path parameters (Tomcat and Spring drop ";..." before resolving them)', () => {
    for (const p of ['/pub/..;/admin', '/a/..;x=1/b', '/a/%2e%2e;/b', '/a/.;/b', '/a/x;y%2f..;/z']) {
      assert.equal(hidesDotSegments(p), true, p);
    }
  });

  it('leaves encoded slashes, backslashes and path parameters without dot segments, and plain dot segments, alone', () => {
    for (const p of ['/a%2fb', '/a/b%5cc', '/a\\b', '/a/../b', '/a/..%2e/b', '/a/...%2fb', '/a/.x%2fb', '/', '/..a%2f', '/x?q=..%2f', '/a;b=1/c', '/a/x;y=../z', '/a/...;/b']) {
      assert.equal(hidesDotSegments(p), false, p);
    }
  });
});
