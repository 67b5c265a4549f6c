/**
 * OCR failures, each with a stable string `code` (for logs and tests) and the numeric `errcode` a
 * WeChat-style answer carries (`{errcode, errmsg}`, sent with HTTP 200 like WeChat's own API).
 *
 * errcode table. WeChat's own code is used where its documented meaning covers the failure, so a
 * mini-program written against `cv/ocr/comm` handles it unchanged; the rest are mpgate's own, in a
 * block (101901–101907) next to WeChat's OCR family 101000–101003 and outside every code it documents.
 *
 * | code                 | errcode | errmsg                        | source                                    |
 * |----------------------|---------|-------------------------------|-------------------------------------------|
 * | OCR_NO_IMAGE         |   41005 | media data missing            | WeChat global code "media data missing"   |
 * | OCR_DECODE_FAILED    |  101002 | image decode failed           | WeChat OCR "image decode failed / too large" |
 * | OCR_TOO_MANY_PIXELS  |  101002 | image too large               | same WeChat code: the "too large" half     |
 * | OCR_BUSY             |      -1 | system busy                   | WeChat "system busy, try again later"     |
 * | OCR_TIMEOUT          |  101901 | ocr timed out                 | mpgate                                    |
 * | OCR_WORKER_CRASHED   |  101902 | ocr worker crashed            | mpgate                                    |
 * | OCR_CLOSED           |  101903 | ocr service is shutting down  | mpgate                                    |
 * | OCR_ENGINE_FAILED    |  101904 | ocr engine failed             | mpgate (model load or inference failure)  |
 * | OCR_IMAGE_TOO_LARGE  |  101002 | image too large               | WeChat cv/ocr/comm: file over 2 MB (checked before upload) |
 * | OCR_BAD_IMAGE_URL    |  101000 | invalid image url             | WeChat OCR "invalid image url" (passed through) |
 * | OCR_QUOTA            |  101003 | quota used up                 | WeChat OCR "quota used up" (passed through) |
 * | OCR_UPSTREAM_FAILED  |  101905 | ocr upstream failed           | mpgate (WeChat unreachable, bad answer, unknown errcode) |
 * | OCR_UPSTREAM_AUTH    |  101906 | ocr upstream refused our credentials | mpgate (appid/secret/token refused by WeChat) |
 * | OCR_TOO_MANY_FILES   |  101907 | one image per request         | mpgate (/wxocr upload with two files)     |
 * | OCR_METHOD           |   43002 | require POST method           | WeChat global code (answered with HTTP 405) |
 *
 * OCR_BUSY, OCR_TIMEOUT, OCR_WORKER_CRASHED, OCR_CLOSED and OCR_UPSTREAM_FAILED are worth a retry;
 * the image errors, OCR_QUOTA and OCR_UPSTREAM_AUTH are not.
 */

export interface OcrErrorSpec {
  errcode: number;
  /** The same text for every occurrence; the detail goes into `message`. */
  errmsg: string;
  /** Whether the same image may succeed later (capacity or crash, not the image's fault). */
  retryable: boolean;
}

export const OCR_ERRORS = {
  OCR_NO_IMAGE: { errcode: 41005, errmsg: 'media data missing', retryable: false },
  OCR_DECODE_FAILED: { errcode: 101002, errmsg: 'image decode failed', retryable: false },
  OCR_TOO_MANY_PIXELS: { errcode: 101002, errmsg: 'image too large', retryable: false },
  OCR_BUSY: { errcode: -1, errmsg: 'system busy', retryable: true },
  OCR_TIMEOUT: { errcode: 101901, errmsg: 'ocr timed out', retryable: true },
  OCR_WORKER_CRASHED: { errcode: 101902, errmsg: 'ocr worker crashed', retryable: true },
  OCR_CLOSED: { errcode: 101903, errmsg: 'ocr service is shutting down', retryable: true },
  OCR_ENGINE_FAILED: { errcode: 101904, errmsg: 'ocr engine failed', retryable: false },
  OCR_IMAGE_TOO_LARGE: { errcode: 101002, errmsg: 'image too large', retryable: false },
  OCR_BAD_IMAGE_URL: { errcode: 101000, errmsg: 'invalid image url', retryable: false },
  OCR_QUOTA: { errcode: 101003, errmsg: 'quota used up', retryable: false },
  OCR_UPSTREAM_FAILED: { errcode: 101905, errmsg: 'ocr upstream failed', retryable: true },
  OCR_UPSTREAM_AUTH: { errcode: 101906, errmsg: 'ocr upstream refused our credentials', retryable: false },
  OCR_TOO_MANY_FILES: { errcode: 101907, errmsg: 'one image per request', retryable: false },
  OCR_METHOD: { errcode: 43002, errmsg: 'require POST method', retryable: false },
} as const satisfies Record<string, OcrErrorSpec>;

export type OcrErrorCode = keyof typeof OCR_ERRORS;

/** A WeChat-style error answer. */
export interface OcrErrorAnswer {
  errcode: number;
  errmsg: string;
}

/** An OCR failure with a stable code; `cause` keeps the original error for the log. */
export class OcrError extends Error {
  readonly code: OcrErrorCode;
  readonly errcode: number;
  readonly retryable: boolean;

  constructor(code: OcrErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? OCR_ERRORS[code].errmsg, options);
    this.name = 'OcrError';
    this.code = code;
    this.errcode = OCR_ERRORS[code].errcode;
    this.retryable = OCR_ERRORS[code].retryable;
  }

  /** The answer a client sees: WeChat's fixed errmsg, never the internal detail. */
  toAnswer(): OcrErrorAnswer {
    return { errcode: this.errcode, errmsg: OCR_ERRORS[this.code].errmsg };
  }
}

export function isOcrError(err: unknown): err is OcrError {
  return err instanceof OcrError;
}

/**
 * Rebuilds an OcrError that crossed a worker boundary (structured clone keeps only plain fields).
 * Anything unrecognised becomes OCR_ENGINE_FAILED.
 */
export function ocrErrorFromWire(wire: { code?: unknown; message?: unknown }): OcrError {
  const code = typeof wire.code === 'string' && Object.hasOwn(OCR_ERRORS, wire.code) ? (wire.code as OcrErrorCode) : 'OCR_ENGINE_FAILED';
  return new OcrError(code, typeof wire.message === 'string' ? wire.message : undefined);
}
