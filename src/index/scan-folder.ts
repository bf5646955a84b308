// One scan of the shared folder for its index: the same walk, the same name rules and the same
// symlink rules as the file server's own listings (transfer/walk.ts with the folder as SafeRoot),
// so the index lists exactly what `--get` can fetch. Names that cannot be sent are counted, not
// listed; past MAX_INDEX_FILES the scan stops and says truncated.
import { SafeRoot } from '../transfer/safe-path.js';
import { walkTree } from '../transfer/walk.js';
import { MAX_INDEX_FILES, type IndexEntry } from './index-file.js';

/** Folders walked besides the files (they count toward the walk's entry limit). */
const MAX_SCAN_FOLDERS = 50_000;

export interface FolderScan {
  entries: IndexEntry[];
  /** Real paths of the folder and of every folder under it (what a watch covers). */
  folders: string[];
  truncated: boolean;
  /** Names left out because they cannot be sent (control characters, too long...). */
  problems: number;
  ms: number;
}

export async function scanFolder(workDir: string, signal: AbortSignal): Promise<FolderScan> {
  const started = performance.now();
  const root = await SafeRoot.open(workDir);
  const walk = await walkTree(root.real, '', {
    root,
    recursive: true,
    maxEntries: MAX_INDEX_FILES + MAX_SCAN_FOLDERS,
    signal,
  });
  const entries = walk.files
    .slice(0, MAX_INDEX_FILES)
    .map((f) => ({ path: f.rel, size: f.size, mtimeMs: f.mtimeMs }));
  return {
    entries,
    folders: [root.real, ...walk.dirs.map((d) => d.abs)],
    truncated: walk.truncated || walk.files.length > MAX_INDEX_FILES,
    problems: walk.problems.length,
    ms: performance.now() - started,
  };
}
