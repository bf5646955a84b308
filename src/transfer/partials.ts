// The end of partial files. A cut transfer keeps `<target>.<peer tag>.rcpp2p-partial` so the same peer
// can resume it; listings never show it (it is not a finished file). One that nobody touched for
// PARTIAL_MAX_AGE_MS (7 days) will not be resumed any more: the file server removes such partials when
// it starts and once a day after, so a client cannot fill the disk with uploads it never finishes.
// The sweep does not follow symlinks, leaves a partial alone while its target's lock file exists,
// and looks at no more than MAX_SWEEP_ENTRIES entries per run.

import type { Dirent } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { abortError } from '../errors.js';
import { LOCK_SUFFIX, PARTIAL_SUFFIX } from './safe-path.js';

export const PARTIAL_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_SWEEP_ENTRIES = 1_000_000;
const TAGGED = /^(.*)\.[0-9a-f]{8}\.rcpp2p-partial$/s;

export interface SweepOptions {
  /** Partials last modified before now minus this are removed. */
  maxAgeMs: number;
  signal?: AbortSignal;
  now?: number;
}

/** Removes the expired partials under `root`; returns how many were removed. */
export async function removeExpiredPartials(root: string, opts: SweepOptions): Promise<number> {
  const before = (opts.now ?? Date.now()) - opts.maxAgeMs;
  const stack = [root];
  let seen = 0;
  let removed = 0;
  while (stack.length > 0 && seen < MAX_SWEEP_ENTRIES) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const dir = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue; // unreadable or gone: nothing of ours to remove there
    }
    const names = new Set(entries.map((e) => e.name));
    for (const ent of entries) {
      if (++seen > MAX_SWEEP_ENTRIES) break;
      if (ent.isDirectory()) {
        stack.push(join(dir, ent.name));
        continue;
      }
      if (!ent.isFile() || !ent.name.endsWith(PARTIAL_SUFFIX)) continue;
      const target = TAGGED.exec(ent.name)?.[1] ?? ent.name.slice(0, -PARTIAL_SUFFIX.length);
      if (names.has(target + LOCK_SUFFIX)) continue; // a transfer holds it (or held it and crashed)
      const path = join(dir, ent.name);
      try {
        if ((await lstat(path)).mtimeMs >= before) continue;
        await unlink(path);
        removed++;
      } catch {
        // gone meanwhile, or not ours to remove
      }
    }
  }
  return removed;
}
