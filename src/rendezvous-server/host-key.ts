// The embedded rendezvous's SSH host key: made once (Ed25519, OpenSSH format, mode 0600) in the
// state folder and kept, so clients' known_hosts entries stay valid across restarts.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSshKeyPair, parseSshKey } from '../rendezvous/ssh-key.js';
import { fsError, RcppError } from '../errors.js';
import { checkStateFolder, readGuardedFile } from './file-modes.js';

export interface HostKey {
  privateKey: Buffer;
  /** "ssh-ed25519 AAAA..." */
  publicLine: string;
  type: string;
  blob: Buffer;
  fingerprint: string;
}

export async function loadOrCreateHostKey(stateDir: string): Promise<HostKey> {
  const file = join(stateDir, 'host_ed25519');
  await checkStateFolder(stateDir);
  let privateKey = await readGuardedFile(file, 'host key');
  if (privateKey === undefined) {
    const pair = generateSshKeyPair();
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await writeFile(file, pair.private, { mode: 0o600, flag: 'wx' });
    } catch (writeErr) {
      throw fsError(writeErr, file);
    }
    privateKey = Buffer.from(pair.private);
  }
  const key = parseSshKey(privateKey);
  if (key === undefined) {
    throw new RcppError(
      'CONFIG_INVALID',
      `The host key ${file} cannot be read.`,
      'Delete it to make a new one (clients must then trust the new key).',
    );
  }
  const blob = key.getPublicSSH();
  return {
    privateKey,
    type: key.type,
    blob,
    publicLine: `${key.type} ${blob.toString('base64')}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}
