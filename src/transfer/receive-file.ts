// Receiving one file atomically, the same code for get (on the client) and put (on the server).
//
//   prepareReceive: the target is checked (safe path, FILE_EXISTS without force, IS_A_DIRECTORY),
//     locked, an existing `<target>.rcpp2p-partial` is described by block hashes for resume, and
//     free space is checked for what is still missing.
//   FileSink.open(offset): the partial (mode 0600) is cut to the sender's offset; the SHA-256 of the
//     kept prefix is carried over, so the final hash covers the whole content.
//   write: each payload (a data frame's chunk slices, never copied) is written with one writev at its
//     position while it is hashed (the write is in flight on libuv's pool while the main thread
//     hashes), at most one write outstanding.
//   commit: hash compared with the sender's; on mismatch the partial is deleted (INTEGRITY_MISMATCH)
//     and nothing is replaced. Otherwise sender's mtime, fsync, then link (no overwrite) or rename
//     (force) into place; the folder is recorded for one fsync at the end of the command.
//   abandon: a cut connection or a disk-full keeps the partial for the next run; the lock is freed.

import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, rename, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { fsError, isRcppError, RcppError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { describePartial, hashPrefix, type PartialState } from './block-hashes.js';
import { acquireReceiveLock, type ReceiveLock } from './lock.js';
import { lstatOrUndefined, PARTIAL_SUFFIX, prepareCreate, type SafeRoot } from './safe-path.js';

export interface ReceiveSpec {
  i: number;
  /** Path relative to the receiving root (checked again here). */
  rel: string;
  /** How the file is named to the user (the remote path for get, the server path for put). */
  shown: string;
  size: number;
  mtimeMs: number;
}

export interface Prepared {
  spec: ReceiveSpec;
  dir: string;
  target: string;
  partial: string;
  replaces: boolean;
  lock: ReceiveLock;
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
    const partial = ct.target + PARTIAL_SUFFIX;
    const st = await lstatOrUndefined(partial).catch((err: unknown) => {
      throw fsError(err, spec.shown);
    });
    if (st && !st.isFile()) {
      if (!st.isSymbolicLink()) {
        throw new RcppError(
          'NOT_A_FILE',
          `${quote(spec.shown + PARTIAL_SUFFIX)} is in the way and is not a file.`,
        );
      }
      await unlink(partial); // a link planted where our partial goes: remove it, never follow it
    }
    const usable = st?.isFile() && st.size > 0 && st.size <= spec.size;
    const partialState = usable ? await describePartial(partial, signal) : undefined;
    await checkSpace(ct.dir, spec.size - (partialState?.info.length ?? 0), spec.shown);
    return { spec, ...ct, partial, lock, ...(partialState ? { partialState } : {}) };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** Refuses with DISK_FULL when `need` more bytes do not fit on the disk holding `dir`. */
export async function checkSpace(dir: string, need: number, shown: string): Promise<void> {
  if (need <= 0) return;
  let free: number;
  try {
    const s = await statfs(dir);
    free = s.bavail * s.bsize;
  } catch {
    return; // no statfs here (unusual file systems): the writes themselves will tell
  }
  if (need > free) {
    throw new RcppError(
      'DISK_FULL',
      `${quote(shown)} needs ${need} more bytes but the disk holding it has ${free} bytes free.`,
      'Free some space, then run the command again.',
    );
  }
}

export class FileSink {
  private remaining: number;
  private position: number;
  private inflight: Promise<void> | undefined;
  private failure: RcppError | undefined;
  private closed = false;

  private constructor(
    readonly prepared: Prepared,
    private readonly fh: FileHandle,
    private readonly hash: Hash,
    readonly offset: number,
  ) {
    this.position = offset;
    this.remaining = prepared.spec.size - offset;
  }

  static async open(p: Prepared, offset: number, signal?: AbortSignal): Promise<FileSink> {
    const shown = p.spec.shown;
    await checkSpace(p.dir, p.spec.size - offset, shown);
    let fh: FileHandle;
    try {
      fh = await open(
        p.partial,
        constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (err) {
      throw fsError(err, shown);
    }
    try {
      await fh.chmod(0o600);
      await fh.truncate(offset);
      let hash: Hash;
      const state = p.partialState;
      if (offset === 0) hash = createHash('sha256');
      else if (state && offset === state.info.length) hash = state.whole;
      else hash = await hashPrefix(fh, offset, signal);
      return new FileSink(p, fh, hash, offset);
    } catch (err) {
      await fh.close().catch(() => {});
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
   * resolves once the previous write finished and this one is under way.
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
    this.inflight = this.writeAt(pieces, this.position);
    this.position += length;
    for (const piece of pieces) this.hash.update(piece);
  }

  /** One writev per payload; a short write (rare on files) continues from where it stopped. */
  private async writeAt(pieces: readonly Buffer[], pos: number): Promise<void> {
    try {
      let rest = pieces;
      while (rest.length > 0) {
        const { bytesWritten } = await this.fh.writev(rest as Buffer[], pos);
        if (bytesWritten <= 0) throw new Error('the disk accepted no bytes');
        pos += bytesWritten;
        rest = after(rest, bytesWritten);
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
      await this.close(); // the partial stays for the next run
      throw this.failure;
    }
    const digest = this.hash.digest('hex');
    if (this.remaining !== 0 || digest !== sha256) {
      await this.close();
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
      const mtime = spec.mtimeMs / 1000;
      await this.fh.utimes(Date.now() / 1000, mtime);
      await this.fh.chmod(FINAL_MODE);
      await this.fh.sync();
      await this.close();
      await placeFile(partial, target, this.prepared.replaces, spec.shown);
    } catch (err) {
      await this.close();
      throw isRcppError(err) ? err : fsError(err, spec.shown);
    }
    return digest;
  }

  /** Stops this file; the partial stays for the next run unless keepPartial is false. */
  async abandon(keepPartial = true): Promise<void> {
    if (this.inflight) await this.inflight;
    await this.close();
    if (!keepPartial) await unlink(this.prepared.partial).catch(() => {});
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => {});
  }
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
async function placeFile(
  partial: string,
  target: string,
  replace: boolean,
  shown: string,
): Promise<void> {
  if (replace) {
    await rename(partial, target);
    return;
  }
  try {
    await link(partial, target);
    await unlink(partial);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new RcppError(
        'FILE_EXISTS',
        `${quote(shown)} appeared while it was being received.`,
        'Add --force to replace it.',
      );
    }
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV')
      throw err;
  }
  if (await lstatOrUndefined(target)) {
    throw new RcppError(
      'FILE_EXISTS',
      `${quote(shown)} appeared while it was being received.`,
      'Add --force to replace it.',
    );
  }
  await rename(partial, target);
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
