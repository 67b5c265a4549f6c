/**
 * Content-Security-Policy for mpgate's own self-contained pages (the demo's /ocr page, the admin
 * dashboard): their one inline script and style allowed by hash, requests to their own origin
 * only, no framing, no forms, nothing else — so data the page shows can never run as code.
 */
import { createHash } from 'node:crypto';

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

export function inlinePageCsp(page: { script: string; style: string; imgSrc: string }): string {
  return [
    "default-src 'none'",
    `script-src ${hash(page.script)}`,
    `style-src ${hash(page.style)}`,
    `img-src ${page.imgSrc}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
