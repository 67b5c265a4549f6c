import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DURATION_PATTERN, SIZE_PATTERN, formatDuration, formatSize, parseDuration, parseSize } from '../../src/config/units.js';

describe('parseDuration', () => {
  it('parses each unit to milliseconds', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('10s'), 10_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('0s'), 0);
    assert.equal(parseDuration('365d'), 31_536_000_000);
  });

  it('accepts decimals, rounding to whole milliseconds, and surrounding or inner spaces', () => {
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('0.25m'), 15_000);
    assert.equal(parseDuration('0.0004s'), 0);
    assert.equal(parseDuration('1.0006s'), 1001);
    assert.equal(parseDuration(' 10 s '), 10_000);
  });

  it('rejects anything else', () => {
    for (const bad of ['', '10', '10sec', '10 seconds', 's', '-1s', '1e3ms', '.5s', '5.s', '10S', '10MS', '1w', '1D', 'ten s', '10s5', 'Infinity s']) {
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
    }
  });

  it('exports a pattern that agrees with the parser', () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const ok of ['250ms', '10s', '1.5m', '2h']) assert.ok(re.test(ok) && parseDuration(ok) !== undefined, ok);
    for (const bad of ['10', '10x', '-1s']) assert.ok(!re.test(bad) && parseDuration(bad) === undefined, bad);
  });
});

describe('parseSize', () => {
  it('parses binary units', () => {
    assert.equal(parseSize('1MiB'), 1_048_576);
    assert.equal(parseSize('10MiB'), 10_485_760);
    assert.equal(parseSize('512KiB'), 524_288);
    assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
    assert.equal(parseSize('100B'), 100);
  });

  it('treats a bare number as bytes', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('0'), 0);
  });

  it('reads nginx-style k/m/g and KB/MB/GB as binary too', () => {
    assert.equal(parseSize('10k'), 10_240);
    assert.equal(parseSize('10K'), 10_240);
    assert.equal(parseSize('10m'), 10_485_760);
    assert.equal(parseSize('10M'), 10_485_760);
    assert.equal(parseSize('1g'), 1024 ** 3);
    assert.equal(parseSize('1G'), 1024 ** 3);
    assert.equal(parseSize('16KB'), 16_384);
    assert.equal(parseSize('1MB'), 1_048_576);
    assert.equal(parseSize('1GB'), 1024 ** 3);
  });

  it('accepts decimals, rounded to whole bytes, and spaces', () => {
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('0.5MiB'), 524_288);
    assert.equal(parseSize(' 8 KiB '), 8192);
  });

  it('rejects anything else', () => {
    for (const bad of ['', 'MiB', '-1', '10 MiBs', '10kib', '10mb', '10Kb', '1e6', '10TB', 'lots', '.5KiB']) {
      assert.equal(parseSize(bad), undefined, JSON.stringify(bad));
    }
  });

  it('exports a pattern that agrees with the parser', () => {
    const re = new RegExp(SIZE_PATTERN);
    for (const ok of ['1MiB', '10k', '10m', '100']) assert.ok(re.test(ok) && parseSize(ok) !== undefined, ok);
    for (const bad of ['1mib', '1TiB']) assert.ok(!re.test(bad) && parseSize(bad) === undefined, bad);
  });
});

describe('formatSize', () => {
  it('uses the largest binary unit that divides the size exactly', () => {
    assert.equal(formatSize(10 * 1024 * 1024), '10MiB');
    assert.equal(formatSize(1024), '1KiB');
    assert.equal(formatSize(1536), '1536B');
    assert.equal(formatSize(3 * 1024 ** 3), '3GiB');
    assert.equal(formatSize(1024 ** 3 + 1024), '1048577KiB');
    assert.equal(formatSize(1000), '1000B');
    assert.equal(formatSize(0), '0B');
  });

  it('round-trips through parseSize', () => {
    for (const n of [0, 1, 1000, 1024, 1536, 16_384, 10 * 1024 * 1024, 5 * 1024 ** 3, 1024 ** 3 + 1]) {
      assert.equal(parseSize(formatSize(n)), n, String(n));
    }
  });
});

describe('formatDuration', () => {
  it('uses minutes, then seconds, then milliseconds', () => {
    assert.equal(formatDuration(300_000), '5m');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(10_000), '10s');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(0), '0ms');
  });

  it('round-trips through parseDuration', () => {
    for (const n of [0, 1, 250, 1000, 1500, 59_000, 60_000, 90_000, 3_600_000, 86_400_000]) {
      assert.equal(parseDuration(formatDuration(n)), n, String(n));
    }
  });
});
