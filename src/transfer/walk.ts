// Walking a folder tree: for a listing, for the files of a get (server) or of a put (client).
// Names that cannot travel (control characters, backslashes, too long...) become problems, rcpp2p's
// own partial and lock files are skipped, symlinks are followed only when they resolve to a regular
// file or folder (inside the root when one is given), and a folder reached twice through links is
// walked once. The walk is iterative and sorted, so results are stable; folders deeper than
// MAX_PATH_DEPTH become problems. It stops (truncated) at maxEntries entries, or when a command's
// budget (files, folders, bytes; protocol/budget.ts) is spent.

import { statSync, type Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { abortError, fsError, isRcppError, RcppError } from '../errors.js';
import type { CommandBudget } from '../protocol/budget.js';
import { MAX_PATH_BYTES, MAX_PATH_DEPTH } from '../protocol/limits.js';
import { quote } from '../protocol/text.js';
import { isInternalName, nameProblem, type SafeRoot } from './safe-path.js';

export interface WalkFile {
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}
export interface WalkDir {
  rel: string;
  abs: string;
  mtimeMs: number;
}
export interface WalkProblem {
  rel: string;
  error: RcppError;
}
export interface WalkResult {
  files: WalkFile[];
  dirs: WalkDir[];
  problems: WalkProblem[];
  /** The walk stopped at maxEntries. */
  truncated: boolean;
}

export interface WalkOptions {
  /** Links must resolve inside this root (the server's working directory); none for local files. */
  root?: SafeRoot;
  recursive: boolean;
  /** Stop after this many files, folders and problems. */
  maxEntries: number;
  /** A command's budget: every file, folder and problem is counted in it; stop when it is spent. */
  budget?: CommandBudget;
  /** Folders (dev:ino) already walked by this command: each is walked once over all its roots. */
  seen?: Set<string>;
  signal?: AbortSignal;
}

/** Walks the folder `abs`, naming entries `rel/name/...` ('' for the root itself). */
export async function walkTree(abs: string, rel: string, opts: WalkOptions): Promise<WalkResult> {
  const out: WalkResult = { files: [], dirs: [], problems: [], truncated: false };
  const seen = opts.seen ?? new Set<string>();
  const startStat = await stat(abs);
  seen.add(`${startStat.dev}:${startStat.ino}`);
  const budget = opts.budget;
  const full = (): boolean => {
    if (out.files.length + out.dirs.length + out.problems.length < opts.maxEntries) return false;
    out.truncated = true;
    return true;
  };
  const problem = (rel: string, error: RcppError): boolean => {
    if (full() || (budget && !budget.addProblem(rel, error.message))) {
      out.truncated = true;
      return false;
    }
    out.problems.push({ rel, error });
    return true;
  };
  const startDepth = rel === '' ? 0 : rel.split('/').length;
  const stack: { abs: string; rel: string; depth: number }[] = [{ abs, rel, depth: startDepth }];
  while (stack.length > 0) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const dir = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir.abs, { withFileTypes: true });
    } catch (err) {
      if (!problem(dir.rel, fsError(err, dir.rel || '.'))) return out;
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: { abs: string; rel: string; depth: number }[] = [];
    for (const ent of entries) {
      if (isInternalName(ent.name)) continue;
      const childRel = dir.rel ? `${dir.rel}/${ent.name}` : ent.name;
      const depth = dir.depth + 1;
      const why =
        depth > MAX_PATH_DEPTH
          ? `is more than ${MAX_PATH_DEPTH} folders deep`
          : Buffer.byteLength(childRel, 'utf8') > MAX_PATH_BYTES
            ? `is longer than ${MAX_PATH_BYTES} bytes`
            : nameProblem(ent.name);
      if (why) {
        const error = new RcppError(
          'PATH_REFUSED',
          `The name ${quote(childRel)} ${why}, so it cannot be sent.`,
        );
        if (!problem(childRel, error)) return out;
        continue;
      }
      if (full()) return out;
      try {
        const found = await examine(join(dir.abs, ent.name), childRel, ent, opts.root);
        if (found.kind === 'file') {
          if (budget && !budget.addFile(childRel)) {
            out.truncated = true;
            return out;
          }
          out.files.push({
            rel: childRel,
            abs: found.abs,
            size: found.size,
            mtimeMs: found.mtimeMs,
          });
          continue;
        }
        const key = `${found.dev}:${found.ino}`;
        if (seen.has(key)) continue; // reached again through a link, or by another root
        if (budget && !budget.addDir(childRel)) {
          out.truncated = true;
          return out;
        }
        seen.add(key);
        out.dirs.push({ rel: childRel, abs: found.abs, mtimeMs: found.mtimeMs });
        if (opts.recursive) subdirs.push({ abs: found.abs, rel: childRel, depth });
      } catch (err) {
        if (!problem(childRel, isRcppError(err) ? err : fsError(err, childRel))) return out;
      }
    }
    // Reverse onto the stack so folders are walked in name order.
    for (let k = subdirs.length - 1; k >= 0; k--) stack.push(subdirs[k]!);
  }
  return out;
}

interface Found {
  kind: 'file' | 'dir';
  abs: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
}

async function examine(
  abs: string,
  rel: string,
  ent: Dirent,
  root: SafeRoot | undefined,
): Promise<Found> {
  let real = abs;
  if (ent.isSymbolicLink()) {
    if (root) {
      const r = await root.resolveReal(rel, abs);
      return {
        kind: r.kind,
        abs: r.abs,
        size: r.stats.size,
        mtimeMs: r.stats.mtimeMs,
        dev: r.stats.dev,
        ino: r.stats.ino,
      };
    }
    real = await realpath(abs);
  } else if (!ent.isFile() && !ent.isDirectory()) {
    throw notRegular(rel);
  }
  // Synchronous: one metadata call per entry, where an asynchronous one costs more CPU (thread
  // hand-offs) than the call itself, and a tree of small files is mostly such calls.
  const st = statSync(real);
  if (st.isFile())
    return {
      kind: 'file',
      abs: real,
      size: st.size,
      mtimeMs: st.mtimeMs,
      dev: st.dev,
      ino: st.ino,
    };
  if (st.isDirectory())
    return { kind: 'dir', abs: real, size: 0, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino };
  throw notRegular(rel);
}

function notRegular(rel: string): RcppError {
  return new RcppError(
    'NOT_A_FILE',
    `${quote(rel)} is not a regular file or folder (a device, pipe or socket).`,
  );
}
