import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { takeJsonParam } from '../../src/relay/json-param.js';

describe('takeJsonParam: the relay JSON-body form, lossless', () => {
  it('removes the path member and keeps every other member byte for byte', () => {
    const text = '{"method":"api/items","id":12345678901234567890,"price":2.50,"nested":{"a":[1,{"method":"x"}],"s":"q\\"}"},"t":true,"n":null}';
    const r = takeJsonParam(text, 'method');
    assert.deepEqual(r, {
      ok: true,
      value: 'api/items',
      rest: '{"id":12345678901234567890,"price":2.50,"nested":{"a":[1,{"method":"x"}],"s":"q\\"}"},"t":true,"n":null}',
    });
  });

  it('handles the member anywhere, whitespace, escapes in keys, and duplicates (last wins, all removed)', () => {
    assert.deepEqual(takeJsonParam(' { "x" : [ 1 , 2 ] ,\n "method" : "a/b" } ', 'method'), { ok: true, value: 'a/b', rest: '{"x" : [ 1 , 2 ]}' });
    assert.deepEqual(takeJsonParam('{"m\\u0065thod":"a","y":1}', 'method'), { ok: true, value: 'a', rest: '{"y":1}' });
    assert.deepEqual(takeJsonParam('{"method":"first","method":"second","z":0}', 'method'), { ok: true, value: 'second', rest: '{"z":0}' });
    assert.deepEqual(takeJsonParam('{"method":"only"}', 'method'), { ok: true, value: 'only', rest: '{}' });
  });

  it('refuses what is not an object with a string member', () => {
    for (const [text, reason] of [
      ['not json', /does not parse/],
      ['[1,2]', /not an object/],
      ['"s"', /not an object/],
      ['{"x":1}', /no string "method"/],
      ['{"method":5}', /no string "method"/],
      ['{"method":{"a":1}}', /no string "method"/],
    ] as const) {
      const r = takeJsonParam(text, 'method');
      assert.equal(r.ok, false, text);
      if (!r.ok) assert.match(r.reason, reason);
    }
  });

  it('the rest always parses to the original object minus the member', () => {
    const samples = [
      { method: 'p', a: 'x,y}', b: [{ c: '"]' }], d: -1.5e-7, e: '' },
      { z: { method: 'inner stays' }, method: 'outer' },
      { method: 'p', '': 'empty key', 'a\\b': '\u4e2d\u6587' },
    ];
    for (const obj of samples) {
      const text = JSON.stringify(obj, null, 2);
      const r = takeJsonParam(text, 'method');
      assert.ok(r.ok);
      const { method: _m, ...rest } = obj as Record<string, unknown>;
      if (r.ok) assert.deepEqual(JSON.parse(r.rest), rest);
    }
  });
});
