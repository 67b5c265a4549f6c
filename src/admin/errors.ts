/**
 * The admin API's failures: stable codes (MPGA_*, apart from the gateway's MPG_* so a client can
 * tell "the admin refused" from "the proxy refused"), each with the one status it maps to.
 * docs/errors.md lists them; test/unit/errors.test.ts keeps the two in step.
 */
import type { ConfigProblem } from '../config/load.js';

/** Admin failures and their HTTP status: the only place that decides it (as core/errors.ts for the gateway). */
export const ADMIN_ERRORS = {
  MPGA_BAD_JSON: 400,
  /** The change (or the file) does not validate; `problems` says where and why. */
  MPGA_INVALID: 400,
  MPGA_UNAUTHORIZED: 401,
  MPGA_FORBIDDEN: 403,
  MPGA_NOT_FOUND: 404,
  MPGA_NO_SUCH_SITE: 404,
  MPGA_METHOD_NOT_ALLOWED: 405,
  /** The host or name is already served, or the port belongs to another site. */
  MPGA_CONFLICT: 409,
  /** Every port of `admin.ports` is used by a site or bound by a process. */
  MPGA_NO_FREE_PORT: 409,
  MPGA_TOO_LARGE: 413,
  MPGA_TOO_MANY_FAILURES: 429,
  MPGA_INTERNAL: 500,
  /** Another edit held the lock for longer than the wait. */
  MPGA_LOCKED: 503,
} as const;

export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

export class AdminError extends Error {
  readonly status: number;
  /** For 405: the methods the resource answers (the Allow header). */
  readonly allow: string | undefined;
  constructor(readonly code: AdminErrorCode, message: string, readonly problems?: readonly ConfigProblem[], options?: { cause?: unknown; allow?: string }) {
    super(message, options);
    this.name = 'AdminError';
    this.status = ADMIN_ERRORS[code];
    this.allow = options?.allow;
  }
}
