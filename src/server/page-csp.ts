/**
 * Content-Security-Policy for mpgate's own self-contained pages (the demo's /ocr page, the admin
 * dashboard): their one inline script and style allowed by hash, requests to their own origin
 * only, no framing, no forms, nothing else — so data the page shows can never run as code.
 */
import { createHash } from 'node:crypto';

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/**
 * The HTML document around a page's one style, body and script (the shell both pages share);
 * `noReferrer` keeps the page's URL out of the Referer of anything it loads.
 */
export function inlinePageHtml(page: { lang: string; title: string; style: string; body: string; script: string; noReferrer?: boolean }): string {
  return `<!doctype html>
<html lang="${page.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
${page.noReferrer ? '<meta name="referrer" content="no-referrer">\n' : ''}<title>${page.title}</title>
<link rel="icon" href="data:,">
<style>${page.style}</style>
</head>
<body>${page.body}<script>${page.script}</script>
</body>
</html>
`;
}

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
