// Free space promised to accepted files. Checking each file against statfs alone lets one command (or
// two at once) accept files that together cannot fit: two files of 60% of the free space were both
// accepted. So a receiver reserves the bytes each accepted file still misses, per disk and for every
// command of this process at once, and refuses (DISK_FULL) a file that does not fit beside what is
// already promised. A reservation ends when its file has its outcome (placed, failed, or the command
// ended); bytes a file already wrote count twice until then, which errs on the safe side.
// A folder's disk and free bytes are read (synchronously: two metadata calls) at most once a second,
// not once per file of a tree; the bytes promised meanwhile are counted exactly.

import { statfsSync, statSync } from 'node:fs';
import { RcppError } from '../errors.js';
import { quote } from '../protocol/text.js';

/** Device (st_dev) -> bytes promised to files being received. */
const promised = new Map<number, number>();

export interface Reservation {
  /** Gives the bytes back; idempotent. */
  release(): void;
}

const NOTHING: Reservation = { release() {} };

/**
 * Reserves `need` bytes on the disk holding `dir`, or refuses with DISK_FULL when they do not fit
 * beside the bytes already promised. Without statfs (unusual file systems) nothing is reserved.
 */
export function reserveSpace(dir: string, need: number, shown: string): Promise<Reservation> {
  if (need <= 0) return Promise.resolve(NOTHING);
  const disk = diskOf(dir);
  if (!disk) return Promise.resolve(NOTHING); // the writes themselves will tell
  const { dev, free } = disk;
  // Nothing awaits: the check and the reservation are one step.
  const already = promised.get(dev) ?? 0;
  if (need > free - already) {
    return Promise.reject(
      new RcppError(
        'DISK_FULL',
        `${quote(shown)} needs ${need} more bytes, but the disk holding it has ${free} bytes free and ${already} of them are promised to other files being received.`,
        'Free some space, or send fewer files at once, then run the command again.',
      ),
    );
  }
  promised.set(dev, already + need);
  let released = false;
  return Promise.resolve({
    release() {
      if (released) return;
      released = true;
      const left = (promised.get(dev) ?? need) - need;
      if (left > 0) promised.set(dev, left);
      else promised.delete(dev);
    },
  });
}

/** Folder -> its disk and free bytes, read at most once a second. */
const disks = new Map<string, { dev: number; free: number; at: number }>();
const DISK_TTL_MS = 1000;

function diskOf(dir: string): { dev: number; free: number } | undefined {
  const known = disks.get(dir);
  if (known && Date.now() - known.at <= DISK_TTL_MS) return known;
  try {
    const st = statSync(dir);
    const fs = statfsSync(dir);
    if (disks.size >= 1024) disks.clear();
    const now = { dev: st.dev, free: fs.bavail * fs.bsize, at: Date.now() };
    disks.set(dir, now);
    return now;
  } catch {
    return undefined;
  }
}
