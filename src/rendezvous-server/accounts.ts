// The embedded rendezvous's accounts: who may log in, with which public keys and/or password.
// Stored in <state>/accounts.json (mode 0600); passwords only as scrypt hashes.
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSshKey } from '../rendezvous/ssh-key.js';
import { fsError, RcppError } from '../errors.js';
import { isPeerName } from '../peer.js';
import { checkStateFolder, readGuardedFile } from './file-modes.js';

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: object,
) => Promise<Buffer>;

export interface Account {
  user: string;
  /** OpenSSH public key lines ("ssh-ed25519 AAAA... comment"). */
  authorizedKeys: string[];
  /** "scrypt$N$r$p$saltBase64$hashBase64", or absent for key-only accounts. */
  passwordHash?: string;
}

interface AccountsFile {
  version: 1;
  accounts: Account[];
}

const SCRYPT = { N: 16384, r: 8, p: 1 };
const HASH_BYTES = 32;
/** Shortest password --add-account takes. */
export const MIN_PASSWORD_CHARS = 12;
/** Longer passwords are refused unchecked (hashing megabytes would cost the server time). */
export const MAX_PASSWORD_CHARS = 1024;

export function accountsPath(stateDir: string): string {
  return join(stateDir, 'accounts.json');
}

/** The accounts; none when the file does not exist. Refuses a file or folder others could change. */
export async function loadAccounts(stateDir: string): Promise<Account[]> {
  const file = accountsPath(stateDir);
  await checkStateFolder(stateDir);
  const bytes = await readGuardedFile(file, 'accounts file');
  if (bytes === undefined) return [];
  const text = bytes.toString('utf8');
  try {
    const parsed = JSON.parse(text) as AccountsFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.accounts)) throw new Error('unknown format');
    return parsed.accounts.filter((a) => isPeerName(a.user) && Array.isArray(a.authorizedKeys));
  } catch (err) {
    throw new RcppError(
      'CONFIG_INVALID',
      `The rendezvous accounts file ${file} is damaged: ${(err as Error).message}.`,
    );
  }
}

export async function saveAccounts(stateDir: string, accounts: Account[]): Promise<void> {
  const file = accountsPath(stateDir);
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFile(
      tmp,
      JSON.stringify({ version: 1, accounts } satisfies AccountsFile, null, 2) + '\n',
      { mode: 0o600 },
    );
    await rename(tmp, file);
  } catch (err) {
    throw fsError(err, file);
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, HASH_BYTES, SCRYPT);
  return [
    'scrypt',
    SCRYPT.N,
    SCRYPT.r,
    SCRYPT.p,
    salt.toString('base64'),
    hash.toString('base64'),
  ].join('$');
}

export async function checkPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  const parts = stored?.split('$') ?? [];
  if (password.length > MAX_PASSWORD_CHARS) return false;
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    // Spend the same time either way, so timing does not reveal which accounts have passwords.
    await scrypt(password, Buffer.alloc(16), HASH_BYTES, SCRYPT);
    return false;
  }
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Checks an OpenSSH public key line; returns its canonical "type base64" form. */
export function normalizePublicKey(line: string): string {
  const key = parseSshKey(line.trim());
  if (key === undefined || key.isPrivateKey()) {
    throw new RcppError(
      'USAGE',
      'That is not an OpenSSH public key line (expected "ssh-ed25519 AAAA...").',
    );
  }
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}
