// A self-signed X.509 v3 certificate for an Ed25519 key, built with node:crypto and a small DER
// encoder. Node can parse and verify certificates (crypto.X509Certificate) but has no builder, and
// the library that can (@peculiar/x509) needs a global reflect-metadata polyfill; about 100 lines of
// DER are smaller than that dependency. Trust never comes from the certificate's contents: peers pin
// its SHA-256 fingerprint (see identity.ts), so the fields only need to be well-formed.
//
// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
// TBSCertificate ::= SEQUENCE { [0] version v3, serialNumber, signature, issuer, validity, subject,
//                               subjectPublicKeyInfo, [3] extensions }          (RFC 5280 4.1)
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import * as der from './der.js';

const ED25519 = '1.3.101.112'; // RFC 8410
const COMMON_NAME = '2.5.4.3';
const BASIC_CONSTRAINTS = '2.5.29.19';
const DAY_MS = 24 * 60 * 60 * 1000;

export const VALIDITY_YEARS = 50;

export interface CertificateOptions {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The peer name; subject and issuer become CN=rcpp2p <name>. */
  name: string;
  /** Injectable clock for tests. */
  now?: Date;
}

export interface Certificate {
  der: Buffer;
  pem: string;
}

export function commonNameFor(name: string): string {
  return `rcpp2p ${name}`;
}

export function createSelfSignedCertificate(opts: CertificateOptions): Certificate {
  if (opts.privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('createSelfSignedCertificate needs an Ed25519 key');
  }
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - DAY_MS); // tolerate a peer whose clock is behind
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);

  const algorithm = der.sequence(der.oid(ED25519)); // Ed25519 has no parameters
  const name = der.sequence(
    der.set(der.sequence(der.oid(COMMON_NAME), der.utf8String(commonNameFor(opts.name)))),
  );
  // Only CA:false (an empty BasicConstraints, critical). No keyUsage: with one, OpenSSL no longer
  // counts the certificate as self-signed unless it also allows keyCertSign.
  const extensions = der.explicit(
    3,
    der.sequence(
      der.sequence(der.oid(BASIC_CONSTRAINTS), der.boolean(true), der.octetString(der.sequence())),
    ),
  );
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(randomSerial()),
    algorithm,
    name, // issuer
    der.sequence(der.time(notBefore), der.time(notAfter)),
    name, // subject
    opts.publicKey.export({ type: 'spki', format: 'der' }),
    extensions,
  );
  const signature = sign(null, tbs, opts.privateKey);
  const certDer = der.sequence(tbs, algorithm, der.bitString(signature));
  return { der: certDer, pem: toPem('CERTIFICATE', certDer) };
}

/** 16 random bytes with the top bit clear (positive) and the next set (no leading zero byte). */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  return serial;
}

export function toPem(label: string, bytes: Buffer): string {
  const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every PEM block in a text, in order. */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const blocks: { label: string; der: Buffer }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    blocks.push({
      label: m[1] ?? '',
      der: Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'),
    });
  }
  return blocks;
}
