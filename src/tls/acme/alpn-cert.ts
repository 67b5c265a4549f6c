/**
 * The TLS-ALPN-01 challenge certificate (RFC 8737 §3): self-signed, subjectAltName = the one name being
 * validated, and the critical id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31) whose value is the
 * DER OCTET STRING of SHA-256(key authorization). acme-client builds it (crypto.createAlpnCertificate);
 * we give it a P-256 key because an RSA key costs ~100 ms of CPU per name and buys nothing here.
 */
import tls, { type SecureContext } from 'node:tls';
import { crypto as acmeCrypto, type Authorization } from 'acme-client';

/** The ALPN protocol a validator offers, and the only one a challenge handshake may select (RFC 8737 §6.2). */
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1';

/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

export interface AlpnChallengeCert {
  cert: string;
  key: string;
  context: SecureContext;
}

/** The challenge certificate and a SecureContext serving it, for `name` and its key authorization. */
export async function createAlpnChallengeCert(name: string, keyAuthorization: string): Promise<AlpnChallengeCert> {
  const key = await acmeCrypto.createPrivateEcdsaKey('P-256');
  // createAlpnCertificate reads only authz.identifier.value.
  const authz = { identifier: { type: 'dns', value: name } } as Authorization;
  const [, certBuf] = await acmeCrypto.createAlpnCertificate(authz, keyAuthorization, key);
  const cert = certBuf.toString();
  return { cert, key: key.toString(), context: tls.createSecureContext({ cert, key }) };
}
