// One writer per partial file. Inside this process an in-memory registry refuses a second transfer
// to the same target at once (BUSY); across processes a `<target>.rcpp2p-lock` file created with
// O_EXCL holds the owner's PID. A lock file whose PID is no longer alive (a killed rcpp2p) is stale:
// it is removed and taken over once.

import { constants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { RcppError, fsError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { LOCK_SUFFIX } from './safe-path.js';

const held = new Set<string>();

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

export async function acquireReceiveLock(target: string, shown: string): Promise<ReceiveLock> {
  if (held.has(target)) throw busy(shown);
  held.add(target);
  const lockPath = target + LOCK_SUFFIX;
  try {
    await createLockFile(lockPath, shown);
  } catch (err) {
    held.delete(target);
    throw err;
  }
  let released: Promise<void> | undefined;
  return {
    target,
    release() {
      released ??= unlink(lockPath)
        .catch(() => {})
        .finally(() => held.delete(target));
      return released;
    },
  };
}

async function createLockFile(lockPath: string, shown: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(
        lockPath,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, shown);
      if (attempt > 0 || (await ownerAlive(lockPath))) throw busy(shown);
      await unlink(lockPath).catch(() => {});
    }
  }
}

/** Whether the PID in a lock file belongs to a running process other than a stale copy of us. */
async function ownerAlive(lockPath: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
    // Empty: its owner created it a moment ago and is writing its PID, unless that was long ago.
    if (text === '') return Date.now() - (await stat(lockPath)).mtimeMs < 10_000;
  } catch {
    return false;
  }
  const pid = Number.parseInt(text, 10);
  // Our own PID without an entry in `held` is a leftover from a crashed process that had our PID.
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
