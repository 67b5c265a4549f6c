/**
 * Caps a request body whose size is not announced (chunked). A body with Content-Length is checked
 * before anything is read; the parser already guarantees it cannot run past its length.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { GatewayError } from '../core/errors.js';

export class BodyLimit extends Transform {
  #seen = 0;
  constructor(readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limit) done(new GatewayError('MPG_BODY_TOO_LARGE', `request body over ${this.limit} bytes`));
    else done(null, chunk);
  }
}

/**
 * Reads a whole small body into memory (the relay's JSON-body form, a raw OCR image). Past `limit`
 * bytes it stops reading and rejects with `tooLarge()` — without destroying the request, which would
 * destroy the client socket before the answer is written (the answer closes the connection instead).
 * A client that leaves mid-body may end the stream with neither 'end' nor 'error', so 'close' settles
 * it too, with `broken()`.
 */
export function readLimited(body: Readable, limit: number, errors: { tooLarge: () => Error; broken: (cause?: unknown) => Error }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        body.off('data', onData);
        body.pause();
        reject(errors.tooLarge());
        return;
      }
      chunks.push(c);
    };
    body.on('data', onData);
    body.on('end', () => resolve(Buffer.concat(chunks)));
    body.on('error', (err) => reject(errors.broken(err)));
    body.on('close', () => reject(errors.broken()));
  });
}
