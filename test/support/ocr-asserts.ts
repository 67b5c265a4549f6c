import assert from 'node:assert/strict';
import { OCR_ERRORS, OcrError, type OcrErrorCode } from '../../src/ocr/errors.js';

/** Awaits a rejection that must be an OcrError with `code` and that code's WeChat errcode. */
export async function rejectsWith(p: Promise<unknown>, code: OcrErrorCode): Promise<OcrError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OcrError, `not an OcrError: ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.errcode, OCR_ERRORS[code].errcode);
  return err;
}
