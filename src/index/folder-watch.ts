// Tells the index publisher that something in the shared folder changed. On Linux one inotify
// watch per folder (Node 20's recursive fs.watch there adds a watch per file and sets them up
// synchronously: about 0.15 ms per entry measured, so 15 s of a blocked server for 100,000 files),
// at most maxWatches of them; elsewhere one recursive watch (FSEvents, ReadDirectoryChangesW).
// Changes to rcpp2p's own partial and lock files are ignored, so an upload in progress does not
// keep the index busy; its final rename is seen. Folders past the limit, or where a watch cannot
// be set, are left to the periodic rescan.
import { watch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import { logger } from '../log.js';
import { isInternalName } from '../transfer/safe-path.js';

const log = logger('index');

/** inotify watches one shared folder may take (the per-user default is 8,192 on older kernels). */
export const MAX_WATCHES = 4096;

export interface WatchCoverage {
  watched: number;
  folders: number;
}

export class FolderWatch {
  private readonly watchers = new Map<string, FSWatcher>();
  private closed = false;
  private full = false;

  constructor(
    private readonly onChange: () => void,
    private readonly opts: { maxWatches?: number; perFolder?: boolean } = {},
  ) {}

  /** Watches `folders` (the shared folder first, then the folders under it) and no others. */
  update(folders: readonly string[]): WatchCoverage {
    if (this.closed) return { watched: 0, folders: folders.length };
    const perFolder = this.opts.perFolder ?? process.platform === 'linux';
    const wanted = perFolder ? folders : folders.slice(0, 1);
    const keep = new Set(wanted);
    for (const [folder, watcher] of this.watchers) {
      if (!keep.has(folder)) this.forget(folder, watcher);
    }
    const max = this.opts.maxWatches ?? MAX_WATCHES;
    for (const folder of wanted) {
      if (this.watchers.size >= max || this.full) break;
      if (!this.watchers.has(folder)) this.add(folder, !perFolder);
    }
    return { watched: perFolder ? this.watchers.size : folders.length, folders: folders.length };
  }

  close(): void {
    this.closed = true;
    for (const [folder, watcher] of this.watchers) this.forget(folder, watcher);
  }

  private add(folder: string, recursive: boolean): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(folder, { recursive, persistent: false }, (_event, name) => {
        if (name && isInternalName(basename(name.toString()))) return;
        this.onChange();
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Out of inotify watches or file descriptors: the rest waits for the periodic rescan.
      if (code === 'ENOSPC' || code === 'EMFILE') this.full = true;
      log(`cannot watch ${folder}: ${(err as Error).message}`);
      return;
    }
    watcher.on('error', (err) => {
      // The folder went away (or its watch broke): forget it; the rescan this triggers re-adds it.
      log(`watch on ${folder} ended: ${err.message}`);
      this.forget(folder, watcher);
      this.onChange();
    });
    this.watchers.set(folder, watcher);
  }

  private forget(folder: string, watcher: FSWatcher): void {
    if (this.watchers.get(folder) === watcher) this.watchers.delete(folder);
    watcher.close();
  }
}
