/**
 * HTTP/1.1 response parser for the upstream side (RFC 9112), pure: bytes in, events out, no
 * sockets. The connection that owns it feeds whatever the socket delivers, split anywhere.
 *
 * Framing follows RFC 9112 §6.3 exactly, because a proxy that frames a response differently from
 * the upstream desynchronises the connection: HEAD, 1xx, 204 and 304 have no body; a
 * Transfer-Encoding whose last coding is chunked wins over Content-Length (and the connection is
 * not reused afterwards); any other Transfer-Encoding, or neither field, reads until close;
 * Content-Length values must agree. Anything ambiguous — obs-fold, bare CR or LF, whitespace before
 * the colon, a bad chunk size — is an error, never a guess.
 *
 * Bodies are handed out as views into the socket's buffers (no copies).
 */

import { CHAR_CLASS, C_BAD, C_CR, C_SP, C_TOKEN } from './h1-chars.js';

export interface ResponseEvents {
  /**
   * A final (non-1xx) response head. `headers` is the flat raw list ["Name", "value", ...] with
   * names as sent and values without surrounding whitespace.
   */
  onHead(status: number, reason: string, headers: string[]): void;
  onBody(chunk: Buffer): void;
  /** The response is complete. */
  onEnd(): void;
}

/** Why a response was refused; `detail` names the rule it broke. */
export class ResponseError extends Error {
  constructor(readonly detail: string) {
    super(`invalid upstream response: ${detail}`);
    this.name = 'ResponseError';
  }
}

const enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');
const DIGITS = /^\d{1,15}$/;
/** chunk-size [BWS ; chunk-ext] — the size in hex, at most 2^52 so it stays an exact number. */
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;.*)?$/;
const MAX_CHUNK_LINE = 4096;

export class ResponseParser {
  #state = State.Idle;
  #noBody = false;
  /**
   * Head bytes so far when a head arrives in pieces, in a buffer that doubles as it fills (a head
   * sent a byte at a time costs linear, not quadratic, copying).
   */
  #pending: Buffer | undefined;
  #pendingLen = 0;
  /** Partial chunk-size or trailer line (latin1). */
  #line = '';
  #remaining = 0;
  #trailerBytes = 0;
  /** A 1xx head came: the upstream has seen the request, so it is no longer untouched. */
  #interim = false;
  /** The connection may carry another request after this response. */
  #reusable = true;
  #keepAliveHint = -1;
  /** Field boundaries found by #scan, reused from response to response. */
  readonly #marks: number[] = [];
  /** Where #scan found the status line's CR (an offset in the scanned bytes). */
  #statusEnd = 0;

  constructor(readonly events: ResponseEvents, readonly maxHeadSize: number) {}

  /** Expect the response to a new request; `head` is true for a HEAD request (no body follows). */
  expect(head: boolean): void {
    this.#state = State.Head;
    this.#noBody = head;
    this.#pending = undefined;
    this.#pendingLen = 0;
    this.#line = '';
    this.#remaining = 0;
    this.#trailerBytes = 0;
    this.#interim = false;
    this.#reusable = true;
    this.#keepAliveHint = -1;
  }

  /** A response is expected or being read. */
  get busy(): boolean {
    return this.#state !== State.Idle && this.#state !== State.Done;
  }

  /** The last response allows another request on this connection (valid once onEnd ran). */
  get reusable(): boolean {
    return this.#reusable;
  }

  /** Nothing of the response has arrived yet (a stale keep-alive connection may be retried). */
  get untouched(): boolean {
    return this.#state === State.Head && this.#pending === undefined && !this.#interim;
  }

  /** `Keep-Alive: timeout=N` of the last response in ms, -1 when absent. */
  get keepAliveHint(): number {
    return this.#keepAliveHint;
  }

  /**
   * Feeds bytes. Returns how many bytes past the end of the response were left over (0 normally;
   * more means the upstream sent something it should not have). Throws ResponseError.
   */
  execute(data: Buffer): number {
    let at = 0;
    const len = data.length;
    while (at < len) {
      switch (this.#state) {
        case State.Head:
          at = this.#head(data, at);
          break;
        case State.Length: {
          const n = Math.min(this.#remaining, len - at);
          this.#remaining -= n;
          const piece = at === 0 && n === len ? data : data.subarray(at, at + n);
          at += n;
          if (this.#remaining === 0) this.#state = State.Done;
          this.events.onBody(piece);
          if (this.#state === State.Done) this.events.onEnd();
          break;
        }
        case State.ChunkSize:
          at = this.#chunkSize(data, at);
          break;
        case State.ChunkData: {
          const n = Math.min(this.#remaining, len - at);
          this.#remaining -= n;
          const piece = data.subarray(at, at + n);
          at += n;
          if (this.#remaining === 0) {
            this.#state = State.ChunkDataEnd;
            this.#line = '';
          }
          this.events.onBody(piece);
          break;
        }
        case State.ChunkDataEnd:
          at = this.#chunkDataEnd(data, at);
          break;
        case State.Trailers:
          at = this.#trailers(data, at);
          break;
        case State.UntilClose: {
          const piece = at === 0 ? data : data.subarray(at);
          at = len;
          this.events.onBody(piece);
          break;
        }
        case State.Idle:
        case State.Done:
          this.#reusable = false;
          return len - at;
      }
    }
    return 0;
  }

  /** The upstream closed the connection: ends a read-until-close body, otherwise throws. */
  finish(): void {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      this.events.onEnd();
      return;
    }
    if (this.busy) throw new ResponseError(this.#state === State.Head ? 'connection closed before the response head' : 'connection closed inside the response body');
  }

  #head(data: Buffer, at: number): number {
    if (this.#pending === undefined) {
      // The usual case: the whole head in this read. One pass over the bytes finds its end and
      // checks every line; an incomplete head is kept and scanned again once its end has come.
      const end = this.#scan(data, at);
      if (end === -1) {
        if (data.length - at > this.maxHeadSize) throw new ResponseError('response head too large');
        this.#keep(data, at);
        return data.length;
      }
      this.#parseHead(data.toString('latin1', at, end - 4), at);
      return end;
    }
    // A head in pieces: look for its end from where the last piece stopped (never rescanning
    // everything per byte), then check it whole.
    const before = this.#pendingLen;
    this.#keep(data, at);
    const buf = this.#pending.subarray(0, this.#pendingLen);
    const crlf2 = buf.indexOf(CRLF2, Math.max(0, before - 3));
    if (crlf2 === -1) {
      // A bare LF can never be part of a valid head: refuse it now rather than wait for a CRLFCRLF.
      for (let j = Math.max(1, before); j < buf.length; j++) if (buf[j] === 10 && buf[j - 1] !== 13) throw new ResponseError('bare LF in the head');
      if (buf.length > this.maxHeadSize) throw new ResponseError('response head too large');
      return data.length;
    }
    const end = this.#scan(buf, 0);
    if (end !== crlf2 + 4) throw new ResponseError('malformed head');
    this.#parseHead(buf.toString('latin1', 0, crlf2), 0);
    this.#pending = undefined;
    this.#pendingLen = 0;
    return at + end - before;
  }

  /** Appends data[at..] to the pending head bytes. */
  #keep(data: Buffer, at: number): void {
    const add = data.length - at;
    let buf = this.#pending;
    if (buf === undefined || this.#pendingLen + add > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(1024, 2 * (this.#pendingLen + add)));
      if (buf !== undefined) buf.copy(grown, 0, 0, this.#pendingLen);
      buf = grown;
      this.#pending = buf;
    }
    data.copy(buf, this.#pendingLen, at);
    this.#pendingLen += add;
  }

  /**
   * Scans a head from `start`: returns the offset just past its final CRLFCRLF, or -1 when the
   * bytes end first. Throws on anything RFC 9112 does not allow: controls (HTAB aside), a CR not
   * followed by LF or a bare LF, a field name that is not a token directly followed by ':'
   * (whitespace before the colon, obs-fold). Field boundaries go to #marks as
   * [nameStart, nameEnd, valueStart, valueEnd] (values without surrounding whitespace).
   */
  #scan(buf: Buffer, start: number): number {
    const n = buf.length;
    const limit = Math.min(n, start + this.maxHeadSize);
    const marks = this.#marks;
    marks.length = 0;
    let i = start;
    for (; i < limit; i++) {
      const cls = CHAR_CLASS[buf[i]!]!;
      if (cls === C_CR) break;
      if (cls === C_BAD) throw new ResponseError('control character or bare LF in the status line');
    }
    if (i === start && i < limit) throw new ResponseError('empty status line');
    this.#statusEnd = i;
    for (;;) {
      // i is at the CR ending a line.
      if (i + 1 >= limit) return this.#incomplete(n, limit);
      if (buf[i + 1] !== 10) throw new ResponseError('bare CR in the head');
      i += 2;
      if (i >= limit) return this.#incomplete(n, limit);
      let b = buf[i]!;
      if (b === 13) {
        if (i + 1 >= limit) return this.#incomplete(n, limit);
        if (buf[i + 1] !== 10) throw new ResponseError('bare CR in the head');
        return i + 2;
      }
      const ns = i;
      if (CHAR_CLASS[b] !== C_TOKEN) throw new ResponseError(b === 32 || b === 9 ? 'obs-fold line in the head' : b === 10 ? 'bare LF in the head' : 'bad header name');
      do i++;
      while (i < limit && CHAR_CLASS[buf[i]!] === C_TOKEN);
      if (i >= limit) return this.#incomplete(n, limit);
      b = buf[i]!;
      if (b !== 58 /* : */) throw new ResponseError(b === 13 || b === 10 ? 'header line without a colon' : 'bad header name (or no colon)');
      const ne = i++;
      while (i < limit && ((b = buf[i]!) === 32 || b === 9)) i++;
      const vs = i;
      let ve = i;
      for (; i < limit; i++) {
        const cls = CHAR_CLASS[buf[i]!]!;
        if (cls === C_CR) break;
        if (cls === C_BAD) throw new ResponseError('control character or bare LF in a header value');
        if (cls !== C_SP) ve = i + 1;
      }
      marks.push(ns, ne, vs, ve);
    }
  }

  #incomplete(n: number, limit: number): number {
    if (limit < n) throw new ResponseError('response head too large');
    return -1;
  }

  /** `text` is the head without its final CRLFCRLF, starting at offset `base` of the scanned bytes. */
  #parseHead(text: string, base: number): void {
    const statusLine = text.slice(0, this.#statusEnd - base);
    // HTTP-version SP status-code SP [reason-phrase] (RFC 9112 §4); "HTTP/1.x 200" without the
    // second space is accepted, as browsers do.
    if (statusLine.length < 12 || !statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) throw new ResponseError('bad status line');
    const minor = statusLine.charCodeAt(7) - 48;
    if (minor !== 0 && minor !== 1) throw new ResponseError('bad HTTP version');
    const status = threeDigits(statusLine);
    if (status < 100 || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) throw new ResponseError('bad status code');
    const reason = statusLine.length > 13 ? statusLine.slice(13) : '';

    const marks = this.#marks;
    const headers: string[] = new Array(marks.length / 2);
    let contentLength = -1;
    let transferEncoding: string | undefined;
    let close = minor === 0;
    let keepAliveHint = -1;
    for (let f = 0; f < marks.length; f += 4) {
      const name = text.slice(marks[f]! - base, marks[f + 1]! - base);
      const value = text.slice(marks[f + 2]! - base, marks[f + 3]! - base);
      headers[f >> 1] = name;
      headers[(f >> 1) + 1] = value;
      // Only names of these lengths matter for framing; the rest are passed on untouched.
      const n = name.length;
      if (n !== 14 && n !== 17 && n !== 10) continue;
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        // "Content-Length: 5, 5" or repeated fields are one length when they agree (§6.3 rule 5).
        for (const part of value.split(',')) {
          const v = part.trim();
          if (!DIGITS.test(v)) throw new ResponseError('bad Content-Length');
          const num = Number(v);
          if (contentLength !== -1 && num !== contentLength) throw new ResponseError('conflicting Content-Length values');
          contentLength = num;
        }
      } else if (lower === 'transfer-encoding') {
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      } else if (lower === 'connection') {
        for (const part of value.split(',')) {
          const t = part.trim().toLowerCase();
          if (t === 'close') close = true;
          else if (t === 'keep-alive' && minor === 0) close = false;
        }
      } else if (lower === 'keep-alive') {
        const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i.exec(value);
        if (m) keepAliveHint = Number(m[1]) * 1000;
      }
    }

    if (status < 200) {
      // 100 Continue, 102, 103 Early Hints: informational, the final response follows. 101 would
      // switch protocols, which a plain request never asked for.
      if (status === 101) throw new ResponseError('101 Switching Protocols without an upgrade request');
      this.#state = State.Head;
      this.#interim = true;
      return;
    }

    this.#reusable = !close;
    this.#keepAliveHint = keepAliveHint;
    if (this.#noBody || status === 204 || status === 304) {
      this.#state = State.Done;
    } else if (transferEncoding !== undefined) {
      // A message with both is a smuggling attempt or a broken server: never reuse the connection.
      // Transfer-Encoding in an HTTP/1.0 message is faulty framing, so the connection is closed
      // after it whatever Connection says (RFC 9112 §6.1).
      if (contentLength !== -1 || minor === 0) this.#reusable = false;
      const codings = transferEncoding.split(',');
      if (codings[codings.length - 1]!.trim().toLowerCase() === 'chunked') {
        this.#state = State.ChunkSize;
        this.#line = '';
      } else {
        this.#state = State.UntilClose;
        this.#reusable = false;
      }
    } else if (contentLength !== -1) {
      this.#remaining = contentLength;
      this.#state = contentLength === 0 ? State.Done : State.Length;
    } else {
      this.#state = State.UntilClose;
      this.#reusable = false;
    }
    this.events.onHead(status, reason, headers);
    if (this.#state === State.Done) this.events.onEnd();
  }

  /** Reads up to the CRLF of a chunk-size line; returns the new offset. */
  #chunkSize(data: Buffer, at: number): number {
    const lf = data.indexOf(10, at);
    const end = lf === -1 ? data.length : lf + 1;
    this.#line += data.toString('latin1', at, end);
    if (this.#line.length > MAX_CHUNK_LINE) throw new ResponseError('chunk-size line too long');
    if (lf === -1) return end;
    const line = this.#line;
    this.#line = '';
    if (line.length < 3 || line.charCodeAt(line.length - 2) !== 13) throw new ResponseError('chunk-size line not ended by CRLF');
    const m = CHUNK_SIZE.exec(line.slice(0, -2));
    if (m === null) throw new ResponseError('bad chunk size');
    const size = parseInt(m[1]!, 16);
    if (size === 0) {
      this.#state = State.Trailers;
      this.#trailerBytes = 0;
    } else {
      this.#remaining = size;
      this.#state = State.ChunkData;
    }
    return end;
  }

  /** The CRLF after chunk data (it may arrive one byte at a time). */
  #chunkDataEnd(data: Buffer, at: number): number {
    while (at < data.length && this.#line.length < 2) {
      this.#line += String.fromCharCode(data[at]!);
      at++;
    }
    if (this.#line.length === 2) {
      if (this.#line !== '\r\n') throw new ResponseError('chunk data not followed by CRLF');
      this.#line = '';
      this.#state = State.ChunkSize;
    }
    return at;
  }

  /** Trailer fields after the last chunk are read and dropped, up to the empty line. */
  #trailers(data: Buffer, at: number): number {
    const lf = data.indexOf(10, at);
    const end = lf === -1 ? data.length : lf + 1;
    this.#line += data.toString('latin1', at, end);
    this.#trailerBytes += end - at;
    if (this.#trailerBytes > this.maxHeadSize) throw new ResponseError('trailers too large');
    if (lf === -1) return end;
    const line = this.#line;
    this.#line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) throw new ResponseError('trailer line not ended by CRLF');
    if (line.length === 2) {
      this.#state = State.Done;
      this.events.onEnd();
    } else if (!plainText(line, line.length - 2) || line.indexOf(':') <= 0) {
      throw new ResponseError('bad trailer line');
    }
    return end;
  }
}

/** text[0, end) holds no control character (HTAB aside) and no CR or LF: one line's content. */
function plainText(text: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const cls = CHAR_CLASS[text.charCodeAt(i)];
    if (cls === C_BAD || cls === C_CR) return false;
  }
  return true;
}

function threeDigits(s: string): number {
  const a = s.charCodeAt(9) - 48;
  const b = s.charCodeAt(10) - 48;
  const c = s.charCodeAt(11) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}
