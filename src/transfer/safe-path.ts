// Which paths a peer may name, and how they resolve on disk without leaving the working directory.
//
// Pure part: checkRelativePath() accepts only a relative POSIX path made of plain names; it refuses
// absolute paths, '.', '..' and empty components, NUL, backslashes, control, bidi and invisible
// characters, slash lookalikes, unpaired surrogates, over-long names or paths, paths deeper than
// MAX_PATH_DEPTH, and rcpp2p's own internal file names.
//
// File-system part: SafeRoot resolves a checked path under the real (symlink-free) root. Reading
// follows symlinks only when their target stays inside the root and is a regular file or a folder.
// Creating (receiving) never follows a symlink at the final component and resolves every parent
// inside the root, creating missing folders one by one. The threat is a remote peer, which cannot
// create symlinks here; a local user racing renames under the root is out of scope.
//
// Folders a SafeRoot has resolved are kept as a tree (a node per folder: its name and parent), so a
// path of depth d costs d small nodes, not d prefixes of up to d names. A SafeRoot creates at most
// the folders it was allowed (allowNewFolders): a command names every folder it brings, so a peer
// cannot make one entry cost a hundred mkdirs.

import { createHash } from 'node:crypto';
import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { fsError, RcppError } from '../errors.js';
import { MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH } from '../protocol/limits.js';
import {
  BIDI_CHARS,
  CONTROL_CHARS,
  INVISIBLE_CHARS,
  LONE_SURROGATE,
  quote,
  SLASH_LOOKALIKES,
} from '../protocol/text.js';

export const PARTIAL_SUFFIX = '.rcpp2p-partial';
export const LOCK_SUFFIX = '.rcpp2p-lock';

/** Hex digits of the peer tag in a partial's name (see partialPath). */
const PEER_TAG_CHARS = 8;

/** Room kept in a name for the peer tag and partial suffix (or the lock suffix) when receiving. */
export const MAX_RECEIVE_NAME_BYTES = MAX_NAME_BYTES - (1 + PEER_TAG_CHARS + PARTIAL_SUFFIX.length);

/**
 * Where the partial of `target` received from `peer` lives: `<target>.<tag>.rcpp2p-partial`, the tag
 * being the first hex digits of SHA-256 over the peer's identity (its fingerprint, else its name).
 * A partial is resumed only with the peer that wrote it, so no peer learns block hashes of content
 * another peer sent; a different peer starts from zero beside it.
 */
export function partialPath(target: string, peer: string): string {
  let tag = peerTags.get(peer);
  if (tag === undefined) {
    tag = createHash('sha256')
      .update(`rcpp2p partial owner\n${peer}`)
      .digest('hex')
      .slice(0, PEER_TAG_CHARS);
    if (peerTags.size >= 64) peerTags.clear();
    peerTags.set(peer, tag);
  }
  return `${target}.${tag}${PARTIAL_SUFFIX}`;
}

/** Peer -> its tag, computed once per peer rather than once per file of a tree. */
const peerTags = new Map<string, string>();

/**
 * The form two names take when a case-insensitive or normalizing file system (APFS, NTFS) would
 * store them as one file: NFC, then lower case. Used to find two names of one command that would
 * land on the same file, and to key the lock registry.
 */
export function foldName(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

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
  if (INVISIBLE_CHARS.test(name)) {
    return 'contains an invisible character (zero-width, format or line separator)';
  }
  if (SLASH_LOOKALIKES.test(name)) return 'contains a character that looks like a slash';
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
  if (names.length > MAX_PATH_DEPTH) refuse(path, `is more than ${MAX_PATH_DEPTH} folders deep`);
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

/** A folder a SafeRoot has resolved: its name under its parent, or a real path of its own. */
class FolderNode {
  kids: Map<string, FolderNode> | undefined;

  constructor(
    readonly parent: FolderNode | undefined,
    readonly name: string,
    /** Set for the root, and for a folder reached through a symlink (its resolved path). */
    readonly real?: string,
  ) {}

  path(): string {
    if (this.real !== undefined) return this.real;
    const names = [this.name];
    let n = this.parent!;
    while (n.real === undefined) {
      names.push(n.name);
      n = n.parent!;
    }
    return join(n.real, ...names.reverse());
  }
}

/** A working directory, resolved once; create one per command so its folder cache stays fresh. */
export class SafeRoot {
  private readonly top: FolderNode;
  private newFolders = 0;

  private constructor(readonly real: string) {
    this.top = new FolderNode(undefined, '', real);
  }

  /** Opens `root`; `shown` names it in sentences (the server never shows a peer its real path). */
  static async open(root: string, shown = root): Promise<SafeRoot> {
    let real: string;
    try {
      real = await realpath(root);
    } catch (err) {
      throw fsError(err, shown);
    }
    if (!(await stat(real)).isDirectory()) {
      throw new RcppError('NOT_A_FILE', `${shown} is not a folder.`);
    }
    return new SafeRoot(real);
  }

  /** Lets this root create `n` more folders (a command's folder entries, plus room for its prefix). */
  allowNewFolders(n: number): void {
    this.newFolders += n;
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
    let node = this.top;
    for (const name of names) {
      let next = node.kids?.get(name);
      if (next === undefined) {
        next = await this.stepInto(node, name, shown);
        (node.kids ??= new Map()).set(name, next);
      }
      node = next;
    }
    return node.path();
  }

  private async stepInto(parent: FolderNode, name: string, shown: string): Promise<FolderNode> {
    const next = join(parent.path(), name);
    try {
      let st = await lstatOrUndefined(next);
      if (!st) {
        if (this.newFolders <= 0) {
          refuse(shown, 'needs a folder that the command did not name');
        }
        this.newFolders--;
        await mkdir(next).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        st = await lstat(next);
      }
      if (st.isDirectory()) return new FolderNode(parent, name);
      if (st.isSymbolicLink()) {
        const real = await realpath(next);
        if (!this.contains(real))
          refuse(shown, 'leads outside the shared folder through a symbolic link');
        if ((await stat(real)).isDirectory()) return new FolderNode(parent, name, real);
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
    // Synchronous: one metadata call, where an asynchronous one costs more CPU than the call itself.
    st = lstatSync(target, { throwIfNoEntry: false });
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
