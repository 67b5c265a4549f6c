/**
 * Caps a request body whose size is not announced (chunked). A body with Content-Length is checked
 * before anything is read; the parser already guarantees it cannot run past its length.
 */
import { Transform, type TransformCallback } from 'node:stream';
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
