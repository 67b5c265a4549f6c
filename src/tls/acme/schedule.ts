/**
 * When to act: pure arithmetic over times in milliseconds, so the renewal and retry policy is tested
 * with plain numbers (test/unit/acme-schedule.test.ts) and the manager only sets timers.
 */

/**
 * The longest delay setTimeout honours: a larger one (24.8 days and more) fires at once with a
 * TimeoutOverflowWarning, and a 90-day certificate's renewal is 60 days out.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** When a certificate valid from notBefore to notAfter is due: once `renewBefore` of its lifetime is left. */
export function renewalTime(notBefore: number, notAfter: number, renewBefore: number): number {
  return notAfter - renewBefore * (notAfter - notBefore);
}

/**
 * Delay before the next attempt after `failures` consecutive failures (1 = the first): retryMin,
 * doubling each time, capped at retryMax. No jitter: one gateway retries a handful of sites, and a
 * predictable schedule is what `mpgate cert list` shows.
 */
export function retryDelay(failures: number, retryMin: number, retryMax: number): number {
  const n = Math.max(1, failures);
  // 2 ** 60 and beyond are still finite, and the cap applies before any overflow matters.
  return Math.min(retryMin * 2 ** Math.min(n - 1, 60), Math.max(retryMin, retryMax));
}

/** The delay to give setTimeout for something due at `at`: never negative, never past MAX_TIMER_MS (the timer re-checks). */
export function timerDelay(at: number, now: number): number {
  return Math.min(Math.max(0, at - now), MAX_TIMER_MS);
}
