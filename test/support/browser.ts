/**
 * Debian's Chromium, headless, driven by playwright-core — for the tests of mpgate's own pages.
 * Fails loudly with the install hint when Chromium is missing (the tests never skip).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.MPGATE_TEST_CHROMIUM ?? '/usr/bin/chromium';

export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed (${CHROMIUM} is missing): run \`apt-get install -y chromium\` `
      + '(scripts/install-test-deps.sh installs it when run as root). This test does not skip without it.');
  }
}

export function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The flags this machine's Chromium needs (closed network: no background connections).
    // playwright-core gives every launch a fresh, empty --user-data-dir of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}
