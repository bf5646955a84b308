// The list of files and folders a command moves, built by the sending side before anything is sent.
// get (server): each requested path is checked and resolved inside the working directory; a folder
// contributes its whole tree. put (client): each local path, a folder as its tree, named under the
// remote folder. Per-path problems (missing, refused, special files) travel as problems and become
// ok:false results; the rest of the command goes on.

import { stat } from 'node:fs/promises';
import { basename, resolve, sep } from 'node:path';
import { fsError, isRcppError, RcppError } from '../errors.js';
import { CommandBudget, PROBLEM_MESSAGE_CHARS, PROBLEM_PATH_CHARS } from '../protocol/budget.js';
import type { ManifestDir, ManifestFile, Problem } from '../protocol/messages.js';
import { quote } from '../protocol/text.js';
import { nameProblem, type Resolved, type SafeRoot } from './safe-path.js';
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

/** A manifest under construction: its entries and what they cost. */
interface Building extends Manifest {
  budget: CommandBudget;
  /** Folders walked so far (dev:ino), over all roots of the command. */
  seen: Set<string>;
}

function building(): Building {
  return {
    files: [],
    dirs: [],
    problems: [],
    budget: CommandBudget.forBuilding(),
    seen: new Set(),
  };
}

function done(b: Building): Manifest {
  return { files: b.files, dirs: b.dirs, problems: b.problems };
}

function asRcpp(err: unknown, shown: string): RcppError {
  return isRcppError(err) ? err : fsError(err, shown);
}

function tooMany(shown: string, budget: CommandBudget): RcppError {
  return new RcppError(
    'USAGE',
    `${quote(shown)} holds more than one command moves (${budget.describe()}).`,
    'Move its folders in several commands.',
  );
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A problem for the manifest, its path and sentence cut so that it always fits the message's bounds.
 * A walk's problems were counted by the walk; any other is the one problem of its requested path.
 */
function addProblem(
  m: Building,
  root: number,
  path: string,
  error: RcppError,
  opts: { localPath?: string; counted?: boolean } = {},
): void {
  const shown = cut(path, PROBLEM_PATH_CHARS);
  const message = cut(error.message, PROBLEM_MESSAGE_CHARS);
  if (!opts.counted) m.budget.addRootProblem(shown, message);
  const localPath = opts.localPath;
  m.problems.push({
    root,
    path: shown,
    code: error.code,
    message,
    error,
    ...(localPath ? { localPath } : {}),
  });
}

/** Adds one folder's tree to the manifest (named under `rel`). */
async function addTree(
  m: Building,
  r: number,
  abs: string,
  rel: string,
  root: SafeRoot | undefined,
  signal?: AbortSignal,
) {
  const w = await walkTree(abs, rel, {
    ...(root ? { root } : {}),
    recursive: true,
    maxEntries: Number.MAX_SAFE_INTEGER,
    budget: m.budget,
    seen: m.seen,
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
  for (const p of w.problems) addProblem(m, r, p.rel, p.error, { counted: true });
  if (w.truncated) addProblem(m, r, rel, tooMany(rel, m.budget));
}

/** Whether `inner` is `outer` or lies inside it (both real paths). */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * Server side of get: what the requested paths name inside the working directory. A path named twice,
 * or inside another requested folder, is refused (its files already travel with the first), so a
 * request of at most 1,024 paths walks each folder once; the whole manifest stays within the
 * command budget, and what does not fit is reported as a problem.
 */
export async function manifestForGet(
  root: SafeRoot,
  paths: readonly string[],
  signal?: AbortSignal,
): Promise<Manifest> {
  const m = building();
  const resolved = await Promise.all(
    paths.map((path, r) =>
      root.resolveExisting(path).catch((err: unknown) => {
        addProblem(m, r, path, asRcpp(err, path));
        return undefined;
      }),
    ),
  );
  // Problems in the order of the request, whatever order the look-ups finished in.
  m.problems.sort((a, b) => a.root - b.root);
  const outer = outermost(resolved);
  for (let r = 0; r < paths.length; r++) {
    const path = paths[r]!;
    const res = resolved[r];
    if (!res) continue;
    const cover = outer[r];
    if (cover !== undefined) {
      addProblem(
        m,
        r,
        path,
        new RcppError(
          'PATH_REFUSED',
          `${quote(path)} is already part of this get (as ${quote(paths[cover]!)}).`,
          'Name each file or folder once, and not also a folder that holds it.',
        ),
      );
      continue;
    }
    try {
      if (res.kind === 'file') {
        if (!m.budget.addFile(path)) throw tooMany(path, m.budget);
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
      if (!m.budget.addDir(path)) throw tooMany(path, m.budget);
      m.dirs.push({ root: r, path, mtimeMs: res.stats.mtimeMs, abs: res.abs });
      await addTree(m, r, res.abs, path, root, signal);
    } catch (err) {
      if (isRcppError(err) && (err.code === 'ABORTED' || err.code === 'TIMEOUT')) throw err;
      addProblem(m, r, path, asRcpp(err, path));
    }
  }
  return done(m);
}

/**
 * For each root, the earlier root naming the same file or folder, or the folder of this command
 * that holds it (the outer one is kept, whatever the order); undefined for roots to walk.
 */
function outermost(resolved: readonly (Resolved | undefined)[]): (number | undefined)[] {
  // Sorted with the separator first, a folder is followed at once by everything inside it.
  const key = (abs: string): string => abs.split(sep).join('\u0000');
  const order = resolved
    .map((res, r) => ({ res, r, key: res ? key(res.abs) : '' }))
    .filter((x): x is { res: Resolved; r: number; key: string } => x.res !== undefined)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.r - b.r));
  const out: (number | undefined)[] = resolved.map(() => undefined);
  let holder: { abs: string; r: number } | undefined;
  let prev: { abs: string; r: number } | undefined;
  for (const { res, r } of order) {
    if (prev?.abs === res.abs) {
      out[r] = prev.r;
      continue;
    }
    prev = { abs: res.abs, r };
    if (holder && !within(res.abs, holder.abs)) holder = undefined;
    if (holder) out[r] = holder.r;
    else if (res.kind === 'dir') holder = { abs: res.abs, r };
  }
  return out;
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
  const m = building();
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
        if (!m.budget.addFile(rel)) throw tooMany(local, m.budget);
        m.files.push({
          i: m.files.length,
          root: r,
          path: rel,
          size: st.size,
          mtimeMs: st.mtimeMs,
          abs: resolve(local),
        });
      } else if (st.isDirectory()) {
        if (!m.budget.addDir(rel)) throw tooMany(local, m.budget);
        m.dirs.push({ root: r, path: rel, mtimeMs: st.mtimeMs, abs: resolve(local) });
        const before = m.problems.length;
        await addTree(m, r, resolve(local), rel, undefined, signal);
        for (const p of m.problems.slice(before))
          p.localPath = resolve(local, p.path.slice(rel.length + 1));
      } else {
        throw new RcppError('NOT_A_FILE', `${quote(local)} is not a regular file or folder.`);
      }
    } catch (err) {
      if (isRcppError(err) && (err.code === 'ABORTED' || err.code === 'TIMEOUT')) throw err;
      addProblem(m, r, rel, asRcpp(err, local), { localPath: local });
    }
  }
  return done(m);
}
