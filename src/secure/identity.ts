// This peer's identity: an Ed25519 key and a self-signed certificate, kept together in one PEM file
// beside the config (mode 0600). Peers know each other by the certificate's fingerprint, published in
// the rendezvous records; the certificate's name is informational.
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsError, RcppError } from '../errors.js';
import { refuseIfOthersCanWrite } from '../file-trust.js';
import { isPeerName } from '../peer.js';
import { commonNameFor, createSelfSignedCertificate, pemBlocks, toPem } from './certificate.js';

export interface Identity {
  keyPem: string;
  certPem: string;
  /** SHA256:<unpadded base64> of the certificate's DER, like ssh-keygen -l. */
  fingerprint: string;
  name: string;
}

const RECREATE_HINT =
  'Move the file away and run rcpp2p --configure to make a new identity; peers then have to add this one again (new fingerprint).';

/** 'SHA256:' + unpadded base64 of SHA-256 over the certificate's DER (PEM text or DER bytes). */
export function fingerprintOf(certPemOrDer: string | Buffer): string {
  let derBytes: Buffer;
  if (typeof certPemOrDer === 'string') {
    const block = pemBlocks(certPemOrDer).find((b) => b.label === 'CERTIFICATE');
    if (!block) throw new TypeError('fingerprintOf: no CERTIFICATE block in the text');
    derBytes = block.der;
  } else {
    derBytes = certPemOrDer;
  }
  return `SHA256:${createHash('sha256').update(derBytes).digest('base64').replace(/=+$/, '')}`;
}

/** A fresh identity in memory (nothing written). */
export function generateIdentity(name: string, now?: Date): Identity {
  if (!isPeerName(name)) {
    throw new RcppError(
      'USAGE',
      `"${name}" is not a valid peer name.`,
      'Use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.',
    );
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const cert = createSelfSignedCertificate({ privateKey, publicKey, name, ...(now && { now }) });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: cert.pem,
    fingerprint: fingerprintOf(cert.der),
    name,
  };
}

/**
 * Creates a new identity and writes it to `file` (key + certificate, mode 0600) atomically: a temp
 * file in the same folder, then a hard link (refuses an existing file, race-free) or, with
 * `overwrite`, a rename.
 */
export async function createIdentity(
  file: string,
  name: string,
  opts: { overwrite?: boolean } = {},
): Promise<Identity> {
  const identity = generateIdentity(name);
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw fsError(err, dir);
  });
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.chmod(0o600); // whatever the umask
      await fh.writeFile(identity.keyPem + identity.certPem);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.overwrite) {
      await rename(tmp, file);
    } else {
      await link(tmp, file);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && !opts.overwrite) {
      throw new RcppError(
        'FILE_EXISTS',
        `An identity already exists at ${file}; rcpp2p does not replace it.`,
        'Keep it (peers know this fingerprint), or delete it first if you really want a new identity.',
        { cause: err },
      );
    }
    throw fsError(err, file);
  } finally {
    await unlink(tmp).catch(() => {}); // gone after rename; the extra name after link
  }
  return identity;
}

/** Reads an identity file; refuses missing, damaged, or group/other-accessible files (like ssh). */
export async function loadIdentity(file: string): Promise<Identity> {
  let mode: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      throw new RcppError('CONFIG_INVALID', `The identity ${file} is not a file.`, RECREATE_HINT);
    }
    mode = st.mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RcppError(
        'CONFIG_MISSING',
        `This peer has no identity yet (${file} does not exist).`,
        'Run rcpp2p --configure to create one.',
        { cause: err },
      );
    }
    if (err instanceof RcppError) throw err;
    throw fsError(err, file);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    throw new RcppError(
      'CONFIG_INVALID',
      `The identity ${file} is accessible by other users (permissions ${octal}); rcpp2p refuses a private key others can read.`,
      `Run: chmod 600 ${file}`,
    );
  }
  await refuseIfOthersCanWrite(file, 'The identity');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fsError(err, file);
  }
  return parseIdentity(text, file);
}

/** Parses the text of an identity file; `file` only names it in error sentences. */
export function parseIdentity(text: string, file: string): Identity {
  const damaged = (what: string, cause?: unknown): RcppError =>
    new RcppError(
      'CONFIG_INVALID',
      `The identity ${file} is damaged: ${what}.`,
      RECREATE_HINT,
      cause === undefined ? undefined : { cause },
    );
  const blocks = pemBlocks(text);
  const keyBlock = blocks.find((b) => b.label === 'PRIVATE KEY');
  const certBlock = blocks.find((b) => b.label === 'CERTIFICATE');
  if (!keyBlock) throw damaged('it holds no private key');
  if (!certBlock) throw damaged('it holds no certificate');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certBlock.der);
  } catch (err) {
    throw damaged('the certificate cannot be read', err);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyBlock.der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw damaged('the private key cannot be read', err);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw damaged(`the key is ${key.asymmetricKeyType ?? 'of an unknown type'}, not Ed25519`);
  }
  if (!cert.checkPrivateKey(key)) throw damaged('the key does not belong to the certificate');
  const name = /^CN=rcpp2p (.+)$/m.exec(cert.subject)?.[1];
  if (
    name === undefined ||
    !isPeerName(name) ||
    cert.subject.trim() !== `CN=${commonNameFor(name)}`
  ) {
    throw damaged(`the certificate is not an rcpp2p one (subject ${cert.subject.trim()})`);
  }
  return {
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: toPem('CERTIFICATE', certBlock.der),
    fingerprint: fingerprintOf(certBlock.der),
    name,
  };
}
