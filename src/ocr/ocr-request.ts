/**
 * `POST /wxocr` — the first seed's service. Takes the photo from `wx.uploadFile` (multipart, field
 * `image`; WeChat's own `img` too) or a raw `image/*` body, and answers in WeChat's printed-text OCR
 * format. Every failure is HTTP 200 with `errcode` ≠ 0 and a human `errmsg`: the seed's page only
 * looks at the body when the status is 200, then shows `errmsg`, so anything else would leave it
 * stuck on "正在识别...".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import { readLimited } from '../proxy/body-limit.js';
import { OcrError, type OcrErrorCode } from './errors.js';
import { ocrMessage, pickLang, type Lang } from './messages.js';
import type { EngineName, OcrService } from './ocr-service.js';

export interface OcrRouteOptions {
  engine: EngineName;
  fallback: EngineName | undefined;
  /** Multipart field names accepted for the image, in order of preference. */
  fields: readonly string[];
  maxFileSize: number;
  score: boolean;
}

export interface OcrRequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  options: OcrRouteOptions;
  service: OcrService;
  /** Called once with the outcome, for the access log. */
  done(status: number, code: string | undefined, bytes: number): void;
}

/** Room for the multipart envelope and wx.uploadFile's formData fields around the image itself. */
const MULTIPART_OVERHEAD = 256 * 1024;

export function ocrRequest(ctx: OcrRequestContext): void {
  const { req, options } = ctx;
  const lang = pickLang(req.headers['accept-language']);
  if (req.method !== 'POST') {
    // WeChat's own code for this, 43002 "require POST method"; a developer error, so a real 405.
    answer(ctx, 405, { errcode: 43002, errmsg: ocrMessage('OCR_METHOD', lang) }, 'OCR_METHOD', { allow: 'POST' });
    return;
  }
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > options.maxFileSize + MULTIPART_OVERHEAD) {
    // Refused before a byte of it is read; the connection closes so the rest is never parsed.
    fail(ctx, new OcrError('OCR_IMAGE_TOO_LARGE'), lang, true);
    return;
  }
  readImage(req, options).then(
    (image) => {
      ctx.service.recognize(image, { engine: options.engine, fallback: options.fallback, score: options.score }).then(
        ({ result }) => answer(ctx, 200, result, undefined),
        (err: unknown) => fail(ctx, err, lang, false),
      );
    },
    (err: unknown) => fail(ctx, err, lang, !req.readableEnded),
  );
}

function fail(ctx: OcrRequestContext, err: unknown, lang: Lang, close: boolean): void {
  const e = err instanceof OcrError ? err : new OcrError('OCR_ENGINE_FAILED', undefined, { cause: err });
  answer(ctx, 200, { errcode: e.errcode, errmsg: ocrMessage(e.code, lang) }, e.code, close ? { connection: 'close' } : {});
}

function answer(ctx: OcrRequestContext, status: number, body: object, code: string | undefined, headers: Record<string, string> = {}): void {
  const { res } = ctx;
  if (res.headersSent || res.destroyed) {
    ctx.done(499, code ?? 'MPG_CLIENT_GONE', 0);
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
  ctx.done(status, code, Buffer.byteLength(text));
}

/** The image bytes from a multipart upload or a raw image body, within the size limits. */
export function readImage(req: IncomingMessage, options: OcrRouteOptions): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/form-data')) return readMultipart(req, options);
  if (type.startsWith('image/') || type.startsWith('application/octet-stream')) return readRaw(req, options.maxFileSize);
  req.resume();
  return Promise.reject(new OcrError('OCR_NO_IMAGE', `content-type "${type || '(none)'}" carries no image`));
}

async function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  const body = await readLimited(req, limit, {
    tooLarge: () => new OcrError('OCR_IMAGE_TOO_LARGE'),
    broken: (cause) => new OcrError('OCR_NO_IMAGE', 'upload interrupted', { cause }),
  });
  if (body.length === 0) throw new OcrError('OCR_NO_IMAGE', 'empty body');
  return body;
}

function readMultipart(req: IncomingMessage, options: OcrRouteOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: OcrError | undefined, image?: Buffer) => {
      if (settled) return;
      settled = true;
      if (err) {
        req.unpipe(parser);
        req.pause();
        reject(err);
      } else {
        resolve(image!);
      }
    };
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fileSize: options.maxFileSize, fields: 32, fieldSize: 64 * 1024, parts: 64, headerPairs: 64 },
      });
    } catch (err) {
      req.resume();
      reject(new OcrError('OCR_NO_IMAGE', 'malformed multipart header', { cause: err }));
      return;
    }
    let image: Buffer | undefined;
    let files = 0;
    parser.on('file', (name, stream) => {
      files++;
      if (!options.fields.includes(name)) {
        // A file under another name is not ours to read; it still counts as the one file allowed.
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => settle(new OcrError('OCR_IMAGE_TOO_LARGE')));
      stream.on('end', () => {
        if (!settled && !(stream as unknown as { truncated?: boolean }).truncated) image = Buffer.concat(chunks);
      });
    });
    parser.on('filesLimit', () => settle(new OcrError('OCR_TOO_MANY_FILES')));
    parser.on('partsLimit', () => settle(new OcrError('OCR_NO_IMAGE', 'too many multipart parts')));
    parser.on('fieldsLimit', () => settle(new OcrError('OCR_NO_IMAGE', 'too many form fields')));
    parser.on('error', (err) => settle(new OcrError('OCR_NO_IMAGE', 'malformed multipart body', { cause: err })));
    parser.on('close', () => {
      if (image === undefined || image.length === 0) {
        settle(new OcrError('OCR_NO_IMAGE', files > 0 ? `no file in field ${options.fields.join(' or ')}` : 'no file in the upload'));
      } else {
        settle(undefined, image);
      }
    });
    req.on('error', (err) => settle(new OcrError('OCR_NO_IMAGE', 'upload interrupted', { cause: err })));
    req.pipe(parser);
  });
}

export type { OcrErrorCode };
