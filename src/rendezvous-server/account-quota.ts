// How many files and folders an account keeps in its home on the embedded rendezvous. Commands that
// would create something new (a record under a new name, a new rendezvous folder) first count what
// is there, up to the limit, and refuse past it; they run one at a time per account, so two cannot
// both take the last place. Counting stops at the limit, so it costs at most `limit` entries.
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** Files and folders under `home` (not counting home itself), counted up to limit + 1. */
export async function countEntries(home: string, limit: number): Promise<number> {
  let count = 0;
  const folders = [home];
  while (folders.length > 0 && count <= limit) {
    const folder = folders.pop() as string;
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      count++;
      if (count > limit) break;
      if (entry.isDirectory()) folders.push(join(folder, entry.name));
    }
  }
  return count;
}

/** How many files and folders creating `paths` (and every missing folder above them) would add. */
export async function missingEntries(home: string, paths: string[]): Promise<number> {
  const missing = new Set<string>();
  for (const path of paths) {
    let current = home;
    for (const part of relative(home, path).split(sep).filter(Boolean)) {
      current = join(current, part);
      if (missing.has(current)) continue;
      if (!(await exists(current))) missing.add(current);
    }
  }
  return missing.size;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs each account's quota-checked work one piece at a time. */
export class AccountLocks {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(account: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(account) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(account, tail);
    void tail.then(() => {
      if (this.tails.get(account) === tail) this.tails.delete(account);
    });
    return result;
  }
}
