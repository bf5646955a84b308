// The self-signed certificate, parsed back by Node's own X.509 code (OpenSSL underneath).
// Its use in a real TLS 1.3 handshake is in test/integration/secure/tls-channel.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createSelfSignedCertificate, pemBlocks, toPem } from '../../../src/secure/certificate.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** OpenSSL prints validity as "Jun  1 12:00:00 2075 GMT". */
function parseOpenSslTime(text: string): number {
  const m = /^(\w{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4}) GMT$/.exec(text);
  assert.ok(m, `unexpected time format ${text}`);
  return Date.UTC(
    Number(m[6]),
    MONTHS.indexOf(m[1] ?? ''),
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
  );
}

function make(name: string, now?: Date) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const cert = createSelfSignedCertificate({ privateKey, publicKey, name, ...(now && { now }) });
  return { privateKey, publicKey, cert, x509: new X509Certificate(cert.pem) };
}

describe('self-signed Ed25519 certificate', () => {
  it('parses, names rcpp2p <name> as subject and issuer, and verifies with its own key', () => {
    const { publicKey, privateKey, x509, cert } = make('ASUS');
    assert.equal(x509.subject.trim(), 'CN=rcpp2p ASUS');
    assert.equal(x509.issuer.trim(), 'CN=rcpp2p ASUS');
    assert.ok(x509.verify(publicKey));
    assert.ok(x509.checkPrivateKey(privateKey));
    assert.ok(x509.checkIssued(x509));
    assert.equal(x509.publicKey.asymmetricKeyType, 'ed25519');
    assert.equal(x509.ca, false);
    assert.deepEqual(x509.raw, cert.der);
    // a key from elsewhere does not verify it
    assert.ok(!x509.verify(generateKeyPairSync('ed25519').publicKey));
  });

  it('is valid from yesterday for 50 years (GeneralizedTime after 2049)', () => {
    const now = new Date('2025-06-01T12:00:00Z');
    const { x509 } = make('laptop', now);
    assert.equal(parseOpenSslTime(x509.validFrom), Date.parse('2025-05-31T12:00:00Z'));
    assert.equal(parseOpenSslTime(x509.validTo), Date.parse('2075-06-01T12:00:00Z'));
    // the GeneralizedTime tag 0x18 with a four-digit year is in the DER
    assert.ok(x509.raw.includes(Buffer.from('\x18\x0f20750601120000Z', 'latin1')));
    assert.ok(x509.raw.includes(Buffer.from('\x17\x0d250531120000Z', 'latin1')));
  });

  it('is valid now with the real clock', () => {
    const { x509 } = make('pi');
    const from = parseOpenSslTime(x509.validFrom);
    const to = parseOpenSslTime(x509.validTo);
    assert.ok(from < Date.now() && Date.now() < to);
    assert.ok(to - Date.now() > 49 * 365 * 24 * 3600 * 1000);
  });

  it('has a random positive 16-byte serial', () => {
    const a = make('a').x509.serialNumber;
    const b = make('a').x509.serialNumber;
    assert.notEqual(a, b);
    assert.match(a, /^[4-7][0-9A-F]{31}$/i);
  });

  it('keeps UTF-8 names and refuses non-Ed25519 keys', () => {
    assert.equal(make('Büro-PC').x509.subject.trim(), 'CN=rcpp2p Büro-PC');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => createSelfSignedCertificate({ ...rsa, name: 'x' }), TypeError);
  });

  it('writes 64-column PEM that pemBlocks reads back', () => {
    const { cert } = make('ASUS');
    const lines = cert.pem.trim().split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
    assert.ok(lines.slice(1, -1).every((l) => l.length <= 64));
    const text = `junk\n${toPem('PRIVATE KEY', Buffer.from('k'))}${cert.pem.replace(/\n/g, '\r\n')}`;
    const blocks = pemBlocks(text);
    assert.deepEqual(
      blocks.map((b) => b.label),
      ['PRIVATE KEY', 'CERTIFICATE'],
    );
    assert.deepEqual(blocks[1]?.der, cert.der);
  });
});
