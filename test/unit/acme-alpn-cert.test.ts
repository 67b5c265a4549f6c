/**
 * The TLS-ALPN-01 challenge certificate (RFC 8737 §3): the name in the SAN, the critical
 * id-pe-acmeIdentifier extension holding SHA-256 of the key authorization, served over a real TLS
 * handshake that negotiates acme-tls/1.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { crypto as acmeCrypto } from 'acme-client';
import { ACME_TLS_ALPN_PROTOCOL, createAlpnChallengeCert } from '../../src/tls/acme/alpn-cert.js';

/** DER of OID 1.3.6.1.5.5.7.1.31 (tag 06, length 08). */
const OID_DER = Buffer.from('06082b0601050507011f', 'hex');

/** The extension as it must appear in the certificate: OID, critical TRUE, OCTET STRING { OCTET STRING (32) digest }. */
function expectedExtension(keyAuthorization: string): Buffer {
  const digest = createHash('sha256').update(keyAuthorization).digest();
  return Buffer.concat([OID_DER, Buffer.from('0101ff', 'hex'), Buffer.from('04220420', 'hex'), digest]);
}

describe('acme tls-alpn-01 certificate', () => {
  const keyAuthorization = 'tok3n-abc.thumbprint-xyz';

  it('names the host, carries the critical acmeIdentifier with SHA-256 of the key authorization, and is self-signed', async () => {
    const c = await createAlpnChallengeCert('a.example.test', keyAuthorization);
    const x = new X509Certificate(c.cert);
    assert.equal(x.subjectAltName, 'DNS:a.example.test');
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.equal(x.publicKey.asymmetricKeyType, 'ec');
    assert.ok(x.raw.includes(expectedExtension(keyAuthorization)), 'extension bytes');
    assert.ok(!x.raw.includes(expectedExtension('another.key-auth')));
    assert.equal(acmeCrypto.isAlpnCertificateAuthorizationValid(c.cert, keyAuthorization), true);
    assert.equal(acmeCrypto.isAlpnCertificateAuthorizationValid(c.cert, 'wrong'), false);
  });

  it('is what a validator gets when it connects with SNI and ALPN acme-tls/1', async () => {
    const c = await createAlpnChallengeCert('b.example.test', keyAuthorization);
    const server = tls.createServer({
      ALPNCallback: ({ protocols }) => (protocols.includes(ACME_TLS_ALPN_PROTOCOL) ? ACME_TLS_ALPN_PROTOCOL : undefined),
      SNICallback: (name, cb) => cb(null, name === 'b.example.test' ? c.context : undefined),
    }, (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'b.example.test', ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL], rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      assert.equal(socket.alpnProtocol, ACME_TLS_ALPN_PROTOCOL);
      const peer = socket.getPeerX509Certificate()!;
      assert.ok(peer.raw.includes(expectedExtension(keyAuthorization)));
      socket.destroy();
    } finally {
      server.close();
    }
  });
});
