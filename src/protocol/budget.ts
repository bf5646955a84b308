// What one command may carry: files, folder entries and bytes of manifest, counted the same way on
// both sides. The side that builds a manifest (the server for get, the client for put) stops adding
// entries when the budget is spent and reports the rest as a problem; the side that reads one refuses
// a manifest that goes over (PROTOCOL_ERROR). Both count alike, and the builder keeps room for one
// problem per requested path, so a manifest built within its budget is always accepted.

import {
  MAX_DIRS_PER_COMMAND,
  MAX_FILES_PER_COMMAND,
  MAX_MANIFEST_BYTES,
  MAX_REQUEST_PATHS,
} from './limits.js';

/** Bytes an entry costs beyond its path (its numbers and the JSON around them). */
const FILE_OVERHEAD = 64;
const DIR_OVERHEAD = 32;
const PROBLEM_OVERHEAD = 32;

/** A problem's path and sentence are cut to these lengths (UTF-16 units) before they travel. */
export const PROBLEM_PATH_CHARS = 1024;
export const PROBLEM_MESSAGE_CHARS = 2048;

/** Room a builder keeps for one problem per requested path (missing, refused, too big...). */
const ROOT_PROBLEM_RESERVE =
  MAX_REQUEST_PATHS * (PROBLEM_PATH_CHARS + 1 + PROBLEM_MESSAGE_CHARS + 1 + PROBLEM_OVERHEAD);

export class CommandBudget {
  files = 0;
  dirs = 0;
  bytes = 0;

  private constructor(private readonly maxBytes: number) {}

  /** The budget of a side that reads a manifest: everything counts against the limits. */
  static forReading(): CommandBudget {
    return new CommandBudget(MAX_MANIFEST_BYTES);
  }

  /** The budget of a side that builds one: entries leave room for the per-path problems. */
  static forBuilding(): CommandBudget {
    return new CommandBudget(MAX_MANIFEST_BYTES - ROOT_PROBLEM_RESERVE);
  }

  /** Counts a file entry; false (and nothing counted) when it does not fit. */
  addFile(path: string): boolean {
    return this.add(1, 0, path.length + FILE_OVERHEAD);
  }

  /** Counts a folder entry; false (and nothing counted) when it does not fit. */
  addDir(path: string): boolean {
    return this.add(0, 1, path.length + DIR_OVERHEAD);
  }

  /** Counts a problem entry; false (and nothing counted) when it does not fit. */
  addProblem(path: string, message: string): boolean {
    return this.add(0, 0, problemBytes(path, message));
  }

  /** Counts the one problem a requested path may have, from the room kept for it. */
  addRootProblem(path: string, message: string): void {
    this.bytes += problemBytes(path, message);
  }

  /** The limits, for a sentence. */
  describe(): string {
    return `${MAX_FILES_PER_COMMAND} files, ${MAX_DIRS_PER_COMMAND} folders and ${MAX_MANIFEST_BYTES / (1024 * 1024)} MiB of names`;
  }

  private add(files: number, dirs: number, bytes: number): boolean {
    if (
      this.files + files > MAX_FILES_PER_COMMAND ||
      this.dirs + dirs > MAX_DIRS_PER_COMMAND ||
      this.bytes + bytes > this.maxBytes
    ) {
      return false;
    }
    this.files += files;
    this.dirs += dirs;
    this.bytes += bytes;
    return true;
  }
}

function problemBytes(path: string, message: string): number {
  return path.length + message.length + PROBLEM_OVERHEAD;
}
