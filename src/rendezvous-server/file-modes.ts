// The embedded rendezvous refuses to use its host key, its accounts file or its state folder when
// another user could change them, as sshd's StrictModes does: whoever can write the accounts file
// can add their own key to any account, and whoever can replace the host key can pose as the
// rendezvous. The host key must not be readable by others either (ssh refuses such private keys).
// Files are checked on the open descriptor, so the file read is the file checked.
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { fsError, RcppError } from '../errors.js';

export type GuardedKind = 'host key' | 'accounts file';

/** The file's bytes, or undefined when it does not exist; refuses a file others could change. */
export async function readGuardedFile(
  path: string,
  kind: GuardedKind,
): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(err, path);
  }
  try {
    const problem = unsafe(await handle.stat(), kind === 'host key');
    if (problem !== undefined) {
      throw new RcppError(
        'CONFIG_INVALID',
        `rcpp2p will not use the rendezvous ${kind} ${path}: ${problem}.`,
        `Make it yours and private: chmod 600 ${path}` +
          (problem.startsWith('it belongs') ? ` (and chown it to this user)` : ''),
      );
    }
    return await handle.readFile();
  } catch (err) {
    if (err instanceof RcppError) throw err;
    throw fsError(err, path);
  } finally {
    await handle.close();
  }
}

/** Refuses a state folder others could change (they could swap the files in it). */
export async function checkStateFolder(path: string): Promise<void> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsError(err, path);
  }
  const problem = unsafe(st, false);
  if (problem !== undefined) {
    throw new RcppError(
      'CONFIG_INVALID',
      `rcpp2p will not use the rendezvous state folder ${path}: ${problem}.`,
      `Make it yours and private: chmod 700 ${path}` +
        (problem.startsWith('it belongs') ? ` (and chown it to this user)` : ''),
    );
  }
}

function unsafe(st: Stats, secret: boolean): string | undefined {
  const uid = process.getuid?.();
  const mode = `mode 0${(st.mode & 0o777).toString(8)}`;
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    return `it belongs to another user (uid ${st.uid})`;
  }
  if ((st.mode & 0o022) !== 0) return `other users can change it (${mode})`;
  if (secret && (st.mode & 0o044) !== 0) return `other users can read it (${mode})`;
  return undefined;
}
