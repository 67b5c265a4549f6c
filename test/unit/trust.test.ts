import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyTrust } from '../../src/core/trust.js';

describe('ProxyTrust.isTrusted', () => {
  it('trusts a single IPv4 address and nothing next to it', () => {
    const t = new ProxyTrust(['192.168.1.10']);
    assert.equal(t.isTrusted('192.168.1.10'), true);
    assert.equal(t.isTrusted('192.168.1.11'), false);
    assert.equal(t.isTrusted('192.168.1.1'), false);
  });

  it('trusts an IPv4 CIDR up to its edges', () => {
    const t = new ProxyTrust(['10.0.0.0/8', '172.16.0.0/12']);
    assert.equal(t.isTrusted('10.0.0.0'), true);
    assert.equal(t.isTrusted('10.255.255.255'), true);
    assert.equal(t.isTrusted('11.0.0.0'), false);
    assert.equal(t.isTrusted('9.255.255.255'), false);
    assert.equal(t.isTrusted('172.31.255.255'), true);
    assert.equal(t.isTrusted('172.32.0.0'), false);
  });

  it('trusts IPv6 addresses and CIDRs', () => {
    const t = new ProxyTrust(['::1', 'fd00::/8']);
    assert.equal(t.isTrusted('::1'), true);
    assert.equal(t.isTrusted('0:0:0:0:0:0:0:1'), true);
    assert.equal(t.isTrusted('::2'), false);
    assert.equal(t.isTrusted('fd12:3456::1'), true);
    assert.equal(t.isTrusted('FD12:3456::1'), true);
    assert.equal(t.isTrusted('fe80::1'), false);
  });

  it('treats an IPv4-mapped IPv6 peer as its IPv4 address', () => {
    const t = new ProxyTrust(['10.0.0.0/8']);
    assert.equal(t.isTrusted('::ffff:10.0.0.1'), true);
    assert.equal(t.isTrusted('::ffff:11.0.0.1'), false);
    const v4only = new ProxyTrust(['127.0.0.1']);
    assert.equal(v4only.isTrusted('::ffff:127.0.0.1'), true);
    assert.equal(v4only.isTrusted('::1'), false);
  });

  it('does not trust IPv4 because of an IPv6 entry, or the reverse', () => {
    assert.equal(new ProxyTrust(['::1']).isTrusted('127.0.0.1'), false);
    assert.equal(new ProxyTrust(['127.0.0.1']).isTrusted('::1'), false);
  });

  it('trusts nobody with an empty list', () => {
    const t = new ProxyTrust([]);
    for (const a of ['127.0.0.1', '::1', '10.0.0.1', '::ffff:127.0.0.1', '0.0.0.0']) assert.equal(t.isTrusted(a), false, a);
  });

  it('never trusts an empty or malformed address', () => {
    const t = new ProxyTrust(['0.0.0.0/0', '::/0']);
    assert.equal(t.isTrusted('8.8.8.8'), true); // the list really does cover everything
    for (const a of ['', 'garbage', '10.0.0', '1.2.3.4.5', '10.0.0.1/8', 'localhost', '::ffff:zzz']) assert.equal(t.isTrusted(a), false, a);
  });
});

describe('ProxyTrust.clientFrom', () => {
  const t = new ProxyTrust(['10.0.0.0/8', 'fd00::/8']);

  it('returns the right-most hop that is not a trusted proxy', () => {
    assert.equal(t.clientFrom('198.51.100.1', '10.0.0.9'), '198.51.100.1');
    assert.equal(t.clientFrom('203.0.113.5, 198.51.100.1, 10.0.0.2', '10.0.0.9'), '198.51.100.1');
    assert.equal(t.clientFrom('198.51.100.1,10.0.0.2,10.0.0.3', '10.0.0.9'), '198.51.100.1');
    assert.equal(t.clientFrom('2001:db8::1, fd00::2', '10.0.0.9'), '2001:db8::1');
  });

  it('ignores a spoofed left part: only the hops after the last untrusted one count', () => {
    // The client wrote "1.1.1.1" itself; 198.51.100.1 is what our proxy saw.
    assert.equal(t.clientFrom('1.1.1.1, 198.51.100.1', '10.0.0.9'), '198.51.100.1');
  });

  it('returns the left-most hop when every hop is trusted', () => {
    assert.equal(t.clientFrom('10.1.1.1, 10.2.2.2', '10.0.0.9'), '10.1.1.1');
  });

  it('stops at a garbage entry and falls back to the peer', () => {
    // The first hop that cannot be parsed ends the walk: nothing left of it is believed.
    assert.equal(t.clientFrom('198.51.100.1, garbage, 10.0.0.2', '10.0.0.9'), '10.0.0.9');
    assert.equal(t.clientFrom('198.51.100.1, unknown', '10.0.0.9'), '10.0.0.9');
    assert.equal(t.clientFrom('198.51.100.1, 10.0.0.2:1234', '10.0.0.9'), '10.0.0.9');
    assert.equal(t.clientFrom('', '10.0.0.9'), '10.0.0.9');
    assert.equal(t.clientFrom(' , ', '10.0.0.9'), '10.0.0.9');
    assert.equal(t.clientFrom('198.51.100.1,', '10.0.0.9'), '10.0.0.9');
  });

  it('stops at the first untrusted hop, so garbage to its left does not matter', () => {
    assert.equal(t.clientFrom('garbage, 198.51.100.1, 10.0.0.2', '10.0.0.9'), '198.51.100.1');
  });

  it('trims whitespace around hops', () => {
    assert.equal(t.clientFrom('  198.51.100.1  ,   10.0.0.2 ', '10.0.0.9'), '198.51.100.1');
  });
});
