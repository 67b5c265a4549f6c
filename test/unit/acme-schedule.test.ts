/** The renewal and retry arithmetic of the ACME manager, with plain numbers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS, renewalTime, retryDelay, timerDelay } from '../../src/tls/acme/schedule.js';

const DAY = 86_400_000;

describe('acme schedule', () => {
  it('renews when renewBefore of the lifetime is left: day 60 of a 90-day certificate at 1/3', () => {
    const start = Date.UTC(2025, 0, 1);
    assert.equal(renewalTime(start, start + 90 * DAY, 1 / 3), start + 60 * DAY);
    assert.equal(renewalTime(start, start + 90 * DAY, 0.5), start + 45 * DAY);
    // A 6-day short-lived certificate at the default: day 4.
    assert.equal(renewalTime(start, start + 6 * DAY, 1 / 3), start + 4 * DAY);
  });

  it('retries after retryMin, doubling, capped at retryMax', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(n, 60_000, 3_600_000));
    assert.deepEqual(delays, [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
    assert.equal(retryDelay(0, 1000, 5000), 1000, 'no failure yet counts as the first');
    assert.equal(retryDelay(10_000, 1000, 5000), 5000, 'huge counts stay finite and capped');
    assert.equal(retryDelay(3, 1000, 500), 1000, 'retryMax below retryMin: retryMin wins');
  });

  it('timer delays are never negative and never past what setTimeout honours', () => {
    const now = 1_000_000;
    assert.equal(timerDelay(now + 5000, now), 5000);
    assert.equal(timerDelay(now - 5000, now), 0);
    assert.equal(timerDelay(now + 60 * DAY, now), MAX_TIMER_MS);
    assert.equal(MAX_TIMER_MS, 2_147_483_647);
  });
});
