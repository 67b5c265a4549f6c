import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostRouter, normalizeHost } from '../../src/core/host-router.js';

/** A router over string labels, built from [pattern, label] pairs in order. */
function router(entries: [string, string][], fallback?: string): HostRouter<string> {
  const r = new HostRouter<string>();
  for (const [pattern, label] of entries) r.add(pattern, label);
  if (fallback !== undefined) r.setFallback(fallback);
  return r;
}

describe('normalizeHost', () => {
  it('lower-cases and removes the port and one trailing dot', () => {
    assert.equal(normalizeHost('Example.COM:8080'), 'example.com');
    assert.equal(normalizeHost('a.com.'), 'a.com');
    assert.equal(normalizeHost('A.COM.:443'), 'a.com');
    assert.equal(normalizeHost('a.com:'), 'a.com');
    assert.equal(normalizeHost('  x.a.com  '), 'x.a.com');
    assert.equal(normalizeHost('localhost'), 'localhost');
    assert.equal(normalizeHost('127.0.0.1:80'), '127.0.0.1');
    assert.equal(normalizeHost('under_score.a-b.com'), 'under_score.a-b.com');
  });

  it('keeps IPv6 literals in brackets, without the port', () => {
    assert.equal(normalizeHost('[::1]:80'), '[::1]');
    assert.equal(normalizeHost('[::1]'), '[::1]');
    assert.equal(normalizeHost('[2001:DB8::1]:8443'), '[2001:db8::1]');
    assert.equal(normalizeHost('[::ffff:10.0.0.1]'), '[::ffff:10.0.0.1]');
  });

  it('returns undefined for values that are not a host', () => {
    for (const bad of [
      '', ' ', '.', 'a b', 'x/y', 'user@a.com', 'a.com:abc', 'a.com:80:90', 'a.com:-1', '*.a.com', 'a.com/evil',
      'a\tb', 'ä.com', // spaces, slashes, userinfo, bad ports, wildcards, non-ASCII
      '[::1', '[::1]x', '[::1]:8a', '[a b]', '[x/y]', '::1', // broken or unbracketed IPv6
      'x..a.com', '.a.com', 'a..', // empty labels
    ]) {
      assert.equal(normalizeHost(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('HostRouter', () => {
  it('matches an exact name case-insensitively, with port and trailing dot ignored', () => {
    const r = router([['x.a.com', 'x']], 'fb');
    for (const h of ['x.a.com', 'X.A.COM', 'x.a.com.', 'x.a.com:8080', 'X.a.Com.:80']) assert.equal(r.match(h), 'x', h);
    assert.equal(r.match('y.a.com'), 'fb');
  });

  it('stores configured names case-insensitively too', () => {
    const r = router([['API.Example.COM', 'api'], ['*.WILD.com', 'wild'], ['WWW.T.*', 'trail']]);
    assert.equal(r.match('api.example.com'), 'api');
    assert.equal(r.match('x.wild.com'), 'wild');
    assert.equal(r.match('www.t.org'), 'trail');
  });

  it('prefers exact over leading wildcard over trailing wildcard over regex, whatever the insertion order', () => {
    const entries: [string, string][] = [
      ['~^www\\.a\\.com$', 'regex'],
      ['www.a.*', 'trailing'],
      ['*.a.com', 'leading'],
      ['www.a.com', 'exact'],
    ];
    for (const order of [entries, [...entries].reverse()]) {
      const r = router(order, 'fb');
      assert.equal(r.match('www.a.com'), 'exact');
      const noExact = router(order.filter(([p]) => p !== 'www.a.com'), 'fb');
      assert.equal(noExact.match('www.a.com'), 'leading');
      const onlyTrailingAndRegex = router(order.filter(([p]) => p === 'www.a.*' || p.startsWith('~')), 'fb');
      assert.equal(onlyTrailingAndRegex.match('www.a.com'), 'trailing');
      const onlyRegex = router(order.filter(([p]) => p.startsWith('~')), 'fb');
      assert.equal(onlyRegex.match('www.a.com'), 'regex');
      assert.equal(onlyRegex.match('www.b.com'), 'fb');
    }
  });

  it('picks the longest leading wildcard', () => {
    const r = router([['*.com', 'com'], ['*.a.com', 'a'], ['*.b.a.com', 'b']], 'fb');
    assert.equal(r.match('x.b.a.com'), 'b');
    assert.equal(r.match('y.x.b.a.com'), 'b');
    assert.equal(r.match('x.a.com'), 'a');
    assert.equal(r.match('b.a.com'), 'a'); // "*.b.a.com" needs a label before "b.a.com"
    assert.equal(r.match('z.com'), 'com');
    assert.equal(r.match('com'), 'fb');
    // Same result when the shorter wildcards are added last.
    const rev = router([['*.b.a.com', 'b'], ['*.a.com', 'a'], ['*.com', 'com']]);
    assert.equal(rev.match('x.b.a.com'), 'b');
  });

  it('"*.a.com" does not match "a.com" itself', () => {
    const r = router([['*.a.com', 'w']], 'fb');
    assert.equal(r.match('a.com'), 'fb');
    assert.equal(r.match('x.a.com'), 'w');
  });

  it('".a.com" matches a.com and every subdomain, and ranks as a leading wildcard', () => {
    const r = router([['.a.com', 'dot']], 'fb');
    assert.equal(r.match('a.com'), 'dot');
    assert.equal(r.match('A.COM.:80'), 'dot');
    assert.equal(r.match('x.a.com'), 'dot');
    assert.equal(r.match('y.x.a.com'), 'dot');
    assert.equal(r.match('xa.com'), 'fb');
    // It loses to an exact name whether that is added before or after it...
    assert.equal(router([['a.com', 'exact'], ['.a.com', 'dot']]).match('a.com'), 'exact');
    assert.equal(router([['.a.com', 'dot'], ['a.com', 'exact']]).match('a.com'), 'exact');
    assert.equal(router([['.a.com', 'dot'], ['a.com', 'exact']]).match('x.a.com'), 'dot');
    // ... beats a shorter leading wildcard and loses to a longer one.
    const mixed = router([['*.com', 'com'], ['.a.com', 'dot'], ['*.x.a.com', 'x']]);
    assert.equal(mixed.match('y.a.com'), 'dot');
    assert.equal(mixed.match('y.x.a.com'), 'x');
    assert.equal(mixed.match('b.com'), 'com');
  });

  it('picks the longest trailing wildcard', () => {
    const r = router([['www.*', 'www'], ['www.a.*', 'wwwa']], 'fb');
    assert.equal(r.match('www.a.com'), 'wwwa');
    assert.equal(r.match('www.a.co.uk'), 'wwwa');
    assert.equal(r.match('www.b.com'), 'www');
    assert.equal(r.match('www.a'), 'www'); // "www.a.*" needs a label after "www.a."
    assert.equal(r.match('www'), 'fb');
    assert.equal(r.match('xwww.a.com'), 'fb');
  });

  it('tries regexes in insertion order, case-insensitively, against the normalised name', () => {
    const r = router([['~^api\\d+\\.a\\.com$', 'first'], ['~^api1\\.', 'second']], 'fb');
    assert.equal(r.match('api1.a.com'), 'first');
    assert.equal(r.match('API7.A.COM.:8080'), 'first'); // port and trailing dot gone before the regex runs
    assert.equal(r.match('api1.b.com'), 'second');
    assert.equal(r.match('api.a.com'), 'fb');
    const swapped = router([['~^api1\\.', 'second'], ['~^api\\d+\\.a\\.com$', 'first']]);
    assert.equal(swapped.match('api1.a.com'), 'second');
  });

  it('returns the fallback, or undefined without one, when nothing matches', () => {
    const withFb = router([['a.com', 'a']], 'fb');
    const without = router([['a.com', 'a']]);
    assert.equal(withFb.match('b.com'), 'fb');
    assert.equal(without.match('b.com'), undefined);
    assert.equal(withFb.match(undefined), 'fb');
    assert.equal(without.match(undefined), undefined);
    assert.equal(withFb.match(''), 'fb');
    withFb.setFallback(undefined);
    assert.equal(withFb.match('b.com'), undefined);
  });

  it('matches IPv6 literals with or without a port', () => {
    const r = router([['localhost', 'lh']], 'fb');
    assert.equal(r.match('[::1]:80'), 'fb');
    const re = router([['~^\\[::1\\]$', 'v6']], 'fb');
    assert.equal(re.match('[::1]:80'), 'v6');
    assert.equal(re.match('[::1]'), 'v6');
    assert.equal(re.match('[::2]'), 'fb');
  });

  it('never lets an invalid Host value reach a configured name', () => {
    // A catch-all regex makes it visible: anything normalizeHost accepted would match it.
    const r = router([['a.com', 'exact'], ['*.a.com', 'leading'], ['www.*', 'trailing'], ['~.', 'regex']], 'fb');
    for (const bad of ['a b', 'x/y', 'a.com:abc', '', 'user@a.com', 'a.com/x', 'x..a.com', '.a.com', 'www..', '[a b]', '[::1']) {
      assert.equal(r.match(bad), 'fb', JSON.stringify(bad));
    }
    assert.equal(router([['a.com', 'exact']]).match('user@a.com'), undefined);
  });

  it('never matches by substring', () => {
    const r = router([['x.a.com', 'x']], 'fb');
    assert.equal(r.match('x.a.com.evil.test'), 'fb');
    assert.equal(r.match('evilx.a.com'), 'fb');
    assert.equal(r.match('x.a.co'), 'fb');
    assert.equal(r.match('xx.a.com'), 'fb');
    assert.equal(r.match('a.com'), 'fb');
    // "evilx.a.com" is a subdomain of a.com, so "*.a.com" takes it, but only when configured.
    const wild = router([['x.a.com', 'x'], ['*.a.com', 'wild']], 'fb');
    assert.equal(wild.match('evilx.a.com'), 'wild');
    assert.equal(wild.match('x.a.com.evil.test'), 'fb');
    assert.equal(wild.match('a.com.evil.test'), 'fb');
    assert.equal(wild.match('evil-a.com'), 'fb');
    // A trailing wildcard needs the whole leading labels.
    assert.equal(router([['www.a.*', 't']], 'fb').match('www.ab.com'), 'fb');
  });

  it('chains: add() and setFallback() return the router', () => {
    const r = new HostRouter<number>();
    assert.equal(r.add('a.com', 1), r);
    assert.equal(r.setFallback(2), r);
    assert.equal(r.match('a.com'), 1);
    assert.equal(r.match('b.com'), 2);
  });
});
