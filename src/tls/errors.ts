/**
 * Failures of the certificate tools (`mpgate cert`, `mpgate doctor`). They are not HTTP errors, so they
 * live apart from core/errors.ts; each has a stable code and a message that says what to do.
 */

export type TlsToolErrorCode =
  /** The `openssl` program is not installed. */
  | 'MPG_OPENSSL_MISSING'
  /** `openssl` ran and failed; the message carries its stderr. */
  | 'MPG_OPENSSL_FAILED'
  /** The development CA directory holds something we must not overwrite without --force. */
  | 'MPG_DEV_CA_CONFLICT'
  /** A certificate file could not be read or holds no certificate. */
  | 'MPG_CERT_UNREADABLE';

export class TlsToolError extends Error {
  readonly code: TlsToolErrorCode;
  constructor(code: TlsToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsToolError';
    this.code = code;
  }
}
