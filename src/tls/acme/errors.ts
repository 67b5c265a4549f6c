/**
 * Why an automatic certificate could not be issued. Each failure has a stable code (for logs, the
 * per-site state file and tests) and a message that names the site or host and says what to check.
 * None of these reach an HTTP client: the gateway keeps serving the previous certificate.
 */

export type AcmeErrorCode =
  /** `acme.ca` could not be read or holds no certificate. */
  | 'MPG_ACME_CA_FILE'
  /** The ACME directory could not be read: wrong URL, CA unreachable, its HTTPS certificate not trusted. */
  | 'MPG_ACME_DIRECTORY'
  /** Registering or finding the ACME account failed. */
  | 'MPG_ACME_ACCOUNT'
  /** Creating the order or reading its authorizations failed. */
  | 'MPG_ACME_ORDER'
  /** The CA offers none of the challenge types in `acme.challenges` for a name. */
  | 'MPG_ACME_NO_CHALLENGE'
  /** The CA tried the challenge and it failed (port not reachable, wrong answer, DNS). */
  | 'MPG_ACME_CHALLENGE'
  /** Finalizing the order or downloading the certificate failed, or the certificate is unusable. */
  | 'MPG_ACME_FINALIZE'
  /** The CA left the order pending or processing past our deadline. */
  | 'MPG_ACME_TIMEOUT'
  /** Reading or writing the storage directory failed. */
  | 'MPG_ACME_STORAGE'
  /** The manager was closed or the site removed while the order ran. */
  | 'MPG_ACME_ABORTED';

export class AcmeError extends Error {
  readonly code: AcmeErrorCode;
  constructor(code: AcmeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AcmeError';
    this.code = code;
  }
}

/** The message of anything thrown, without a stack (acme-client throws plain Errors and axios errors). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
