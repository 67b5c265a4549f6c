/**
 * Character classes of an HTTP/1.1 head (latin1), shared by the request-head reader
 * (h1-request.ts) and the response parser (h1-response.ts): RFC 9110 §5.6.2 tchar, other
 * field-value text (VCHAR and obs-text), SP/HTAB, CR, and the rest — controls, DEL, and LF, which
 * only ever ends a line after a CR, so alone it is as bad as any control.
 */
export const C_BAD = 0;
export const C_TOKEN = 1;
export const C_TEXT = 2;
export const C_SP = 3;
export const C_CR = 4;

export const CHAR_CLASS = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) CHAR_CLASS[c] = C_TEXT;
for (let c = 0x80; c <= 0xff; c++) CHAR_CLASS[c] = C_TEXT;
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") CHAR_CLASS[ch.charCodeAt(0)] = C_TOKEN;
CHAR_CLASS[0x20] = C_SP;
CHAR_CLASS[0x09] = C_SP;
CHAR_CLASS[0x0d] = C_CR;
