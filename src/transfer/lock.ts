// One writer per partial file. Inside this process a registry refuses a second transfer to the same
// target at once (BUSY); across processes a `<target>.rcpp2p-lock` file holds the owner's PID, and
// only one process can make it (link() and O_EXCL fail when the name exists). A lock file whose PID is
// no longer alive (a killed rcpp2p) is stale: it is removed and taken over once.
//
// The lock files of one folder are hard links to one owner file of this process in that folder
// (`.<pid>.<random>.rcpp2p-lock.rcpp2p-lock`, holding the PID), made when the folder's first lock is
// taken and removed with its last. So a tree of small files costs one new inode per folder, not one
// per file: on ext4 without a journal every freed inode also slows the next allocations for a minute
// (recently deleted inodes are skipped one by one), and a lock file per file made receiving a tree
// of small files quadratic. Where hard links fail (a file system without them, a link-count limit)
// a lock file of its own is made, as before.
//
// The registry is keyed by what names the file on disk, not by the path string: the parent folder's
// (dev, ino) and the name folded as a case-insensitive, normalizing disk would (NFC, lower case), so
// `dir/./a`, a link to `dir`, or `A.txt` beside `a.txt` on such a disk are one file. A lock file that
// holds our own PID is ours while the registry holds that very file (same dev, ino); otherwise it is
// a leftover of an earlier process that had our PID (common in containers) and is stale. Taking over
// a stale lock also removes the dead processes' owner files in that folder.
//
// The calls are synchronous: they only touch metadata, a few µs each, where an asynchronous call
// costs about 30 µs of CPU in thread hand-offs (see receive-file.ts).

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RcppError, fsError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { foldName, LOCK_SUFFIX } from './safe-path.js';

/** Registry key -> the lock file's identity (dev:ino). */
const held = new Map<string, string>();

/** This process's owner file in a folder (keyed by the folder's dev:ino), while it holds locks there. */
interface Owner {
  path: string;
  id: string;
  locks: number;
}
const owners = new Map<string, Owner>();
/** Folders whose dead owner files were removed already (once each, not once per stale lock). */
const cleaned = new Set<string>();

/** An owner file's name: its target (the name less one suffix) is itself an internal name. */
const OWNER_NAME = /^\.(\d+)\.[0-9a-f]{16}\.rcpp2p-lock\.rcpp2p-lock$/;

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
  return Promise.resolve(acquireNow(target, shown));
}

function acquireNow(target: string, shown: string): ReceiveLock {
  const dir = dirname(target);
  let parent;
  try {
    parent = statSync(dir);
  } catch (err) {
    throw fsError(err, shown);
  }
  const dirKey = `${parent.dev}:${parent.ino}`;
  const key = `${dirKey}/${foldName(basename(target))}`;
  if (held.has(key)) throw busy(shown);
  const lockPath = target + LOCK_SUFFIX;
  const taken = takeLockFile(lockPath, dir, dirKey, shown);
  held.set(key, taken.id);
  let released: Promise<void> | undefined;
  return {
    target,
    release() {
      if (!released) {
        try {
          unlinkSync(lockPath);
        } catch {
          // gone already: nothing to undo
        }
        held.delete(key);
        if (taken.owner) dropOwnerLock(dirKey, taken.owner);
        released = Promise.resolve();
      }
      return released;
    },
  };
}

/** Makes the lock file; returns its identity (dev:ino) and the owner it links to, if any. */
function takeLockFile(
  lockPath: string,
  dir: string,
  dirKey: string,
  shown: string,
): { id: string; owner?: Owner } {
  for (let attempt = 0; ; attempt++) {
    try {
      return linkOrCreate(lockPath, dir, dirKey, shown);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, shown);
      if (attempt > 0 || ownerAlive(lockPath)) throw busy(shown);
      try {
        unlinkSync(lockPath);
      } catch {
        // removed meanwhile
      }
      if (!cleaned.has(dirKey)) {
        if (cleaned.size >= 1024) cleaned.clear();
        cleaned.add(dirKey);
        removeDeadOwners(dir);
      }
    }
  }
}

/** A link to this process's owner file in `dir`, or a lock file of its own where links fail. */
function linkOrCreate(
  lockPath: string,
  dir: string,
  dirKey: string,
  shown: string,
): { id: string; owner?: Owner } {
  for (let fresh = false; ; fresh = true) {
    let owner = owners.get(dirKey);
    if (!owner) {
      owner = makeOwner(dir, dirKey, shown);
      fresh = true;
    }
    try {
      linkSync(owner.path, lockPath);
      owner.locks++;
      return { id: owner.id, owner };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        if (owner.locks === 0) removeOwner(dirKey, owner);
        throw err;
      }
      if (code === 'ENOENT' && !fresh) {
        // Our owner file was removed (by hand): forget it and make another.
        removeOwner(dirKey, owner);
        continue;
      }
      if (owner.locks === 0) removeOwner(dirKey, owner);
      // No hard links here (EPERM, ENOTSUP, EXDEV), or too many (EMLINK): a file of its own.
      return { id: createLockFile(lockPath) };
    }
  }
}

function makeOwner(dir: string, dirKey: string, shown: string): Owner {
  const path = join(
    dir,
    `.${process.pid}.${randomBytes(8).toString('hex')}${LOCK_SUFFIX}${LOCK_SUFFIX}`,
  );
  let id: string;
  try {
    id = createLockFile(path);
  } catch (err) {
    throw fsError(err, shown);
  }
  const owner = { path, id, locks: 0 };
  owners.set(dirKey, owner);
  return owner;
}

function dropOwnerLock(dirKey: string, owner: Owner): void {
  owner.locks--;
  if (owner.locks <= 0) removeOwner(dirKey, owner);
}

function removeOwner(dirKey: string, owner: Owner): void {
  if (owners.get(dirKey) === owner) owners.delete(dirKey);
  try {
    unlinkSync(owner.path);
  } catch {
    // gone already
  }
}

/** Creates a file holding our PID with O_EXCL (EEXIST when the name is taken); returns dev:ino. */
function createLockFile(path: string): string {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, `${process.pid}\n`);
    const st = fstatSync(fd);
    return `${st.dev}:${st.ino}`;
  } finally {
    closeSync(fd);
  }
}

/** Whether the lock file belongs to a running process: another one, or this one holding it. */
function ownerAlive(lockPath: string): boolean {
  let text: string;
  let id: string;
  try {
    const st = lstatSync(lockPath);
    if (!st.isFile()) return false;
    id = `${st.dev}:${st.ino}`;
    text = readFileSync(lockPath, 'utf8');
    // Empty: its owner created it a moment ago and is writing its PID, unless that was long ago.
    if (text === '') return Date.now() - st.mtimeMs < 10_000;
  } catch {
    return false;
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return [...held.values()].includes(id);
  return processAlive(pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the owner files in `dir` that dead processes (or an earlier process with our PID) left
 * behind; their lock files, if any are left, are stale in their own right.
 */
export function removeDeadOwners(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const ours = new Set([...owners.values()].map((o) => o.path));
  for (const name of names) {
    const m = OWNER_NAME.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    const pid = Number(m[1]);
    if (pid === process.pid ? ours.has(path) : processAlive(pid)) continue;
    try {
      unlinkSync(path);
    } catch {
      // gone meanwhile
    }
  }
}
