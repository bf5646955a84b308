// Which paths a peer may name, and how they resolve on disk without leaving the working directory.
//
// Pure part: checkRelativePath() accepts only a relative POSIX path made of plain names; it refuses
// absolute paths, '.', '..' and empty components, NUL, backslashes, control and bidi characters,
// unpaired surrogates, over-long names or paths, and rcpp2p's own internal file names.
//
// File-system part: SafeRoot resolves a checked path under the real (symlink-free) root. Reading
// follows symlinks only when their target stays inside the root and is a regular file or a folder.
// Creating (receiving) never follows a symlink at the final component and resolves every parent
// inside the root, creating missing folders one by one. The threat is a remote peer, which cannot
// create symlinks here; a local user racing renames under the root is out of scope.

import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { fsError, RcppError } from '../errors.js';
import { MAX_NAME_BYTES, MAX_PATH_BYTES } from '../protocol/limits.js';
import { BIDI_CHARS, CONTROL_CHARS, LONE_SURROGATE, quote } from '../protocol/text.js';

export const PARTIAL_SUFFIX = '.rcpp2p-partial';
export const LOCK_SUFFIX = '.rcpp2p-lock';

/** Room kept in a name for the partial/lock suffix when receiving. */
export const MAX_RECEIVE_NAME_BYTES = MAX_NAME_BYTES - PARTIAL_SUFFIX.length;

const HINT =
  'Name a file or folder inside the shared folder with a relative path, like photos/2024.';

function refuse(path: string, problem: string): never {
  throw new RcppError('PATH_REFUSED', `The path ${quote(path)} ${problem}.`, HINT);
}

export function isInternalName(name: string): boolean {
  return name.endsWith(PARTIAL_SUFFIX) || name.endsWith(LOCK_SUFFIX);
}

/** Why a single name (one path component) is unsafe, or undefined when it is fine. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'has an empty component (a double or trailing slash)';
  if (name === '.') return 'has a "." component';
  if (name === '..') return 'goes up with ".."';
  if (name.includes('\0')) return 'contains a NUL character';
  if (name.includes('\\')) return 'contains a backslash';
  if (CONTROL_CHARS.test(name)) return 'contains a control character';
  if (BIDI_CHARS.test(name)) return 'contains a bidirectional text control character';
  if (LONE_SURROGATE.test(name)) return 'contains an unpaired UTF-16 surrogate';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    return `has a name longer than ${MAX_NAME_BYTES} bytes`;
  }
  if (isInternalName(name)) return 'names an rcpp2p internal file';
  return undefined;
}

/**
 * Checks a path from a peer and returns its components. With allowRoot, '' and '.' mean the working
 * directory itself (for listings) and return [].
 */
export function checkRelativePath(path: unknown, opts: { allowRoot?: boolean } = {}): string[] {
  if (typeof path !== 'string') refuse(String(path), 'is not text');
  if (path === '' || path === '.') {
    if (opts.allowRoot) return [];
    refuse(path, 'is empty; name a file or folder');
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    refuse(path, `is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (path.startsWith('/')) refuse(path, 'is absolute; paths are relative to the shared folder');
  const names = path.split('/');
  for (const name of names) {
    const problem = nameProblem(name);
    if (problem) refuse(path, problem);
  }
  return names;
}

/** Trims what users commonly type around a path: trailing slashes and a leading "./". */
export function normalizeUserPath(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

export interface Resolved {
  /** Real absolute path (symlinks resolved). */
  abs: string;
  kind: 'file' | 'dir';
  stats: Stats;
}

/** A working directory, resolved once; create one per command so its folder cache stays fresh. */
export class SafeRoot {
  private readonly dirs = new Map<string, string>();

  private constructor(readonly real: string) {}

  static async open(root: string): Promise<SafeRoot> {
    let real: string;
    try {
      real = await realpath(root);
    } catch (err) {
      throw fsError(err, root);
    }
    if (!(await stat(real)).isDirectory()) {
      throw new RcppError('NOT_A_FILE', `${root} is not a folder.`);
    }
    return new SafeRoot(real);
  }

  contains(real: string): boolean {
    return (
      real === this.real || real.startsWith(this.real.endsWith(sep) ? this.real : this.real + sep)
    );
  }

  /** Resolves an existing file or folder for reading (get, list). */
  async resolveExisting(path: string, opts: { allowRoot?: boolean } = {}): Promise<Resolved> {
    const names = checkRelativePath(path, opts);
    return this.resolveReal(path, join(this.real, ...names));
  }

  /** Resolves a path already under the root (a walk entry): follows links that stay inside. */
  async resolveReal(shown: string, abs: string): Promise<Resolved> {
    let real: string;
    let stats: Stats;
    try {
      real = await realpath(abs);
      if (!this.contains(real)) {
        refuse(shown, 'leads outside the shared folder through a symbolic link');
      }
      stats = await stat(real);
    } catch (err) {
      if (err instanceof RcppError) throw err;
      throw fsError(err, shown);
    }
    const last = real.slice(real.lastIndexOf(sep) + 1);
    if (isInternalName(last)) refuse(shown, 'leads to an rcpp2p internal file');
    if (stats.isFile()) return { abs: real, kind: 'file', stats };
    if (stats.isDirectory()) return { abs: real, kind: 'dir', stats };
    throw new RcppError(
      'NOT_A_FILE',
      `${quote(shown)} is not a regular file or folder (a device, pipe or socket).`,
    );
  }

  /** Makes sure the folder `names` exists inside the root; returns its real path. */
  async ensureDir(names: readonly string[], shown: string): Promise<string> {
    let cur = this.real;
    for (let n = 0; n < names.length; n++) {
      const key = names.slice(0, n + 1).join('/');
      const cached = this.dirs.get(key);
      if (cached !== undefined) {
        cur = cached;
        continue;
      }
      cur = await this.stepInto(cur, names[n]!, shown);
      this.dirs.set(key, cur);
    }
    return cur;
  }

  private async stepInto(parent: string, name: string, shown: string): Promise<string> {
    const next = join(parent, name);
    try {
      let st = await lstatOrUndefined(next);
      if (!st) {
        await mkdir(next).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        st = await lstat(next);
      }
      if (st.isDirectory()) return next;
      if (st.isSymbolicLink()) {
        const real = await realpath(next);
        if (!this.contains(real))
          refuse(shown, 'leads outside the shared folder through a symbolic link');
        if ((await stat(real)).isDirectory()) return real;
      }
    } catch (err) {
      if (err instanceof RcppError) throw err;
      throw fsError(err, shown);
    }
    throw new RcppError(
      'NOT_A_FILE',
      `${quote(shown)} needs the folder ${quote(name)}, but a file has that name.`,
    );
  }
}

/** Where a received file will go, checked but not yet written. */
export interface CreateTarget {
  dir: string;
  name: string;
  target: string;
  /** The target exists as a regular file (and `force` was given). */
  replaces: boolean;
}

/**
 * Resolves where to create `path` under the root: parents are created inside the root, the final
 * component must not be a symlink, a folder or a special file, and an existing file needs `force`.
 */
export async function prepareCreate(
  root: SafeRoot,
  path: string,
  force: boolean,
): Promise<CreateTarget> {
  const names = checkRelativePath(path);
  const name = names[names.length - 1]!;
  if (Buffer.byteLength(name, 'utf8') > MAX_RECEIVE_NAME_BYTES) {
    refuse(
      path,
      `has a name longer than ${MAX_RECEIVE_NAME_BYTES} bytes, leaving no room for ${PARTIAL_SUFFIX}`,
    );
  }
  const dir = await root.ensureDir(names.slice(0, -1), path);
  const target = join(dir, name);
  let st: Stats | undefined;
  try {
    st = await lstatOrUndefined(target);
  } catch (err) {
    throw fsError(err, path);
  }
  if (st?.isSymbolicLink()) {
    refuse(path, 'is a symbolic link; rcpp2p does not write through links');
  }
  if (st?.isDirectory()) {
    throw new RcppError(
      'IS_A_DIRECTORY',
      `${quote(path)} is a folder; a file cannot replace it.`,
      'Choose another destination folder, or rename the folder first.',
    );
  }
  if (st && !st.isFile()) {
    throw new RcppError('NOT_A_FILE', `${quote(path)} exists and is not a regular file.`);
  }
  if (st && !force) {
    throw new RcppError(
      'FILE_EXISTS',
      `${quote(path)} already exists.`,
      'Add --force to replace it.',
    );
  }
  return { dir, name, target, replaces: st !== undefined };
}

export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
