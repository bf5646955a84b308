// One writer per partial file. Inside this process a registry refuses a second transfer to the same
// target at once (BUSY); across processes a `<target>.rcpp2p-lock` file created with O_EXCL holds the
// owner's PID. A lock file whose PID is no longer alive (a killed rcpp2p) is stale: it is removed and
// taken over once.
//
// The registry is keyed by what names the file on disk, not by the path string: the parent folder's
// (dev, ino) and the name folded as a case-insensitive, normalizing disk would (NFC, lower case), so
// `dir/./a`, a link to `dir`, or `A.txt` beside `a.txt` on such a disk are one file. A lock file that
// holds our own PID is ours while the registry holds that very lock file (same dev, ino); otherwise it
// is a leftover of an earlier process that had our PID (common in containers) and is stale.

import { constants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { RcppError, fsError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { foldName, LOCK_SUFFIX } from './safe-path.js';

/** Registry key -> the lock file's identity (dev:ino). */
const held = new Map<string, string>();

export interface ReceiveLock {
  readonly target: string;
  release(): Promise<void>;
}

function busy(shown: string): RcppError {
  return new RcppError(
    'BUSY',
    `Another transfer is writing ${quote(shown)} right now.`,
    'Wait for it to finish, then run the command again.',
  );
}

async function registryKey(target: string, shown: string): Promise<string> {
  let parent;
  try {
    parent = await stat(dirname(target));
  } catch (err) {
    throw fsError(err, shown);
  }
  return `${parent.dev}:${parent.ino}/${foldName(basename(target))}`;
}

export async function acquireReceiveLock(target: string, shown: string): Promise<ReceiveLock> {
  const key = await registryKey(target, shown);
  if (held.has(key)) throw busy(shown);
  held.set(key, '');
  const lockPath = target + LOCK_SUFFIX;
  try {
    held.set(key, await createLockFile(lockPath, shown));
  } catch (err) {
    held.delete(key);
    throw err;
  }
  let released: Promise<void> | undefined;
  return {
    target,
    release() {
      released ??= unlink(lockPath)
        .catch(() => {})
        .finally(() => held.delete(key));
      return released;
    },
  };
}

/** Creates the lock file; returns its identity (dev:ino). */
async function createLockFile(lockPath: string, shown: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(
        lockPath,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        await fh.writeFile(`${process.pid}\n`);
        const st = await fh.stat();
        return `${st.dev}:${st.ino}`;
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, shown);
      if (attempt > 0 || (await ownerAlive(lockPath))) throw busy(shown);
      await unlink(lockPath).catch(() => {});
    }
  }
}

/** Whether the lock file belongs to a running process: another one, or this one holding it. */
async function ownerAlive(lockPath: string): Promise<boolean> {
  let text: string;
  let id: string;
  try {
    const st = await stat(lockPath);
    id = `${st.dev}:${st.ino}`;
    text = await readFile(lockPath, 'utf8');
    // Empty: its owner created it a moment ago and is writing its PID, unless that was long ago.
    if (text === '') return Date.now() - st.mtimeMs < 10_000;
  } catch {
    return false;
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return [...held.values()].includes(id);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
