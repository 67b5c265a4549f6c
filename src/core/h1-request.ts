/**
 * The request-head reader of the HTTP/1.1 fast path (server/h1-front.ts), pure: bytes in, a head
 * or a refusal out.
 *
 * It never answers a client and never decides that a request is malformed. It recognises only a
 * strict, common subset of HTTP/1.1 — the heads real clients send — and says "not mine" to
 * everything else, which then goes to node:http (llhttp) with the connection. So the fast path
 * cannot frame a request differently from node:http: inside the subset both read the same bytes
 * the same way, and every ambiguity (Transfer-Encoding, a repeated Content-Length, obs-fold, bare
 * CR or LF, whitespace before a colon, HTTP/1.0, Expect, Upgrade) lies outside it.
 *
 * PARTIAL is a promise: every byte so far fits a head in the subset. The method and the fields that
 * decide framing are checked as soon as they are complete, not when the blank line arrives, so a
 * client that sends something node:http would refuse at once (a lowercase method, a second
 * Content-Length) is handed over at once, instead of waiting here for a head that never completes.
 *
 * The subset:
 *   request-line  = method SP origin-form SP "HTTP/1.1" CRLF      (method from METHODS)
 *   origin-form   = "/" *( %x21-7E except "#" )
 *   field-line    = token ":" OWS field-value OWS CRLF            (value: HTAB / SP / VCHAR / obs-text)
 *   Content-Length at most once, decimal without leading zeros; no Transfer-Encoding, Expect or
 *   Upgrade; Connection only with tokens (`close` is honoured).
 */

import { CHAR_CLASS, C_BAD, C_CR, C_SP, C_TOKEN } from './h1-chars.js';

/** A request head the fast path may serve. `end` is the offset just past its blank line. */
export interface RequestHead {
  method: string;
  url: string;
  /** The flat raw list ["Name", "value", ...], names as sent, values without surrounding whitespace. */
  rawHeaders: string[];
  /** -1 when there is no Content-Length (no body: RFC 9112 §6.3, rule 7 for requests). */
  contentLength: number;
  /** The client asked for the connection to close after this exchange (`Connection: close`). */
  close: boolean;
  end: number;
}

/** The head is not complete in the bytes given. */
export const PARTIAL = 0;
/** The head (complete or not) is outside the subset: node:http must read it. */
export const NOT_MINE = 1;

export interface HeadLimits {
  /** Longest head taken, in bytes; longer ones are left to node:http (and its maxHeaderSize). */
  maxBytes: number;
  /** Most fields taken; more are left to node:http (and the gateway's maxHeaderCount). */
  maxFields: number;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
/** Every prefix of a method (the whole method too), for a head that stops before its first SP. */
const METHOD_PREFIXES = new Set([...METHODS].flatMap((m) => [...m, ''].map((_, k) => m.slice(0, k))));

const VERSION = Buffer.from(' HTTP/1.1\r\n', 'latin1');
const CL_DIGITS = /^(?:0|[1-9]\d{0,14})$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

/**
 * Reads the head starting at `start`. Returns the head, PARTIAL when its end is not in `buf` yet
 * (and it is still within the limits), or NOT_MINE.
 */
export function readRequestHead(buf: Buffer, start: number, limits: HeadLimits): RequestHead | typeof PARTIAL | typeof NOT_MINE {
  const n = buf.length;
  const limit = Math.min(n, start + limits.maxBytes);

  // Method: tchar up to the first SP.
  let i = start;
  while (i < limit && CHAR_CLASS[buf[i]!] === C_TOKEN && i - start < 8) i++;
  if (i >= limit) return METHOD_PREFIXES.has(buf.toString('latin1', start, i)) ? incomplete(n, limit) : NOT_MINE;
  if (buf[i] !== 0x20 || !METHODS.has(buf.toString('latin1', start, i))) return NOT_MINE;
  const methodEnd = i;

  // Target: origin-form, visible ASCII without '#'.
  const ts = ++i;
  if (i >= limit) return incomplete(n, limit);
  if (buf[i] !== 0x2f /* / */) return NOT_MINE;
  for (;;) {
    if (i >= limit) return incomplete(n, limit);
    const b = buf[i]!;
    if (b === 0x20) break;
    if (b <= 0x20 || b >= 0x7f || b === 0x23 /* # */) return NOT_MINE;
    i++;
  }
  const te = i;

  // " HTTP/1.1\r\n", byte for byte.
  for (let k = 0; k < VERSION.length; k++, i++) {
    if (i >= limit) return incomplete(n, limit);
    if (buf[i] !== VERSION[k]) return NOT_MINE;
  }

  // Field lines: boundaries first (name start/end, value start/end, relative to `start`), strings
  // after, from one latin1 decode of the whole head.
  const marks: number[] = [];
  let contentLength = -1;
  let close = false;
  let end: number;
  for (;;) {
    // i is at the start of a field line or of the blank line.
    if (i >= limit) return incomplete(n, limit);
    let b = buf[i]!;
    if (b === 0x0d) {
      if (i + 1 >= limit) return incomplete(n, limit);
      if (buf[i + 1] !== 0x0a) return NOT_MINE;
      end = i + 2;
      break;
    }
    const ns = i;
    if (CHAR_CLASS[b] !== C_TOKEN) return NOT_MINE; // obs-fold, bare LF, empty or bad name
    do i++;
    while (i < limit && CHAR_CLASS[buf[i]!] === C_TOKEN);
    if (i >= limit) return incomplete(n, limit);
    if (buf[i] !== 0x3a /* : */) return NOT_MINE; // whitespace before the colon, or a bad name
    const ne = i++;
    while (i < limit && ((b = buf[i]!) === 0x20 || b === 0x09)) i++;
    const vs = i;
    let ve = i;
    for (;;) {
      if (i >= limit) return incomplete(n, limit);
      const cls = CHAR_CLASS[buf[i]!]!;
      if (cls === C_CR) break;
      if (cls === C_BAD) return NOT_MINE; // controls, bare LF, DEL
      if (cls !== C_SP) ve = i + 1;
      i++;
    }
    if (i + 1 >= limit) return incomplete(n, limit);
    if (buf[i + 1] !== 0x0a) return NOT_MINE;
    i += 2;
    if (marks.length >= limits.maxFields * 4) return NOT_MINE;
    // The fields that change framing or the connection, matched by length first (cheap).
    const len = ne - ns;
    if (len === 14 || len === 17 || len === 6 || len === 7 || len === 10) {
      const lower = buf.toString('latin1', ns, ne).toLowerCase();
      if (lower === 'content-length') {
        const value = buf.toString('latin1', vs, ve);
        if (contentLength !== -1 || !CL_DIGITS.test(value)) return NOT_MINE;
        contentLength = Number(value);
      } else if (lower === 'transfer-encoding' || lower === 'expect' || lower === 'upgrade') {
        return NOT_MINE;
      } else if (lower === 'connection') {
        // A list of tokens (RFC 9110 §7.6.1); OWS is SP and HTAB only (String#trim would also
        // strip U+00A0, which node:http does not).
        for (const item of buf.toString('latin1', vs, ve).split(',')) {
          const t = item.replace(OWS_EDGES, '').toLowerCase();
          if (!TOKEN.test(t) || t === 'upgrade') return NOT_MINE;
          if (t === 'close') close = true;
        }
      }
    }
    marks.push(ns - start, ne - start, vs - start, ve - start);
  }

  const text = buf.toString('latin1', start, end);
  const method = text.slice(0, methodEnd - start);
  const url = text.slice(ts - start, te - start);
  const rawHeaders: string[] = new Array(marks.length / 2);
  for (let m = 0, h = 0; m < marks.length; m += 4, h += 2) {
    rawHeaders[h] = text.slice(marks[m]!, marks[m + 1]!);
    rawHeaders[h + 1] = text.slice(marks[m + 2]!, marks[m + 3]!);
  }
  return { method, url, rawHeaders, contentLength, close, end };
}

/** Out of bytes: PARTIAL while the limit leaves room for more, NOT_MINE once the head is too long. */
function incomplete(n: number, limit: number): typeof PARTIAL | typeof NOT_MINE {
  return limit < n ? NOT_MINE : PARTIAL;
}
