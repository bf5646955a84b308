// Receiving one file atomically, the same code for get (on the client) and put (on the server).
//
//   prepareReceive: the target is checked (safe path, FILE_EXISTS without force, IS_A_DIRECTORY),
//     locked, an existing partial of the same peer (`<target>.<peer tag>.rcpp2p-partial`) is
//     described by block hashes for resume, and free space is checked for what is still missing.
//   FileSink.open(offset): the partial (mode 0600) is cut to the sender's offset; the SHA-256 of the
//     kept prefix is carried over, so the final hash covers the whole content.
//   write: each payload (a data frame's chunk slices, never copied) is written with one writev at its
//     position while it is hashed (the write is in flight on libuv's pool while the main thread
//     hashes), at most one write outstanding.
//   commit: hash compared with the sender's; on mismatch the partial is deleted (INTEGRITY_MISMATCH)
//     and nothing is replaced. Otherwise sender's mtime, fsync, then link (no overwrite) or rename
//     (force) into place; the folder is recorded for one fsync at the end of the command.
//   abandon: a cut connection or a disk-full keeps the partial for the next run; the lock is freed.
//
// Calls that only touch metadata or the page cache (open, fstat, fchmod, futimes, link, rename, and
// writes of up to 64 KiB) are synchronous: a few µs each on a local disk, where an asynchronous call
// costs about 30 µs of CPU in thread hand-offs (10 times the call, measured on the bench machine),
// and a tree of small files is nothing but such calls. fsync, the large writes and the hashing of
// partials stay asynchronous. The free space is read once a second per folder, not per file.

import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsync,
  ftruncateSync,
  futimesSync,
  linkSync,
  lstatSync,
  openSync,
  renameSync,
  statfsSync,
  unlinkSync,
  writev,
  writevSync,
  type Stats,
} from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { fsError, isRcppError, RcppError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { describePartial, hashPrefix, type PartialState } from './block-hashes.js';
import { acquireReceiveLock, type ReceiveLock } from './lock.js';
import { PARTIAL_SUFFIX, partialPath, prepareCreate, type SafeRoot } from './safe-path.js';

export interface ReceiveSpec {
  i: number;
  /** Path relative to the receiving root (checked again here). */
  rel: string;
  /** How the file is named to the user (the remote path for get, the server path for put). */
  shown: string;
  size: number;
  mtimeMs: number;
  /** Who sends it: the partial is kept for (and resumed with) this peer only (see partialPath). */
  peer: string;
}

export interface Prepared {
  spec: ReceiveSpec;
  dir: string;
  target: string;
  partial: string;
  replaces: boolean;
  lock: ReceiveLock;
  /** Whether something was at the partial's name when the file was prepared. */
  partialExisted?: boolean;
  partialState?: PartialState;
}

const RETRY_HINT = 'Run the command again; the file is sent again from the start.';

/** Mode of a finished file: what a new file gets here (0666 less the umask). */
const FINAL_MODE = 0o666 & ~process.umask();

export async function prepareReceive(
  root: SafeRoot,
  spec: ReceiveSpec,
  force: boolean,
  signal?: AbortSignal,
): Promise<Prepared> {
  const ct = await prepareCreate(root, spec.rel, force);
  const lock = await acquireReceiveLock(ct.target, spec.shown);
  try {
    const partial = partialPath(ct.target, spec.peer);
    let st: Stats | undefined;
    try {
      st = lstatSync(partial, { throwIfNoEntry: false });
    } catch (err) {
      throw fsError(err, spec.shown);
    }
    if (st && !st.isFile()) {
      if (!st.isSymbolicLink()) {
        throw new RcppError(
          'NOT_A_FILE',
          `${quote(spec.shown + PARTIAL_SUFFIX)} is in the way and is not a file.`,
        );
      }
      unlinkSync(partial); // a link planted where our partial goes: remove it, never follow it
    }
    const usable = st?.isFile() && st.size > 0 && st.size <= spec.size;
    const partialState = usable ? await describePartial(partial, signal) : undefined;
    checkSpaceNow(ct.dir, spec.size - (partialState?.info.length ?? 0), spec.shown);
    return {
      spec,
      ...ct,
      partial,
      lock,
      partialExisted: st !== undefined,
      ...(partialState ? { partialState } : {}),
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** Free bytes per folder, read at most once a second and counted down by what was promised since. */
const freeSpace = new Map<string, { free: number; at: number }>();
const FREE_SPACE_TTL_MS = 1000;

/** Refuses with DISK_FULL when `need` more bytes do not fit on the disk holding `dir`. */
export async function checkSpace(dir: string, need: number, shown: string): Promise<void> {
  checkSpaceNow(dir, need, shown);
  return Promise.resolve();
}

function checkSpaceNow(dir: string, need: number, shown: string): void {
  if (need <= 0) return;
  let known = freeSpace.get(dir);
  if (!known || Date.now() - known.at > FREE_SPACE_TTL_MS || need > known.free) {
    try {
      const s = statfsSync(dir);
      known = { free: s.bavail * s.bsize, at: Date.now() };
    } catch {
      return; // no statfs here (unusual file systems): the writes themselves will tell
    }
    if (freeSpace.size > 1024) freeSpace.clear();
    freeSpace.set(dir, known);
  }
  if (need > known.free) {
    throw new RcppError(
      'DISK_FULL',
      `${quote(shown)} needs ${need} more bytes but the disk holding it has ${known.free} bytes free.`,
      'Free some space, then run the command again.',
    );
  }
  known.free -= need;
}

/** Payloads up to this size are written synchronously. */
const SMALL_WRITE = 64 * 1024;

export class FileSink {
  private remaining: number;
  private position: number;
  private inflight: Promise<void> | undefined;
  private failure: RcppError | undefined;
  private closed = false;

  private constructor(
    readonly prepared: Prepared,
    private readonly fd: number,
    private readonly hash: Hash,
    readonly offset: number,
  ) {
    this.position = offset;
    this.remaining = prepared.spec.size - offset;
  }

  static async open(p: Prepared, offset: number, signal?: AbortSignal): Promise<FileSink> {
    const shown = p.spec.shown;
    checkSpaceNow(p.dir, p.spec.size - offset, shown);
    const flags = constants.O_CREAT | constants.O_NOFOLLOW;
    let fd: number | undefined;
    try {
      if (offset === 0 && !p.partialExisted) {
        // Nothing was there when prepared: create it, already empty and private.
        try {
          fd = openSync(p.partial, flags | constants.O_EXCL | constants.O_WRONLY, 0o600);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      if (fd === undefined) {
        fd = openSync(p.partial, flags | constants.O_RDWR, 0o600);
        fchmodSync(fd, 0o600);
        ftruncateSync(fd, offset);
      }
    } catch (err) {
      if (fd !== undefined) closeQuietly(fd);
      throw fsError(err, shown);
    }
    try {
      let hash: Hash;
      const state = p.partialState;
      if (offset === 0) hash = createHash('sha256');
      else if (state && offset === state.info.length) hash = state.whole;
      else {
        const fh = await open(p.partial, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          hash = await hashPrefix(fh, offset, signal);
        } finally {
          await fh.close();
        }
      }
      return new FileSink(p, fd, hash, offset);
    } catch (err) {
      closeQuietly(fd);
      throw isRcppError(err) ? err : fsError(err, shown);
    }
  }

  /** Bytes this run has received so far (excluding the resumed prefix). */
  get received(): number {
    return this.position - this.offset;
  }

  /** The write error that ended this file (DISK_FULL, PERMISSION_DENIED...), if any. */
  get error(): RcppError | undefined {
    return this.failure;
  }

  /**
   * Writes one payload (a buffer, or the slices of a data frame) at the next position and hashes it;
   * resolves once the previous write finished and this one is under way (or done, when small).
   */
  async write(payload: Buffer | readonly Buffer[]): Promise<void> {
    const pieces = Buffer.isBuffer(payload) ? [payload] : payload;
    let length = 0;
    for (const piece of pieces) length += piece.length;
    if (length > this.remaining) {
      throw new RcppError(
        'PROTOCOL_ERROR',
        `The sender sent more than the ${this.prepared.spec.size} bytes announced for ${quote(this.prepared.spec.shown)}.`,
      );
    }
    this.remaining -= length;
    if (this.inflight) await this.inflight;
    if (this.failure) return;
    const at = this.position;
    this.position += length;
    if (length <= SMALL_WRITE) this.writeNow(pieces, at);
    else this.inflight = this.writeAt(pieces, at);
    for (const piece of pieces) this.hash.update(piece);
  }

  private writeNow(pieces: readonly Buffer[], pos: number): void {
    try {
      let rest = pieces;
      while (rest.length > 0) {
        const n = writevSync(this.fd, rest, pos);
        if (n <= 0) throw new Error('the disk accepted no bytes');
        pos += n;
        rest = after(rest, n);
      }
    } catch (err) {
      this.failure = fsError(err, this.prepared.spec.shown);
    }
  }

  /** One writev per payload; a short write (rare on files) continues from where it stopped. */
  private async writeAt(pieces: readonly Buffer[], pos: number): Promise<void> {
    try {
      let rest = pieces;
      while (rest.length > 0) {
        const n = await writevAsync(this.fd, rest, pos);
        if (n <= 0) throw new Error('the disk accepted no bytes');
        pos += n;
        rest = after(rest, n);
      }
    } catch (err) {
      this.failure = fsError(err, this.prepared.spec.shown);
    }
  }

  /** Verifies the whole content against the sender's hash and moves it into place. */
  async commit(sha256: string): Promise<string> {
    const { spec, partial, target } = this.prepared;
    if (this.inflight) await this.inflight;
    if (this.failure) {
      this.close(); // the partial stays for the next run
      throw this.failure;
    }
    const digest = this.hash.digest('hex');
    if (this.remaining !== 0 || digest !== sha256) {
      this.close();
      await unlink(partial).catch(() => {});
      const why =
        this.remaining !== 0
          ? `arrived ${this.remaining} bytes short`
          : 'does not match the SHA-256 the sender computed';
      throw new RcppError(
        'INTEGRITY_MISMATCH',
        `${quote(spec.shown)} ${why}; nothing was replaced.`,
        RETRY_HINT,
      );
    }
    try {
      futimesSync(this.fd, Date.now() / 1000, spec.mtimeMs / 1000);
      fchmodSync(this.fd, FINAL_MODE);
      await fsyncAsync(this.fd);
      this.close();
      placeFile(partial, target, this.prepared.replaces, spec.shown);
    } catch (err) {
      this.close();
      throw isRcppError(err) ? err : fsError(err, spec.shown);
    }
    return digest;
  }

  /** Stops this file; the partial stays for the next run unless keepPartial is false. */
  async abandon(keepPartial = true): Promise<void> {
    if (this.inflight) await this.inflight;
    this.close();
    if (!keepPartial) await unlink(this.prepared.partial).catch(() => {});
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // the data is synced or kept as a partial either way
  }
}

function writevAsync(fd: number, pieces: readonly Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, pieces as Buffer[], pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

/** The slices left once the first `n` bytes of `pieces` are written. */
function after(pieces: readonly Buffer[], n: number): readonly Buffer[] {
  let k = 0;
  while (k < pieces.length && n >= pieces[k]!.length) n -= pieces[k++]!.length;
  if (k === pieces.length) return [];
  return [pieces[k]!.subarray(n), ...pieces.slice(k + 1)];
}

/**
 * Moves a verified partial to its target. Without force, link() refuses to overwrite a file that
 * appeared meanwhile (the partial is kept, complete, so a --force rerun finishes at once); where
 * hard links are not supported, a last check and rename() stand in.
 */
function placeFile(partial: string, target: string, replace: boolean, shown: string): void {
  if (replace) {
    renameSync(partial, target);
    return;
  }
  const appeared = (): RcppError =>
    new RcppError(
      'FILE_EXISTS',
      `${quote(shown)} appeared while it was being received.`,
      'Add --force to replace it.',
    );
  try {
    linkSync(partial, target);
    unlinkSync(partial);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw appeared();
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV')
      throw err;
  }
  if (lstatSync(target, { throwIfNoEntry: false })) throw appeared();
  renameSync(partial, target);
}

/** fsync of folders whose entries changed, so the renames survive a power cut. */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  for (const dir of dirs) {
    try {
      const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch {
      // Some file systems refuse fsync on folders; the files themselves are already synced.
    }
  }
}
