// One parsed SSH key from ssh2's parser. ssh2 returns an array for text holding several keys (its
// types do not say so); we only ever want the first, and `undefined` for anything unreadable.
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

export function parseSshKey(
  data: Buffer | string,
  passphrase?: Buffer | string,
): ParsedKey | undefined {
  const parsed = ssh2.utils.parseKey(data, passphrase) as ParsedKey | ParsedKey[] | Error;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key === undefined || key instanceof Error ? undefined : key;
}

/**
 * A new Ed25519 key pair in OpenSSH format, made by ssh2, but only one ssh2 can read back: its
 * generator strips a public key's leading zero bytes (mscdex/ssh2#1513, open), which spoils about
 * one pair in 256 (an embedded rendezvous would then refuse to start on its own host key). A fresh
 * try almost always gives a good pair.
 */
export function generateSshKeyPair(opts?: { passphrase: string; cipher: string; rounds: number }): {
  private: string;
  public: string;
} {
  for (let tries = 0; tries < 16; tries++) {
    const pair = opts
      ? ssh2.utils.generateKeyPairSync('ed25519', opts)
      : ssh2.utils.generateKeyPairSync('ed25519');
    if (parseSshKey(pair.public) && parseSshKey(pair.private, opts?.passphrase)) return pair;
  }
  throw new Error('ssh2 made 16 unreadable Ed25519 key pairs in a row.');
}
