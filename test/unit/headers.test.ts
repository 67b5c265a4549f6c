import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HOP_BY_HOP, applyUpstreamHost, downstreamHeaders, getField, setField, upstreamHeaders, type ForwardContext, type ResponseMeta,
} from '../../src/core/headers.js';
import { ProxyTrust } from '../../src/core/trust.js';

const NOBODY = new ProxyTrust([]);
const LAN = new ProxyTrust(['10.0.0.0/8', '192.168.1.1']);

function ctx(over: Partial<ForwardContext> = {}): ForwardContext {
  return { peer: '203.0.113.7', proto: 'http', trust: NOBODY, ...over };
}

/** Every value of `lowerName` in a flat list, in order. */
function all(list: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === lowerName) out.push(list[i + 1]!);
  return out;
}

/** Lower-cased names of a flat list, in order. */
function names(list: readonly string[]): string[] {
  return list.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

describe('upstreamHeaders', () => {
  it('removes every hop-by-hop field, in any case', () => {
    const raw = [
      'Host', 'a.com',
      'Connection', 'keep-alive',
      'KEEP-ALIVE', 'timeout=5',
      'Proxy-Connection', 'keep-alive',
      'te', 'trailers',
      'Trailer', 'X-Checksum',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c',
      'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
      'Proxy-Authenticate', 'Basic',
      'Accept', '*/*',
    ];
    const head = upstreamHeaders(raw, ctx());
    const left = names(head.headers);
    for (const hop of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']) {
      assert.ok(!left.includes(hop), `${hop} was forwarded`);
      assert.ok(HOP_BY_HOP.has(hop), `${hop} missing from HOP_BY_HOP`);
    }
    assert.equal(getField(head.headers, 'accept'), '*/*');
    assert.equal(getField(head.headers, 'host'), 'a.com');
  });

  it('removes the fields the client named in Connection, but no others', () => {
    const raw = [
      'Host', 'a.com',
      'Connection', 'X-Secret, keep-alive',
      'connection', ' x-other ,close',
      'X-Secret', 's',
      'x-other', 'o',
      'X-Kept', 'k',
    ];
    const head = upstreamHeaders(raw, ctx());
    assert.deepEqual(names(head.headers).slice(0, 2), ['host', 'x-kept']);
    assert.equal(getField(head.headers, 'x-secret'), undefined);
    assert.equal(getField(head.headers, 'x-other'), undefined);
  });

  it('cannot be talked into dropping the forwarding fields via Connection', () => {
    const raw = ['Host', 'a.com', 'Connection', 'X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host'];
    const head = upstreamHeaders(raw, ctx());
    assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['203.0.113.7']);
    assert.deepEqual(all(head.headers, 'x-real-ip'), ['203.0.113.7']);
    assert.deepEqual(all(head.headers, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(all(head.headers, 'x-forwarded-host'), ['a.com']);
  });

  it('replaces forwarding fields sent by an untrusted peer', () => {
    const raw = [
      'Host', 'a.com',
      'X-Forwarded-For', '1.2.3.4',
      'X-Real-IP', '1.2.3.4',
      'X-Forwarded-Proto', 'https',
      'X-Forwarded-Host', 'evil.test',
    ];
    for (const trust of [NOBODY, LAN]) {
      const head = upstreamHeaders(raw, ctx({ trust, proto: 'http' }));
      assert.equal(head.clientIp, '203.0.113.7');
      assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['203.0.113.7']);
      assert.deepEqual(all(head.headers, 'x-real-ip'), ['203.0.113.7']);
      assert.deepEqual(all(head.headers, 'x-forwarded-proto'), ['http']);
      assert.deepEqual(all(head.headers, 'x-forwarded-host'), ['a.com']);
      assert.ok(!head.headers.includes('1.2.3.4'));
      assert.ok(!head.headers.includes('evil.test'));
    }
  });

  it('drops the other client and request claims of an untrusted peer, and passes a trusted peer\'s on', () => {
    const claims = [
      'Forwarded', 'for=6.6.6.6', 'X-Forwarded-Port', '443', 'x-forwarded-prefix', '/p', 'X-FORWARDED-SSL', 'on',
      'X-Forwarded-Client-Cert', 'x', 'X-Forwarded', 'for=6.6.6.6', 'Forwarded-For', '6.6.6.6', 'X-Client-IP', '6.6.6.6',
      'True-Client-IP', '6.6.6.6', 'CF-Connecting-IP', '6.6.6.6', 'Fastly-Client-IP', '6.6.6.6', 'X-Cluster-Client-IP', '6.6.6.6',
      'X-Original-URL', '/admin', 'X-Rewrite-URL', '/admin', 'X-Original-Forwarded-For', '6.6.6.6',
    ];
    const raw = ['Host', 'a.com', ...claims, 'X-Forwardedness', 'kept', 'X-Forwarded-', 'kept too', 'Forwarded-By', 'kept'];
    const untrusted = upstreamHeaders(raw, ctx());
    assert.deepEqual(names(untrusted.headers), ['host', 'x-forwardedness', 'x-forwarded-', 'forwarded-by', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
    const trusted = upstreamHeaders(raw, ctx({ peer: '10.0.0.2', trust: LAN }));
    assert.deepEqual(trusted.headers.slice(0, raw.length), raw);
  });

  it('keeps and appends to the forwarding fields of a trusted peer', () => {
    const raw = [
      'Host', 'a.com',
      'X-Forwarded-For', '198.51.100.9, 10.1.1.1',
      'X-Forwarded-Proto', 'https',
      'X-Forwarded-Host', 'public.a.com',
      'X-Real-IP', '6.6.6.6',
    ];
    const head = upstreamHeaders(raw, ctx({ peer: '10.0.0.2', trust: LAN }));
    // Right-most untrusted hop: 10.1.1.1 is one of ours, 198.51.100.9 is the client.
    assert.equal(head.clientIp, '198.51.100.9');
    assert.deepEqual(all(head.headers, 'x-real-ip'), ['198.51.100.9']);
    assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['198.51.100.9, 10.1.1.1, 10.0.0.2']);
    assert.deepEqual(all(head.headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(all(head.headers, 'x-forwarded-host'), ['public.a.com']);
  });

  it('joins several X-Forwarded-For fields from a trusted peer in order', () => {
    const raw = ['Host', 'a.com', 'X-Forwarded-For', '198.51.100.1', 'x-forwarded-for', '198.51.100.2, 10.9.9.9'];
    const head = upstreamHeaders(raw, ctx({ peer: '192.168.1.1', trust: LAN }));
    assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['198.51.100.1, 198.51.100.2, 10.9.9.9, 192.168.1.1']);
    assert.equal(head.clientIp, '198.51.100.2');
  });

  it('uses the peer as the client when a trusted peer sends no X-Forwarded-For', () => {
    const head = upstreamHeaders(['Host', 'a.com', 'X-Real-IP', '6.6.6.6'], ctx({ peer: '10.0.0.2', trust: LAN, proto: 'https' }));
    assert.equal(head.clientIp, '10.0.0.2');
    assert.deepEqual(all(head.headers, 'x-real-ip'), ['10.0.0.2']);
    assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['10.0.0.2']);
    assert.deepEqual(all(head.headers, 'x-forwarded-proto'), ['https']);
  });

  it('recognises a trusted peer given as an IPv4-mapped IPv6 address', () => {
    const head = upstreamHeaders(['Host', 'a.com', 'X-Forwarded-For', '198.51.100.9'], ctx({ peer: '::ffff:10.0.0.2', trust: LAN }));
    assert.equal(head.clientIp, '198.51.100.9');
    assert.deepEqual(all(head.headers, 'x-forwarded-for'), ['198.51.100.9, ::ffff:10.0.0.2']);
  });

  it('counts Host fields, forwards only the first, and reports its value', () => {
    const one = upstreamHeaders(['Host', 'a.com'], ctx());
    assert.equal(one.hostCount, 1);
    assert.equal(one.host, 'a.com');
    const two = upstreamHeaders(['Host', 'a.com', 'host', 'b.com'], ctx());
    assert.equal(two.hostCount, 2);
    assert.equal(two.host, 'a.com');
    assert.deepEqual(all(two.headers, 'host'), ['a.com']);
    const none = upstreamHeaders(['Accept', '*/*'], ctx());
    assert.equal(none.hostCount, 0);
    assert.equal(none.host, '');
    assert.deepEqual(all(none.headers, 'host'), []);
  });

  it('replaces Host with hostOverride but keeps the client Host in X-Forwarded-Host', () => {
    const head = upstreamHeaders(['Host', 'a.com', 'Accept', '*/*'], ctx({ hostOverride: '127.0.0.1:8000' }));
    assert.deepEqual(all(head.headers, 'host'), ['127.0.0.1:8000']);
    assert.equal(head.host, 'a.com');
    assert.deepEqual(all(head.headers, 'x-forwarded-host'), ['a.com']);
  });

  it('captures Content-Length and Transfer-Encoding', () => {
    const cl = upstreamHeaders(['Host', 'a.com', 'content-length', '42'], ctx());
    assert.equal(cl.contentLength, '42');
    assert.equal(cl.chunked, false);
    assert.deepEqual(all(cl.headers, 'content-length'), ['42']);
    const te = upstreamHeaders(['Host', 'a.com', 'Transfer-Encoding', 'chunked'], ctx());
    assert.equal(te.contentLength, undefined);
    assert.equal(te.chunked, true);
    assert.deepEqual(all(te.headers, 'transfer-encoding'), []);
    const neither = upstreamHeaders(['Host', 'a.com'], ctx());
    assert.equal(neither.contentLength, undefined);
    assert.equal(neither.chunked, false);
  });

  it('adds Connection: upgrade and Upgrade: websocket only for an upgrade', () => {
    const raw = ['Host', 'a.com', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'];
    const up = upstreamHeaders(raw, ctx({ upgrade: true }));
    assert.deepEqual(all(up.headers, 'connection'), ['upgrade']);
    assert.deepEqual(all(up.headers, 'upgrade'), ['websocket']);
    assert.equal(getField(up.headers, 'sec-websocket-key'), 'k');
    const plain = upstreamHeaders(raw, ctx({ upgrade: false }));
    assert.deepEqual(all(plain.headers, 'connection'), []);
    assert.deepEqual(all(plain.headers, 'upgrade'), []);
  });

  it('applies extra fields, replacing fields of the same name', () => {
    const head = upstreamHeaders(['Host', 'a.com', 'X-Env', 'client', 'x-env', 'again'], ctx({ extra: ['X-Env', 'prod', 'X-New', '1'] }));
    assert.deepEqual(all(head.headers, 'x-env'), ['prod']);
    assert.deepEqual(all(head.headers, 'x-new'), ['1']);
  });

  it('preserves the order, case and values of all other fields, duplicates included', () => {
    const raw = [
      'Host', 'a.com',
      'accept', 'text/html',
      'Cookie', 'a=1',
      'X-Custom-Thing', 'v1',
      'cookie', 'b=2',
      'User-Agent', 'MicroMessenger/8.0',
    ];
    const head = upstreamHeaders(raw, ctx());
    assert.deepEqual(head.headers.slice(0, raw.length), raw);
    assert.deepEqual(names(head.headers).slice(raw.length / 2), ['x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
  });

  it('does not modify the input list', () => {
    const raw = ['Host', 'a.com', 'Connection', 'x-a', 'x-a', '1', 'X-Forwarded-For', '1.1.1.1'];
    const copy = [...raw];
    upstreamHeaders(raw, ctx({ extra: ['x-b', '2'] }));
    assert.deepEqual(raw, copy);
  });
});

describe('downstreamHeaders', () => {
  const b = (...parts: string[]) => parts;

  it('removes hop-by-hop fields and fields named in Connection', () => {
    const raw = b(
      'Content-Type', 'text/plain',
      'Connection', 'keep-alive, X-Internal',
      'Keep-Alive', 'timeout=5',
      'Transfer-Encoding', 'chunked',
      'Trailer', 'X-Sum',
      'Upgrade', 'h2c',
      'Proxy-Authenticate', 'Basic',
      'X-Internal', 'secret',
      'X-Public', 'yes',
    );
    assert.deepEqual(downstreamHeaders(raw), ['Content-Type', 'text/plain', 'X-Public', 'yes']);
  });

  it('captures Content-Length into meta and still forwards it', () => {
    const meta: ResponseMeta = { contentLength: 123 };
    const out = downstreamHeaders(b('content-length', '17', 'X-A', '1'), meta);
    assert.equal(meta.contentLength, 17);
    assert.deepEqual(out, ['content-length', '17', 'X-A', '1']);
  });

  it('drops Content-Length when Transfer-Encoding framed the body (RFC 9112 §6.3), in either order', () => {
    for (const raw of [
      ['Content-Length', '5', 'Transfer-Encoding', 'chunked', 'X-A', '1'],
      ['Transfer-Encoding', 'chunked', 'content-length', '5', 'X-A', '1'],
    ]) {
      const meta: ResponseMeta = { contentLength: 99 };
      assert.deepEqual(downstreamHeaders(raw, meta), ['X-A', '1']);
      assert.equal(meta.contentLength, -1, 'no one-write shortcut on a length the body does not have');
    }
  });

  it('sets meta.contentLength to -1 when it is absent or not a plain number', () => {
    const absent: ResponseMeta = { contentLength: 99 };
    downstreamHeaders(b('X-A', '1'), absent);
    assert.equal(absent.contentLength, -1);
    const bad: ResponseMeta = { contentLength: 99 };
    downstreamHeaders(b('Content-Length', '1e3'), bad);
    assert.equal(bad.contentLength, -1);
    const zero: ResponseMeta = { contentLength: 99 };
    downstreamHeaders(b('Content-Length', '0'), zero);
    assert.equal(zero.contentLength, 0);
  });

  it('keeps every Set-Cookie, in order', () => {
    const raw = b('Set-Cookie', 'a=1; Path=/', 'Content-Type', 'text/html', 'set-cookie', 'b=2; HttpOnly', 'Set-Cookie', 'c=3');
    const out = downstreamHeaders(raw);
    assert.deepEqual(all(out, 'set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly', 'c=3']);
    assert.deepEqual(out, raw);
  });

  it('passes latin1 values through unchanged, so non-ASCII bytes survive', () => {
    const value = Buffer.from([0x66, 0xe9, 0xff]).toString('latin1');
    const out = downstreamHeaders(['X-Bytes', value]);
    assert.deepEqual(Buffer.from(out[1]!, 'latin1'), Buffer.from([0x66, 0xe9, 0xff]));
  });
});

describe('setField / getField / applyUpstreamHost', () => {
  it('setField replaces every field of that name, case-insensitively, with one at the end', () => {
    const list = ['X-A', '1', 'b', '2', 'x-a', '3'];
    setField(list, 'x-A', 'new');
    assert.deepEqual(list, ['b', '2', 'x-A', 'new']);
    setField(list, 'C', '4');
    assert.deepEqual(list, ['b', '2', 'x-A', 'new', 'C', '4']);
  });

  it('getField returns the first value, case-insensitively, or undefined', () => {
    const list = ['Accept', 'a', 'ACCEPT', 'b'];
    assert.equal(getField(list, 'accept'), 'a');
    assert.equal(getField(list, 'host'), undefined);
    assert.equal(getField([], 'accept'), undefined);
    // Names are matched, never values.
    assert.equal(getField(['X', 'accept', 'Y', 'z'], 'accept'), undefined);
  });

  it('applyUpstreamHost fills the last lower-case "host" field', () => {
    const list = ['host', 'first', 'Accept', '*/*', 'host', ''];
    applyUpstreamHost(list, '127.0.0.1:8000');
    assert.deepEqual(list, ['host', 'first', 'Accept', '*/*', 'host', '127.0.0.1:8000']);
  });

  it('applyUpstreamHost fills the placeholder left by setField(…, "host", "")', () => {
    const head = upstreamHeaders(['Host', 'a.com', 'Accept', '*/*'], ctx());
    setField(head.headers, 'host', '');
    applyUpstreamHost(head.headers, 'up.internal:9000');
    assert.deepEqual(all(head.headers, 'host'), ['up.internal:9000']);
    assert.deepEqual(all(head.headers, 'x-forwarded-host'), ['a.com']);
  });

  it('applyUpstreamHost changes nothing when there is no "host" field', () => {
    const list = ['Accept', '*/*', 'X-Host', 'h'];
    applyUpstreamHost(list, 'x:1');
    assert.deepEqual(list, ['Accept', '*/*', 'X-Host', 'h']);
  });
});

describe('upstreamHeaders: fields routing depends on', () => {
  it('keeps Host even when the client names it in Connection', () => {
    const h = upstreamHeaders(['Host', 'a.test', 'Connection', 'host, x-secret', 'X-Secret', 's'], ctx());
    assert.deepEqual(all(h.headers, 'host'), ['a.test']);
    assert.deepEqual(all(h.headers, 'x-secret'), []);
  });

  it('sends no empty X-Forwarded-Host when the client sent no Host (HTTP/1.0)', () => {
    const h = upstreamHeaders(['Accept', '*/*'], ctx());
    assert.deepEqual(all(h.headers, 'x-forwarded-host'), []);
    assert.deepEqual(all(h.headers, 'x-real-ip'), ['203.0.113.7']);
  });
});
