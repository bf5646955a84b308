// The list of files and folders a command moves, built by the sending side before anything is sent.
// get (server): each requested path is checked and resolved inside the working directory; a folder
// contributes its whole tree. put (client): each local path, a folder as its tree, named under the
// remote folder. Per-path problems (missing, refused, special files) travel as problems and become
// ok:false results; the rest of the command goes on.

import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { fsError, isRcppError, RcppError } from '../errors.js';
import { MAX_FILES_PER_COMMAND } from '../protocol/limits.js';
import type { ManifestDir, ManifestFile, Problem } from '../protocol/messages.js';
import { quote } from '../protocol/text.js';
import { nameProblem, type SafeRoot } from './safe-path.js';
import { walkTree } from './walk.js';

export interface SourceFile extends ManifestFile {
  abs: string;
}
export interface SourceDir extends ManifestDir {
  abs: string;
}
export interface SourceProblem extends Problem {
  error: RcppError;
  /** The local path, for put. */
  localPath?: string;
}
export interface Manifest {
  files: SourceFile[];
  dirs: SourceDir[];
  problems: SourceProblem[];
}

function asRcpp(err: unknown, shown: string): RcppError {
  return isRcppError(err) ? err : fsError(err, shown);
}

function tooMany(shown: string): RcppError {
  return new RcppError(
    'USAGE',
    `${quote(shown)} holds more than ${MAX_FILES_PER_COMMAND} files, more than one command moves.`,
    'Move its folders in several commands.',
  );
}

/** A problem for the manifest; its path is cut so that it always fits the message's bounds. */
function problemOf(
  root: number,
  path: string,
  error: RcppError,
  localPath?: string,
): SourceProblem {
  const shown = path.length > 1024 ? `${path.slice(0, 1023)}…` : path;
  const message = error.message.length > 2048 ? `${error.message.slice(0, 2047)}…` : error.message;
  return {
    root,
    path: shown,
    code: error.code,
    message,
    error,
    ...(localPath ? { localPath } : {}),
  };
}

/** Adds one folder's tree to the manifest (named under `rel`). */
async function addTree(
  m: Manifest,
  r: number,
  abs: string,
  rel: string,
  root: SafeRoot | undefined,
  signal?: AbortSignal,
) {
  const room = MAX_FILES_PER_COMMAND - m.files.length;
  const w = await walkTree(abs, rel, {
    ...(root ? { root } : {}),
    recursive: true,
    maxEntries: room,
    ...(signal ? { signal } : {}),
  });
  for (const f of w.files)
    m.files.push({
      i: m.files.length,
      root: r,
      path: f.rel,
      size: f.size,
      mtimeMs: f.mtimeMs,
      abs: f.abs,
    });
  for (const d of w.dirs) m.dirs.push({ root: r, path: d.rel, mtimeMs: d.mtimeMs, abs: d.abs });
  for (const p of w.problems) m.problems.push(problemOf(r, p.rel, p.error));
  if (w.truncated) m.problems.push(problemOf(r, rel, tooMany(rel)));
}

/** Server side of get: what the requested paths name inside the working directory. */
export async function manifestForGet(
  root: SafeRoot,
  paths: readonly string[],
  signal?: AbortSignal,
): Promise<Manifest> {
  const m: Manifest = { files: [], dirs: [], problems: [] };
  for (let r = 0; r < paths.length; r++) {
    const path = paths[r]!;
    try {
      const res = await root.resolveExisting(path);
      if (res.kind === 'file') {
        if (m.files.length >= MAX_FILES_PER_COMMAND) throw tooMany(path);
        m.files.push({
          i: m.files.length,
          root: r,
          path,
          size: res.stats.size,
          mtimeMs: res.stats.mtimeMs,
          abs: res.abs,
        });
        continue;
      }
      m.dirs.push({ root: r, path, mtimeMs: res.stats.mtimeMs, abs: res.abs });
      await addTree(m, r, res.abs, path, root, signal);
    } catch (err) {
      m.problems.push(problemOf(r, path, asRcpp(err, path)));
    }
  }
  return m;
}

/**
 * Client side of put: local files and folders, named `remoteDir/<basename>/...`. A folder is sent as
 * its tree; links are followed (these are the user's own files), special files become problems.
 */
export async function manifestForPut(
  localPaths: readonly string[],
  remoteDir: string,
  signal?: AbortSignal,
): Promise<Manifest> {
  const m: Manifest = { files: [], dirs: [], problems: [] };
  for (let r = 0; r < localPaths.length; r++) {
    const local = localPaths[r]!;
    const name = basename(resolve(local));
    const rel = remoteDir ? `${remoteDir}/${name}` : name;
    try {
      const problem = nameProblem(name);
      if (problem)
        throw new RcppError(
          'PATH_REFUSED',
          `The name ${quote(name)} ${problem}, so it cannot be sent.`,
        );
      const st = await stat(local).catch((err: unknown) => {
        throw fsError(err, local);
      });
      if (st.isFile()) {
        if (m.files.length >= MAX_FILES_PER_COMMAND) throw tooMany(local);
        m.files.push({
          i: m.files.length,
          root: r,
          path: rel,
          size: st.size,
          mtimeMs: st.mtimeMs,
          abs: resolve(local),
        });
      } else if (st.isDirectory()) {
        m.dirs.push({ root: r, path: rel, mtimeMs: st.mtimeMs, abs: resolve(local) });
        const before = m.problems.length;
        await addTree(m, r, resolve(local), rel, undefined, signal);
        for (const p of m.problems.slice(before))
          p.localPath = resolve(local, p.path.slice(rel.length + 1));
      } else {
        throw new RcppError('NOT_A_FILE', `${quote(local)} is not a regular file or folder.`);
      }
    } catch (err) {
      m.problems.push(problemOf(r, rel, asRcpp(err, local), local));
    }
  }
  return m;
}
