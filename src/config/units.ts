/**
 * Human-friendly durations ("10s", "250ms", "5m") and sizes ("10MiB", "16KiB") for the config file.
 * Plain numbers are milliseconds and bytes. Kept pure so the schema, the CLI and tests share them.
 */

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|m|M|g|G)?$/;

const DURATION_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNIT: Record<string, number> = {
  B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3,
  // nginx writes 10m / 10k for client_max_body_size; KB/MB follow the same binary meaning there.
  KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, k: 1024, K: 1024, m: 1024 ** 2, M: 1024 ** 2, g: 1024 ** 3, G: 1024 ** 3,
};

export const DURATION_PATTERN = DURATION_RE.source;
export const SIZE_PATTERN = SIZE_RE.source;

/** Parses "10s" → 10000. Returns undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNIT[m[2]!]!);
}

/** Parses "10MiB" → 10485760. Returns undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SIZE_UNIT[m[2] ?? 'B']!);
}

/** Formats a byte count the way the config file accepts it, for messages. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}

/** Formats milliseconds the way the config file accepts them, for messages. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
