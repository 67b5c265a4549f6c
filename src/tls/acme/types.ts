/**
 * The shapes the ACME manager shares with its store and with the gateway. acme-manager.ts re-exports
 * them: that file is the one the gateway imports.
 */

/** A site with `tls: auto`; names are its hosts (plain DNS names: the config refuses wildcards and regexes there). */
export interface AcmeSite {
  site: string;
  names: string[];
}

export interface IssuedCert {
  /** PEM: the leaf followed by its intermediates, as the CA sent them. */
  cert: string;
  /** PEM (PKCS#8) private key of the leaf. */
  key: string;
  notBefore: Date;
  notAfter: Date;
  /** The leaf's issuer DN on one line ("CN=R11, O=Let's Encrypt, C=US"). */
  issuer: string;
}

export interface AcmeStatus {
  site: string;
  names: string[];
  /**
   * valid: a certificate is in hand and nothing is due; issuing: an order is running; failed: the last
   * attempt failed (lastError, nextAttempt); waiting: due, queued behind another site's order.
   */
  state: 'valid' | 'issuing' | 'failed' | 'waiting';
  /** ISO time the certificate being served expires. */
  notAfter?: string;
  issuer?: string;
  lastError?: string;
  /** ISO time of the next planned order: the retry after a failure, or the renewal of a valid certificate. */
  nextAttempt?: string;
}
