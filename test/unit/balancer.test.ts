import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoundRobin, UpstreamHealth, type Candidate } from '../../src/core/balancer.js';

interface Item extends Candidate {
  readonly name: string;
}

function items(...list: string[]): Item[] {
  return list.map((name) => ({ name, health: new UpstreamHealth(`http://${name}`) }));
}

/** Names of `count` successive picks. */
function picks(rr: RoundRobin<Item>, count: number, now = 0, exclude?: ReadonlySet<Item>): (string | undefined)[] {
  return Array.from({ length: count }, () => rr.pick(now, exclude)?.name);
}

describe('UpstreamHealth', () => {
  it('starts up', () => {
    const h = new UpstreamHealth('http://a');
    assert.equal(h.origin, 'http://a');
    assert.equal(h.isUp(0), true);
    assert.equal(h.fails, 0);
  });

  it('goes down after maxFails consecutive failures, for failTimeout ms', () => {
    const h = new UpstreamHealth('http://a');
    assert.equal(h.fail(1000, 3, 5000), false);
    assert.equal(h.isUp(1000), true);
    assert.equal(h.fail(1100, 3, 5000), false);
    assert.equal(h.isUp(1100), true);
    assert.equal(h.fail(1200, 3, 5000), true); // this one took it out
    assert.equal(h.isUp(1200), false);
    assert.equal(h.isUp(6199), false);
    assert.equal(h.isUp(6200), true); // down until 1200 + 5000
  });

  it('with maxFails 1, the first failure takes it out', () => {
    const h = new UpstreamHealth('http://a');
    assert.equal(h.fail(0, 1, 10_000), true);
    assert.equal(h.isUp(9_999), false);
    assert.equal(h.isUp(10_000), true);
  });

  it('does not extend the down time on failures while it is down', () => {
    const h = new UpstreamHealth('http://a');
    h.fail(0, 1, 1000);
    assert.equal(h.fail(500, 1, 1000), false); // already down: not "taken out" again
    assert.equal(h.isUp(1000), true); // still up again at 0 + 1000, not 500 + 1000
  });

  it('goes down again on the next failure after the timeout, until a success', () => {
    const h = new UpstreamHealth('http://a');
    h.fail(0, 2, 1000);
    h.fail(10, 2, 1000);
    assert.equal(h.isUp(1010), true);
    // Failures are counted in a row, so one more after the timeout is enough.
    assert.equal(h.fail(1500, 2, 1000), true);
    assert.equal(h.isUp(2499), false);
    assert.equal(h.isUp(2500), true);
  });

  it('succeed() resets the count and brings it back at once', () => {
    const h = new UpstreamHealth('http://a');
    h.fail(0, 2, 1000);
    h.succeed();
    assert.equal(h.fails, 0);
    assert.equal(h.fail(10, 2, 1000), false); // the count started again
    assert.equal(h.fail(20, 2, 1000), true);
    assert.equal(h.isUp(30), false);
    h.succeed();
    assert.equal(h.isUp(30), true);
    assert.equal(h.downUntil, 0);
  });
});

describe('RoundRobin', () => {
  it('rotates through every upstream in order', () => {
    const rr = new RoundRobin(items('a', 'b', 'c'));
    assert.deepEqual(picks(rr, 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('always gives the single upstream, even when it is down', () => {
    const [only] = items('a');
    const rr = new RoundRobin([only!]);
    only!.health.fail(0, 1, 1000);
    assert.equal(rr.pick(10)?.name, 'a');
    assert.equal(rr.pick(10, new Set([only!])), undefined);
  });

  it('gives undefined with no upstreams', () => {
    assert.equal(new RoundRobin<Item>([]).pick(0), undefined);
  });

  it('skips upstreams that are down, and uses them again once their time is up', () => {
    const list = items('a', 'b', 'c');
    const rr = new RoundRobin(list);
    list[1]!.health.fail(0, 1, 1000); // b down until 1000
    assert.deepEqual(picks(rr, 4, 500), ['a', 'c', 'a', 'c']);
    assert.deepEqual(picks(rr, 3, 1000), ['a', 'b', 'c']);
  });

  it('when all are down, picks the one coming back soonest', () => {
    const list = items('a', 'b', 'c');
    const rr = new RoundRobin(list);
    list[0]!.health.fail(0, 1, 3000); // back at 3000
    list[1]!.health.fail(0, 1, 1000); // back at 1000
    list[2]!.health.fail(0, 1, 2000); // back at 2000
    assert.equal(rr.pick(100)?.name, 'b');
    assert.equal(rr.pick(100)?.name, 'b'); // no rotation while nothing is up
    assert.equal(rr.pick(100, new Set([list[1]!]))?.name, 'c');
    assert.equal(rr.pick(1500)?.name, 'b'); // b is up again
  });

  it('skips excluded upstreams (already tried for this request)', () => {
    const list = items('a', 'b', 'c');
    const rr = new RoundRobin(list);
    const triedA = new Set([list[0]!]);
    assert.equal(rr.pick(0, triedA)?.name, 'b');
    assert.equal(rr.pick(0, triedA)?.name, 'c');
    assert.equal(rr.pick(0, triedA)?.name, 'b');
    assert.equal(rr.pick(0, new Set(list)), undefined);
  });

  it('returns undefined when every upstream that is not excluded is gone, but never an excluded one', () => {
    const list = items('a', 'b');
    const rr = new RoundRobin(list);
    list[1]!.health.fail(0, 1, 1000);
    // a excluded, b down: b is still the best try left.
    assert.equal(rr.pick(0, new Set([list[0]!]))?.name, 'b');
    // Both excluded: nothing, even though a is up.
    assert.equal(rr.pick(0, new Set(list)), undefined);
  });

  it('continues the rotation after the picked upstream, not after the skipped ones', () => {
    const list = items('a', 'b', 'c', 'd');
    const rr = new RoundRobin(list);
    assert.equal(rr.pick(0)?.name, 'a');
    list[1]!.health.fail(0, 1, 100);
    list[2]!.health.fail(0, 1, 100);
    assert.equal(rr.pick(0)?.name, 'd');
    assert.equal(rr.pick(0)?.name, 'a');
    assert.equal(rr.pick(100)?.name, 'b');
  });
});
